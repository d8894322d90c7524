//! "1 minute", "2 minutes": a count in words, chosen by the CLDR plural rules
//! of the text's language (ICU4X's `icu_plurals`, so Polish `few`, Arabic
//! `two` and Hindi's `one` for 0 and 1 come out right, not only English).
//!
//! Templates write the choice in ICU MessageFormat's plural syntax, the one
//! translators and i18n tools already know:
//!
//! ```text
//! {minutes, plural, one {# minute} other {# minutes}}
//! ```
//!
//! Each branch is a CLDR category (`zero`, `one`, `two`, `few`, `many`,
//! `other`) or an exact value (`=1`); `#` in a branch is the number. `other`
//! is required, and a category the language never uses (`few` in English) is
//! refused, because it is always a mistake. Branch text holds no braces.
//!
//! The only counted value is a code's lifetime in minutes, 1 to
//! [`MAX_COUNT`]; the choice for every count is worked out once, when the
//! template is parsed, so rendering is a table lookup.

use std::fmt::Write as _;

use icu_plurals::{PluralCategory, PluralRules};

/// The largest count a choice is prepared for (`VERIFICATION_LIFETIME_MINUTES` ≤ 60).
pub const MAX_COUNT: u32 = 60;

/// The one name a plural choice may count.
pub const COUNTED: &str = "minutes";

const CATEGORY_NAMES: [(&str, PluralCategory); 6] = [
    ("zero", PluralCategory::Zero),
    ("one", PluralCategory::One),
    ("two", PluralCategory::Two),
    ("few", PluralCategory::Few),
    ("many", PluralCategory::Many),
    ("other", PluralCategory::Other),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Exact(u32),
    Category(PluralCategory),
}

/// A parsed `{minutes, plural, …}`: its branches and, for every count from 0
/// to [`MAX_COUNT`], the branch that count takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluralChoice {
    branches: Vec<Branch>,
    chosen: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Branch {
    selector: Selector,
    /// The text around each `#`.
    pieces: Vec<String>,
}

/// The language's cardinal rules; unknown languages get CLDR's root rules
/// (only `other`).
fn rules_for(language: &str) -> Result<PluralRules, String> {
    let locale: icu_locale_core::Locale = language
        .parse()
        .map_err(|_| format!("{language:?} is not a language tag"))?;
    PluralRules::try_new_cardinal((&locale).into())
        .map_err(|e| format!("no plural rules for {language}: {e}"))
}

fn category_name(c: PluralCategory) -> &'static str {
    CATEGORY_NAMES
        .iter()
        .find(|(_, cat)| *cat == c)
        .map_or("other", |(name, _)| name)
}

