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

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, BytesText, Event};
use thiserror::Error;

use crate::domain::plural::PluralChoice;

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

/// Pause between two digits under a Polly voice: without it Polly runs the
/// digits together faster than a caller can write them down.
const DIGIT_BREAK: &str = "<break time=\"400ms\"/>";
const SAY_DIGIT_OPEN: &str = "<say-as interpret-as=\"digits\">";
const SAY_DIGIT_CLOSE: &str = "</say-as>";

/// Separator between digits for `WOMAN`/`MAN` voices. A comma (not a period)
/// because a digit followed by a period reads as an ordinal in some
/// languages (German "4." is "vierte").
const DIGIT_SEPARATOR: &str = ", ";

/// Bytes reserved per render beyond the literal text, for the substituted values.
const RENDER_HEADROOM: usize = 512;

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

/// A template compiled to literal chunks and slots.
#[derive(Debug, Clone)]
struct Compiled {
    segments: Vec<Segment>,
    literal_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Brand,
    Minutes,
    /// `{{minutes, plural, …}}`: the branch the minutes left take.
    MinutesChoice(Box<PluralChoice>),
    ActionUrl,
    /// `{{code}}` under a Polly voice: SSML per digit.
    CodeSsml,
    /// `{{code}}` under `WOMAN`/`MAN`: plain text, digits separated.
    CodeText,
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
        let template = &self.sets[self.locale_index(locale)].templates[kind.index()];
        out.reserve(template.literal_len + RENDER_HEADROOM);
        for segment in &template.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Brand => push_escaped(out, vars.brand),
                Segment::ActionUrl => push_escaped(out, vars.action_url),
                Segment::Minutes => {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "{}", vars.minutes);
                }
                // The branch text is the template's own XML text, already escaped.
                Segment::MinutesChoice(choice) => choice.render_into(vars.minutes, out),
                Segment::CodeSsml => {
                    for (i, digit) in vars.code.as_str().chars().enumerate() {
                        if i > 0 {
                            out.push_str(DIGIT_BREAK);
                        }
                        out.push_str(SAY_DIGIT_OPEN);
                        out.push(digit);
                        out.push_str(SAY_DIGIT_CLOSE);
                    }
                }
                Segment::CodeText => {
                    for (i, digit) in vars.code.as_str().chars().enumerate() {
                        if i > 0 {
                            out.push_str(DIGIT_SEPARATOR);
                        }
                        out.push(digit);
                    }
                }
            }
        }
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

/// Escapes `& < > " '` and drops characters XML 1.0 cannot carry at all.
fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

/// XML 1.0's `Char`: tab, newline, carriage return and everything from space
/// up except U+FFFE and U+FFFF (Rust strings hold no surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

// ---------------------------------------------------------------------------
// Validation and compilation
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    Response,
    Speak,
    Play,
    Wait,
    GetDigits,
    GetInput,
    Hangup,
    Redirect,
    PreAnswer,
    Dtmf,
    SayAs,
    Break,
    Prosody,
    Emphasis,
    Lang,
    P,
    S,
    Sub,
    W,
    Phoneme,
}

const VERBS: &[Element] = &[
    Element::Speak,
    Element::Play,
    Element::Wait,
    Element::GetDigits,
    Element::GetInput,
    Element::Hangup,
    Element::Redirect,
    Element::PreAnswer,
    Element::Dtmf,
];

const SSML: &[Element] = &[
    Element::SayAs,
    Element::Break,
    Element::Prosody,
    Element::Emphasis,
    Element::Lang,
    Element::P,
    Element::S,
    Element::Sub,
    Element::W,
    Element::Phoneme,
];

const ALL_ELEMENTS: &[Element] = &[
    Element::Response,
    Element::Speak,
    Element::Play,
    Element::Wait,
    Element::GetDigits,
    Element::GetInput,
    Element::Hangup,
    Element::Redirect,
    Element::PreAnswer,
    Element::Dtmf,
    Element::SayAs,
    Element::Break,
    Element::Prosody,
    Element::Emphasis,
    Element::Lang,
    Element::P,
    Element::S,
    Element::Sub,
    Element::W,
    Element::Phoneme,
];

/// Attributes whose value must be a non-negative integer.
const INTEGER_ATTRIBUTES: &[&str] = &[
    "loop",
    "length",
    "minSilence",
    "timeout",
    "digitTimeout",
    "numDigits",
    "retries",
    "executionTimeout",
    "digitEndTimeout",
    "schedule",
];

/// Attributes whose value must be `true` or `false`.
const BOOLEAN_ATTRIBUTES: &[&str] = &[
    "silence",
    "beep",
    "redirect",
    "playBeep",
    "log",
    "async",
    "profanityFilter",
];

impl Element {
    fn name(self) -> &'static str {
        match self {
            Element::Response => "Response",
            Element::Speak => "Speak",
            Element::Play => "Play",
            Element::Wait => "Wait",
            Element::GetDigits => "GetDigits",
            Element::GetInput => "GetInput",
            Element::Hangup => "Hangup",
            Element::Redirect => "Redirect",
            Element::PreAnswer => "PreAnswer",
            Element::Dtmf => "DTMF",
            Element::SayAs => "say-as",
            Element::Break => "break",
            Element::Prosody => "prosody",
            Element::Emphasis => "emphasis",
            Element::Lang => "lang",
            Element::P => "p",
            Element::S => "s",
            Element::Sub => "sub",
            Element::W => "w",
            Element::Phoneme => "phoneme",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        ALL_ELEMENTS
            .iter()
            .copied()
            .find(|e| e.name().as_bytes() == name)
    }

