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

/// `bytes` as lowercase hex, two characters per byte: digests, hashes and
/// random ids. `hex::encode` builds its string one `char` at a time, which
/// was 1.35% of a check's instructions (the code's digest); this fills a
/// byte buffer of the right size and checks it as UTF-8 once, a fast pass
/// over ASCII.
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]);
    }
    // Every byte written is an ASCII digit or letter.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod hex_tests {
    #[test]
    fn lower_hex_writes_every_byte_as_two_lowercase_digits_like_the_hex_crate() {
        let all: Vec<u8> = (0..=255).collect();
        let expected = hex::encode(&all);
        assert_eq!(super::lower_hex(&all), expected);
        assert_eq!(super::lower_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::lower_hex(&[]), "");
    }
}
