//! The SMS text: the built-in wording per locale, or the operator's own
//! (`SMS_TEXT`, `SMS_TEXT_<LOCALE>`, which an India DLT template must match
//! word for word), and the autofill lines phones and browsers read.
//!
//! A text holds `{code}` exactly once, and may hold `{brand}`, `{minutes}`
//! (the minutes left, rounded up) and a plural choice on the minutes,
//! `{minutes, plural, one {# minute} other {# minutes}}` (see
//! [`crate::domain::plural`]). The operator's texts are checked at start-up:
//! no other placeholder, and once rendered with the longest code, the brand,
//! the longest minutes and room for the autofill lines, at most 160 GSM-7
//! characters (extension characters such as `€`, `[` or `{` count twice) or,
//! when a character is outside GSM-7, 70 UCS-2 units: one SMS, and within
//! Android's 140-byte limit for the SMS Retriever.
//!
//! The autofill lines come last, in this order:
//! 1. the app's SMS Retriever hash, when the start carried `app_hash`
//!    (Google asks only that the message *include* it);
//! 2. `@domain #code`, with `WEBOTP_DOMAIN`: the WebOTP format must be the
//!    message's last line, so it goes after the hash.

use crate::domain::plural::{MAX_COUNT, PluralChoice};
use crate::domain::{Locale, OtpCode};

/// Most GSM-7 characters (septets) in one SMS.
pub const GSM7_LIMIT: usize = 160;
/// Most UCS-2 units in one SMS.
pub const UCS2_LIMIT: usize = 70;
/// The SMS Retriever hash: 11 characters of base64.
pub const APP_HASH_LEN: usize = 11;
/// The language whose plural rules a bare `SMS_TEXT` is read with.
pub const SMS_TEXT_LANGUAGE: &str = "en";

/// GSM 03.38's basic character set (one septet each); ESC is left out.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: an escape and the character, two septets each.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Built-in wording: the code first (so it shows in notification previews),
/// the brand, the minutes left, and a do-not-share warning. Hindi says मिनट
/// for one and many alike, so it needs no choice.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "en-US",
        "{code} is your {brand} verification code. It expires in {minutes, plural, one {# minute} other {# minutes}}. Do not share it with anyone.",
    ),
    (
        "en-GB",
        "{code} is your {brand} verification code. It expires in {minutes, plural, one {# minute} other {# minutes}}. Do not share it with anyone.",
    ),
    (
        "es-ES",
        "{code} es tu código de verificación de {brand}. Caduca en {minutes, plural, one {# minuto} other {# minutos}}. No lo compartas con nadie.",
    ),
    (
        "es-US",
        "{code} es tu código de verificación de {brand}. Vence en {minutes, plural, one {# minuto} other {# minutos}}. No lo compartas con nadie.",
    ),
    (
        "fr-FR",
        "{code} est votre code de vérification {brand}. Il expire dans {minutes, plural, one {# minute} other {# minutes}}. Ne le partagez avec personne.",
    ),
    (
        "de-DE",
        "{code} ist Ihr {brand}-Bestätigungscode. Er läuft in {minutes, plural, one {# Minute} other {# Minuten}} ab. Geben Sie ihn an niemanden weiter.",
    ),
    (
        "it-IT",
        "{code} è il tuo codice di verifica {brand}. Scade tra {minutes, plural, one {# minuto} other {# minuti}}. Non condividerlo con nessuno.",
    ),
    (
        "pt-BR",
        "{code} é o seu código de verificação {brand}. Ele expira em {minutes, plural, one {# minuto} other {# minutos}}. Não o compartilhe com ninguém.",
    ),
    (
        "hi-IN",
        "{code} आपका {brand} सत्यापन कोड है। यह {minutes} मिनट में समाप्त हो जाएगा। इसे किसी के साथ साझा न करें।",
    ),
];

/// The locales with built-in wording.
pub fn locales() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(l, _)| *l).collect()
}

