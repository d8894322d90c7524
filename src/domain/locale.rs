//! The language a code is spoken and written in: a BCP 47 tag of the `ll`
//! or `ll-RR` form, the locale people in a region are addressed in, and the
//! closest of the locales a set of texts or templates offers.

use serde::Serialize;

/// A BCP 47 language tag of the `ll` or `ll-RR` form, normalised to `ll-RR` case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Locale(String);

pub const DEFAULT_LOCALE: &str = "en-US";

impl Locale {
    pub fn parse(s: &str) -> Option<Self> {
        let (lang, region) = match s.split_once('-') {
            Some((l, r)) => (l, Some(r)),
            None => (s, None),
        };
        let lang_ok =
            (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_alphabetic());
        let region_ok = region.is_none_or(|r| {
            (r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()))
                || (r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit()))
        });
        if !lang_ok || !region_ok {
            return None;
        }
        let mut out = lang.to_ascii_lowercase();
        if let Some(r) = region {
            out.push('-');
            out.push_str(&r.to_ascii_uppercase());
        }
        Some(Self(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The locale most people in `region` (ISO 3166, `"DE"`) are addressed
    /// in, from CLDR's likely subtags; `None` for regions not listed here.
    pub fn for_region(region: &str) -> Option<Self> {
        let language = REGION_LANGUAGES
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(region))
            .map(|(_, l)| *l)?;
        Self::parse(&format!("{language}-{region}"))
    }

    /// The closest of `available` (exact, then same language, then `en-US`,
    /// then the first offered).
    pub fn best_match<'a>(&self, available: &[&'a str]) -> &'a str {
        let lang = self.0.split('-').next().unwrap_or_default();
        available
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&self.0))
            .or_else(|| {
                available.iter().find(|a| {
                    a.split('-')
                        .next()
                        .is_some_and(|l| l.eq_ignore_ascii_case(lang))
                })
            })
            .or_else(|| available.iter().find(|a| **a == DEFAULT_LOCALE))
            .or_else(|| available.first())
            .copied()
            .unwrap_or(DEFAULT_LOCALE)
    }
}

/// Region → the language CLDR's likely subtags give it (`und-XX`), for the
/// regions callers are most often in. Anything else is spoken to in en-US.
const REGION_LANGUAGES: &[(&str, &str)] = &[
    ("US", "en"),
    ("CA", "en"),
    ("GB", "en"),
    ("IE", "en"),
    ("AU", "en"),
    ("NZ", "en"),
    ("SG", "en"),
    ("ZA", "en"),
    ("NG", "en"),
    ("KE", "en"),
    ("PH", "en"),
    ("IN", "hi"),
    ("FR", "fr"),
    ("BE", "nl"),
    ("LU", "fr"),
    ("MC", "fr"),
    ("SN", "fr"),
    ("CI", "fr"),
    ("DE", "de"),
    ("AT", "de"),
    ("CH", "de"),
    ("LI", "de"),
    ("ES", "es"),
    ("MX", "es"),
    ("AR", "es"),
    ("CO", "es"),
    ("CL", "es"),
    ("PE", "es"),
    ("VE", "es"),
    ("EC", "es"),
    ("GT", "es"),
    ("CU", "es"),
    ("BO", "es"),
    ("DO", "es"),
    ("HN", "es"),
    ("PY", "es"),
    ("SV", "es"),
    ("NI", "es"),
    ("CR", "es"),
    ("PA", "es"),
    ("UY", "es"),
    ("PR", "es"),
    ("IT", "it"),
    ("SM", "it"),
    ("BR", "pt"),
    ("PT", "pt"),
    ("AO", "pt"),
    ("MZ", "pt"),
    ("NL", "nl"),
    ("DK", "da"),
    ("SE", "sv"),
    ("NO", "nb"),
    ("FI", "fi"),
    ("PL", "pl"),
    ("JP", "ja"),
];

impl Default for Locale {
    fn default() -> Self {
        Self(DEFAULT_LOCALE.to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn locales_fall_back_to_the_same_language_then_to_en_us() {
        let offered = ["en-US", "en-GB", "es-ES", "es-US", "fr-FR"];
        let pick = |s: &str| Locale::parse(s).unwrap().best_match(&offered);
        assert_eq!(pick("en-GB"), "en-GB");
        assert_eq!(pick("es-MX"), "es-ES");
        assert_eq!(pick("fr"), "fr-FR");
        assert_eq!(pick("ja-JP"), "en-US");
    }

    #[test]
    fn locales_normalise_case_and_refuse_junk() {
        assert_eq!(Locale::parse("EN-us").unwrap().as_str(), "en-US");
        assert_eq!(Locale::parse("es-419").unwrap().as_str(), "es-419");
        assert_eq!(Locale::parse("fr").unwrap().as_str(), "fr");
        for bad in ["", "e", "english", "en_US", "en-USA", "<b>", "en-"] {
            assert!(Locale::parse(bad).is_none(), "{bad}");
        }
    }
}