impl PluralChoice {
    /// Parses the inside of `{…}` (`minutes, plural, one {# minute} other {…}`)
    /// for a text in `language` (a BCP 47 tag such as `en-US`). The error is a
    /// sentence naming what is wrong.
    pub fn parse(body: &str, language: &str) -> Result<Self, String> {
        let mut parts = body.splitn(3, ',');
        let name = parts.next().unwrap_or_default().trim();
        let kind = parts.next().map(str::trim);
        let rest = parts.next().unwrap_or_default();
        if name != COUNTED || kind != Some("plural") {
            return Err(format!(
                "a choice must read {{{COUNTED}, plural, one {{…}} other {{…}}}}, not {{{body}}}"
            ));
        }
        let rules = rules_for(language)?;
        let used: Vec<PluralCategory> = rules.categories().collect();
        let mut branches: Vec<Branch> = Vec::new();
        let mut rest = rest.trim_start();
        while !rest.is_empty() {
            let open = rest
                .find('{')
                .ok_or_else(|| format!("{rest:?}: a branch needs its text in {{…}}"))?;
            let key = rest[..open].trim();
            let close = rest[open + 1..]
                .find(['{', '}'])
                .map(|i| open + 1 + i)
                .filter(|&i| rest.as_bytes()[i] == b'}')
                .ok_or_else(|| {
                    format!("the text of `{key}` must end with `}}` and hold no braces")
                })?;
            let selector = if let Some(n) = key.strip_prefix('=') {
                Selector::Exact(
                    n.parse()
                        .map_err(|_| format!("`{key}` is not an exact value such as =1"))?,
                )
            } else {
                let category = CATEGORY_NAMES
                    .iter()
                    .find(|(name, _)| *name == key)
                    .map(|(_, c)| *c)
                    .ok_or_else(|| {
                        format!("`{key}` is not a plural category (zero, one, two, few, many, other) or =N")
                    })?;
                if !used.contains(&category) {
                    return Err(format!(
                        "`{key}` is not a plural category of {language}, which has {}",
                        used.iter()
                            .map(|c| category_name(*c))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                Selector::Category(category)
            };
            if branches.iter().any(|b| b.selector == selector) {
                return Err(format!("`{key}` is given twice"));
            }
            let text = &rest[open + 1..close];
            branches.push(Branch {
                selector,
                pieces: text.split('#').map(str::to_owned).collect(),
            });
            rest = rest[close + 1..].trim_start();
        }
        let Some(other) = branches
            .iter()
            .position(|b| b.selector == Selector::Category(PluralCategory::Other))
        else {
            return Err("a choice needs an `other` branch".to_owned());
        };
        let chosen = (0..=MAX_COUNT)
            .map(|n| {
                let exact = branches
                    .iter()
                    .position(|b| b.selector == Selector::Exact(n));
                let category = Selector::Category(rules.category_for(n));
                let by_rule = branches.iter().position(|b| b.selector == category);
                // At most a handful of branches: the index fits a byte.
                u8::try_from(exact.or(by_rule).unwrap_or(other)).unwrap_or(0)
            })
            .collect();
        Ok(Self { branches, chosen })
    }

    /// Appends the branch `count` takes, its `#`s replaced by the count.
    pub fn render_into(&self, count: u32, out: &mut String) {
        let index = self.chosen[count.min(MAX_COUNT) as usize];
        let Some(branch) = self.branches.get(usize::from(index)) else {
            return;
        };
        for (i, piece) in branch.pieces.iter().enumerate() {
            if i > 0 {
                // Writing to a String cannot fail.
                let _ = write!(out, "{count}");
            }
            out.push_str(piece);
        }
    }

    pub fn render(&self, count: u32) -> String {
        let mut out = String::new();
        self.render_into(count, &mut out);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn choice(body: &str, language: &str) -> PluralChoice {
        PluralChoice::parse(body, language).unwrap()
    }

    #[test]
    fn english_says_one_minute_and_two_minutes() {
        let c = choice("minutes, plural, one {# minute} other {# minutes}", "en-US");
        assert_eq!(c.render(1), "1 minute");
        assert_eq!(c.render(2), "2 minutes");
        assert_eq!(c.render(10), "10 minutes");
    }

    #[test]
    fn polish_takes_few_and_many_as_cldr_says() {
        let c = choice(
            "minutes, plural, one {# minutę} few {# minuty} many {# minut} other {# minuty}",
            "pl-PL",
        );
        assert_eq!(c.render(1), "1 minutę");
        assert_eq!(c.render(2), "2 minuty");
        assert_eq!(c.render(5), "5 minut");
        assert_eq!(c.render(22), "22 minuty");
        assert_eq!(c.render(25), "25 minut");
    }

    #[test]
    fn french_and_hindi_count_zero_as_one_and_exact_values_win() {
        let fr = choice("minutes, plural, one {# minute} other {# minutes}", "fr-FR");
        assert_eq!(fr.render(0), "0 minute");
        let hi = choice("minutes, plural, one {# मिनट} other {# मिनट}", "hi-IN");
        assert_eq!(hi.render(1), "1 मिनट");
        let exact = choice("minutes, plural, =1 {a minute} other {# minutes}", "en-US");
        assert_eq!(exact.render(1), "a minute");
        assert_eq!(exact.render(3), "3 minutes");
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        for (body, want) in [
            ("minutes, plural, one {# minute}", "other"),
            (
                "minutes, plural, few {#} other {#}",
                "not a plural category of en",
            ),
            ("minutes, plural, one {#} one {#} other {#}", "twice"),
            (
                "minutes, plural, lots {#} other {#}",
                "not a plural category",
            ),
            ("minutes, plural, one {# {x}} other {#}", "no braces"),
            ("minutes, plural, one # other {#}", "`one # other` is not"),
            ("brand, plural, one {#} other {#}", "must read"),
            ("minutes, select, one {#} other {#}", "must read"),
            ("minutes, plural, =x {#} other {#}", "exact value"),
        ] {
            let e = PluralChoice::parse(body, "en").unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
    }
}
