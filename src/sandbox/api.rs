//! The simulator's Plivo-compatible endpoints.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use super::call::CallFields;
use super::numbers;
use super::state::{SandboxCall, SandboxMessage, SandboxPhloRun, SandboxState};
use crate::domain::random::uuid_v4;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/Account/{auth_id}/Message/",
        web::post().to(send_message),
    )
    .route("/v1/Account/{auth_id}/Call/", web::post().to(make_call))
    .route(
        "/v1/account/{auth_id}/phlo/{phlo_id}",
        web::post().to(run_phlo),
    )
    .default_service(web::to(|| async {
        plivo_error(actix_web::http::StatusCode::NOT_FOUND, "not found")
    }));
}

fn plivo_error(status: actix_web::http::StatusCode, error: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"api_id": uuid_v4(), "error": error}))
}

pub fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let response = plivo_error(
        actix_web::http::StatusCode::BAD_REQUEST,
        &format!("invalid JSON body: {err}"),
    );
    actix_web::error::InternalError::from_response(err, response).into()
}

/// Basic auth as Plivo does it: the path's auth id must be the caller's.
fn authorized(req: &HttpRequest, state: &SandboxState, path_auth_id: &str) -> bool {
    let expected = format!("{}:{}", state.auth_id, state.auth_token.expose_secret());
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .unwrap_or_default();
    bool::from(presented.ct_eq(expected.as_bytes())) && path_auth_id == state.auth_id
}

fn unauthorized() -> HttpResponse {
    plivo_error(
        actix_web::http::StatusCode::UNAUTHORIZED,
        "Could not verify your access level for that URL. You have to login with proper credentials",
    )
}

/// Plivo's 400 for the first required parameter that is missing or empty.
fn require(body: &Map<String, Value>, keys: &[&str]) -> Option<HttpResponse> {
    keys.iter()
        .find(|k| text_field(body, k).is_none())
        .map(|key| {
            plivo_error(
                actix_web::http::StatusCode::BAD_REQUEST,
                &format!("{key} parameter not present"),
            )
        })
}

fn text_field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn send_message(
    req: HttpRequest,
    state: web::Data<SandboxState>,
    path: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> HttpResponse {
    if !authorized(&req, &state, &path) {
        return unauthorized();
    }
    let body = body.into_inner();
    let kind = text_field(&body, "type").unwrap_or(SMS_TYPE).to_owned();
    let whatsapp = kind == WHATSAPP_TYPE;
    // A WhatsApp template message has no text: the template is its content.
    let needed: &[&str] = if whatsapp && body.contains_key("template") {
        &["dst", "src"]
    } else {
        &["dst", "text"]
    };
    if let Some(missing) = require(&body, needed) {
        return missing;
    }
    if let Some(refusal) = message_fields_refusal(&body) {
        return plivo_error(actix_web::http::StatusCode::BAD_REQUEST, refusal);
    }
    if let Some(refusal) = type_refusal(&body, &kind) {
        return plivo_error(actix_web::http::StatusCode::BAD_REQUEST, refusal);
    }
    let template = body.get("template").cloned();
    let powerpack_uuid = text_field(&body, "powerpack_uuid").map(str::to_owned);
    let (src, dst, text) = (
        match &powerpack_uuid {
            // Plivo picks a number of the pool; the sandbox's pool has one.
            Some(_) => numbers::POWERPACK_NUMBER,
            None => text_field(&body, "src").unwrap_or_default(),
        },
        text_field(&body, "dst").unwrap_or_default(),
        match template.as_ref().and_then(template_code) {
            // What WhatsApp shows for an authentication template: its fixed
            // wording around the code.
            Some(code) => format!(
                "{code} is your verification code. For your security, do not share this code."
            ),
            None => text_field(&body, "text").unwrap_or_default().to_owned(),
        },
    );
    if dst == numbers::API_ERROR_500 {
        return plivo_error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error",
        );
    }
    let message_uuid = uuid_v4();
    let owned = |key: &str| text_field(&body, key).map(str::to_owned);
    state.record_message(SandboxMessage {
        to: dst.to_owned(),
        from: src.to_owned(),
        text,
        kind: kind.clone(),
        template,
        message_uuid: message_uuid.clone(),
        status: "queued".to_owned(),
        powerpack_uuid,
        message_expiry: body.get("message_expiry").and_then(Value::as_u64),
        dlt_entity_id: owned("dlt_entity_id"),
        dlt_template_id: owned("dlt_template_id"),
        dlt_template_category: owned("dlt_template_category"),
        log: owned("log"),
    });
    if let Some(url) = text_field(&body, "url") {
        tokio::spawn(super::receipts::send(
            state.clone().into_inner(),
            url.to_owned(),
            message_uuid.clone(),
            src.to_owned(),
            dst.to_owned(),
            kind,
        ));
    }
    HttpResponse::Accepted().json(json!({
        "api_id": uuid_v4(),
        "message": "message(s) queued",
        "message_uuid": [message_uuid],
    }))
}

/// Plivo's message types this simulator sends: `sms` (the default) and `whatsapp`.
const SMS_TYPE: &str = "sms";
const WHATSAPP_TYPE: &str = "whatsapp";

/// What Plivo refuses in a message's `type` and `template` (plivo-python's
/// texts: `plivo/resources/messages.py`).
fn type_refusal(body: &Map<String, Value>, kind: &str) -> Option<&'static str> {
    match kind {
        SMS_TYPE | "mms" if body.contains_key("template") => {
            Some("Template paramater is only applicable when message_type is whatsapp")
        }
        SMS_TYPE | "mms" => None,
        WHATSAPP_TYPE => match body.get("template") {
            None => None,
            Some(t)
                if t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty())
                    && t.get("language")
                        .and_then(Value::as_str)
                        .is_some_and(|l| !l.is_empty()) =>
            {
                None
            }
            Some(_) => Some("template must have a name and a language"),
        },
        _ => Some("type must be sms, mms or whatsapp"),
    }
}

