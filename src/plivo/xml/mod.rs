//! Plivo XML answer templates: loading, validation and rendering.
//!
//! This module owns `xml-templates/<locale>/*.xml`, the Plivo XML this server
//! answers a voice call with. Each locale has one file per [`TemplateKind`].
//! At start-up [`Templates::load`] reads and validates every file (well-formed
//! XML, a `<Response>` root, only Plivo elements and their documented
//! attributes, SSML only under a Polly voice, only known placeholders in the
//! places they make sense) and compiles it into a list of literal chunks and
//! placeholder slots. [`Templates::render`] then only pushes strings: no XML is
//! parsed on the hot path.
//!
//! Placeholders are `{{brand}}`, `{{minutes}}` and the plural choice
//! `{{minutes, plural, one {# minute} other {# minutes}}}` (text inside
//! `<Speak>`; the choice follows the CLDR plural rules of the template's
//! locale, see [`crate::domain::plural`]),
//! `{{code}}` (text inside `<Speak>`, only in `answer`, `repeat` and `last`)
//! and `{{action_url}}` (the `action` attribute of `<GetDigits>`/`<GetInput>`,
//! or the text of `<Redirect>`). Every substituted value is XML-escaped.
//!
//! The code is read digit by digit, never as a number: under a Polly voice
//! `{{code}}` becomes one SSML `<say-as interpret-as="digits">` per digit with
//! a `<break>` between digits; under `WOMAN`/`MAN` (no SSML) it becomes the
//! digits separated by `", "`. The code is a [`SpokenCode`], which only ever
//! holds ASCII digits, so nothing else can be injected through it.
//!
//! The only I/O here is the loader reading the template directory.
//!
//! The pieces, each in its own file: `schema` (the elements, attributes
//! and voices Plivo XML allows here), `compile` (one validating pass that
//! turns a template into chunks and slots) and `render` (filling them in).

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use compile::compile;
use render::Compiled;

mod compile;
mod render;
mod schema;

/// Locales shipped in `xml-templates/`, in fallback preference order: a
/// language-only request (`"es"`) resolves to the first locale of that
/// language listed here (`es-ES`).
pub const SUPPORTED_LOCALES: [&str; 9] = [
    "en-US", "en-GB", "es-ES", "es-US", "fr-FR", "de-DE", "it-IT", "pt-BR", "hi-IN",
];

/// The locale used when a requested one is unknown; it must be present.
pub const FALLBACK_LOCALE: &str = "en-US";

/// Directory name shown in errors for templates given by [`Templates::from_sources`].
const SOURCES_DIR: &str = "xml-templates";

/// One kind of template; each locale has one file per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// First answer: greeting, the code twice, "press 1 to hear it again".
    Answer,
    /// Replays 1 and 2: the code twice and the replay offer again.
    Repeat,
    /// The last replay: the code twice, goodbye, no replay offer.
    Last,
    /// Goodbye and hang up.
    Goodbye,
    /// Unknown, expired or used call reference: an apology and hang up.
    Apology,
}

impl TemplateKind {
    /// Every kind, in file listing order.
    pub const ALL: [TemplateKind; 5] = [
        TemplateKind::Answer,
        TemplateKind::Repeat,
        TemplateKind::Last,
        TemplateKind::Goodbye,
        TemplateKind::Apology,
    ];

    /// The template's file name inside a locale directory.
    pub const fn file_name(self) -> &'static str {
        match self {
            TemplateKind::Answer => "answer.xml",
            TemplateKind::Repeat => "repeat.xml",
            TemplateKind::Last => "last.xml",
            TemplateKind::Goodbye => "goodbye.xml",
            TemplateKind::Apology => "apology.xml",
        }
    }

    const fn index(self) -> usize {
        match self {
            TemplateKind::Answer => 0,
            TemplateKind::Repeat => 1,
            TemplateKind::Last => 2,
            TemplateKind::Goodbye => 3,
            TemplateKind::Apology => 4,
        }
    }

    /// Kinds rendered while a code is known, and that must read it.
    const fn reads_code(self) -> bool {
        matches!(
            self,
            TemplateKind::Answer | TemplateKind::Repeat | TemplateKind::Last
        )
    }

    /// Kinds that must offer a replay with `<GetDigits>`.
    const fn offers_replay(self) -> bool {
        matches!(self, TemplateKind::Answer | TemplateKind::Repeat)
    }

    fn from_file_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.file_name() == name)
    }
}

/// A one-time code ready to be spoken: 1 to [`SpokenCode::MAX_DIGITS`] ASCII
/// digits, nothing else. Its `Debug` never shows the digits.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct SpokenCode<'a>(&'a str);

impl<'a> SpokenCode<'a> {
    /// The longest code accepted.
    pub const MAX_DIGITS: usize = 12;

