//! The public shape of a verification (the app API's responses and the
//! webhook events' `data`). It never contains the code.

use serde::Serialize;

use crate::domain::{CallOutcome, Channel, Delivery, Status, Timestamp, Verification};

/// A verification as the API shows it (never the code).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerificationView<'a> {
    id: &'a str,
    /// The application it belongs to (`default` for the top-level settings').
    application: &'a str,
    to: &'a str,
    channel: Channel,
    locale: &'a str,
    status: Status,
    /// `true` exactly when `status` is `approved`: Twilio Verify's legacy
    /// `valid`, on its Verification and VerificationCheck alike, kept so code
    /// ported from Twilio reads the same field.
    valid: bool,
    created_at: String,
    expires_at: String,
    attempts_remaining: u32,
    deliveries: Vec<DeliveryView<'a>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView<'a> {
    channel: Channel,
    /// Plivo's id; null while Plivo has not named one (an unknown outcome).
    provider_id: Option<&'a str>,
    status: &'a str,
    error_code: Option<&'a str>,
    /// Plivo's meaning of `error_code`, for SMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    updated_at: String,
    /// For calls, how the call ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    call: Option<&'a CallOutcome>,
}

impl<'a> VerificationView<'a> {
    pub fn new(v: &'a Verification) -> Self {
        Self {
            id: v.id.as_str(),
            application: v.application.as_str(),
            to: v.to.as_e164(),
            channel: v.channel,
            locale: v.locale.as_str(),
            status: v.status,
            valid: v.status == Status::Approved,
            created_at: v.created_at.to_rfc3339(),
            expires_at: v.expires_at.to_rfc3339(),
            attempts_remaining: v.attempts_remaining(),
            deliveries: v.deliveries.iter().map(DeliveryView::new).collect(),
        }
    }
}

impl<'a> DeliveryView<'a> {
    fn new(d: &'a Delivery) -> Self {
        Self {
            channel: d.channel,
            provider_id: d.has_provider_id().then_some(d.provider_id.as_str()),
            status: d.status.as_str(),
            error_code: d.error_code.as_deref(),
            error_reason: match d.channel {
                Channel::Sms => d.error_code.as_deref().and_then(sms_error_reason),
                Channel::Voice => None,
            },
            created_at: d.created_at.map(|t| Timestamp::from_millis(t).to_rfc3339()),
            updated_at: Timestamp::from_millis(d.updated_at).to_rfc3339(),
            call: d.call.as_ref(),
        }
    }
}

/// Plivo's SMS error codes and what they mean (Plivo's "SMS error codes" table).
pub fn sms_error_reason(code: &str) -> Option<&'static str> {
    Some(match code {
        "10" => "Invalid message",
        "20" => "Network error",
        "30" => "Spam detected",
        "40" => "Invalid source number",
        "50" => "Invalid destination number",
        "60" => "Loop detected",
        "70" => "Destination permanently unavailable",
        "80" => "Destination temporarily unavailable",
        "90" => "No route available",
        "100" => "Prohibited by carrier",
        "110" => "Message too long",
        "200" => "Source number blocked by STOP from destination number",
        "300" => "Failed to dispatch message",
        "420" => "Message expired",
        "900" => "Insufficient credit",
        "910" => "Account disabled",
        "950" => "Daily messaging limit reached",
        "1000" => "Unknown error",
        _ => return None,
    })
}