/// The text parameter of a template's body component: the code of an
/// authentication template.
fn template_code(template: &Value) -> Option<String> {
    template
        .get("components")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("body"))?
        .get("parameters")?
        .as_array()?
        .first()?
        .get("text")?
        .as_str()
        .map(str::to_owned)
}

/// The shortest and longest `message_expiry` Plivo accepts, in seconds.
const MESSAGE_EXPIRY_RANGE: std::ops::RangeInclusive<u64> = 5..=10_799;

/// What Plivo (or its SDKs, which check before sending) refuses in a
/// Message's sender and optional fields. The texts are plivo-python's.
fn message_fields_refusal(body: &Map<String, Value>) -> Option<&'static str> {
    let src = text_field(body, "src").is_some();
    let powerpack = text_field(body, "powerpack_uuid").is_some();
    if src && powerpack {
        return Some(
            "Both powerpack_uuid and src cannot be specified. Specify either powerpack_uuid or src in request params to send a message.",
        );
    }
    if !src && !powerpack {
        return Some("Specify either powerpack_uuid or src in request params to send a message");
    }
    // Plivo's SDKs send `log` as a string ("true", "false", …); plivo-python
    // refuses a boolean.
    if body.get("log").is_some_and(|v| !v.is_string()) {
        return Some("log must be a string: true, false, content_only or number_only");
    }
    match body.get("message_expiry") {
        None => None,
        Some(v)
            if v.as_u64()
                .is_some_and(|n| MESSAGE_EXPIRY_RANGE.contains(&n)) =>
        {
            None
        }
        Some(_) => Some("message_expiry must be a whole number of seconds from 5 to 10799"),
    }
}

async fn run_phlo(
    req: HttpRequest,
    state: web::Data<SandboxState>,
    path: web::Path<(String, String)>,
    body: web::Json<Map<String, Value>>,
) -> HttpResponse {
    let (auth_id, phlo_id) = path.into_inner();
    if !authorized(&req, &state, &auth_id) {
        return unauthorized();
    }
    let payload = body.into_inner();
    let to = text_field(&payload, "to").unwrap_or_default().to_owned();
    if to == numbers::API_ERROR_500 {
        return plivo_error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error",
        );
    }
    // Plivo's "Run a PHLO" answer: `api_id` identifies the run.
    let phlo_run_id = uuid_v4();
    if let super::phlo::PhloOutcome::Invalid(reason) =
        super::phlo::run(&state.clone().into_inner(), &payload)
    {
        return plivo_error(actix_web::http::StatusCode::BAD_REQUEST, &reason);
    }
    state.record_phlo_run(SandboxPhloRun {
        phlo_id: phlo_id.clone(),
        phlo_run_id: phlo_run_id.clone(),
        payload,
    });
    HttpResponse::Created().json(json!({
        "api_id": phlo_run_id,
        "phlo_id": phlo_id,
        "name": "plivo-2fa",
        "message": "Request has been accepted for processing",
    }))
}

async fn make_call(
    req: HttpRequest,
    state: web::Data<SandboxState>,
    path: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> HttpResponse {
    if !authorized(&req, &state, &path) {
        return unauthorized();
    }
    let body = body.into_inner();
    if let Some(missing) = require(&body, &["from", "to", "answer_url"]) {
        return missing;
    }
    let field = |k: &str| text_field(&body, k).unwrap_or_default().to_owned();
    let to = field("to");
    if to == numbers::API_ERROR_500 {
        return plivo_error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error",
        );
    }
    let fields = CallFields {
        from: field("from"),
        to,
        answer_url: field("answer_url"),
        hangup_url: field("hangup_url"),
        request_uuid: uuid_v4(),
    };
    state.record_call(SandboxCall {
        to: fields.to.clone(),
        from: fields.from.clone(),
        call_uuid: String::new(),
        request_uuid: fields.request_uuid.clone(),
        answer_xml: String::new(),
        spoken: Vec::new(),
        digits: String::new(),
        status: "queued".to_owned(),
    });
    let request_uuid = fields.request_uuid.clone();
    tokio::spawn(super::call::play(state.into_inner(), fields));
    HttpResponse::Created().json(json!({
        "api_id": uuid_v4(),
        "message": "call fired",
        "request_uuid": request_uuid,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn a_template_goes_with_whatsapp_only_and_needs_its_name_and_language() {
        let template = json!({"name": "otp_copy_code", "language": "en_US", "components": []});
        assert_eq!(
            type_refusal(&body(json!({"template": template})), SMS_TYPE),
            Some("Template paramater is only applicable when message_type is whatsapp")
        );
        assert_eq!(
            type_refusal(&body(json!({"template": template})), WHATSAPP_TYPE),
            None
        );
        assert!(type_refusal(&body(json!({"template": {"name": "x"}})), WHATSAPP_TYPE).is_some());
        assert!(type_refusal(&body(json!({})), "fax").is_some());
    }

    #[test]
    fn the_code_of_a_template_is_its_body_parameter() {
        let template = json!({"name": "otp", "language": "en", "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "481516"}]},
            {"type": "button", "sub_type": "url", "index": "0",
             "parameters": [{"type": "text", "text": "481516"}]}
        ]});
        assert_eq!(template_code(&template).as_deref(), Some("481516"));
        assert_eq!(template_code(&json!({"components": []})), None);
    }
}