/// An Android SMS Retriever app hash: exactly 11 of `[A-Za-z0-9+/]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHash(String);

impl AppHash {
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == APP_HASH_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))
        .then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Code,
    Brand,
    Minutes,
    MinutesChoice(PluralChoice),
}

/// One SMS text, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsTemplate {
    segments: Vec<Segment>,
}

impl SmsTemplate {
    /// Parses `text`, whose plural choices follow `language`'s rules. The
    /// error is a sentence.
    pub fn parse(text: &str, language: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut codes = 0;
        while let Some(open) = rest.find(['{', '}']) {
            literal.push_str(&rest[..open]);
            if rest.as_bytes()[open] == b'}' {
                return Err("has a `}` that closes no placeholder".to_owned());
            }
            let body_start = open + 1;
            let close = closing_brace(&rest[body_start..])
                .map(|i| body_start + i)
                .ok_or("has a `{` that is never closed")?;
            let body = &rest[body_start..close];
            let segment = match body.trim() {
                "code" => {
                    codes += 1;
                    Segment::Code
                }
                "brand" => Segment::Brand,
                "minutes" => Segment::Minutes,
                b if b.contains(',') => Segment::MinutesChoice(PluralChoice::parse(b, language)?),
                other => {
                    return Err(format!(
                        "has an unknown placeholder {{{other}}}; the placeholders are {{code}}, {{brand}}, {{minutes}} and {{minutes, plural, one {{…}} other {{…}}}}"
                    ));
                }
            };
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            segments.push(segment);
            rest = &rest[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        if codes != 1 {
            return Err(format!(
                "must hold {{code}} exactly once, not {codes} times"
            ));
        }
        Ok(Self { segments })
    }

    fn render_into(&self, code: &str, brand: &str, minutes: u32, out: &mut String) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Code => out.push_str(code),
                Segment::Brand => out.push_str(brand),
                Segment::Minutes => out.push_str(&minutes.to_string()),
                Segment::MinutesChoice(choice) => choice.render_into(minutes, out),
            }
        }
    }
}

/// Where the `}` matching an opened `{` is, in `text` (just after the `{`).
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// How many SMS units `text` takes, and the limit of one SMS in its encoding.
pub fn sms_length(text: &str) -> (usize, usize, &'static str) {
    let mut septets = 0;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENSION.contains(c) {
            septets += 2;
        } else {
            return (text.encode_utf16().count(), UCS2_LIMIT, "UCS-2");
        }
    }
    (septets, GSM7_LIMIT, "GSM-7")
}

/// An operator's text, from `SMS_TEXT` (no locale) or `SMS_TEXT_<LOCALE>`.
#[derive(Debug, Clone)]
pub struct CustomText {
    /// The variable it came from, for errors.
    pub var: String,
    pub locale: Option<Locale>,
    pub text: String,
}

/// What the SMS says, per locale, with the brand and the autofill settings.
#[derive(Debug, Clone)]
pub struct SmsWording {
    built_in: Vec<(&'static str, SmsTemplate)>,
    by_locale: Vec<(Locale, SmsTemplate)>,
    default_text: Option<SmsTemplate>,
    brand: String,
    webotp_domain: Option<String>,
}

/// Why the wording could not be built: the variable, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordingError {
    pub var: String,
    pub reason: String,
}

