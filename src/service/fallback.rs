//! The jobs that act on a verification later: the automatic fallback
//! (WhatsApp → SMS → voice, in `FALLBACK_CHANNELS`' order) and the expiry
//! that announces an unused code's end. Each finds its application from the
//! record.

use std::sync::Arc;
use std::time::Duration;

use crate::apps::Apps;
use crate::domain::{Clock, FallbackTrigger, Keyring, Status, Timestamp, VerificationId};
use crate::events::{EventKind, Outbox};
use crate::store::{FallbackClaim, Finish, Owner, Store, StoreError, VerificationStore};

use super::dispatch::fallback_timer;
use super::{Dispatcher, EXPIRE_JOB, announce, schedule};

/// What a fallback run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackRun {
    /// No step was claimed: the verification ended, a message arrived, the
    /// step was taken already, or the sends are used up.
    Skipped,
    /// A step was claimed and its send made (or tried); the fallback job
    /// should look again then, or `None`: nothing follows it.
    Sent(Option<Timestamp>),
}

/// The automatic fallback.
#[derive(Debug, Clone)]
pub struct Fallback {
    store: Store,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    dispatcher: Dispatcher,
    outbox: Outbox,
    apps: Arc<Apps>,
}

impl Fallback {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        dispatcher: Dispatcher,
        outbox: Outbox,
        apps: Arc<Apps>,
    ) -> Self {
        Self {
            store,
            keyring,
            clock,
            dispatcher,
            outbox,
            apps,
        }
    }

    /// Sends the same code on the next channel of the chain that `trigger`
    /// asks for, unless a message arrived, that step was taken already, the
    /// verification ended, or it has had all its sends. Safe to run any
    /// number of times, on any number of instances: the claim is atomic. A
    /// verification of an application no longer configured gets nothing.
    #[tracing::instrument(skip_all, fields(verification.id = %id))]
    pub async fn run(
        &self,
        id: &VerificationId,
        trigger: FallbackTrigger,
    ) -> Result<FallbackRun, StoreError> {
        let now = self.clock.now();
        let Some(v) = self.store.get(id, Owner::Any, now).await? else {
            return Ok(FallbackRun::Skipped);
        };
        let Some(app) = self.apps.get(&v.application) else {
            tracing::warn!(application = %v.application, "no fallback: the application is not configured");
            return Ok(FallbackRun::Skipped);
        };
        let claim = self
            .store
            .claim_fallback(
                id,
                app.policy.fallback_channels,
                trigger,
                app.policy.send.max_sends,
                now,
            )
            .await?;
        let (verification, sealed, channel) = match claim {
            FallbackClaim::Claimed {
                verification,
                sealed,
                channel,
            } => (verification, sealed, channel),
            FallbackClaim::Skipped(skip) => {
                tracing::debug!(?skip, "no fallback");
                return Ok(FallbackRun::Skipped);
            }
            FallbackClaim::NotFound => return Ok(FallbackRun::Skipped),
        };
        let code = self
            .keyring
            .open(&sealed, verification.id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("sealed code of {id}: {e}")))?;
        tracing::info!(
            fallback.channel = channel.as_str(),
            "message not delivered: falling back"
        );
        metrics::counter!(
            crate::telemetry::FALLBACKS,
            "channel" => channel.as_str(),
            "application" => app.id.to_string()
        )
        .increment(1);
        match self
            .dispatcher
            .deliver(app, &verification, &code, channel, None, now)
            .await
        {
            Ok(v) => {
                announce(&self.outbox, &self.apps, EventKind::DeliveryUpdated, &v).await;
                Ok(FallbackRun::Sent(fallback_timer(app, &v, channel, now)))
            }
            Err(e) => {
                tracing::warn!(error = %e, fallback.channel = channel.as_str(), "the fallback could not be sent");
                Ok(FallbackRun::Sent(None))
            }
        }
    }
}

/// The expiry job: settles a verification whose lifetime is over, and is
/// the one place that announces expiry.
#[derive(Debug, Clone)]
pub struct Expiry {
    store: Store,
    clock: Arc<dyn Clock>,
    outbox: Outbox,
    apps: Arc<Apps>,
}

impl Expiry {
    pub fn new(store: Store, clock: Arc<dyn Clock>, outbox: Outbox, apps: Arc<Apps>) -> Self {
        Self {
            store,
            clock,
            outbox,
            apps,
        }
    }

    pub async fn run(&self, id: &VerificationId) -> Result<(), StoreError> {
        let now = self.clock.now();
        match self
            .store
            .finish(id, Owner::Any, Finish::Expire, now)
            .await?
        {
            // Whichever path (a late check, a fallback claim…) happened to
            // settle it first, this job announces it.
            Some((Ok(()) | Err(Status::Expired), v)) => {
                announce(&self.outbox, &self.apps, EventKind::Expired, &v).await;
            }
            // Another instance's clock may trail: look again in a second.
            Some((Err(Status::Pending), v)) => {
                let due = v.expires_at.max(now.plus(Duration::from_secs(1)));
                schedule(&self.store, format!("{EXPIRE_JOB}{id}"), due).await;
            }
            _ => {}
        }
        Ok(())
    }
}
