//! Delivery receipts as Plivo sends them: signed form posts to the message's
//! `url`, queued → sent → delivered (→ read, for WhatsApp), or
//! undelivered/failed for the test numbers, each with its `Type` and
//! `Sequence`.

use std::sync::Arc;
use std::time::Duration;

use super::numbers;
use super::state::{SandboxState, now_text};

/// Pause between successive receipts of one message.
const STEP: Duration = Duration::from_millis(40);

/// The statuses a message of `kind` to `to` goes through, with the error
/// code of the last.
fn script(kind: &str, to: &str) -> &'static [(&'static str, &'static str)] {
    if kind == "whatsapp" {
        return match to {
            // The SMS failure numbers have no WhatsApp either, so the whole
            // chain (WhatsApp → SMS → voice) can be tried with them.
            numbers::NOT_ON_WHATSAPP | numbers::SMS_UNDELIVERED | numbers::SMS_FAILED => {
                &[("queued", ""), ("failed", numbers::NOT_ON_WHATSAPP_ERROR)]
            }
            numbers::SMS_NO_RECEIPT => &[],
            _ => &[
                ("queued", ""),
                ("sent", ""),
                ("delivered", ""),
                ("read", ""),
            ],
        };
    }
    match to {
        numbers::SMS_NO_RECEIPT => &[],
        numbers::SMS_UNDELIVERED => &[("queued", ""), ("sent", ""), ("undelivered", "30")],
        numbers::SMS_FAILED => &[("queued", ""), ("failed", "300")],
        _ => &[("queued", ""), ("sent", ""), ("delivered", "")],
    }
}

pub async fn send(
    state: Arc<SandboxState>,
    url: String,
    uuid: String,
    from: String,
    to: String,
    kind: String,
) {
    for (sequence, (status, error)) in script(&kind, &to).iter().enumerate() {
        tokio::time::sleep(STEP).await;
        state.update_message(&uuid, status);
        // Built once its turn comes: receipts waiting their turn stay small.
        let params = || -> Vec<(String, String)> {
            [
                ("MessageUUID", uuid.as_str()),
                ("Status", status),
                ("ErrorCode", error),
                ("From", from.trim_start_matches('+')),
                ("To", to.trim_start_matches('+')),
                ("Type", kind.as_str()),
                ("Units", "1"),
                ("TotalRate", "0.0050"),
                ("TotalAmount", "0.0050"),
                ("MessageTime", &now_text()),
                ("ParentMessageUUID", uuid.as_str()),
                ("PartInfo", "1 of 1"),
                ("Sequence", &(sequence + 1).to_string()),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
        };
        if let Err(e) = state.post_signed_when_due(&url, params).await {
            tracing::warn!(error = %e, "sandbox: status callback failed");
        }
    }
}