impl SmsWording {
    /// Parses the built-in wording and the operator's texts, checking each of
    /// the latter against one SMS with `code_length` digits, `brand` and up to
    /// `max_minutes`.
    pub fn new(
        brand: &str,
        custom: &[CustomText],
        webotp_domain: Option<&str>,
        code_length: usize,
        max_minutes: u32,
    ) -> Result<Self, WordingError> {
        let built_in = BUILT_IN
            .iter()
            .map(|(locale, text)| {
                SmsTemplate::parse(text, locale)
                    .map(|t| (*locale, t))
                    .map_err(|reason| WordingError {
                        var: format!("built-in {locale} wording"),
                        reason,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut wording = Self {
            built_in,
            by_locale: Vec::new(),
            default_text: None,
            brand: brand.to_owned(),
            webotp_domain: webotp_domain.map(str::to_owned),
        };
        let longest_code = "0".repeat(code_length);
        let room = AppHash("A".repeat(APP_HASH_LEN));
        for c in custom {
            let language = c.locale.as_ref().map_or(SMS_TEXT_LANGUAGE, Locale::as_str);
            let bad = |reason: String| WordingError {
                var: c.var.clone(),
                reason,
            };
            let template = SmsTemplate::parse(&c.text, language).map_err(bad)?;
            for minutes in 1..=max_minutes.min(MAX_COUNT) {
                let rendered = wording.finish(&template, &longest_code, minutes, Some(&room));
                let (length, limit, encoding) = sms_length(&rendered);
                if length > limit {
                    return Err(bad(format!(
                        "is {length} {encoding} characters once rendered (with a {code_length}-digit code, the brand, {minutes} minutes and room for the autofill lines); one SMS holds {limit}"
                    )));
                }
            }
            match &c.locale {
                Some(locale) => wording.by_locale.push((locale.clone(), template)),
                None => wording.default_text = Some(template),
            }
        }
        Ok(wording)
    }

    pub fn brand(&self) -> &str {
        &self.brand
    }

    /// Whether `SMS_TEXT` is set (an India DLT template needs it).
    pub fn has_default_text(&self) -> bool {
        self.default_text.is_some()
    }

    /// The text for `locale`: its own `SMS_TEXT_<LOCALE>` (exact, then the
    /// same language), else `SMS_TEXT`, else the built-in wording (exact,
    /// same language, then en-US). `registered_only` takes `SMS_TEXT` first
    /// whatever the locale (a DLT template is one text).
    fn template(&self, locale: &Locale, registered_only: bool) -> &SmsTemplate {
        if let (true, Some(t)) = (registered_only, &self.default_text) {
            return t;
        }
        let language = locale.as_str().split('-').next().unwrap_or_default();
        let own = self
            .by_locale
            .iter()
            .find(|(l, _)| l == locale)
            .or_else(|| {
                self.by_locale
                    .iter()
                    .find(|(l, _)| l.as_str().split('-').next() == Some(language))
            })
            .map(|(_, t)| t);
        if let Some(t) = own.or(self.default_text.as_ref()) {
            return t;
        }
        let names: Vec<&str> = self.built_in.iter().map(|(l, _)| *l).collect();
        let chosen = locale.best_match(&names);
        self.built_in
            .iter()
            .find(|(l, _)| *l == chosen)
            .map_or(&self.built_in[0].1, |(_, t)| t)
    }

    fn finish(
        &self,
        template: &SmsTemplate,
        code: &str,
        minutes: u32,
        app_hash: Option<&AppHash>,
    ) -> String {
        let mut out = String::with_capacity(192);
        template.render_into(code, &self.brand, minutes, &mut out);
        if let Some(hash) = app_hash {
            out.push('\n');
            out.push_str(hash.as_str());
        }
        if let Some(domain) = &self.webotp_domain {
            out.push_str("\n@");
            out.push_str(domain);
            out.push_str(" #");
            out.push_str(code);
        }
        out
    }

    /// The SMS for `code` in `locale`, `minutes` before it expires.
    /// `registered_only`: the text must be `SMS_TEXT` when set (DLT).
    pub fn render(
        &self,
        locale: &Locale,
        code: &OtpCode,
        minutes: u32,
        app_hash: Option<&AppHash>,
        registered_only: bool,
    ) -> String {
        let template = self.template(locale, registered_only);
        self.finish(template, code.expose(), minutes, app_hash)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::CodeLength;

    fn code() -> OtpCode {
        OtpCode::parse("042917", CodeLength::default()).unwrap()
    }

    fn built_in_only() -> SmsWording {
        SmsWording::new("Acme", &[], None, 6, 10).unwrap()
    }

    fn custom(var: &str, locale: Option<&str>, text: &str) -> CustomText {
        CustomText {
            var: var.to_owned(),
            locale: locale.map(|l| Locale::parse(l).unwrap()),
            text: text.to_owned(),
        }
    }

    #[test]
    fn every_locale_names_the_code_the_brand_and_the_lifetime() {
        let w = built_in_only();
        for (locale, _) in BUILT_IN {
            let t = w.render(&Locale::parse(locale).unwrap(), &code(), 10, None, false);
            assert!(t.starts_with("042917 "), "{locale}: {t}");
            assert!(t.contains("Acme") && t.contains("10"), "{locale}: {t}");
            assert!(!t.contains(['{', '}', '#']), "{locale}: {t}");
        }
    }

    #[test]
    fn one_minute_is_singular_and_ten_plural_in_every_built_in_locale() {
        let w = built_in_only();
        let expect = [
            ("en-US", "1 minute.", "10 minutes."),
            ("en-GB", "1 minute.", "10 minutes."),
            ("es-ES", "1 minuto.", "10 minutos."),
            ("es-US", "1 minuto.", "10 minutos."),
            ("fr-FR", "1 minute.", "10 minutes."),
            ("de-DE", "1 Minute ab", "10 Minuten ab"),
            ("it-IT", "1 minuto.", "10 minuti."),
            ("pt-BR", "1 minuto.", "10 minutos."),
            ("hi-IN", "1 मिनट", "10 मिनट"),
        ];
        for (locale, one, ten) in expect {
            let l = Locale::parse(locale).unwrap();
            let t1 = w.render(&l, &code(), 1, None, false);
            let t10 = w.render(&l, &code(), 10, None, false);
            assert!(t1.contains(one), "{locale}: {t1}");
            assert!(t10.contains(ten), "{locale}: {t10}");
        }
    }

    #[test]
    fn an_unknown_locale_gets_english_and_a_related_one_its_language() {
        let w = built_in_only();
        let en = w.render(&Locale::parse("ja-JP").unwrap(), &code(), 5, None, false);
        assert!(en.contains("Do not share"));
        let es = w.render(&Locale::parse("es-MX").unwrap(), &code(), 5, None, false);
        assert!(es.contains("No lo compartas"));
    }

    #[test]
    fn a_brand_containing_placeholders_stays_literal() {
        let w = SmsWording::new("{code}", &[], None, 6, 10).unwrap();
        let t = w.render(&Locale::default(), &code(), 5, None, false);
        assert_eq!(t.matches("042917").count(), 1);
    }

    #[test]
    fn the_app_hash_and_then_the_webotp_line_end_the_message() {
        let w = SmsWording::new("Acme", &[], Some("example.com"), 6, 10).unwrap();
        let hash = AppHash::parse("FA+9qCX9VSu").unwrap();
        for locale in ["en-US", "hi-IN", "de-DE"] {
            let t = w.render(
                &Locale::parse(locale).unwrap(),
                &code(),
                10,
                Some(&hash),
                false,
            );
            let lines: Vec<&str> = t.lines().collect();
            assert_eq!(lines[lines.len() - 2], "FA+9qCX9VSu", "{t}");
            assert_eq!(lines[lines.len() - 1], "@example.com #042917", "{t}");
        }
    }

    #[test]
    fn app_hashes_are_eleven_base64_characters() {
        assert!(AppHash::parse("FA+9qCX9VSu").is_some());
        assert!(AppHash::parse("abcdefghij/").is_some());
        for bad in [
            "",
            "FA+9qCX9VS",
            "FA+9qCX9VSuX",
            "FA+9qCX9VS=",
            "FA 9qCX9VSu",
            "FA+9qCX9VSü",
        ] {
            assert!(AppHash::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn sms_text_replaces_the_wording_and_a_locale_text_wins_for_its_language() {
        let w = SmsWording::new(
            "Acme",
            &[
                custom("SMS_TEXT", None, "Your {brand} code: {code}"),
                custom(
                    "SMS_TEXT_ES_ES",
                    Some("es-ES"),
                    "Código {brand}: {code}, {minutes, plural, one {# minuto} other {# minutos}}",
                ),
            ],
            None,
            6,
            10,
        )
        .unwrap();
        let at = |l: &str| w.render(&Locale::parse(l).unwrap(), &code(), 1, None, false);
        assert_eq!(at("en-US"), "Your Acme code: 042917");
        assert_eq!(at("fr-FR"), "Your Acme code: 042917");
        assert_eq!(at("es-ES"), "Código Acme: 042917, 1 minuto");
        assert_eq!(at("es-MX"), "Código Acme: 042917, 1 minuto");
        let registered = w.render(&Locale::parse("es-ES").unwrap(), &code(), 1, None, true);
        assert_eq!(registered, "Your Acme code: 042917");
    }

    #[test]
    fn bad_texts_are_refused_with_their_variable_and_reason() {
        for (text, want) in [
            ("no code here", "exactly once, not 0"),
            ("{code} {code}", "exactly once, not 2"),
            ("{code} {name}", "unknown placeholder {name}"),
            ("{code} {", "never closed"),
            ("{code} }", "closes no placeholder"),
            (
                "{code} {minutes, plural, few {#} other {#}}",
                "not a plural category of en",
            ),
            (
                "{code} is your code. This text is far too long to fit in a single SMS message because it goes on and on and on with words nobody will ever read on a small screen at all",
                "one SMS holds 160",
            ),
            (
                "{code} आपका कोड है। इसे किसी के साथ साझा न करें। यह दस मिनट तक मान्य है, सच में।",
                "one SMS holds 70",
            ),
        ] {
            let e = SmsWording::new("Acme", &[custom("SMS_TEXT_X", None, text)], None, 6, 10)
                .unwrap_err();
            assert_eq!(e.var, "SMS_TEXT_X");
            assert!(e.reason.contains(want), "{text}: {}", e.reason);
        }
    }

    #[test]
    fn the_length_check_counts_the_longest_code_brand_minutes_and_autofill_lines() {
        // 140 GSM-7 characters of text fit alone, but not with a 10-digit code,
        // a hash line and a WebOTP line.
        let text = format!("{{code}} {}", "x".repeat(130));
        assert!(SmsWording::new("A", &[custom("SMS_TEXT", None, &text)], None, 6, 10).is_ok());
        let e = SmsWording::new(
            "A",
            &[custom("SMS_TEXT", None, &text)],
            Some("example.com"),
            10,
            10,
        )
        .unwrap_err();
        assert!(e.reason.contains("10-digit code"), "{}", e.reason);
        // Extension characters count twice: 75 plain ones fit, 75 euros do not.
        let plain = format!("{{code}} {}", "e".repeat(75));
        assert!(SmsWording::new("A", &[custom("SMS_TEXT", None, &plain)], None, 6, 10).is_ok());
        let euros = format!("{{code}} {}", "€".repeat(75));
        assert!(SmsWording::new("A", &[custom("SMS_TEXT", None, &euros)], None, 6, 10).is_err());
    }

    #[test]
    fn sms_lengths_follow_gsm7_and_ucs2() {
        assert_eq!(sms_length("abc"), (3, 160, "GSM-7"));
        assert_eq!(sms_length("a€"), (3, 160, "GSM-7"));
        assert_eq!(sms_length("código"), (6, 70, "UCS-2"));
        assert_eq!(sms_length("कोड"), (3, 70, "UCS-2"));
    }
}
