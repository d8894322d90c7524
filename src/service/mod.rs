//! The use cases, one type each, each holding exactly what it needs:
//! [`StartVerification`], [`CheckCode`], [`ReadVerification`] (get and
//! cancel), [`Receipts`] (Plivo's delivery and call reports), [`Fallback`]
//! and [`Expiry`] (the jobs), [`VoiceCall`] (what a call reads out), and
//! [`Factors`] (authenticator apps: enrol, verify, check, read, delete).
//! Routes parse input into domain types and call these with the
//! [`App`](crate::apps::App) they act for; nothing here knows about HTTP.

mod check;
mod dispatch;
mod factors;
mod fallback;
mod read;
mod receipts;
mod start;
mod voice;

pub use check::{CheckBy, CheckCode, CheckError};
pub use dispatch::Dispatcher;
pub use factors::{CodeAnswer, FactorError, Factors};
pub use fallback::{Expiry, Fallback, FallbackRun};
pub use read::ReadVerification;
pub use receipts::Receipts;
pub use start::{StartError, StartRequest, StartVerification, Started};
pub use voice::{Spoken, VoiceCall};

use crate::apps::{App, Apps};
use crate::domain::{Delivery, Timestamp, Verification};
use crate::events::{EventKind, Outbox};
use crate::store::{JobStore, Store};

/// Job name prefixes (the store's schedule is shared by every instance).
pub const FALLBACK_JOB: &str = "fallback:";
pub const EXPIRE_JOB: &str = "expire:";

/// Longest error code kept as a metric label: Plivo's SMS error codes and
/// hangup cause codes have at most four digits.
const MAX_ERROR_CODE_LABEL: usize = 4;

/// Counts a delivery report in the deliveries metric. The labels come from
/// closed sets: a callback's words are free text, and each distinct label
/// value would be a series kept for the life of the process.
fn count_delivery(d: &Delivery, application: String) {
    let error_code = match d.error_code.as_deref() {
        None => String::new(),
        Some(c)
            if (1..=MAX_ERROR_CODE_LABEL).contains(&c.len())
                && c.bytes().all(|b| b.is_ascii_digit()) =>
        {
            c.to_owned()
        }
        Some(_) => "other".to_owned(),
    };
    metrics::counter!(
        "plivo2fa_deliveries_total",
        "channel" => d.channel.as_str(),
        "status" => d.status.label(),
        "error_code" => error_code,
        "application" => application
    )
    .increment(1);
}

/// Schedules a job, logging rather than failing: a lost job costs a
/// fallback or an event, never the verification itself.
async fn schedule(store: &Store, job: String, due: Timestamp) {
    if let Err(e) = store.schedule(&job, due).await {
        tracing::error!(error = %e, "could not schedule a job");
    }
}

/// Removes a job no longer wanted, logging rather than failing.
async fn complete(store: &Store, job: String) {
    if let Err(e) = store.complete_job(&job).await {
        tracing::warn!(error = %e, "could not remove a finished job");
    }
}

/// Tells the webhook of `v`'s application (when it has one) what happened.
async fn announce(outbox: &Outbox, apps: &Apps, kind: EventKind, v: &Verification) {
    let webhook = apps.get(&v.application).and_then(|a| a.webhook.as_deref());
    outbox.emit(webhook, kind, v).await;
}

/// Tells `app`'s webhook (when it has one) what happened to `v`.
async fn announce_for(outbox: &Outbox, app: &App, kind: EventKind, v: &Verification) {
    outbox.emit(app.webhook.as_deref(), kind, v).await;
}
