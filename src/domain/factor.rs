//! Authenticator-app factors: a TOTP secret enrolled for one identity of one
//! application. A factor is `unverified` until the first right code proves
//! the app holds the secret, then `verified`; only a verified factor
//! approves a check.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::application::ApplicationId;
use super::time::Timestamp;
use super::totp::TotpDigits;

/// Longest `identity` and `friendly_name`, in characters.
pub const MAX_IDENTITY_CHARS: usize = 64;
pub const MAX_FRIENDLY_NAME_CHARS: usize = 64;

tagged_id!(
    /// `YF` and 32 lowercase hex digits; the first four are the identity's hash
    /// tag, so a factor's keys and its identity's counters share one slot.
    #[derive(Clone, PartialEq, Eq, Hash)]
    FactorId,
    "YF",
    "The hash tag shared by the factor's keys and its identity's counters."
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("must be 1 to {0} characters")]
    Length(usize),
    #[error("must not contain control characters")]
    Control,
    #[error("must not contain a colon (it separates the brand from the identity in the app)")]
    Colon,
}

/// Who a factor belongs to, as the application names its user (an opaque id
/// such as `user-123`; Twilio Verify's advice holds: not an e-mail address
/// or a phone number). Shown in the authenticator app after the brand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Identity(String);

impl Identity {
    pub fn parse(raw: &str) -> Result<Self, LabelError> {
        check_label(raw, MAX_IDENTITY_CHARS)?;
        if raw.contains(':') {
            return Err(LabelError::Colon);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the user calls the device (`Alice's phone`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FriendlyName(String);

impl FriendlyName {
    pub fn parse(raw: &str) -> Result<Self, LabelError> {
        check_label(raw, MAX_FRIENDLY_NAME_CHARS)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_label(raw: &str, max: usize) -> Result<(), LabelError> {
    let n = raw.chars().count();
    if n == 0 || n > max || raw.trim().is_empty() {
        return Err(LabelError::Length(max));
    }
    if raw.chars().any(char::is_control) {
        return Err(LabelError::Control);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FactorStatus {
    Unverified,
    Verified,
}

impl FactorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorStatus::Unverified => "unverified",
            FactorStatus::Verified => "verified",
        }
    }
}

impl FromStr for FactorStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "unverified" => Ok(FactorStatus::Unverified),
            "verified" => Ok(FactorStatus::Verified),
            _ => Err(()),
        }
    }
}

/// A factor as the API shows it; its secret lives apart, sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    pub id: FactorId,
    pub application: ApplicationId,
    pub identity: Identity,
    pub friendly_name: Option<FriendlyName>,
    pub status: FactorStatus,
    /// How many digits its codes have (`TOTP_DIGITS` when it was enrolled).
    pub digits: TotpDigits,
    pub created_at: Timestamp,
}

/// How long an enrolled factor waits for its first code: an unverified
/// factor older than this is gone (the store drops it, and until then it
/// answers as missing), so enrolments nobody finishes do not pile up.
pub const UNVERIFIED_FACTOR_TTL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

impl Factor {
    /// An unverified factor whose time to be verified is over.
    pub fn abandoned(&self, now: Timestamp) -> bool {
        self.status == FactorStatus::Unverified
            && now >= self.created_at.plus(UNVERIFIED_FACTOR_TTL)
    }
}

/// Which call a typed code comes with: the enrolment's proof, or a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorStage {
    /// `POST /v1/factors/{id}/verify`: an unverified factor only.
    Verify,
    /// `POST /v1/factors/{id}/check`: a verified factor only.
    Check,
}

impl FactorStage {
    /// The status a factor must have for a code at this stage.
    pub fn expects(self) -> FactorStatus {
        match self {
            FactorStage::Verify => FactorStatus::Unverified,
            FactorStage::Check => FactorStatus::Verified,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn factor_ids_carry_their_prefix_and_tag() {
        let id = FactorId::generate("ab12");
        assert!(id.as_str().starts_with("YFab12"));
        assert_eq!(id.as_str().len(), 34);
        assert_eq!(id.tag(), "ab12");
        assert_eq!(FactorId::parse(id.as_str()), Some(id));
        assert!(FactorId::parse("VE0123456789abcdef0123456789abcdef").is_none());
        assert!(FactorId::parse("YF0123456789ABCDEF0123456789abcdef").is_none());
        assert!(FactorId::parse("YF0123").is_none());
    }

    #[test]
    fn identities_are_short_printable_and_colon_free() {
        assert!(Identity::parse("user-123").is_ok());
        assert!(Identity::parse("Zoë Ünal").is_ok());
        assert_eq!(
            Identity::parse(""),
            Err(LabelError::Length(MAX_IDENTITY_CHARS))
        );
        assert_eq!(
            Identity::parse("   "),
            Err(LabelError::Length(MAX_IDENTITY_CHARS))
        );
        assert_eq!(
            Identity::parse(&"x".repeat(MAX_IDENTITY_CHARS + 1)),
            Err(LabelError::Length(MAX_IDENTITY_CHARS))
        );
        assert!(Identity::parse(&"é".repeat(MAX_IDENTITY_CHARS)).is_ok());
        assert_eq!(Identity::parse("a\nb"), Err(LabelError::Control));
        assert_eq!(Identity::parse("shop:alice"), Err(LabelError::Colon));
        assert!(FriendlyName::parse("Alice's phone: the old one").is_ok());
        assert_eq!(FriendlyName::parse("a\u{7}"), Err(LabelError::Control));
    }
}
