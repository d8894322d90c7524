//! The job worker every instance runs. Jobs live in the store's schedule (a
//! Redis sorted set in production), are claimed atomically with a lease, and
//! their effects are idempotent, so each one takes effect exactly once however
//! many instances poll and whichever of them restarts.

use std::time::Duration;

use crate::domain::VerificationId;
use crate::events::{JOB_PREFIX as EVENT_JOB, Sent};
use crate::service::{EXPIRE_JOB, FALLBACK_JOB, Verifier};
use crate::store::{JobStore, StoreError};

/// How long a claimed job is reserved for its claimer.
const LEASE: Duration = Duration::from_secs(30);
/// Jobs claimed per poll.
const BATCH: usize = 32;

/// Runs due jobs until the process ends.
pub async fn run(verifier: Verifier, poll: Duration) {
    let mut interval = tokio::time::interval(poll);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = verifier.guard().flush().await {
            tracing::debug!(error = %e, "could not flush approval counts");
        }
        if let Err(e) = run_due(&verifier).await {
            tracing::debug!(error = %e, "job poll failed");
        }
    }
}

/// Claims and runs every job due now; returns how many ran.
pub async fn run_due(verifier: &Verifier) -> Result<usize, StoreError> {
    let store = verifier.store();
    let lease_ms = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
    let jobs = store.claim_jobs(verifier.now(), lease_ms, BATCH).await?;
    for job in &jobs {
        match run_one(verifier, job).await {
            Ok(Some(due)) => store.schedule(job, due).await?,
            Ok(None) => store.complete_job(job).await?,
            // Left leased: it comes due again when the lease ends.
            Err(e) => tracing::warn!(job = %job, error = %e, "job failed; will retry"),
        }
    }
    Ok(jobs.len())
}

/// Runs one job; `Some(due)` to run it again then.
async fn run_one(
    verifier: &Verifier,
    job: &str,
) -> Result<Option<crate::domain::Timestamp>, StoreError> {
    if let Some(id) = job
        .strip_prefix(FALLBACK_JOB)
        .and_then(VerificationId::parse)
    {
        verifier.fallback(&id).await?;
    } else if let Some(id) = job.strip_prefix(EXPIRE_JOB).and_then(VerificationId::parse) {
        verifier.expire(&id).await?;
    } else if let Some(id) = job.strip_prefix(EVENT_JOB) {
        if let Sent::Retry(due) = verifier.events().send(id).await? {
            return Ok(Some(due));
        }
    } else {
        tracing::warn!(job = %job, "unknown job dropped");
    }
    Ok(None)
}