    /// Accepts `code` only when it is 1 to [`Self::MAX_DIGITS`] ASCII digits.
    pub fn new(code: &'a str) -> Result<Self, NotDigits> {
        let valid = !code.is_empty()
            && code.len() <= Self::MAX_DIGITS
            && code.bytes().all(|b| b.is_ascii_digit());
        if valid {
            Ok(Self(code))
        } else {
            Err(NotDigits)
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for SpokenCode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpokenCode(<redacted>)")
    }
}

/// A code that is not 1 to [`SpokenCode::MAX_DIGITS`] ASCII digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a spoken code must be 1 to {} ASCII digits", SpokenCode::MAX_DIGITS)]
pub struct NotDigits;

/// The values substituted into a template. `Default` gives empty values, which
/// is what [`TemplateKind::Goodbye`] and [`TemplateKind::Apology`] need
/// besides `brand`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// `{{brand}}`: the product name the caller hears.
    pub brand: &'a str,
    /// `{{code}}`: read digit by digit.
    pub code: SpokenCode<'a>,
    /// `{{action_url}}`: where Plivo posts the caller's key press.
    pub action_url: &'a str,
    /// `{{minutes}}`: the code's remaining lifetime.
    pub minutes: u32,
}

/// Why the templates could not be loaded. Displays as `path:line: message`
/// (or `path: message` when no line applies).
#[derive(Debug, Error)]
pub enum TemplateError {
    /// A file or directory could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template file is invalid.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The template file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong, as a sentence.
        message: String,
    },
    /// A locale or template set is missing or misnamed.
    #[error("{}: {message}", path.display())]
    Layout {
        /// The directory or file concerned.
        path: PathBuf,
        /// What is wrong, as a sentence.
        message: String,
    },
}

/// Every locale's compiled templates.
#[derive(Debug)]
pub struct Templates {
    sets: Vec<LocaleSet>,
    fallback: usize,
}

#[derive(Debug)]
struct LocaleSet {
    locale: String,
    templates: [Compiled; 5],
}

/// Validates the template directory; returns how many template files it holds.
pub fn validate_dir(dir: &Path) -> Result<usize, TemplateError> {
    let templates = Templates::load(dir)?;
    Ok(templates.sets.len() * TemplateKind::ALL.len())
}

impl Templates {
    /// Loads and validates every locale directory under `dir`. Each must be
    /// named like `en-US` and hold every [`TemplateKind`]'s file; `en-US` must
    /// exist. Other files at the top level are ignored; an unknown `.xml` file
    /// in a locale directory is an error (it is most likely a misspelling).
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let read_err = |path: &Path, source| TemplateError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut locales = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
            let entry = entry.map_err(|e| read_err(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Follows symlinks, so a deployment may link a locale in.
            let is_dir = std::fs::metadata(entry.path())
                .map_err(|e| read_err(&entry.path(), e))?
                .is_dir();
            if is_dir && !name.starts_with('.') {
                locales.push(name);
            }
        }
        locales.sort();

        let mut sources = Vec::new();
        for locale in &locales {
            let locale_dir = dir.join(locale);
            for entry in std::fs::read_dir(&locale_dir).map_err(|e| read_err(&locale_dir, e))? {
                let entry = entry.map_err(|e| read_err(&locale_dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".xml") && TemplateKind::from_file_name(&name).is_none() {
                    return Err(TemplateError::Layout {
                        path: entry.path(),
                        message: format!("unknown template file; expected {}", file_list()),
                    });
                }
            }
            for kind in TemplateKind::ALL {
                let path = locale_dir.join(kind.file_name());
                match std::fs::read_to_string(&path) {
                    Ok(text) => sources.push((locale.clone(), kind, text, path)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(TemplateError::Layout {
                            path,
                            message: format!("missing; every locale needs {}", file_list()),
                        });
                    }
                    Err(e) => return Err(read_err(&path, e)),
                }
            }
        }
        Self::build(
            dir,
            sources.iter().map(|(locale, kind, text, path)| {
                (locale.as_str(), *kind, text.as_str(), path.clone())
            }),
        )
    }

    /// Builds templates from `(locale, kind, xml)` triples, validated exactly
    /// like [`Templates::load`]; errors name `xml-templates/<locale>/<file>`.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, TemplateKind, &'a str)>,
    ) -> Result<Self, TemplateError> {
        let dir = Path::new(SOURCES_DIR);
        Self::build(
            dir,
            sources.into_iter().map(|(locale, kind, text)| {
                (locale, kind, text, dir.join(locale).join(kind.file_name()))
            }),
        )
    }

