//! Plivo XML templates on hostile input: the shipped `xml-templates/`
//! rendered with random values, and template sources that are random or are
//! the shipped ones with a random edit.
//!
//! Never panics, and every rendered response
//! * is well-formed XML (re-parsed with quick-xml: matching tags, valid
//!   entities and attributes, only XML 1.0 characters) with one `<Response>`
//!   root and nothing but whitespace and comments around it;
//! * has the same elements whatever the brand and action URL: neither can
//!   inject markup;
//! * carries the action URL verbatim in `action` attributes.
//!
//! Any template set `Templates::from_sources` accepts renders under the same
//! checks.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use plivo_2fa::plivo::xml::{FALLBACK_LOCALE, SpokenCode, TemplateKind, Templates, Vars};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

const PLAIN_ACTION_URL: &str = "https://2fa.example.test/digits";

/// The shipped templates, as text and compiled.
struct Shipped {
    sources: Vec<(String, TemplateKind, String)>,
    templates: Templates,
}

fn shipped() -> &'static Shipped {
    static SHIPPED: OnceLock<Shipped> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../xml-templates"));
        let templates = Templates::load(dir).expect("the shipped xml-templates/ load");
        let mut sources = Vec::new();
        for locale in templates.locales() {
            for kind in TemplateKind::ALL {
                let path = dir.join(locale).join(kind.file_name());
                let text = std::fs::read_to_string(&path).expect("a shipped template is readable");
                sources.push((locale.to_owned(), kind, text));
            }
        }
        Shipped { sources, templates }
    })
}

fn kind_of(n: u8) -> TemplateKind {
    TemplateKind::ALL[usize::from(n) % TemplateKind::ALL.len()]
}

#[derive(Debug, Arbitrary)]
enum Code {
    /// Bytes taken modulo 10, 1 to 12 of them.
    Digits(Vec<u8>),
    /// Anything; used only if `SpokenCode::new` accepts it.
    Raw(String),
}

#[derive(Debug, Arbitrary)]
struct Values {
    brand: String,
    action_url: String,
    minutes: u32,
    code: Code,
}

impl Values {
    fn code_text(&self) -> String {
        match &self.code {
            Code::Digits(bytes) if bytes.is_empty() => "0".to_owned(),
            Code::Digits(bytes) => bytes
                .iter()
                .take(SpokenCode::MAX_DIGITS)
                .map(|b| char::from(b'0' + b % 10))
                .collect(),
            Code::Raw(raw) => raw.clone(),
        }
    }
}

/// Markup worth splicing into a template.
const SNIPPETS: &[&str] = &[
    "{{brand}}",
    "{{code}}",
    "{{action_url}}",
    "{{minutes}}",
    "{{",
    "}}",
    "<Speak voice=\"Polly.Joanna\" language=\"en-US\">",
    "<Speak voice=\"MAN\" language=\"en-US\">",
    "</Speak>",
    "<break time=\"300ms\"/>",
    "<say-as interpret-as=\"digits\">",
    "</say-as>",
    "<prosody rate=\"slow\">",
    "</prosody>",
    "<GetDigits action=\"{{action_url}}\" method=\"POST\">",
    "</GetDigits>",
    "<Redirect>{{action_url}}</Redirect>",
    "<Hangup/>",
    "<Wait length=\"1\"/>",
    "</Response>",
    "<Response>",
    "<!-- x -->",
    "<!--",
    "-->",
    "<![CDATA[x]]>",
    "<?pi x?>",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE Response>",
    "&amp;",
    "&lt;",
    "&#x41;",
    "&#0;",
    "&bogus;",
    "\u{feff}",
    "\"",
    "'",
    "<",
    ">",
    "&",
    "/>",
    "\n",
];

#[derive(Debug, Arbitrary)]
enum Insert {
    Text(String),
    Snippet(u8),
}

#[derive(Debug, Arbitrary)]
struct Edit {
    /// Byte offset (rounded down to a character boundary).
    at: u16,
    /// Characters removed from there.
    remove: u8,
    insert: Insert,
}

#[derive(Debug, Arbitrary)]
enum Input {
    /// The shipped templates with random values.
    Render {
        locale: String,
        kind: u8,
        values: Values,
    },
    /// One shipped template with random edits, built with the rest of its
    /// locale (and en-US, the required fallback).
    Edited {
        template: u8,
        edits: Vec<Edit>,
        values: Values,
    },
    /// Entirely random sources.
    Sources {
        sources: Vec<(String, u8, String)>,
        values: Values,
    },
}

fuzz_target!(|input: Input| {
    match input {
        Input::Render {
            locale,
            kind,
            values,
        } => check_render(&shipped().templates, &locale, kind_of(kind), &values),
        Input::Edited {
            template,
            edits,
            values,
        } => {
            let sources = &shipped().sources;
            let (locale, kind, text) = &sources[usize::from(template) % sources.len()];
            let mut text = text.clone();
            for edit in &edits {
                apply(&mut text, edit);
            }
            let set: Vec<(&str, TemplateKind, &str)> = sources
                .iter()
                .filter(|(l, _, _)| l == locale || l == FALLBACK_LOCALE)
                .map(|(l, k, t)| {
                    let t = if l == locale && k == kind { &text } else { t };
                    (l.as_str(), *k, t.as_str())
                })
                .collect();
            if let Ok(templates) = Templates::from_sources(set) {
                check_every_render(&templates, &values);
            }
        }
        Input::Sources { sources, values } => {
            let set = sources
                .iter()
                .map(|(l, k, t)| (l.as_str(), kind_of(*k), t.as_str()));
            if let Ok(templates) = Templates::from_sources(set) {
                check_every_render(&templates, &values);
            }
        }
    }
});

