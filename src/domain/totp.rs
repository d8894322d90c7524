//! Time-based one-time passwords (RFC 6238) for authenticator apps:
//! HOTP (RFC 4226) over HMAC-SHA1 with 30-second steps, 6 to 8 digits, one
//! step of clock skew accepted each way. The secret is 160 random bits from
//! the operating system's CSPRNG (RFC 4226's recommended length), shown once
//! in base32 and otherwise held only sealed.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretSlice};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::code::{CodeLength, OtpCode};
use super::time::Timestamp;

/// RFC 6238's default time step, the one every authenticator app uses.
pub const PERIOD_SECS: u64 = 30;
/// Steps of clock skew accepted each way (RFC 6238 §6 recommends one).
pub const SKEW_STEPS: u64 = 1;
/// Bytes of secret: 160 bits, RFC 4226's recommendation for HMAC-SHA1.
pub const SECRET_BYTES: usize = 20;
pub const DEFAULT_DIGITS: u8 = 6;
pub const MIN_DIGITS: u8 = 6;
pub const MAX_DIGITS: u8 = 8;

/// How many digits an authenticator code has (`TOTP_DIGITS`, 6 to 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpDigits(u8);

impl TotpDigits {
    pub fn new(n: u8) -> Option<Self> {
        (MIN_DIGITS..=MAX_DIGITS).contains(&n).then_some(Self(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// The typed code's length, as codes of other channels are parsed.
    pub fn code_length(self) -> CodeLength {
        // 6 to 8 lies inside the 4 to 10 a code may have.
        CodeLength::new(self.0).unwrap_or_default()
    }
}

impl Default for TotpDigits {
    fn default() -> Self {
        Self(DEFAULT_DIGITS)
    }
}

/// A factor's shared secret. No `Display`; `Debug` is redacted.
#[derive(Clone)]
pub struct TotpSecret(SecretSlice<u8>);

impl TotpSecret {
    /// 160 fresh bits from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(SecretSlice::from(bytes))
    }

    /// Wraps bytes recovered from this server's own sealed copy (or a test vector).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    /// The bytes. Call only on the line that seals, encodes or computes with them.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The secret as authenticator apps take it: RFC 4648 base32, upper
    /// case, without padding (20 bytes make 32 characters, so none is needed).
    pub fn base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(self.expose())
    }

    /// The HOTP value (RFC 4226 §5.3) of step `step`, as `digits` digits
    /// with leading zeros.
    pub fn code_at_step(&self, step: u64, digits: TotpDigits) -> String {
        let mut mac = match <Hmac<Sha1> as Mac>::new_from_slice(self.expose()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA1 takes keys of any length"),
        };
        mac.update(&step.to_be_bytes());
        let hash = mac.finalize().into_bytes();
        // Dynamic truncation: the low nibble of the last byte picks four bytes.
        let offset = usize::from(hash[hash.len() - 1] & 0x0f);
        let binary = u32::from_be_bytes([
            hash[offset] & 0x7f,
            hash[offset + 1],
            hash[offset + 2],
            hash[offset + 3],
        ]);
        let value = binary % 10u32.pow(u32::from(digits.get()));
        format!("{value:0width$}", width = usize::from(digits.get()))
    }

    /// The step a typed code belongs to: one of the steps around `now` (the
    /// current one and [`SKEW_STEPS`] each way) that is later than
    /// `after` (the last step accepted, which is never accepted again).
    /// Every candidate is computed and compared in constant time.
    pub fn matching_step(
        &self,
        typed: &OtpCode,
        digits: TotpDigits,
        now: Timestamp,
        after: Option<u64>,
    ) -> Option<u64> {
        let current = step_at(now);
        let mut found = None;
        for step in current.saturating_sub(SKEW_STEPS)..=current.saturating_add(SKEW_STEPS) {
            let expected = self.code_at_step(step, digits);
            let same = bool::from(expected.as_bytes().ct_eq(typed.expose().as_bytes()));
            if same && after.is_none_or(|last| step > last) {
                found = Some(step);
            }
        }
        found
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// What may stand unescaped in the otpauth URI's label and issuer: RFC
/// 3986's unreserved characters. Everything else is percent-encoded as
/// UTF-8, spaces as `%20` (Google's Key Uri Format).
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The enrolment URI authenticator apps scan (Google's Key Uri Format):
/// `otpauth://totp/{brand}:{identity}?secret=…&issuer={brand}&algorithm=SHA1&digits=…&period=30`,
/// brand and identity percent-encoded.
pub fn otpauth_uri(brand: &str, identity: &str, secret: &TotpSecret, digits: TotpDigits) -> String {
    let brand = percent_encoding::utf8_percent_encode(brand, URI_COMPONENT);
    let identity = percent_encoding::utf8_percent_encode(identity, URI_COMPONENT);
    format!(
        "otpauth://totp/{brand}:{identity}?secret={}&issuer={brand}&algorithm=SHA1&digits={}&period={PERIOD_SECS}",
        secret.base32(),
        digits.get()
    )
}

/// The RFC 6238 time step holding `now` (step 0 before the epoch).
pub fn step_at(now: Timestamp) -> u64 {
    u64::try_from(now.as_millis()).unwrap_or(0) / 1000 / PERIOD_SECS
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// RFC 6238 Appendix B's SHA1 seed: the ASCII of "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    fn at_secs(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn the_rfc_6238_appendix_b_sha1_vectors_come_out() {
        let eight = TotpDigits::new(8).unwrap();
        for (secs, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = step_at(at_secs(secs));
            assert_eq!(rfc_secret().code_at_step(step, eight), expected, "T={secs}");
        }
    }

    #[test]
    fn six_digit_codes_are_the_low_digits_of_the_same_value() {
        // RFC 4226 Appendix D: the HOTP values of its seed at counters 0 and 1.
        let six = TotpDigits::default();
        assert_eq!(rfc_secret().code_at_step(0, six), "755224");
        assert_eq!(rfc_secret().code_at_step(1, six), "287082");
    }

    #[test]
    fn a_secret_is_160_bits_in_32_base32_characters_and_never_printed() {
        let s = TotpSecret::generate();
        assert_eq!(s.expose().len(), SECRET_BYTES);
        let b32 = s.base32();
        assert_eq!(b32.len(), 32);
        assert!(
            b32.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert!(!format!("{s:?}").contains(&b32));
        assert_ne!(b32, TotpSecret::generate().base32());
    }

    #[test]
    fn the_otpauth_uri_is_the_key_uri_format_with_brand_and_identity_encoded() {
        let uri = otpauth_uri(
            "Acme & Co",
            "zoë:1 2",
            &rfc_secret(),
            TotpDigits::new(8).unwrap(),
        );
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20%26%20Co:zo%C3%AB%3A1%202?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20%26%20Co&algorithm=SHA1&digits=8&period=30"
        );
    }

    #[test]
    fn digits_are_six_to_eight() {
        assert!(TotpDigits::new(5).is_none());
        assert!(TotpDigits::new(9).is_none());
        assert_eq!(TotpDigits::new(8).unwrap().code_length().get(), 8);
        assert_eq!(TotpDigits::default().get(), 6);
    }

    #[test]
    fn a_step_already_accepted_or_earlier_is_not_matched_again() {
        let six = TotpDigits::default();
        let now = at_secs(1_234_567_890);
        let step = step_at(now);
        let typed =
            OtpCode::parse(&rfc_secret().code_at_step(step, six), six.code_length()).unwrap();
        assert_eq!(
            rfc_secret().matching_step(&typed, six, now, None),
            Some(step)
        );
        assert_eq!(
            rfc_secret().matching_step(&typed, six, now, Some(step - 1)),
            Some(step)
        );
        assert_eq!(
            rfc_secret().matching_step(&typed, six, now, Some(step)),
            None
        );
        assert_eq!(
            rfc_secret().matching_step(&typed, six, now, Some(step + 1)),
            None
        );
    }

    proptest! {
        /// A code made `offset` seconds away from the checker's clock is
        /// accepted exactly when its step is within one of the checker's.
        #[test]
        fn a_code_is_accepted_exactly_within_one_step_of_the_clock(
            seed in proptest::collection::vec(any::<u8>(), SECRET_BYTES),
            now_secs in 60i64..4_000_000_000,
            offset in -150i64..150,
            digits in MIN_DIGITS..=MAX_DIGITS,
        ) {
            let secret = TotpSecret::from_bytes(seed);
            let digits = TotpDigits::new(digits).unwrap();
            let now = at_secs(now_secs);
            let app_step = step_at(at_secs(now_secs + offset));
            let typed = OtpCode::parse(&secret.code_at_step(app_step, digits), digits.code_length()).unwrap();
            let matched = secret.matching_step(&typed, digits, now, None);
            let distance = app_step.abs_diff(step_at(now));
            if distance <= SKEW_STEPS {
                prop_assert_eq!(matched, Some(app_step));
            } else {
                // Outside the window nothing matches, unless a step inside it
                // happens to share the code (one chance in 10^digits each).
                let chance = matched.is_none_or(|s| {
                    s.abs_diff(step_at(now)) <= SKEW_STEPS
                        && secret.code_at_step(s, digits) == typed.expose()
                });
                prop_assert!(chance);
            }
        }
    }
}