    /// Plivo's documented attributes for the element.
    fn attributes(self) -> &'static [&'static str] {
        match self {
            Element::Response | Element::PreAnswer | Element::P | Element::S => &[],
            Element::Speak => &["voice", "language", "loop"],
            Element::Play => &["loop"],
            Element::Wait => &["length", "silence", "minSilence", "beep"],
            Element::GetDigits => &[
                "action",
                "method",
                "timeout",
                "digitTimeout",
                "finishOnKey",
                "numDigits",
                "retries",
                "redirect",
                "playBeep",
                "validDigits",
                "invalidDigitsSound",
                "log",
            ],
            Element::GetInput => &[
                "action",
                "method",
                "inputType",
                "executionTimeout",
                "digitEndTimeout",
                "speechEndTimeout",
                "finishOnKey",
                "numDigits",
                "speechModel",
                "hints",
                "language",
                "interimSpeechResultsCallback",
                "interimSpeechResultsCallbackMethod",
                "log",
                "redirect",
                "profanityFilter",
            ],
            Element::Hangup => &["reason", "schedule"],
            Element::Redirect => &["method"],
            Element::Dtmf => &["async"],
            Element::SayAs => &["interpret-as", "format"],
            Element::Break => &["strength", "time"],
            Element::Prosody => &["rate", "pitch", "volume"],
            Element::Emphasis => &["level"],
            Element::Lang => &["xml:lang"],
            Element::Sub => &["alias"],
            Element::W => &["role"],
            Element::Phoneme => &["alphabet", "ph"],
        }
    }

    fn children(self) -> &'static [Element] {
        match self {
            Element::Response => VERBS,
            Element::GetDigits | Element::GetInput => &[Element::Speak, Element::Play],
            Element::PreAnswer => &[Element::Speak, Element::Play, Element::Wait],
            Element::Speak
            | Element::Prosody
            | Element::Emphasis
            | Element::Lang
            | Element::P
            | Element::S => SSML,
            _ => &[],
        }
    }

    fn takes_text(self) -> bool {
        matches!(self, Element::Play | Element::Redirect | Element::Dtmf)
            || self == Element::Speak
            || self.is_ssml()
    }

    fn is_ssml(self) -> bool {
        SSML.contains(&self)
    }

    /// Elements whose text may hold the spoken code: the SSML leaves
    /// (`say-as`, `sub`, …) would wrap our own `<say-as>` and nest it.
    fn may_hold_code(self) -> bool {
        matches!(
            self,
            Element::Speak
                | Element::Prosody
                | Element::Emphasis
                | Element::Lang
                | Element::P
                | Element::S
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Brand,
    Code,
    ActionUrl,
    Minutes,
    MinutesChoice,
}

const PLACEHOLDER_NAMES: &str =
    "{{brand}}, {{code}}, {{action_url}}, {{minutes}}, {{minutes, plural, one {…} other {…}}}";

impl Placeholder {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "brand" => Some(Placeholder::Brand),
            "code" => Some(Placeholder::Code),
            "action_url" => Some(Placeholder::ActionUrl),
            "minutes" => Some(Placeholder::Minutes),
            choice if choice.contains(',') => Some(Placeholder::MinutesChoice),
            _ => None,
        }
    }
}

/// A placeholder found at `start..end` (byte offsets in the template).
struct Found<'s> {
    start: usize,
    end: usize,
    name: &'s str,
}

/// Finds `{{name}}` occurrences in `text`, which starts at offset `base`. A
/// placeholder ends at the first `}}` outside single braces, so a plural
/// choice's `{# minute}` branches stay inside it.
fn scan_placeholders(text: &str, base: usize) -> Result<Vec<Found<'_>>, (usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| from + i) {
        let unclosed = || {
            (
                base + open,
                "unclosed placeholder: `{{` without `}}`".to_owned(),
            )
        };
        let bytes = text.as_bytes();
        let mut depth = 0usize;
        let mut close = None;
        let mut i = open + 2;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' if depth > 0 => depth -= 1,
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    close = Some(i);
                    break;
                }
                b'}' => return Err(unclosed()),
                _ => {}
            }
            i += 1;
        }
        let close = close.ok_or_else(unclosed)?;
        found.push(Found {
            start: base + open,
            end: base + close + 2,
            name: text[open + 2..close].trim(),
        });
        from = close + 2;
    }
    Ok(found)
}

/// What is wrong with a generic attribute's value, if anything.
fn value_complaint(key: &str, value: &str) -> Option<&'static str> {
    if key == "method" || key == "interimSpeechResultsCallbackMethod" {
        (value != "GET" && value != "POST").then_some("must be GET or POST")
    } else if INTEGER_ATTRIBUTES.contains(&key) {
        (value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()))
            .then_some("must be a whole number")
    } else if BOOLEAN_ATTRIBUTES.contains(&key) {
        (value != "true" && value != "false").then_some("must be true or false")
    } else {
        None
    }
}

/// A `<Speak>` voice: `WOMAN`, `MAN` or `Polly.<Name>`.
fn voice_of(value: &str) -> Option<Voice> {
    match value {
        "WOMAN" | "MAN" => Some(Voice::Basic),
        _ => value
            .strip_prefix("Polly.")
            .filter(|name| {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .map(|_| Voice::Polly),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Voice {
    Polly,
    Basic,
}

struct Frame {
    element: Element,
    opened_at: usize,
    /// The voice of the enclosing `<Speak>`, if any.
    speak: Option<Voice>,
}

struct Compiler<'s> {
    src: &'s str,
    path: &'s Path,
    locale: &'s str,
    kind: TemplateKind,
    stack: Vec<Frame>,
    segments: Vec<Segment>,
    literal_start: usize,
    literal_len: usize,
    root_at: Option<usize>,
    /// Last element directly under `<Response>` and where it starts.
    last_verb: Option<(Element, usize)>,
    code_count: usize,
    replay_at: Option<usize>,
    replay_has_action: bool,
}

fn compile(
    src: &str,
    path: &Path,
    locale: &str,
    kind: TemplateKind,
) -> Result<Compiled, TemplateError> {
    // A byte-order mark would otherwise be copied into every response.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut c = Compiler {
        src,
        path,
        locale,
        kind,
        stack: Vec::new(),
        segments: Vec::new(),
        literal_start: 0,
        literal_len: 0,
        root_at: None,
        last_verb: None,
        code_count: 0,
        replay_at: None,
        replay_has_action: false,
    };
    // quick-xml does not check characters, and literal text is copied into
    // every response: one stray control character and Plivo rejects them all.
    if let Some((at, bad)) = src.char_indices().find(|&(_, ch)| !is_xml_char(ch)) {
        return Err(c.error(
            at,
            format!("character U+{:04X} is not allowed in XML", u32::from(bad)),
        ));
    }
    let mut reader = Reader::from_str(src);
    reader.config_mut().check_comments = true;
    let offset = |position: u64| {
        usize::try_from(position)
            .unwrap_or(src.len())
            .min(src.len())
    };
    loop {
        let start = offset(reader.buffer_position());
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                return Err(c.error(
                    offset(reader.error_position()),
                    format!("malformed XML: {e}"),
                ));
            }
        };
        let end = offset(reader.buffer_position());
        match event {
            Event::Decl(_) => {
                if c.root_at.is_some() || src[..start].contains(|ch: char| !ch.is_whitespace()) {
                    return Err(c.error(start, "the XML declaration must come first".to_owned()));
                }
            }
            Event::Start(tag) => c.open(&tag, start, end, false)?,
            Event::Empty(tag) => c.open(&tag, start, end, true)?,
            Event::End(_) => {
                c.stack.pop();
            }
            Event::Text(text) => c.text(&text, start, end)?,
            Event::Comment(_) => c.skip(start, end),
            Event::CData(_) => {
                return Err(c.error(start, "CDATA sections are not allowed".to_owned()));
            }
            Event::PI(_) => {
                return Err(c.error(start, "processing instructions are not allowed".to_owned()));
            }
            Event::DocType(_) => {
                return Err(c.error(start, "a DOCTYPE is not allowed".to_owned()));
            }
            Event::Eof => break,
        }
    }
    c.finish()
}

