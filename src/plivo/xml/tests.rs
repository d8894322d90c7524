//! The templates' tests: the shipped set, and every rule the compiler enforces.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

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
    let body =
        "<Response>\n<Speak voice=\"MAN\" language=\"en-US\">Bye.</Speak>\n<Hangup/>\n</Response>";
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
        error
            .starts_with("xml-templates/en-US/goodbye.xml:2: unknown attribute `voise` on <Speak>"),
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
        let xml = format!("<Response>\n<Speak {attributes}>Bye.</Speak>\n<Hangup/>\n</Response>");
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
