//! One-time codes: drawn from the operating system's CSPRNG, uniform over all
//! 10^n values, zero-padded, and held as secrets so they cannot be printed by
//! accident.

use std::fmt;

use rand::Rng;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};

pub const DEFAULT_CODE_LENGTH: u8 = 6;
pub const MIN_CODE_LENGTH: u8 = 4;
pub const MAX_CODE_LENGTH: u8 = 10;

/// How many digits a code has (4 to 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLength(u8);

impl CodeLength {
    pub fn new(n: u8) -> Option<Self> {
        (MIN_CODE_LENGTH..=MAX_CODE_LENGTH)
            .contains(&n)
            .then_some(Self(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// 10^n: how many distinct codes there are.
    pub fn space(self) -> u64 {
        10u64.pow(u32::from(self.0))
    }
}

impl Default for CodeLength {
    fn default() -> Self {
        Self(DEFAULT_CODE_LENGTH)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("the code must contain digits only")]
    NotDigits,
    #[error("the code must have exactly {0} digits")]
    WrongLength(u8),
}

/// A one-time code. No `Display`; `Debug` is redacted; the digits are reached
/// only through [`OtpCode::expose`].
#[derive(Clone)]
pub struct OtpCode(SecretString);

impl OtpCode {
    /// Draws a fresh code from the OS CSPRNG. `gen_range` rejects the biased
    /// tail of the raw draw, so every one of the 10^n codes is equally likely.
    pub fn generate(len: CodeLength) -> Self {
        let n = OsRng.gen_range(0..len.space());
        Self::from_digits(format!("{n:0width$}", width = usize::from(len.get())))
    }

    /// Parses what a user typed (already trimmed by nobody: whitespace is an error).
    pub fn parse(input: &str, len: CodeLength) -> Result<Self, CodeError> {
        if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::NotDigits);
        }
        if input.len() != usize::from(len.get()) {
            return Err(CodeError::WrongLength(len.get()));
        }
        Ok(Self::from_digits(input.to_owned()))
    }

    /// Wraps digits recovered from this server's own sealed copy.
    pub(crate) fn from_digits(digits: String) -> Self {
        Self(SecretString::from(digits))
    }

    /// The digits. Call only on the line that sends, seals or digests the code.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_have_exactly_the_configured_number_of_digits() {
        for n in MIN_CODE_LENGTH..=MAX_CODE_LENGTH {
            let len = CodeLength::new(n).unwrap();
            for _ in 0..200 {
                let code = OtpCode::generate(len);
                assert_eq!(code.expose().len(), usize::from(n));
                assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn four_digit_codes_cover_leading_zeros_and_the_whole_range() {
        let len = CodeLength::new(4).unwrap();
        let mut seen = vec![false; 10_000];
        for _ in 0..200_000 {
            let v: usize = OtpCode::generate(len).expose().parse().unwrap();
            seen[v] = true;
        }
        let covered = seen.iter().filter(|s| **s).count();
        // 200k draws over 10k values miss any given value with p = e^-20.
        assert_eq!(covered, 10_000);
    }

    #[test]
    fn code_lengths_outside_four_to_ten_are_refused() {
        assert!(CodeLength::new(3).is_none());
        assert!(CodeLength::new(11).is_none());
        assert_eq!(CodeLength::default().get(), 6);
    }

    #[test]
    fn typed_codes_must_be_digits_of_the_right_length() {
        let len = CodeLength::default();
        assert!(OtpCode::parse("012345", len).is_ok());
        assert_eq!(
            OtpCode::parse("12345a", len).err(),
            Some(CodeError::NotDigits)
        );
        assert_eq!(
            OtpCode::parse(" 12345", len).err(),
            Some(CodeError::NotDigits)
        );
        assert_eq!(OtpCode::parse("", len).err(), Some(CodeError::NotDigits));
        assert_eq!(
            OtpCode::parse("١٢٣٤٥٦", len).err(),
            Some(CodeError::NotDigits)
        );
        assert_eq!(
            OtpCode::parse("1234567", len).err(),
            Some(CodeError::WrongLength(6))
        );
    }

    #[test]
    fn debug_output_never_shows_the_digits() {
        let code = OtpCode::parse("987654", CodeLength::default()).unwrap();
        assert!(!format!("{code:?}").contains("987654"));
    }
}
