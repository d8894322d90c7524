//! Applications: one deployment serves several products, each with its own
//! brand, code policy, limits, webhook and API keys (Plivo Verify's
//! `app_uuid`, Twilio Verify's Services). An application is named by an
//! [`ApplicationId`]; the top-level settings are the application
//! [`ApplicationId::DEFAULT`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest application id.
pub const MAX_APPLICATION_ID_LEN: usize = 32;

/// 1 to [`MAX_APPLICATION_ID_LEN`] of `a-z 0-9 _ -`: safe in a Redis key,
/// a metric label, a URL and a log line as it is.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ApplicationId(Box<str>);

/// The name of the application the top-level settings make.
pub const DEFAULT_APPLICATION: &str = "default";

impl ApplicationId {
    /// The application the top-level settings make (and the sandbox and the
    /// demo page run as).
    pub fn default_app() -> Self {
        Self(DEFAULT_APPLICATION.into())
    }

    pub fn parse(s: &str) -> Option<Self> {
        let ok = (1..=MAX_APPLICATION_ID_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        ok.then(|| Self(s.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the application of the top-level settings, whose
    /// store keys are those of a server without applications.
    pub fn is_default(&self) -> bool {
        &*self.0 == DEFAULT_APPLICATION
    }
}

impl Default for ApplicationId {
    fn default() -> Self {
        Self::default_app()
    }
}

impl<'de> Deserialize<'de> for ApplicationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw).ok_or_else(|| serde::de::Error::custom("not an application id"))
    }
}

impl fmt::Display for ApplicationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ApplicationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_to_thirty_two_of_lowercase_letters_digits_underscore_and_dash() {
        for good in ["default", "shop", "bank-eu", "app_2", "a", &"x".repeat(32)] {
            assert_eq!(
                ApplicationId::parse(good).map(|a| a.to_string()),
                Some(good.to_owned())
            );
        }
        for bad in [
            "",
            "Shop",
            "shop app",
            "shop.eu",
            "café",
            "a:b",
            "{x}",
            &"x".repeat(33),
        ] {
            assert!(ApplicationId::parse(bad).is_none(), "{bad:?}");
        }
        assert!(ApplicationId::default().is_default());
        assert!(
            !ApplicationId::parse("shop")
                .unwrap_or_default()
                .is_default()
        );
    }
}
