//! The WhatsApp authentication message as Plivo's Message API takes it: a
//! template message, `type: "whatsapp"`, with the code as the body's text
//! parameter and as the parameter of the copy-code button (which WhatsApp
//! creates as a URL button, index 0), and no `text`. The shape is Plivo's
//! Python SDK's (`plivo/resources/messages.py` `create(type_="whatsapp",
//! template=…)` and `plivo/utils/template.py`: Template {name, language,
//! components}, Component {type, sub_type, index, parameters}, Parameter
//! {type, text}). The deliverer sends it for `"channel": "whatsapp"`.

use serde::{Deserialize, Serialize};

use super::client::LOG_NOTHING;
use crate::domain::Locale;

/// Plivo's `type` of a WhatsApp message.
pub const MESSAGE_TYPE: &str = "whatsapp";
/// The language a locale without a WhatsApp template language falls back to.
pub const FALLBACK_LANGUAGE: &str = "en";

/// WhatsApp's template languages (Meta's list of supported languages): the
/// language alone, or language and region joined by `_`.
const LANGUAGES: &[&str] = &[
    "af", "sq", "ar", "az", "bn", "bg", "ca", "zh_CN", "zh_HK", "zh_TW", "hr", "cs", "da", "nl",
    "en", "en_GB", "en_US", "et", "fil", "fi", "fr", "de", "el", "gu", "ha", "he", "hi", "hu",
    "id", "ga", "it", "ja", "kn", "kk", "ko", "lo", "lv", "lt", "mk", "ms", "ml", "mr", "nb", "fa",
    "pl", "pt_BR", "pt_PT", "pa", "ro", "ru", "sr", "sk", "sl", "es", "es_AR", "es_ES", "es_MX",
    "sw", "sv", "ta", "te", "th", "tr", "uk", "ur", "uz", "vi", "zu",
];

/// Body of `POST /v1/Account/{auth_id}/Message/` for a WhatsApp template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsAppMessageRequest {
    /// The WhatsApp Business sender (`PLIVO_WHATSAPP_FROM`), E.164.
    pub src: String,
    pub dst: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub method: String,
    pub log: String,
    pub template: Template,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub language: String,
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

fn text(code: &str) -> Vec<Parameter> {
    vec![Parameter {
        kind: "text".to_owned(),
        text: code.to_owned(),
    }]
}

impl WhatsAppMessageRequest {
    /// The authentication template `template` in `language`, carrying `code`
    /// in its body and its copy-code button; receipts go to `status_url`.
    pub fn authentication(
        src: &str,
        dst: &str,
        status_url: &str,
        template: &str,
        language: &str,
        code: &str,
    ) -> Self {
        Self {
            src: src.to_owned(),
            dst: dst.to_owned(),
            kind: MESSAGE_TYPE.to_owned(),
            url: status_url.to_owned(),
            method: "POST".to_owned(),
            log: LOG_NOTHING.to_owned(),
            template: Template {
                name: template.to_owned(),
                language: language.to_owned(),
                components: vec![
                    Component {
                        kind: "body".to_owned(),
                        sub_type: None,
                        index: None,
                        parameters: text(code),
                    },
                    Component {
                        kind: "button".to_owned(),
                        sub_type: Some("url".to_owned()),
                        index: Some("0".to_owned()),
                        parameters: text(code),
                    },
                ],
            },
        }
    }
}

/// The WhatsApp template language of a locale: `es-ES` → `es_ES` when
/// WhatsApp has it, else the language alone (`es-CL` → `es`), else `en`.
pub fn template_language(locale: &Locale) -> &'static str {
    let tag = locale.as_str().replace('-', "_");
    let language = tag.split('_').next().unwrap_or_default();
    LANGUAGES
        .iter()
        .find(|l| **l == tag)
        .or_else(|| LANGUAGES.iter().find(|l| **l == language))
        .copied()
        .unwrap_or(FALLBACK_LANGUAGE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_template_message_with_the_code_in_body_and_button_and_no_text() {
        let r = WhatsAppMessageRequest::authentication(
            "+14155550199",
            "+34600111222",
            "https://otp.example.com/plivo/message-status/VEabc",
            "otp_copy_code",
            "es_ES",
            "481516",
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "src": "+14155550199",
                "dst": "+34600111222",
                "type": "whatsapp",
                "url": "https://otp.example.com/plivo/message-status/VEabc",
                "method": "POST",
                "log": "false",
                "template": {
                    "name": "otp_copy_code",
                    "language": "es_ES",
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": "481516"}]},
                        {"type": "button", "sub_type": "url", "index": "0",
                         "parameters": [{"type": "text", "text": "481516"}]}
                    ]
                }
            })
        );
        assert!(json.get("text").is_none());
    }

    #[test]
    fn a_locale_maps_to_whatsapps_language_then_the_language_alone_then_english() {
        let lang = |l: &str| template_language(&Locale::parse(l).unwrap());
        assert_eq!(lang("es-ES"), "es_ES");
        assert_eq!(lang("en-US"), "en_US");
        assert_eq!(lang("pt-BR"), "pt_BR");
        assert_eq!(lang("zh-TW"), "zh_TW");
        assert_eq!(lang("es-CL"), "es");
        assert_eq!(lang("fr-CA"), "fr");
        assert_eq!(lang("de"), "de");
        assert_eq!(
            lang("pt"),
            "en",
            "WhatsApp has pt_BR and pt_PT, not pt alone"
        );
        assert_eq!(lang("xx-YY"), "en");
        assert_eq!(lang("eu"), "en");
    }
}