    fn build<'a>(
        dir: &Path,
        sources: impl Iterator<Item = (&'a str, TemplateKind, &'a str, PathBuf)>,
    ) -> Result<Self, TemplateError> {
        let mut pending: Vec<(String, [Option<Compiled>; 5])> = Vec::new();
        for (locale, kind, text, path) in sources {
            if !is_locale_name(locale) {
                return Err(TemplateError::Layout {
                    path: dir.join(locale),
                    message: "not a locale name like en-US (language, '-', REGION)".to_owned(),
                });
            }
            let compiled = compile(text, &path, locale, kind)?;
            let index = match pending.iter().position(|(l, _)| l == locale) {
                Some(i) => i,
                None => {
                    pending.push((locale.to_owned(), Default::default()));
                    pending.len() - 1
                }
            };
            let slot = &mut pending[index].1[kind.index()];
            if slot.is_some() {
                return Err(TemplateError::Layout {
                    path,
                    message: "given twice".to_owned(),
                });
            }
            *slot = Some(compiled);
        }

        let mut sets = Vec::with_capacity(pending.len());
        for (locale, templates) in pending {
            let [answer, repeat, last, goodbye, apology] = templates;
            let missing = |kind: TemplateKind| TemplateError::Layout {
                path: dir.join(&locale).join(kind.file_name()),
                message: format!("missing; every locale needs {}", file_list()),
            };
            let templates = [
                answer.ok_or_else(|| missing(TemplateKind::Answer))?,
                repeat.ok_or_else(|| missing(TemplateKind::Repeat))?,
                last.ok_or_else(|| missing(TemplateKind::Last))?,
                goodbye.ok_or_else(|| missing(TemplateKind::Goodbye))?,
                apology.ok_or_else(|| missing(TemplateKind::Apology))?,
            ];
            sets.push(LocaleSet { locale, templates });
        }
        sets.sort_by(|a, b| preference(&a.locale).cmp(&preference(&b.locale)));
        let fallback = sets
            .iter()
            .position(|set| set.locale == FALLBACK_LOCALE)
            .ok_or_else(|| TemplateError::Layout {
                path: dir.join(FALLBACK_LOCALE),
                message: format!(
                    "missing; {FALLBACK_LOCALE} is the fallback locale and must exist"
                ),
            })?;
        Ok(Self { sets, fallback })
    }

    /// The loaded locales, supported ones first in [`SUPPORTED_LOCALES`] order.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.sets.iter().map(|set| set.locale.as_str())
    }

    /// The loaded locale `requested` resolves to: an exact match ignoring case
    /// (`_` and `-` alike), else the preferred locale of the same language
    /// (`es` → `es-ES`, `en-AU` → `en-US`), else [`FALLBACK_LOCALE`].
    pub fn resolve_locale(&self, requested: &str) -> &str {
        self.sets[self.locale_index(requested)].locale.as_str()
    }

    fn locale_index(&self, requested: &str) -> usize {
        let is_sep = |c: char| c == '-' || c == '_';
        let same_locale = |have: &str| {
            have.len() == requested.len()
                && have
                    .chars()
                    .zip(requested.chars())
                    .all(|(a, b)| a.eq_ignore_ascii_case(&b) || (is_sep(a) && is_sep(b)))
        };
        if let Some(i) = self.sets.iter().position(|set| same_locale(&set.locale)) {
            return i;
        }
        let language = requested.split(is_sep).next().unwrap_or_default();
        self.sets
            .iter()
            .position(|set| {
                set.locale
                    .split('-')
                    .next()
                    .is_some_and(|l| !language.is_empty() && l.eq_ignore_ascii_case(language))
            })
            .unwrap_or(self.fallback)
    }

    /// Renders `kind` for `locale` (resolved as by [`Templates::resolve_locale`]).
    pub fn render(&self, locale: &str, kind: TemplateKind, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        self.render_into(locale, kind, vars, &mut out);
        out
    }
    /// Like [`Templates::render`], appending to `out` so a caller can reuse a buffer.
    pub fn render_into(&self, locale: &str, kind: TemplateKind, vars: &Vars<'_>, out: &mut String) {
        self.sets[self.locale_index(locale)].templates[kind.index()].render_into(vars, out);
    }
}

fn file_list() -> String {
    TemplateKind::ALL.map(TemplateKind::file_name).join(", ")
}

/// Sort key: supported locales in their listed order, then others by name.
fn preference(locale: &str) -> (usize, &str) {
    let rank = SUPPORTED_LOCALES
        .iter()
        .position(|l| *l == locale)
        .unwrap_or(SUPPORTED_LOCALES.len());
    (rank, locale)
}

/// `ll-RR` or `lll-RR`: a lowercase language and an uppercase region.
fn is_locale_name(name: &str) -> bool {
    match name.split_once('-') {
        Some((language, region)) => {
            (2..=3).contains(&language.len())
                && language.bytes().all(|b| b.is_ascii_lowercase())
                && region.len() == 2
                && region.bytes().all(|b| b.is_ascii_uppercase())
        }
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
