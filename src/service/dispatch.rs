//! Sending a verification's code once: a call reference for a call, the
//! send through the deliverer, the message's fallback job, and the delivery
//! recorded on the verification. Shared by the start and the fallback.

use crate::apps::App;
use crate::delivery::{AppHash, Deliverer, Dispatch};
use crate::domain::{CallRef, Channel, OtpCode, Timestamp, Verification};
use crate::plivo::PlivoError;
use crate::store::{CallStore, DeliveryUpdate, Recording, Store, VerificationStore};

use super::{FALLBACK_JOB, count_delivery};

/// When the fallback job should look at `v` after a send on `channel`:
/// `FALLBACK_AFTER_SECS` later, when the send is a message whose receipts
/// tell whether it arrived (an SMS's only with the Message API, or with
/// `PHLO_RECEIPTS`; WhatsApp's always, as it goes by the Message API) and
/// the chain has a step after it. `None`: no timer.
pub(super) fn fallback_timer(
    app: &App,
    v: &Verification,
    channel: Channel,
    now: Timestamp,
) -> Option<Timestamp> {
    let after = app.policy.fallback_after?;
    let receipts_come = match channel {
        Channel::Sms => app.policy.fallback_without_receipt,
        Channel::WhatsApp => true,
        Channel::Voice => false,
    };
    app.policy
        .fallback_channels
        .after(v.channel, channel)
        .filter(|_| receipts_come)
        .map(|_| now.plus(after))
}

#[derive(Debug, Clone)]
pub struct Dispatcher {
    store: Store,
    deliverer: Deliverer,
}

impl Dispatcher {
    pub fn new(store: Store, deliverer: Deliverer) -> Self {
        Self { store, deliverer }
    }

    /// Sends `code` for `v` on `channel` with `app`'s wording; the
    /// verification with the delivery recorded.
    pub async fn deliver(
        &self,
        app: &App,
        v: &Verification,
        code: &OtpCode,
        channel: Channel,
        app_hash: Option<&AppHash>,
        now: Timestamp,
    ) -> Result<Verification, PlivoError> {
        let call_ref;
        let dispatch = match channel {
            Channel::Sms => Dispatch::Sms(app_hash),
            Channel::WhatsApp => Dispatch::WhatsApp(app.whatsapp.as_ref().ok_or_else(|| {
                PlivoError::NotSent("no WhatsApp sender for this application".into())
            })?),
            Channel::Voice if self.deliverer.calls_need_reference() => {
                call_ref = CallRef::generate(v.id.tag());
                self.store
                    .register_call(&call_ref, &v.id, v.expires_at, now)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "could not register the call reference");
                        PlivoError::NotSent("the call could not be prepared".into())
                    })?;
                Dispatch::Voice(Some(&call_ref))
            }
            Channel::Voice => Dispatch::Voice(None),
        };
        let delivery = self
            .deliverer
            .send(v, code, dispatch, &app.wording, now)
            .await?;
        count_delivery(&delivery, app.id.to_string());
        let fallback = fallback_timer(app, v, channel, now)
            .map(|due| (format!("{FALLBACK_JOB}{}", v.id), due));
        // The delivery and its fallback's job: one round trip.
        let recorded = self
            .store
            .record_delivery(
                Recording {
                    id: &v.id,
                    to: Some(&v.to),
                    delivery: delivery.clone(),
                    job: fallback.as_ref().map(|(job, due)| (job.as_str(), *due)),
                },
                now,
            )
            .await;
        match recorded {
            Ok(DeliveryUpdate::Applied(v) | DeliveryUpdate::Stale(v)) => Ok(v),
            Ok(DeliveryUpdate::NotFound) => Ok(v.clone()),
            Err(e) => {
                // The code did leave; losing the delivery record only costs detail.
                tracing::warn!(verification.id = %v.id, error = %e, "could not record the delivery");
                let mut v = v.clone();
                v.deliveries.push(delivery);
                Ok(v)
            }
        }
    }
}
