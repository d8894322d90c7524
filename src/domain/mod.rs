//! The verification domain: applications, phone numbers, locales, one-time
//! codes, authenticator factors and their TOTP, the keys that protect them, deliveries and the verification state
//! machine. Nothing here does I/O or knows about
//! actix, Redis or HTTP; every function that depends on time takes `now`.

/// An id of two letters and 32 lowercase hex digits whose first four are a
/// hash tag (so the keys of what it names share one Redis Cluster slot with
/// that tag's other keys): `generate` under a tag, `parse` at the boundary.
macro_rules! tagged_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $tag_doc:literal) => {
        $(#[$meta])*
        pub struct $name(String);

        impl $name {
            const PREFIX: &'static str = $prefix;
            const HEX_LEN: usize = 32;

            pub fn generate(tag: &str) -> Self {
                let hex = $crate::domain::random::hex(Self::HEX_LEN / 2);
                Self(format!("{}{tag}{}", Self::PREFIX, &hex[..Self::HEX_LEN - tag.len()]))
            }

            pub fn parse(s: &str) -> Option<Self> {
                let hex = s.strip_prefix(Self::PREFIX)?;
                (hex.len() == Self::HEX_LEN
                    && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then(|| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            #[doc = $tag_doc]
            pub fn tag(&self) -> &str {
                let start = Self::PREFIX.len();
                &self.0[start..start + $crate::domain::keyring::TAG_HEX_LEN]
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub mod application;
pub mod code;
pub mod delivery;
pub mod factor;
pub mod fallback;
pub mod keyring;
pub mod locale;
pub mod phone;
pub mod plural;
pub mod random;
pub mod time;
pub mod totp;
pub mod verification;

pub use application::ApplicationId;
pub use code::{CodeLength, OtpCode};
pub use delivery::{CallOutcome, Delivery, DeliveryStatus, LOCAL_ID_PREFIX, UNKNOWN_STATUS};
pub use factor::{Factor, FactorId, FactorStage, FactorStatus, FriendlyName, Identity};
pub use fallback::{FallbackChannels, FallbackTrigger};
pub use keyring::{Keyring, NumberKey};
pub use locale::Locale;
pub use phone::{PhoneNumber, PhoneNumberError};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use totp::{TotpDigits, TotpSecret};
pub use verification::{CallRef, Channel, Status, Verification, VerificationId};
