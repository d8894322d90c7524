//! The jobs that act on a verification later: the automatic SMS→voice
//! fallback and the expiry that announces an unused code's end. Each finds
//! its application from the record.

use std::sync::Arc;
use std::time::Duration;

use crate::apps::Apps;
use crate::domain::{Channel, Clock, Keyring, Status, VerificationId};
use crate::events::{EventKind, Outbox};
use crate::store::{FallbackClaim, Finish, Owner, Store, StoreError, VerificationStore};

use super::{Dispatcher, EXPIRE_JOB, announce, schedule};

/// The automatic SMS→voice fallback.
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

    /// Places one call with the same code, unless the SMS arrived, a call
    /// was already made, the verification ended, or it has had all its
    /// sends. Safe to run any number of times, on any number of instances:
    /// the claim is atomic. A verification of an application no longer
    /// configured gets no call.
    #[tracing::instrument(skip_all, fields(verification.id = %id))]
    pub async fn run(&self, id: &VerificationId) -> Result<(), StoreError> {
        let now = self.clock.now();
        let Some(v) = self.store.get(id, Owner::Any, now).await? else {
            return Ok(());
        };
        let Some(app) = self.apps.get(&v.application) else {
            tracing::warn!(application = %v.application, "no fallback: the application is not configured");
            return Ok(());
        };
        let claim = self
            .store
            .claim_fallback(id, app.policy.send.max_sends, now)
            .await?;
        let (verification, sealed) = match claim {
            FallbackClaim::Claimed {
                verification,
                sealed,
            } => (verification, sealed),
            FallbackClaim::Skipped(skip) => {
                tracing::debug!(?skip, "no fallback");
                return Ok(());
            }
            FallbackClaim::NotFound => return Ok(()),
        };
        let code = self
            .keyring
            .open(&sealed, verification.id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("sealed code of {id}: {e}")))?;
        tracing::info!("SMS not delivered: falling back to a voice call");
        metrics::counter!("plivo2fa_fallbacks_total", "application" => app.id.to_string())
            .increment(1);
        match self
            .dispatcher
            .deliver(app, &verification, &code, Channel::Voice, None, now)
            .await
        {
            Ok(v) => announce(&self.outbox, &self.apps, EventKind::DeliveryUpdated, &v).await,
            Err(e) => tracing::warn!(error = %e, "the fallback call could not be placed"),
        }
        Ok(())
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
