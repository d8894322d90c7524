//! The SMS wording, one template per locale: the code first (so it shows in
//! notification previews), the brand, the lifetime, and a do-not-share warning.

use crate::domain::{Locale, OtpCode};

/// `{code}`, `{brand}` and `{minutes}` are replaced.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "en-US",
        "{code} is your {brand} verification code. It expires in {minutes} minutes. Do not share it with anyone.",
    ),
    (
        "en-GB",
        "{code} is your {brand} verification code. It expires in {minutes} minutes. Do not share it with anyone.",
    ),
    (
        "es-ES",
        "{code} es tu código de verificación de {brand}. Caduca en {minutes} minutos. No lo compartas con nadie.",
    ),
    (
        "es-US",
        "{code} es tu código de verificación de {brand}. Vence en {minutes} minutos. No lo compartas con nadie.",
    ),
    (
        "fr-FR",
        "{code} est votre code de vérification {brand}. Il expire dans {minutes} minutes. Ne le partagez avec personne.",
    ),
    (
        "de-DE",
        "{code} ist Ihr {brand}-Bestätigungscode. Er läuft in {minutes} Minuten ab. Geben Sie ihn an niemanden weiter.",
    ),
    (
        "it-IT",
        "{code} è il tuo codice di verifica {brand}. Scade tra {minutes} minuti. Non condividerlo con nessuno.",
    ),
    (
        "pt-BR",
        "{code} é o seu código de verificação {brand}. Ele expira em {minutes} minutos. Não o compartilhe com ninguém.",
    ),
    (
        "hi-IN",
        "{code} आपका {brand} सत्यापन कोड है। यह {minutes} मिनट में समाप्त हो जाएगा। इसे किसी के साथ साझा न करें।",
    ),
];

/// The locales with their own SMS wording.
pub fn locales() -> Vec<&'static str> {
    TEMPLATES.iter().map(|(l, _)| *l).collect()
}

/// The message for `locale` (falling back to the same language, then en-US).
pub fn text(locale: &Locale, brand: &str, code: &OtpCode, minutes: u64) -> String {
    let chosen = locale.best_match(&locales());
    let template = TEMPLATES
        .iter()
        .find(|(l, _)| *l == chosen)
        .map_or(TEMPLATES[0].1, |(_, t)| t);
    // Substitute in one pass so a brand containing "{code}" stays literal.
    let mut out = String::with_capacity(template.len() + brand.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let (value, len) = if tail.starts_with("{code}") {
            (code.expose().to_owned(), "{code}".len())
        } else if tail.starts_with("{brand}") {
            (brand.to_owned(), "{brand}".len())
        } else if tail.starts_with("{minutes}") {
            (minutes.to_string(), "{minutes}".len())
        } else {
            ("{".to_owned(), 1)
        };
        out.push_str(&value);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::CodeLength;

    fn code() -> OtpCode {
        OtpCode::parse("042917", CodeLength::default()).unwrap()
    }

    #[test]
    fn every_locale_names_the_code_the_brand_and_the_lifetime() {
        for (locale, _) in TEMPLATES {
            let t = text(&Locale::parse(locale).unwrap(), "Acme", &code(), 10);
            assert!(t.starts_with("042917 "), "{locale}: {t}");
            assert!(t.contains("Acme") && t.contains("10"), "{locale}: {t}");
            assert!(!t.contains('{'), "{locale}: {t}");
        }
    }

    #[test]
    fn an_unknown_locale_gets_english_and_a_related_one_its_language() {
        let en = text(&Locale::parse("ja-JP").unwrap(), "Acme", &code(), 5);
        assert!(en.contains("Do not share"));
        let es = text(&Locale::parse("es-MX").unwrap(), "Acme", &code(), 5);
        assert!(es.contains("No lo compartas"));
    }

    #[test]
    fn a_brand_containing_placeholders_stays_literal() {
        let t = text(&Locale::default(), "{code}", &code(), 5);
        assert_eq!(t.matches("042917").count(), 1);
    }
}
