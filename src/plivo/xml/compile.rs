//! Validating a template and compiling it into literal chunks and slots: one
//! pass over the XML (quick-xml) that checks every element and attribute
//! against the schema, finds the placeholders, checks that each is
//! where it makes sense, and that the template has the shape its kind needs
//! (the code read twice, a replay offer, a closing `<Hangup/>`).

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, BytesText, Event};

use super::render::{Compiled, Segment, is_xml_char};
use super::schema::{ALL_ELEMENTS, Element, Voice, value_complaint, voice_of};
use super::{TemplateError, TemplateKind};
use crate::domain::plural::PluralChoice;

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

pub(super) fn compile(
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
