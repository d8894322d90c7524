//! What Plivo reports after a send: message receipts, the 2FA PHLO's
//! receipts (which name the number, not the verification) and calls'
//! outcomes. Each is recorded on its verification, never moving a delivery
//! backwards, and a failed message moves the fallback on (WhatsApp → SMS →
//! voice).

use std::sync::Arc;

use crate::apps::{Apps, UNKNOWN_APP_LABEL};
use crate::domain::{
    CallRef, Channel, Clock, Delivery, FallbackTrigger, Keyring, PhoneNumber, Timestamp,
    VerificationId,
};
use crate::events::{EventKind, Outbox};
use crate::store::{CallStore, DeliveryUpdate, Recording, Store, StoreError, VerificationStore};

use super::{FALLBACK_JOB, Fallback, FallbackRun, announce, complete, count_delivery};

#[derive(Debug, Clone)]
pub struct Receipts {
    store: Store,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    outbox: Outbox,
    fallback: Fallback,
    apps: Arc<Apps>,
}

impl Receipts {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        outbox: Outbox,
        fallback: Fallback,
        apps: Arc<Apps>,
    ) -> Self {
        Self {
            store,
            keyring,
            clock,
            outbox,
            fallback,
            apps,
        }
    }

    /// The clock callbacks are dated by.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Records a message status callback (SMS or WhatsApp). A failure moves
    /// the fallback to the step after that message's channel; a message
    /// that arrived ends the fallback's wait. `false` when the verification
    /// is unknown.
    #[tracing::instrument(skip_all, fields(verification.id = %id))]
    pub async fn message_status(
        &self,
        id: &VerificationId,
        delivery: Delivery,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let failed = delivery.status.is_failure();
        let arrived = delivery.status.arrived();
        let uuid = delivery.provider_id.clone();
        let reported = delivery.channel;
        let v = match self.apply(id, delivery, now).await? {
            DeliveryUpdate::NotFound => return Ok(false),
            DeliveryUpdate::Stale(_) => return Ok(true),
            DeliveryUpdate::Applied(v) => v,
        };
        // The channel of the message as it was sent (a receipt may lack its Type).
        let channel = v
            .deliveries
            .iter()
            .find(|d| d.provider_id == uuid)
            .map_or(reported, |d| d.channel);
        let falls_back = self
            .apps
            .get(&v.application)
            .is_some_and(|app| app.policy.fallback_after.is_some());
        if failed && falls_back {
            // A step with a timer of its own moved the job; else nothing waits.
            if self
                .fallback
                .run(id, FallbackTrigger::Failed(channel))
                .await?
                == FallbackRun::Sent(None)
            {
                complete(&self.store, format!("{FALLBACK_JOB}{id}")).await;
            }
        } else if arrived {
            complete(&self.store, format!("{FALLBACK_JOB}{id}")).await;
        }
        Ok(true)
    }

    /// Records a receipt from the PHLO (which knows the number, not the
    /// verification): it goes on the number's latest verification, of
    /// whichever application last sent it a code.
    pub async fn phlo_status(
        &self,
        to: &PhoneNumber,
        delivery: Delivery,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut latest = None;
        for app in self.apps.iter() {
            let key = self.keyring.app_number_key(&app.id, to);
            if let Some(v) = self.store.latest(to, &key, now).await?
                && latest
                    .as_ref()
                    .is_none_or(|l: &crate::domain::Verification| v.last_sent_at > l.last_sent_at)
            {
                latest = Some(v);
            }
        }
        let Some(v) = latest else {
            return Ok(false);
        };
        match delivery.channel {
            Channel::Voice => {
                self.apply(&v.id, delivery, now).await?;
                Ok(true)
            }
            Channel::Sms | Channel::WhatsApp => self.message_status(&v.id, delivery).await,
        }
    }

    /// Records what Plivo said about a call on its verification's deliveries.
    /// `false` when the reference is unknown.
    pub async fn call(&self, call: &CallRef, delivery: Delivery) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let Some(v) = self.store.resolve_call(call, now).await? else {
            return Ok(false);
        };
        self.apply(&v.id, delivery, now).await?;
        Ok(true)
    }

    /// Records a delivery report, counts it, and tells the app backend when
    /// it changed the delivery (what every receipt and call callback does).
    async fn apply(
        &self,
        id: &VerificationId,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<DeliveryUpdate, StoreError> {
        let counted = delivery.clone();
        let update = self
            .store
            .record_delivery(Recording::new(id, delivery), now)
            .await?;
        let application = match &update {
            DeliveryUpdate::Applied(v) | DeliveryUpdate::Stale(v) => {
                self.apps.label(&v.application)
            }
            DeliveryUpdate::NotFound => UNKNOWN_APP_LABEL.to_owned(),
        };
        count_delivery(&counted, application);
        if let DeliveryUpdate::Applied(v) = &update {
            announce(&self.outbox, &self.apps, EventKind::DeliveryUpdated, v).await;
        }
        Ok(update)
    }
}
