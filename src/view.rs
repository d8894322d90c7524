//! The public shape of a verification and of an authenticator factor (the
//! app API's responses and the webhook events' `data`). Neither ever
//! contains a code or a factor's secret.

use serde::Serialize;

use crate::domain::totp;
use crate::domain::{
    CallOutcome, Channel, Delivery, Factor, FactorStatus, Status, Timestamp, TotpSecret,
    Verification,
};

/// A verification as the API shows it (never the code).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerificationView<'a> {
    #[schema(pattern = "^VE[0-9a-f]{32}$")]
    id: &'a str,
    /// The application it belongs to (`default` for the top-level settings').
    application: &'a str,
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$")]
    to: &'a str,
    channel: Channel,
    locale: &'a str,
    status: Status,
    /// `true` exactly when `status` is `approved`: Twilio Verify's legacy
    /// `valid`, on its Verification and VerificationCheck alike, kept so code
    /// ported from Twilio reads the same field.
    valid: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
    attempts_remaining: u32,
    deliveries: Vec<DeliveryView<'a>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView<'a> {
    channel: Channel,
    /// Plivo's id; null while Plivo has not named one (an unknown outcome).
    provider_id: Option<&'a str>,
    /// As Plivo reported it: `queued`, `sent`, `delivered`, `undelivered`,
    /// `failed`, `read` (WhatsApp), a call's statuses, or `unknown`.
    status: &'a str,
    error_code: Option<&'a str>,
    /// Plivo's meaning of `error_code`, for SMS and WhatsApp messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    created_at: Option<String>,
    #[schema(format = DateTime)]
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
                Channel::Sms | Channel::WhatsApp => {
                    d.error_code.as_deref().and_then(sms_error_reason)
                }
                Channel::Voice => None,
            },
            created_at: d.created_at.map(|t| Timestamp::from_millis(t).to_rfc3339()),
            updated_at: Timestamp::from_millis(d.updated_at).to_rfc3339(),
            call: d.call.as_ref(),
        }
    }
}

/// An authenticator factor as the API shows it (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FactorView<'a> {
    /// `YF` and 32 hex digits.
    id: &'a str,
    application: &'a str,
    identity: &'a str,
    friendly_name: Option<&'a str>,
    /// Always `totp`.
    #[serde(rename = "type")]
    #[schema(example = "totp")]
    kind: &'static str,
    status: FactorStatus,
    created_at: String,
}

impl<'a> FactorView<'a> {
    pub fn new(f: &'a Factor) -> Self {
        Self {
            id: f.id.as_str(),
            application: f.application.as_str(),
            identity: f.identity.as_str(),
            friendly_name: f.friendly_name.as_ref().map(|n| n.as_str()),
            kind: "totp",
            status: f.status,
            created_at: f.created_at.to_rfc3339(),
        }
    }
}

/// A factor just enrolled: the only answer that ever shows its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnrolledFactorView<'a> {
    #[serde(flatten)]
    factor: FactorView<'a>,
    /// The shared secret, base32 (RFC 4648, no padding). Shown this once.
    secret: String,
    /// `otpauth://totp/{brand}:{identity}?secret=…&issuer={brand}&algorithm=SHA1&digits=6&period=30`
    uri: String,
    /// `uri` as a QR code, an SVG document, for the user to scan.
    qr_svg: String,
}

impl<'a> EnrolledFactorView<'a> {
    pub fn new(f: &'a Factor, secret: &TotpSecret, brand: &str) -> Self {
        let uri = totp::otpauth_uri(brand, f.identity.as_str(), secret, f.digits);
        Self {
            factor: FactorView::new(f),
            secret: secret.base32(),
            qr_svg: qr_svg(&uri),
            uri,
        }
    }
}

/// The QR code's smallest side in the SVG's pixels (it scales; the qrcode
/// crate draws the quiet zone of four modules around it).
const QR_MIN_PIXELS: u32 = 200;

/// `text` as a QR code in SVG (the qrcode crate; medium error correction,
/// which holds the longest URI the bounds on brand and identity allow).
fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(QR_MIN_PIXELS, QR_MIN_PIXELS)
            .build(),
        Err(e) => {
            tracing::error!(error = %e, "the enrolment URI does not fit a QR code");
            String::new()
        }
    }
}

/// The answer to a code typed for a factor's verification: the factor, and
/// when the code was wrong, how many more may be.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FactorVerifyView<'a> {
    #[serde(flatten)]
    factor: FactorView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_remaining: Option<u32>,
}

impl<'a> FactorVerifyView<'a> {
    pub fn new(f: &'a Factor, attempts_remaining: Option<u32>) -> Self {
        Self {
            factor: FactorView::new(f),
            attempts_remaining,
        }
    }
}

/// Whether a sign-in code was right.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FactorCheckStatus {
    Approved,
    Pending,
}

/// The answer to a code typed at sign-in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FactorCheckView<'a> {
    factor_id: &'a str,
    application: &'a str,
    identity: &'a str,
    status: FactorCheckStatus,
    /// With `pending`: wrong codes left before the factor is locked.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_remaining: Option<u32>,
}

impl<'a> FactorCheckView<'a> {
    pub fn new(f: &'a Factor, attempts_remaining: Option<u32>) -> Self {
        Self {
            factor_id: f.id.as_str(),
            application: f.application.as_str(),
            identity: f.identity.as_str(),
            status: if attempts_remaining.is_some() {
                FactorCheckStatus::Pending
            } else {
                FactorCheckStatus::Approved
            },
            attempts_remaining,
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
