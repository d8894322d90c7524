//! The job worker every instance runs. Jobs live in the store's schedule (a
//! Redis sorted set in production), are claimed atomically with a lease, and
//! their effects are idempotent, so each one takes effect exactly once however
//! many instances poll and whichever of them restarts.

use std::sync::Arc;
use std::time::Duration;

use crate::apps::Apps;
use crate::domain::{Clock, FallbackTrigger, Timestamp, VerificationId};
use crate::events::{JOB_PREFIX as EVENT_JOB, Outbox, Sent};
use crate::service::{EXPIRE_JOB, Expiry, FALLBACK_JOB, Fallback, FallbackRun};
use crate::store::{JobStore, Store, StoreError};

/// How long a claimed job is reserved for its claimer.
const LEASE: Duration = Duration::from_secs(30);
/// Jobs claimed per poll.
const BATCH: usize = 32;

/// What the jobs run with.
#[derive(Debug, Clone)]
pub struct Jobs {
    store: Store,
    clock: Arc<dyn Clock>,
    fallback: Fallback,
    expiry: Expiry,
    outbox: Outbox,
    apps: Arc<Apps>,
}

impl Jobs {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        fallback: Fallback,
        expiry: Expiry,
        outbox: Outbox,
        apps: Arc<Apps>,
    ) -> Self {
        Self {
            store,
            clock,
            fallback,
            expiry,
            outbox,
            apps,
        }
    }

    /// Runs due jobs until the process ends.
    pub async fn run(self, poll: Duration) {
        let mut interval = tokio::time::interval(poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            for app in self.apps.iter() {
                if let Err(e) = app.guard.flush().await {
                    tracing::debug!(application = %app.id, error = %e, "could not flush approval counts");
                }
            }
            if let Err(e) = self.run_due().await {
                tracing::debug!(error = %e, "job poll failed");
            }
        }
    }

    /// Claims and runs every job due now; returns how many ran.
    pub async fn run_due(&self) -> Result<usize, StoreError> {
        let lease_ms = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
        let jobs = self
            .store
            .claim_jobs(self.clock.now(), lease_ms, BATCH)
            .await?;
        for job in &jobs {
            match self.run_one(job).await {
                Ok(Some(due)) => self.store.schedule(job, due).await?,
                Ok(None) => self.store.complete_job(job).await?,
                // Left leased: it comes due again when the lease ends.
                Err(e) => tracing::warn!(job = %job, error = %e, "job failed; will retry"),
            }
        }
        Ok(jobs.len())
    }

    /// Runs one job; `Some(due)` to run it again then.
    async fn run_one(&self, job: &str) -> Result<Option<Timestamp>, StoreError> {
        if let Some(id) = job
            .strip_prefix(FALLBACK_JOB)
            .and_then(VerificationId::parse)
        {
            if let FallbackRun::Sent(Some(due)) =
                self.fallback.run(&id, FallbackTrigger::NoReceipt).await?
            {
                return Ok(Some(due));
            }
        } else if let Some(id) = job.strip_prefix(EXPIRE_JOB).and_then(VerificationId::parse) {
            self.expiry.run(&id).await?;
        } else if let Some(id) = job.strip_prefix(EVENT_JOB) {
            let webhook_of = |app: &_| self.apps.get(app).and_then(|a| a.webhook.clone());
            if let Sent::Retry(due) = self.outbox.send(id, webhook_of).await? {
                return Ok(Some(due));
            }
        } else {
            tracing::warn!(job = %job, "unknown job dropped");
        }
        Ok(None)
    }
}