fn apply(text: &mut String, edit: &Edit) {
    let mut at = usize::from(edit.at).min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let end = text[at..]
        .char_indices()
        .nth(usize::from(edit.remove))
        .map_or(text.len(), |(i, _)| at + i);
    let insert = match &edit.insert {
        Insert::Text(s) => s.as_str(),
        Insert::Snippet(i) => SNIPPETS[usize::from(*i) % SNIPPETS.len()],
    };
    text.replace_range(at..end, insert);
}

fn check_every_render(templates: &Templates, values: &Values) {
    let locales: Vec<String> = templates.locales().map(str::to_owned).collect();
    // An unknown locale too: it must fall back to en-US.
    for locale in locales.iter().map(String::as_str).chain(["xx-XX"]) {
        for kind in TemplateKind::ALL {
            check_render(templates, locale, kind, values);
        }
    }
}

fn check_render(templates: &Templates, locale: &str, kind: TemplateKind, values: &Values) {
    let code_text = values.code_text();
    let code = SpokenCode::new(&code_text).unwrap_or_default();
    if let Ok(spoken) = SpokenCode::new(&code_text) {
        assert!(spoken.as_str().bytes().all(|b| b.is_ascii_digit()));
    }
    let vars = Vars {
        brand: &values.brand,
        code,
        action_url: &values.action_url,
        minutes: values.minutes,
    };
    let xml = templates.render(locale, kind, &vars);
    let elements = well_formed(&xml);

    // The same template with harmless values: the element structure must match.
    let plain = Vars {
        brand: "Acme",
        code,
        action_url: PLAIN_ACTION_URL,
        minutes: values.minutes,
    };
    let plain_xml = templates.render(locale, kind, &plain);
    let plain_elements = well_formed(&plain_xml);
    let names = |e: &[Element]| {
        e.iter()
            .map(|e| (e.depth, e.name.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&elements),
        names(&plain_elements),
        "the brand or action URL changed the markup:\n{xml}"
    );

    // Control characters XML cannot carry are dropped; whitespace in an
    // attribute is kept as written (an XML parser would turn it into spaces).
    let expected_action: String = values
        .action_url
        .chars()
        .filter(|&c| is_xml_char(c) && (c >= ' ' || matches!(c, '\t' | '\n' | '\r')))
        .collect();
    if !expected_action.contains(['\t', '\n', '\r']) {
        for (element, plain) in elements.iter().zip(&plain_elements) {
            let plain_action = plain.attributes.iter().find(|(k, _)| k == "action");
            if plain_action.is_some_and(|(_, v)| v == PLAIN_ACTION_URL) {
                let action = element.attributes.iter().find(|(k, _)| k == "action");
                assert_eq!(action.map(|(_, v)| v), Some(&expected_action), "\n{xml}");
            }
        }
    }
}

#[derive(Debug)]
struct Element {
    depth: usize,
    name: String,
    attributes: Vec<(String, String)>,
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Parses `xml` strictly enough to be sure Plivo can: panics on anything
/// malformed; returns the elements in document order.
fn well_formed(xml: &str) -> Vec<Element> {
    if let Some(bad) = xml.chars().find(|&c| !is_xml_char(c)) {
        panic!("character {bad:?} is not allowed in XML:\n{xml}");
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_comments = true;
    let mut elements = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut root_closed = false;
    let mut open = |tag: &BytesStart<'_>, depth: usize, root_closed: bool| -> String {
        let name = String::from_utf8(tag.name().as_ref().to_vec()).expect("UTF-8 name");
        assert!(!root_closed, "<{name}> after the root element:\n{xml}");
        if depth == 0 {
            assert_eq!(name, "Response", "the root is not <Response>:\n{xml}");
        }
        let attributes = tag
            .attributes()
            .map(|a| {
                let a = a.unwrap_or_else(|e| panic!("malformed attribute: {e}\n{xml}"));
                let value = a
                    .unescape_value()
                    .unwrap_or_else(|e| panic!("bad attribute value: {e}\n{xml}"));
                (
                    String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                    value.into_owned(),
                )
            })
            .collect();
        elements.push(Element {
            depth,
            name: name.clone(),
            attributes,
        });
        name
    };
    loop {
        match reader.read_event() {
            Err(e) => panic!("rendered XML is malformed: {e}\n{xml}"),
            Ok(Event::Start(tag)) => {
                let name = open(&tag, stack.len(), root_closed);
                stack.push(name);
            }
            Ok(Event::Empty(tag)) => {
                open(&tag, stack.len(), root_closed);
                if stack.is_empty() {
                    root_closed = true;
                }
            }
            Ok(Event::End(_)) => {
                stack.pop();
                if stack.is_empty() {
                    root_closed = true;
                }
            }
            Ok(Event::Text(text)) => {
                let text = text
                    .unescape()
                    .unwrap_or_else(|e| panic!("bad text: {e}\n{xml}"));
                if stack.is_empty() {
                    assert!(
                        text.trim().is_empty(),
                        "text {text:?} outside the root:\n{xml}"
                    );
                }
            }
            Ok(Event::CData(_) | Event::DocType(_) | Event::PI(_)) => {
                panic!("CDATA, DOCTYPE or a processing instruction in a response:\n{xml}")
            }
            Ok(Event::Decl(_) | Event::Comment(_)) => {}
            Ok(Event::Eof) => break,
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}:\n{xml}");
    assert!(root_closed, "no root element:\n{xml}");
    elements
}
