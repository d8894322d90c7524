//! Rendering a compiled template: push its literal chunks and fill its slots.
//! No XML is parsed here; every substituted value is escaped, and the code
//! is read digit by digit (SSML `<say-as>` per digit under a Polly voice,
//! comma-separated digits under `WOMAN`/`MAN`).

use std::fmt::Write as _;

use super::Vars;
use crate::domain::plural::PluralChoice;

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

/// A template compiled to literal chunks and slots.
#[derive(Debug, Clone)]
pub(super) struct Compiled {
    pub(super) segments: Vec<Segment>,
    pub(super) literal_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
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

impl Compiled {
    /// Appends this template filled with `vars` to `out`.
    pub(super) fn render_into(&self, vars: &Vars<'_>, out: &mut String) {
        out.reserve(self.literal_len + RENDER_HEADROOM);
        for segment in &self.segments {
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

/// Escapes `& < > " '` and drops characters XML 1.0 cannot carry at all.
pub(super) fn push_escaped(out: &mut String, value: &str) {
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
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}