impl Compiler<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&self, offset: usize, message: String) -> TemplateError {
        TemplateError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line(offset),
            message,
        }
    }

    fn push_literal_until(&mut self, offset: usize) {
        if offset > self.literal_start {
            let text = &self.src[self.literal_start..offset];
            self.literal_len += text.len();
            self.segments.push(Segment::Literal(text.into()));
        }
        self.literal_start = offset;
    }

    fn push_slot(&mut self, found: &Found<'_>, segment: Segment) {
        self.push_literal_until(found.start);
        self.segments.push(segment);
        self.literal_start = found.end;
    }

    fn skip(&mut self, start: usize, end: usize) {
        self.push_literal_until(start);
        self.literal_start = end;
    }

    fn open(
        &mut self,
        tag: &BytesStart<'_>,
        start: usize,
        end: usize,
        empty: bool,
    ) -> Result<(), TemplateError> {
        let raw_name = String::from_utf8_lossy(tag.name().as_ref()).into_owned();
        let element = Element::from_name(tag.name().as_ref()).ok_or_else(|| {
            self.error(
                start,
                format!(
                    "unknown element <{raw_name}>; Plivo XML here allows {}",
                    ALL_ELEMENTS
                        .iter()
                        .map(|e| e.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;

        let speak = match self.stack.last() {
            None => {
                if self.root_at.is_some() {
                    return Err(self.error(start, "only one root element is allowed".to_owned()));
                }
                if element != Element::Response {
                    return Err(self.error(
                        start,
                        format!("the root element must be <Response>, not <{raw_name}>"),
                    ));
                }
                self.root_at = Some(start);
                None
            }
            Some(parent) => {
                if !parent.element.children().contains(&element) {
                    return Err(self.error(
                        start,
                        format!(
                            "<{raw_name}> is not allowed inside <{}>",
                            parent.element.name()
                        ),
                    ));
                }
                if element.is_ssml() && parent.speak != Some(Voice::Polly) {
                    return Err(self.error(
                        start,
                        format!(
                            "SSML <{raw_name}> needs a <Speak> whose voice starts with \"Polly.\"; \
                             WOMAN and MAN voices do not read SSML"
                        ),
                    ));
                }
                parent.speak
            }
        };
        if self.stack.len() == 1 {
            self.last_verb = Some((element, start));
        }

        let speak = self.attributes(tag, element, start, speak)?;

        // Placeholders in a tag can only be in attribute values, which
        // `attributes` has checked: each is an `{{action_url}}`.
        let found = scan_placeholders(&self.src[start..end], start)
            .map_err(|(offset, message)| self.error(offset, message))?;
        for f in &found {
            self.push_slot(f, Segment::ActionUrl);
        }

        if !empty {
            self.stack.push(Frame {
                element,
                opened_at: start,
                speak,
            });
        }
        Ok(())
    }

    /// Checks the tag's attributes; returns the voice in force inside it.
    fn attributes(
        &mut self,
        tag: &BytesStart<'_>,
        element: Element,
        start: usize,
        inherited: Option<Voice>,
    ) -> Result<Option<Voice>, TemplateError> {
        let name = element.name();
        let mut voice = Voice::Basic;
        let mut has_language = false;
        for attribute in tag.attributes() {
            let attribute = attribute
                .map_err(|e| self.error(start, format!("malformed attribute in <{name}>: {e}")))?;
            let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
            let allowed = element.attributes();
            if !allowed.contains(&key.as_str()) {
                let hint = if allowed.is_empty() {
                    format!("<{name}> takes no attributes")
                } else {
                    format!("<{name}> allows {}", allowed.join(", "))
                };
                return Err(self.error(
                    start,
                    format!("unknown attribute `{key}` on <{name}>; {hint}"),
                ));
            }
            let value = attribute.unescape_value().map_err(|e| {
                self.error(start, format!("bad value for `{key}` on <{name}>: {e}"))
            })?;

            let found =
                scan_placeholders(&value, 0).map_err(|(_, message)| self.error(start, message))?;
            for f in &found {
                let placeholder = self.known_placeholder(f.name, start)?;
                let is_action =
                    key == "action" && matches!(element, Element::GetDigits | Element::GetInput);
                if placeholder != Placeholder::ActionUrl || !is_action {
                    return Err(self.error(
                        start,
                        format!(
                            "{{{{{}}}}} is not allowed in `{key}` of <{name}>; the only placeholder \
                             in an attribute is {{{{action_url}}}} in `action` of <GetDigits> or <GetInput>",
                            f.name
                        ),
                    ));
                }
                self.replay_has_action = true;
            }

            let bad = |what: &str| {
                self.error(start, format!("`{key}` on <{name}> {what}, not {value:?}"))
            };
            if element == Element::Speak && key == "voice" {
                voice =
                    voice_of(&value).ok_or_else(|| bad("must be WOMAN, MAN or Polly.<Name>"))?;
            } else if element == Element::Speak && key == "language" {
                if value != self.locale {
                    return Err(bad(&format!("must be \"{}\" in this locale", self.locale)));
                }
                has_language = true;
            } else if let Some(complaint) = value_complaint(&key, &value) {
                return Err(bad(complaint));
            }
        }

        if matches!(element, Element::GetDigits | Element::GetInput) {
            self.replay_at.get_or_insert(start);
        }
        if element == Element::Speak {
            if !has_language {
                return Err(self.error(
                    start,
                    format!(
                        "<Speak> needs language=\"{}\" (Plivo would default to en-US)",
                        self.locale
                    ),
                ));
            }
            return Ok(Some(voice));
        }
        Ok(inherited)
    }

    fn known_placeholder(&self, name: &str, at: usize) -> Result<Placeholder, TemplateError> {
        Placeholder::from_name(name).ok_or_else(|| {
            self.error(
                at,
                format!("unknown placeholder {{{{{name}}}}}; known: {PLACEHOLDER_NAMES}"),
            )
        })
    }

    fn text(
        &mut self,
        text: &BytesText<'_>,
        start: usize,
        end: usize,
    ) -> Result<(), TemplateError> {
        let unescaped = text
            .unescape()
            .map_err(|e| self.error(start, format!("bad character or entity reference: {e}")))?;
        let blank = unescaped.trim().is_empty();
        let raw = &self.src[start..end];
        let first_visible = start + (raw.len() - raw.trim_start().len());
        let parent = self.stack.last().map(|f| (f.element, f.speak));
        match parent {
            None if !blank => {
                return Err(self.error(first_visible, "text outside <Response>".to_owned()));
            }
            Some((element, _)) if !blank && !element.takes_text() => {
                return Err(self.error(
                    first_visible,
                    format!("text is not allowed inside <{}>", element.name()),
                ));
            }
            _ => {}
        }

        let found = scan_placeholders(&self.src[start..end], start)
            .map_err(|(offset, message)| self.error(offset, message))?;
        for f in &found {
            let placeholder = self.known_placeholder(f.name, f.start)?;
            let (element, speak) = parent.unwrap_or((Element::Response, None));
            let segment = match placeholder {
                Placeholder::Code => {
                    if !self.kind.reads_code() {
                        return Err(self.error(
                            f.start,
                            format!(
                                "{{{{code}}}} is not allowed in {}: no code is known when it is played",
                                self.kind.file_name()
                            ),
                        ));
                    }
                    match speak {
                        Some(voice) if element.may_hold_code() => {
                            self.code_count += 1;
                            if voice == Voice::Polly {
                                Segment::CodeSsml
                            } else {
                                Segment::CodeText
                            }
                        }
                        _ => {
                            return Err(self.error(
                                f.start,
                                format!(
                                    "{{{{code}}}} is only allowed in the text of <Speak> (or of a \
                                     prosody, emphasis, lang, p or s inside it), not in <{}>",
                                    element.name()
                                ),
                            ));
                        }
                    }
                }
                Placeholder::Brand | Placeholder::Minutes | Placeholder::MinutesChoice => {
                    if speak.is_none() {
                        return Err(self.error(
                            f.start,
                            format!(
                                "{{{{{}}}}} is only allowed inside <Speak>, not in <{}>",
                                f.name,
                                element.name()
                            ),
                        ));
                    }
                    match placeholder {
                        Placeholder::Brand => Segment::Brand,
                        Placeholder::Minutes => Segment::Minutes,
                        _ => Segment::MinutesChoice(Box::new(
                            PluralChoice::parse(f.name, self.locale)
                                .map_err(|message| self.error(f.start, message))?,
                        )),
                    }
                }
                Placeholder::ActionUrl => {
                    if element != Element::Redirect {
                        return Err(self.error(
                            f.start,
                            format!(
                                "{{{{action_url}}}} is only allowed in the text of <Redirect> or in \
                                 `action` of <GetDigits>/<GetInput>, not in <{}>",
                                element.name()
                            ),
                        ));
                    }
                    Segment::ActionUrl
                }
            };
            self.push_slot(f, segment);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Compiled, TemplateError> {
        if let Some(frame) = self.stack.last() {
            return Err(self.error(
                frame.opened_at,
                format!("<{}> is never closed", frame.element.name()),
            ));
        }
        let Some(root_at) = self.root_at else {
            return Err(self.error(0, "no <Response> root element".to_owned()));
        };
        let file = self.kind.file_name();
        if self.kind.reads_code() && self.code_count < 2 {
            return Err(self.error(
                root_at,
                format!(
                    "{file} must read {{{{code}}}} at least twice, found {}",
                    self.code_count
                ),
            ));
        }
        match (self.kind.offers_replay(), self.replay_at) {
            (true, None) => {
                return Err(self.error(
                    root_at,
                    format!(
                        "{file} must offer a replay: <GetDigits action=\"{{{{action_url}}}}\" …>"
                    ),
                ));
            }
            (true, Some(at)) if !self.replay_has_action => {
                return Err(self.error(
                    at,
                    "the replay <GetDigits> needs action=\"{{action_url}}\"".to_owned(),
                ));
            }
            (false, Some(at)) => {
                return Err(self.error(
                    at,
                    format!("{file} must not offer a replay (<GetDigits>/<GetInput>)"),
                ));
            }
            _ => {}
        }
        match self.last_verb {
            Some((Element::Hangup, _)) => {}
            Some((_, at)) => {
                return Err(self.error(
                    at,
                    "the last element in <Response> must be <Hangup/>".to_owned(),
                ));
            }
            None => {
                return Err(self.error(root_at, "<Response> must end with <Hangup/>".to_owned()));
            }
        }
        self.push_literal_until(self.src.len());
        Ok(Compiled {
            segments: self.segments,
            literal_len: self.literal_len,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const CODE: &str = "481207";
    const ACTION_URL: &str = "https://2fa.example.test/v1/plivo/digits?ref=c_9f&attempt=1";

    fn real_dir() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/xml-templates"))
    }

    fn real_templates() -> Templates {
        Templates::load(real_dir()).expect("the shipped xml-templates/ load")
    }

    fn vars<'a>(brand: &'a str, code: &'a str) -> Vars<'a> {
        Vars {
            brand,
            code: SpokenCode::new(code).expect("a digits-only code"),
            action_url: ACTION_URL,
            minutes: 10,
        }
    }

    #[test]
    fn the_shipped_answers_say_one_minute_and_two_minutes_in_every_locale() {
        let templates = real_templates();
        let words = [
            ("en-US", "1 minute.", "2 minutes."),
            ("en-GB", "1 minute.", "2 minutes."),
            ("es-ES", "1 minuto.", "2 minutos."),
            ("es-US", "1 minuto.", "2 minutos."),
            ("fr-FR", "1 minute.", "2 minutes."),
            ("de-DE", "1 Minute lang", "2 Minuten lang"),
            ("it-IT", "1 minuto.", "2 minuti."),
            ("pt-BR", "1 minuto.", "2 minutos."),
            ("hi-IN", "1 मिनट", "2 मिनट"),
        ];
        for (locale, one, two) in words {
            for (minutes, want) in [(1, one), (2, two)] {
                let xml = templates.render(
                    locale,
                    TemplateKind::Answer,
                    &Vars {
                        minutes,
                        ..vars("Acme", CODE)
                    },
                );
                assert!(xml.contains(want), "{locale} {minutes}: {xml}");
                assert!(!xml.contains("plural"), "{locale}: {xml}");
            }
        }
    }

    #[test]
    fn a_plural_choice_is_checked_against_the_locales_rules() {
        let bad = r#"<Response><Speak voice="Polly.Joanna" language="en-US">{{minutes, plural, few {#} other {#}}}</Speak></Response>"#;
        let e = Templates::from_sources([("en-US", TemplateKind::Goodbye, bad)])
            .expect_err("few is not English");
        assert!(
            e.to_string().contains("not a plural category of en-US"),
            "{e}"
        );
        let unbalanced = r#"<Response><Speak voice="Polly.Joanna" language="en-US">{{minutes, plural, one {#} other {#}}</Speak></Response>"#;
        let e = Templates::from_sources([("en-US", TemplateKind::Goodbye, unbalanced)])
            .expect_err("one brace short");
        assert!(e.to_string().contains("unclosed placeholder"), "{e}");
    }

    #[derive(Debug)]
    struct ParsedElement {
        name: String,
        depth: usize,
        /// Unescaped values.
        attributes: Vec<(String, String)>,
    }

    /// What a test needs to know of a rendered response.
    #[derive(Debug, Default)]
    struct Parsed {
        /// Every element in document order.
        elements: Vec<ParsedElement>,
        /// Text inside `<Speak>` elements, one entry per text node.
        spoken: Vec<String>,
    }

    impl Parsed {
        fn names_at_depth(&self, depth: usize) -> Vec<&str> {
            self.elements
                .iter()
                .filter(|e| e.depth == depth)
                .map(|e| e.name.as_str())
                .collect()
        }

        fn attribute_of_all(&self, element: &str, key: &str) -> Vec<Option<&str>> {
            self.elements
                .iter()
                .filter(|e| e.name == element)
                .map(|e| {
                    e.attributes
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.as_str())
                })
                .collect()
        }

        /// Words and numbers as spoken, split on anything not alphanumeric.
        fn tokens(&self) -> Vec<String> {
            self.spoken
                .join(" ")
                .split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        }

        /// How often the code is read as consecutive single-digit tokens.
        fn digit_by_digit_readings(&self, code: &str) -> usize {
            let digits: Vec<String> = code.chars().map(String::from).collect();
            self.tokens()
                .windows(digits.len())
                .filter(|w| *w == digits.as_slice())
                .count()
        }
    }

    /// Re-parses rendered XML strictly; panics on anything malformed.
    fn parse(xml: &str) -> Parsed {
        let mut reader = Reader::from_str(xml);
        let mut parsed = Parsed::default();
        let mut stack: Vec<String> = Vec::new();
        loop {
            let event = reader
                .read_event()
                .unwrap_or_else(|e| panic!("rendered XML is malformed: {e}\n{xml}"));
            let mut push = |tag: &BytesStart<'_>, depth: usize| {
                let name = String::from_utf8_lossy(tag.name().as_ref()).into_owned();
                let attributes = tag
                    .attributes()
                    .map(|a| {
                        let a = a.expect("well-formed attribute");
                        (
                            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                            a.unescape_value()
                                .expect("valid attribute value")
                                .into_owned(),
                        )
                    })
                    .collect();
                parsed.elements.push(ParsedElement {
                    name: name.clone(),
                    depth,
                    attributes,
                });
                name
            };
            match event {
                Event::Start(tag) => {
                    let name = push(&tag, stack.len());
                    stack.push(name);
                }
                Event::Empty(tag) => {
                    push(&tag, stack.len());
                }
                Event::End(_) => {
                    stack.pop();
                }
                Event::Text(text) => {
                    let text = text.unescape().expect("valid text").into_owned();
                    if stack.iter().any(|n| n == "Speak") {
                        parsed.spoken.push(text);
                    } else {
                        assert!(text.trim().is_empty(), "stray text {text:?} in\n{xml}");
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unclosed elements {stack:?} in\n{xml}");
        parsed
    }

    fn speak(voice: &str, text: &str) -> String {
        format!(r#"<Speak voice="{voice}" language="en-US">{text}</Speak>"#)
    }

    /// A minimal valid en-US set with `voice`, as owned sources.
    fn minimal_sources(voice: &str) -> Vec<(String, TemplateKind, String)> {
        let code_twice = speak(voice, "Your code is {{code}}. Again: {{code}}.");
        let replay = format!(
            r#"<GetDigits action="{{{{action_url}}}}" method="POST" numDigits="1">{}</GetDigits>"#,
            speak(voice, "Press 1 to hear it again.")
        );
        let bye = speak(voice, "Goodbye.");
        let doc = |body: String| format!("<Response>\n{body}\n<Hangup/>\n</Response>\n");
        [
            (
                TemplateKind::Answer,
                doc(format!(
                    "{}\n{code_twice}\n{replay}\n{bye}",
                    speak(voice, "This is {{brand}}.")
                )),
            ),
            (
                TemplateKind::Repeat,
                doc(format!("{code_twice}\n{replay}\n{bye}")),
            ),
            (TemplateKind::Last, doc(format!("{code_twice}\n{bye}"))),
            (TemplateKind::Goodbye, doc(bye.clone())),
            (
                TemplateKind::Apology,
                doc(speak(voice, "Sorry, this code is no longer valid.")),
            ),
        ]
        .into_iter()
        .map(|(kind, xml)| ("en-US".to_owned(), kind, xml))
        .collect()
    }

    fn build(sources: &[(String, TemplateKind, String)]) -> Result<Templates, TemplateError> {
        Templates::from_sources(sources.iter().map(|(l, k, x)| (l.as_str(), *k, x.as_str())))
    }

    /// The minimal Polly set with `kind` replaced by `xml`.
    fn build_with(kind: TemplateKind, xml: &str) -> Result<Templates, TemplateError> {
        let mut sources = minimal_sources("Polly.Joanna");
        for source in &mut sources {
            if source.1 == kind {
                source.2 = xml.to_owned();
            }
        }
        build(&sources)
    }

    fn error_of(kind: TemplateKind, xml: &str) -> String {
        match build_with(kind, xml) {
            Ok(_) => panic!("template was accepted:\n{xml}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_shipped_templates_load_with_every_supported_locale() {
        let templates = real_templates();
        let loaded: Vec<&str> = templates.locales().collect();
        for locale in SUPPORTED_LOCALES {
            assert!(loaded.contains(&locale), "{locale} missing from {loaded:?}");
        }
        assert_eq!(loaded.first(), Some(&FALLBACK_LOCALE));
        assert_eq!(
            validate_dir(real_dir()).expect("valid"),
            loaded.len() * TemplateKind::ALL.len()
        );
    }

    #[test]
    fn every_shipped_template_renders_well_formed_xml_with_a_response_root_ending_in_hangup() {
        let templates = real_templates();
        for locale in templates.locales() {
            for kind in TemplateKind::ALL {
                let xml = templates.render(locale, kind, &vars("Acme", CODE));
                let parsed = parse(&xml);
                assert_eq!(parsed.names_at_depth(0), ["Response"], "{locale} {kind:?}");
                assert_eq!(
                    parsed.names_at_depth(1).last(),
                    Some(&"Hangup"),
                    "{locale} {kind:?} must end with Hangup"
                );
            }
        }
    }

    #[test]
    fn every_speak_in_a_shipped_locale_has_that_locale_as_its_language() {
        let templates = real_templates();
        for locale in templates.locales() {
            for kind in TemplateKind::ALL {
                let parsed = parse(&templates.render(locale, kind, &vars("Acme", CODE)));
                let languages = parsed.attribute_of_all("Speak", "language");
                assert!(!languages.is_empty(), "{locale} {kind:?} speaks nothing");
                for language in languages {
                    assert_eq!(language, Some(locale), "{locale} {kind:?}");
                }
                for voice in parsed.attribute_of_all("Speak", "voice") {
                    assert!(
                        voice.is_some_and(|v| v.starts_with("Polly.")),
                        "{locale} {kind:?} voice {voice:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn shipped_templates_read_the_code_digit_by_digit_at_least_twice_and_never_as_a_number() {
        let templates = real_templates();
        for code in [CODE, "90210735", "0000"] {
            for locale in templates.locales() {
                for kind in [
                    TemplateKind::Answer,
                    TemplateKind::Repeat,
                    TemplateKind::Last,
                ] {
                    let xml = templates.render(locale, kind, &vars("Acme", code));
                    let parsed = parse(&xml);
                    let readings = parsed.digit_by_digit_readings(code);
                    assert!(
                        readings >= 2,
                        "{locale} {kind:?} reads {code} {readings} times:\n{xml}"
                    );
                    assert!(
                        !xml.contains(code),
                        "{locale} {kind:?} has {code} as a number:\n{xml}"
                    );
                    assert!(
                        !parsed.tokens().iter().any(|t| t == code),
                        "{locale} {kind:?}"
                    );
                }
                for kind in [TemplateKind::Goodbye, TemplateKind::Apology] {
                    let xml = templates.render(locale, kind, &vars("Acme", code));
                    assert_eq!(
                        parse(&xml).digit_by_digit_readings(code),
                        0,
                        "{locale} {kind:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn answer_and_repeat_offer_a_replay_to_the_action_url_and_the_others_do_not() {
        let templates = real_templates();
        for locale in templates.locales() {
            for kind in TemplateKind::ALL {
                let parsed = parse(&templates.render(locale, kind, &vars("Acme", CODE)));
                let actions = parsed.attribute_of_all("GetDigits", "action");
                if matches!(kind, TemplateKind::Answer | TemplateKind::Repeat) {
                    assert_eq!(actions, [Some(ACTION_URL)], "{locale} {kind:?}");
                    assert_eq!(
                        parsed.attribute_of_all("GetDigits", "method"),
                        [Some("POST")]
                    );
                    assert_eq!(
                        parsed.attribute_of_all("GetDigits", "numDigits"),
                        [Some("1")]
                    );
                } else {
                    assert!(actions.is_empty(), "{locale} {kind:?} offers a replay");
                }
            }
        }
    }

    #[test]
    fn answer_names_the_brand_and_the_lifetime_in_every_shipped_locale() {
        let templates = real_templates();
        for locale in templates.locales() {
            let xml = templates.render(locale, TemplateKind::Answer, &vars("Zyxwv", CODE));
            let tokens = parse(&xml).tokens();
            assert!(tokens.iter().any(|t| t == "Zyxwv"), "{locale}");
            assert!(tokens.iter().any(|t| t == "10"), "{locale}");
        }
    }

    #[test]
    fn a_brand_with_markup_characters_is_escaped_and_the_output_reparses() {
        let brand = r#"A&B <Co> "Q" 'S'"#;
        let templates = real_templates();
        let xml = templates.render("en-US", TemplateKind::Answer, &vars(brand, CODE));
        assert!(
            xml.contains("A&amp;B &lt;Co&gt; &quot;Q&quot; &apos;S&apos;"),
            "{xml}"
        );
        let parsed = parse(&xml);
        assert!(
            parsed.spoken.iter().any(|t| t.contains(brand)),
            "{:?}",
            parsed.spoken
        );
        assert_eq!(
            parsed.attribute_of_all("GetDigits", "action"),
            [Some(ACTION_URL)]
        );
    }

    #[test]
    fn a_brand_with_control_characters_still_renders_well_formed_xml() {
        let templates = real_templates();
        let xml = templates.render(
            "en-US",
            TemplateKind::Answer,
            &vars("Ac\u{0}me\u{1b}", CODE),
        );
        let parsed = parse(&xml);
        assert!(parsed.spoken.iter().any(|t| t.contains("Acme")));
    }

    #[test]
    fn an_unknown_locale_falls_back_to_en_us() {
        let templates = real_templates();
        let v = vars("Acme", CODE);
        let en_us = templates.render("en-US", TemplateKind::Answer, &v);
        for requested in ["xx-XX", "", "klingon", "zz"] {
            assert_eq!(templates.resolve_locale(requested), "en-US");
            assert_eq!(templates.render(requested, TemplateKind::Answer, &v), en_us);
        }
    }

    #[test]
    fn a_locale_resolves_ignoring_case_and_by_language_alone() {
        let templates = real_templates();
        assert_eq!(templates.resolve_locale("fr-fr"), "fr-FR");
        assert_eq!(templates.resolve_locale("PT_br"), "pt-BR");
        assert_eq!(templates.resolve_locale("es"), "es-ES");
        assert_eq!(templates.resolve_locale("es-MX"), "es-ES");
        assert_eq!(templates.resolve_locale("es-US"), "es-US");
        assert_eq!(templates.resolve_locale("en-AU"), "en-US");
        assert_eq!(templates.resolve_locale("en-GB"), "en-GB");
        assert_eq!(templates.resolve_locale("de"), "de-DE");
    }

    #[test]
    fn a_polly_voice_reads_the_code_as_ssml_digits_with_breaks_between_them() {
        let templates = build(&minimal_sources("Polly.Joanna")).expect("valid");
        let xml = templates.render("en-US", TemplateKind::Last, &vars("Acme", "407"));
        let expected = concat!(
            r#"<say-as interpret-as="digits">4</say-as><break time="400ms"/>"#,
            r#"<say-as interpret-as="digits">0</say-as><break time="400ms"/>"#,
            r#"<say-as interpret-as="digits">7</say-as>"#,
        );
        assert_eq!(xml.matches(expected).count(), 2, "{xml}");
        assert_eq!(parse(&xml).digit_by_digit_readings("407"), 2);
    }

    #[test]
    fn a_woman_voice_reads_the_code_as_comma_separated_digits_without_ssml() {
        let templates = build(&minimal_sources("WOMAN")).expect("valid");
        let xml = templates.render("en-US", TemplateKind::Repeat, &vars("Acme", "4071"));
        assert_eq!(
            xml.matches("Your code is 4, 0, 7, 1. Again: 4, 0, 7, 1.")
                .count(),
            1,
            "{xml}"
        );
        assert!(!xml.contains("say-as") && !xml.contains("4071"), "{xml}");
        assert_eq!(parse(&xml).digit_by_digit_readings("4071"), 2);
    }

    #[test]
    fn a_spoken_code_accepts_only_ascii_digits_and_never_shows_them_in_debug() {
        for bad in ["", "12a4", "12 34", "１２３", "<say-as>", "1234567890123"] {
            assert_eq!(SpokenCode::new(bad), Err(NotDigits), "{bad:?}");
        }
        let code = SpokenCode::new("123456789012").expect("12 digits");
        assert_eq!(code.as_str(), "123456789012");
        assert!(!format!("{code:?} {:?}", vars("Acme", "481207")).contains("481207"));
    }

    #[test]
    fn a_goodbye_renders_with_default_vars() {
        let templates = real_templates();
        let xml = templates.render("de-DE", TemplateKind::Goodbye, &Vars::default());
        assert_eq!(parse(&xml).names_at_depth(1), ["Speak", "Hangup"]);
    }

    #[test]
    fn a_character_xml_cannot_carry_fails_naming_the_file_and_the_line() {
        // Found by fuzzing: a NUL inside the XML declaration was accepted and
        // copied into every rendered response.
        let body = "<Response>\n<Speak voice=\"MAN\" language=\"en-US\">Bye.</Speak>\n<Hangup/>\n</Response>";
        for (xml, expected) in [
            (
                format!("<?xml versi\0on=\"1.0\"?>\n{body}"),
                ":1: character U+0000 is not allowed in XML",
            ),
            (
                body.replace("Bye.", "Bye\u{1b}."),
                ":2: character U+001B is not allowed in XML",
            ),
            (
                body.replace("Bye.", "Bye\u{FFFF}."),
                ":2: character U+FFFF is not allowed in XML",
            ),
        ] {
            let error = error_of(TemplateKind::Goodbye, &xml);
            assert_eq!(error, format!("xml-templates/en-US/goodbye.xml{expected}"));
        }
    }

    #[test]
    fn an_unclosed_tag_fails_naming_the_file_and_the_line() {
        let xml = "<Response>\n  <Speak voice=\"Polly.Joanna\" language=\"en-US\">{{code}} {{code}}\n  <Hangup/>\n</Response>\n";
        let error = error_of(TemplateKind::Last, xml);
        assert!(
            error.starts_with("xml-templates/en-US/last.xml:3: "),
            "{error}"
        );

        let xml = "<Response>\n<Speak voice=\"Polly.Joanna\" language=\"en-US\">{{code}} {{code}}\n</Response>\n";
        let error = error_of(TemplateKind::Last, xml);
        assert!(
            error.starts_with("xml-templates/en-US/last.xml:3: malformed XML"),
            "{error}"
        );

        let xml = "<Response>\n<Speak voice=\"Polly.Joanna\" language=\"en-US\">{{code}} {{code}}</Speak>\n\n<Hangup>\n";
        let error = error_of(TemplateKind::Last, xml);
        assert_eq!(
            error,
            "xml-templates/en-US/last.xml:4: <Hangup> is never closed"
        );
    }

    #[test]
    fn an_unknown_element_fails_naming_the_file_and_the_line() {
        let xml = "<Response>\n\n  <Speek voice=\"Polly.Joanna\" language=\"en-US\">Bye.</Speek>\n  <Hangup/>\n</Response>\n";
        let error = error_of(TemplateKind::Goodbye, xml);
        assert!(
            error.starts_with("xml-templates/en-US/goodbye.xml:3: unknown element <Speek>"),
            "{error}"
        );
    }

    #[test]
    fn a_misplaced_element_is_rejected() {
        let xml = "<Response>\n<Hangup/>\n<Speak voice=\"Polly.Joanna\" language=\"en-US\">Bye<Hangup/></Speak>\n</Response>";
        let error = error_of(TemplateKind::Goodbye, xml);
        assert!(
            error.contains(":3: <Hangup> is not allowed inside <Speak>"),
            "{error}"
        );
        let error = error_of(
            TemplateKind::Goodbye,
            "<Speak voice=\"MAN\" language=\"en-US\">Bye</Speak>",
        );
        assert!(
            error.contains(":1: the root element must be <Response>"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_attribute_fails_naming_the_file_and_the_line() {
        let xml = "<Response>\n<Speak voise=\"Polly.Joanna\" language=\"en-US\">Bye.</Speak>\n<Hangup/>\n</Response>";
        let error = error_of(TemplateKind::Goodbye, xml);
        assert!(
            error.starts_with(
                "xml-templates/en-US/goodbye.xml:2: unknown attribute `voise` on <Speak>"
            ),
            "{error}"
        );
    }

    #[test]
    fn bad_attribute_values_are_rejected() {
        for (attributes, expected) in [
            (
                r#"voice="Polly.Joanna" language="en-GB""#,
                "must be \"en-US\"",
            ),
            (r#"voice="Polly.Joanna""#, "needs language=\"en-US\""),
            (
                r#"voice="Joanna" language="en-US""#,
                "must be WOMAN, MAN or Polly.<Name>",
            ),
            (
                r#"voice="WOMAN" language="en-US" loop="twice""#,
                "must be a whole number",
            ),
        ] {
            let xml =
                format!("<Response>\n<Speak {attributes}>Bye.</Speak>\n<Hangup/>\n</Response>");
            let error = error_of(TemplateKind::Goodbye, &xml);
            assert!(
                error.contains(":2: ") && error.contains(expected),
                "{error}"
            );
        }
    }

    #[test]
    fn an_unknown_placeholder_fails_naming_the_file_and_the_line() {
        let xml = "<Response>\n<Speak voice=\"Polly.Joanna\" language=\"en-US\">\nBye from {{brnad}}.</Speak>\n<Hangup/>\n</Response>";
        let error = error_of(TemplateKind::Goodbye, xml);
        assert!(
            error.starts_with("xml-templates/en-US/goodbye.xml:3: unknown placeholder {{brnad}}"),
            "{error}"
        );
        let unclosed = "<Response>\n<Speak voice=\"MAN\" language=\"en-US\">Bye {{brand</Speak>\n<Hangup/>\n</Response>";
        assert!(error_of(TemplateKind::Goodbye, unclosed).contains(":2: unclosed placeholder"));
    }

    #[test]
    fn placeholders_outside_their_places_are_rejected() {
        let cases = [
            (
                TemplateKind::Goodbye,
                "<Response>\n<Speak voice=\"MAN\" language=\"en-US\">{{code}}</Speak>\n<Hangup/>\n</Response>",
                "{{code}} is not allowed in goodbye.xml",
            ),
            (
                TemplateKind::Last,
                "<Response>\n<Speak voice=\"Polly.Amy\" language=\"en-US\">{{code}}<say-as interpret-as=\"digits\">{{code}}</say-as></Speak>\n<Hangup/>\n</Response>",
                "{{code}} is only allowed in the text of <Speak>",
            ),
            (
                TemplateKind::Goodbye,
                "<Response>\n<Redirect>{{brand}}</Redirect>\n<Speak voice=\"MAN\" language=\"en-US\">Bye</Speak>\n<Hangup/>\n</Response>",
                "{{brand}} is only allowed inside <Speak>",
            ),
            (
                TemplateKind::Goodbye,
                "<Response>\n<Speak voice=\"MAN\" language=\"en-US\">Go to {{action_url}}</Speak>\n<Hangup/>\n</Response>",
                "{{action_url}} is only allowed in the text of <Redirect>",
            ),
            (
                TemplateKind::Goodbye,
                "<Response>\n<Speak voice=\"{{brand}}\" language=\"en-US\">Bye</Speak>\n<Hangup/>\n</Response>",
                "{{brand}} is not allowed in `voice` of <Speak>",
            ),
        ];
        for (kind, xml, expected) in cases {
            let error = error_of(kind, xml);
            assert!(
                error.contains(":2: ") && error.contains(expected),
                "{error}"
            );
        }
    }

    #[test]
    fn ssml_under_a_woman_voice_fails_naming_the_file_and_the_line() {
        let xml = "<Response>\n<Speak voice=\"WOMAN\" language=\"en-US\">Bye\n<break time=\"1s\"/></Speak>\n<Hangup/>\n</Response>";
        let error = error_of(TemplateKind::Goodbye, xml);
        assert!(
            error.starts_with("xml-templates/en-US/goodbye.xml:3: SSML <break> needs a <Speak> whose voice starts with \"Polly.\""),
            "{error}"
        );
        let default_voice = xml.replace(" voice=\"WOMAN\"", "");
        assert!(error_of(TemplateKind::Goodbye, &default_voice).contains(":3: SSML <break>"));
    }

    #[test]
    fn a_template_missing_its_required_shape_is_rejected() {
        let cases = [
            (
                TemplateKind::Last,
                "<Response>\n<Speak voice=\"MAN\" language=\"en-US\">{{code}}</Speak>\n<Hangup/>\n</Response>",
                ":1: last.xml must read {{code}} at least twice, found 1",
            ),
            (
                TemplateKind::Last,
                "<Response>\n<Speak voice=\"MAN\" language=\"en-US\">{{code}} {{code}}</Speak>\n<GetDigits action=\"{{action_url}}\"></GetDigits>\n<Hangup/>\n</Response>",
                ":3: last.xml must not offer a replay",
            ),
            (
                TemplateKind::Repeat,
                "<Response>\n<Speak voice=\"MAN\" language=\"en-US\">{{code}} {{code}}</Speak>\n<Hangup/>\n</Response>",
                ":1: repeat.xml must offer a replay",
            ),
            (
                TemplateKind::Repeat,
                "<Response>\n<Speak voice=\"MAN\" language=\"en-US\">{{code}} {{code}}</Speak>\n<GetDigits action=\"https://x.test/\"></GetDigits>\n<Hangup/>\n</Response>",
                ":3: the replay <GetDigits> needs action=\"{{action_url}}\"",
            ),
            (
                TemplateKind::Apology,
                "<Response>\n<Hangup/>\n<Speak voice=\"MAN\" language=\"en-US\">Sorry.</Speak>\n</Response>",
                ":3: the last element in <Response> must be <Hangup/>",
            ),
        ];
        for (kind, xml, expected) in cases {
            let error = error_of(kind, xml);
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn a_locale_missing_a_template_or_a_set_without_en_us_is_rejected() {
        let mut sources = minimal_sources("MAN");
        sources.retain(|s| s.1 != TemplateKind::Apology);
        let error = build(&sources).map(|_| ()).expect_err("apology missing");
        assert!(
            error
                .to_string()
                .starts_with("xml-templates/en-US/apology.xml: missing"),
            "{error}"
        );

        let mut sources = minimal_sources("MAN");
        for source in &mut sources {
            source.0 = "fr-FR".to_owned();
            source.2 = source.2.replace("en-US", "fr-FR");
        }
        let error = build(&sources).map(|_| ()).expect_err("en-US missing");
        assert!(
            error.to_string().contains("en-US is the fallback locale"),
            "{error}"
        );
    }

    #[test]
    fn load_rejects_a_misspelled_template_file_and_reports_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("plivo-2fa-xml-test-{}", std::process::id()));
        let locale_dir = dir.join("en-US");
        std::fs::create_dir_all(&locale_dir).expect("temp dir");
        for (_, kind, xml) in minimal_sources("MAN") {
            std::fs::write(locale_dir.join(kind.file_name()), xml).expect("write");
        }
        std::fs::write(dir.join("README.md"), "ignored").expect("write");
        assert_eq!(validate_dir(&dir).expect("valid"), 5);

        std::fs::write(locale_dir.join("answr.xml"), "<Response/>").expect("write");
        let misspelled = validate_dir(&dir).map(|_| ()).expect_err("misspelled file");
        std::fs::remove_file(locale_dir.join("answr.xml")).expect("remove");
        std::fs::remove_file(locale_dir.join("last.xml")).expect("remove");
        let missing = validate_dir(&dir).map(|_| ()).expect_err("missing file");
        std::fs::remove_dir_all(&dir).expect("cleanup");

        assert!(misspelled.to_string().ends_with("answr.xml: unknown template file; expected answer.xml, repeat.xml, last.xml, goodbye.xml, apology.xml"), "{misspelled}");
        assert!(
            missing.to_string().contains("en-US/last.xml: missing"),
            "{missing}"
        );
    }

    #[test]
    fn comments_are_dropped_and_literal_text_is_kept_verbatim() {
        let mut sources = minimal_sources("MAN");
        sources[3].2 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- translators: keep it short -->\n<Response><Speak voice=\"MAN\" language=\"en-US\">Tsch&#252;ss &amp; bye</Speak><Hangup/></Response>".to_owned();
        let templates = build(&sources).expect("valid");
        let xml = templates.render("en-US", TemplateKind::Goodbye, &Vars::default());
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Response><Speak voice=\"MAN\" language=\"en-US\">Tsch&#252;ss &amp; bye</Speak><Hangup/></Response>"
        );
    }
}
