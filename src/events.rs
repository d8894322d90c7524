//! Events out: signed JSON posted to each application's `WEBHOOK_URL`, in the
//! Standard Webhooks style (`webhook-id`, `webhook-timestamp`, and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`).
//! Each event is kept in the store and sent by the job worker, so it survives
//! a restart and is retried with exponential backoff until the receiver says 2xx.
//! While it waits, its body (the verification, number included) is sealed
//! with the keyring, bound to the event's id: a Redis dump shows no number.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use url::Url;

use crate::domain::{ApplicationId, Clock, Keyring, Timestamp, Verification};
use crate::store::{EventStore, JobStore, Store, StoreError};
use crate::view::VerificationView;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// Job name prefix for an event waiting to be sent.
pub const JOB_PREFIX: &str = "event:";
/// How long an undelivered event is kept.
const KEEP_MS: u64 = 3 * 24 * 60 * 60 * 1000;
/// Attempts before an event is given up (backoff 5 s doubling to 1 h: about a day).
pub const MAX_ATTEMPTS: u32 = 30;
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Approved,
    Canceled,
    Expired,
    Failed,
    DeliveryUpdated,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Approved => "verification.approved",
            EventKind::Canceled => "verification.canceled",
            EventKind::Expired => "verification.expired",
            EventKind::Failed => "verification.failed",
            EventKind::DeliveryUpdated => "delivery.updated",
        }
    }
}

/// The signature header value for one attempt.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: VerificationView<'a>,
}

/// An event as it waits in the store: its body sealed (`sealed`), or in the
/// clear (`body`) when an older version queued it, and the application whose
/// webhook it goes to (none: the default, as queued by a version without
/// applications).
#[derive(Serialize, Deserialize)]
struct Pending {
    attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app: Option<ApplicationId>,
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// Try again at this time.
    Retry(Timestamp),
    Dropped,
}

/// Where an application's events go (`WEBHOOK_URL`) and the key that signs
/// them (`WEBHOOK_SECRET`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: Url,
    pub key: SecretSlice<u8>,
}

/// An application's webhook, with the HTTP client that posts to it.
pub struct Webhook {
    url: Url,
    key: SecretSlice<u8>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Webhook {
    pub fn new(settings: WebhookSettings) -> Result<Self, String> {
        Ok(Self {
            url: settings.url,
            key: settings.key,
            http: reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .user_agent(concat!("plivo-2fa/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| e.to_string())?,
        })
    }
}

/// The events waiting to be sent, shared by every application: each is kept
/// (sealed) in the store and sent by the job worker to its application's
/// webhook.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    clock: Arc<dyn Clock>,
    keyring: Arc<Keyring>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    pub fn new(store: Store, clock: Arc<dyn Clock>, keyring: Arc<Keyring>) -> Self {
        Self {
            store,
            clock,
            keyring,
        }
    }

    /// Queues an event about `v` for `webhook`, its application's (nothing
    /// when the application has none).
    pub async fn emit(&self, webhook: Option<&Webhook>, kind: EventKind, v: &Verification) {
        if webhook.is_none() {
            return;
        }
        if let Err(e) = self.queue(kind, v).await {
            tracing::error!(verification.id = %v.id, event = kind.as_str(), error = %e, "could not queue an event");
        }
    }

    async fn queue(&self, kind: EventKind, v: &Verification) -> Result<(), StoreError> {
        let now = self.clock.now();
        let id = format!("evt_{}", crate::domain::random::hex(16));
        let body = serde_json::to_string(&Payload {
            kind: kind.as_str(),
            timestamp: now.to_rfc3339(),
            data: VerificationView::new(v),
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let pending = serde_json::to_string(&Pending {
            attempt: 0,
            sealed: Some(self.keyring.seal_event(&body, &id)),
            body: None,
            app: (!v.application.is_default()).then(|| v.application.clone()),
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store.put_event(&id, &pending, KEEP_MS).await?;
        self.store
            .schedule(&format!("{JOB_PREFIX}{id}"), now)
            .await?;
        tracing::debug!(verification.id = %v.id, event = kind.as_str(), event.id = %id, "event queued");
        Ok(())
    }

    /// Makes one attempt to send event `id` to the webhook `webhook_of` gives
    /// its application (dropped when that has none any more).
    pub async fn send(
        &self,
        id: &str,
        webhook_of: impl Fn(&ApplicationId) -> Option<Arc<Webhook>>,
    ) -> Result<Sent, StoreError> {
        let Some(raw) = self.store.event(id).await? else {
            return Ok(Sent::Dropped);
        };
        let Ok(mut pending) = serde_json::from_str::<Pending>(&raw) else {
            self.store.delete_event(id).await?;
            return Ok(Sent::Dropped);
        };
        let app = pending.app.clone().unwrap_or_default();
        let Some(sink) = webhook_of(&app) else {
            tracing::warn!(event.id = %id, application = %app, "event dropped: its application has no webhook");
            self.store.delete_event(id).await?;
            return Ok(Sent::Dropped);
        };
        let body = match (&pending.sealed, &pending.body) {
            (Some(sealed), _) => match self.keyring.open_event(sealed, id) {
                Ok(body) => body,
                Err(e) => {
                    // Sealed under a secret no longer configured: it cannot be sent.
                    tracing::error!(event.id = %id, error = %e, "event dropped: it cannot be opened");
                    self.store.delete_event(id).await?;
                    return Ok(Sent::Dropped);
                }
            },
            (None, Some(body)) => body.clone(),
            (None, None) => {
                self.store.delete_event(id).await?;
                return Ok(Sent::Dropped);
            }
        };
        // Queued in the clear by an older version: sealed from its next wait on.
        if pending.sealed.is_none() {
            pending.sealed = Some(self.keyring.seal_event(&body, id));
            pending.body = None;
        }
        let now = self.clock.now();
        let timestamp = now.as_millis() / 1000;
        let signature = sign(sink.key.expose_secret(), id, timestamp, &body);
        let result = sink
            .http
            .post(sink.url.clone())
            .header(ID_HEADER, id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let status = result.as_ref().map(|r| r.status().as_u16()).ok();
        if status.is_some_and(|s| (200..300).contains(&s)) {
            self.store.delete_event(id).await?;
            tracing::info!(event.id = %id, "event delivered");
            return Ok(Sent::Delivered);
        }
        pending.attempt += 1;
        if pending.attempt >= MAX_ATTEMPTS {
            self.store.delete_event(id).await?;
            tracing::error!(event.id = %id, attempts = pending.attempt, "event given up");
            return Ok(Sent::Dropped);
        }
        let backoff = FIRST_BACKOFF
            .saturating_mul(2u32.saturating_pow(pending.attempt - 1))
            .min(MAX_BACKOFF);
        let raw =
            serde_json::to_string(&pending).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store.put_event(id, &raw, KEEP_MS).await?;
        tracing::warn!(event.id = %id, attempt = pending.attempt, http.status = ?status, retry_in_s = backoff.as_secs(), "event not accepted; will retry");
        Ok(Sent::Retry(now.plus(backoff)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_id_timestamp_and_body() {
        let a = sign(b"key", "evt_1", 1_700_000_000, "{}");
        assert!(a.starts_with("v1,"));
        assert_ne!(a, sign(b"key", "evt_2", 1_700_000_000, "{}"));
        assert_ne!(a, sign(b"key", "evt_1", 1_700_000_001, "{}"));
        assert_ne!(a, sign(b"key", "evt_1", 1_700_000_000, "{ }"));
        assert_ne!(a, sign(b"kez", "evt_1", 1_700_000_000, "{}"));
    }
}
