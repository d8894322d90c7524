//! The Plivo REST client: one `reqwest::Client` built at start-up (connection
//! pool, rustls, connect and request timeouts) and Basic auth on every request.
//! The sandbox and production share every line of it; only the base URLs differ.

use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

/// Longest Plivo error text passed on to API clients and logs.
const MAX_ERROR_TEXT: usize = 300;
/// Longest Plivo error text kept before redaction (redacting after cutting
/// could leave half a code behind).
const MAX_RAW_ERROR_TEXT: usize = 4_096;
/// What a redacted secret reads as.
pub const REDACTED: &str = "[redacted]";

/// Why a request to Plivo did not return an accepted answer. Some of these
/// are definite (Plivo refused, or nothing reached it); the others are
/// ambiguous: Plivo may well have taken the request (see [`PlivoError::is_ambiguous`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlivoError {
    /// Plivo answered with an error status (its own text, when it gave one).
    #[error("Plivo answered {status}: {message}")]
    Rejected { status: u16, message: String },
    /// No connection could be made: nothing reached Plivo.
    #[error("Plivo could not be reached")]
    Unreachable,
    /// The request was never sent (it could not be built or prepared).
    #[error("the request to Plivo was not sent: {0}")]
    NotSent(String),
    #[error("Plivo did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke after the request went out.
    #[error("the connection to Plivo broke before its answer arrived")]
    Interrupted,
    /// A 2xx answer that could not be read.
    #[error("Plivo's answer could not be read: {0}")]
    InvalidResponse(String),
}

impl PlivoError {
    /// The sentence shown to API clients: Plivo's own words where there are some.
    pub fn public_message(&self) -> String {
        match self {
            PlivoError::Rejected { status, message } => {
                format!("Plivo refused the request ({status}): {message}")
            }
            PlivoError::Timeout(_) => "Plivo did not answer in time.".to_owned(),
            PlivoError::Unreachable => "Plivo could not be reached.".to_owned(),
            PlivoError::NotSent(reason) => format!("The code was not sent: {reason}."),
            PlivoError::Interrupted => {
                "The connection to Plivo broke before its answer arrived.".to_owned()
            }
            PlivoError::InvalidResponse(_) => "Plivo's answer could not be understood.".to_owned(),
        }
    }

    /// Whether Plivo may have accepted the request all the same: it timed
    /// out, the connection broke mid-way, or a 2xx answer was unreadable.
    /// Only a 4xx/5xx or a connection never made is a definite refusal.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            PlivoError::Timeout(_) | PlivoError::Interrupted | PlivoError::InvalidResponse(_)
        )
    }

    /// Replaces every `(secret, stand-in)` in Plivo's text (longest secret
    /// first, so a code inside a number cannot survive), then cuts the text
    /// to [`MAX_ERROR_TEXT`]. Plivo's errors may quote the request: the code,
    /// the number, the credentials.
    #[must_use]
    pub fn redact(self, secrets: &[(&str, &str)]) -> Self {
        let clean = |text: String| -> String {
            scrub(&text, secrets).chars().take(MAX_ERROR_TEXT).collect()
        };
        match self {
            PlivoError::Rejected { status, message } => PlivoError::Rejected {
                status,
                message: clean(message),
            },
            PlivoError::InvalidResponse(text) => PlivoError::InvalidResponse(clean(text)),
            PlivoError::NotSent(text) => PlivoError::NotSent(clean(text)),
            other => other,
        }
    }
}

/// `text` with every secret replaced by its stand-in, longest secret first.
pub fn scrub(text: &str, secrets: &[(&str, &str)]) -> String {
    let mut ordered: Vec<&(&str, &str)> = secrets.iter().filter(|(s, _)| !s.is_empty()).collect();
    ordered.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for (secret, stand_in) in ordered {
        if out.contains(secret) {
            out = out.replace(secret, stand_in);
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct PlivoClientConfig {
    pub auth_id: String,
    pub auth_token: SecretString,
    pub api_base_url: Url,
    pub phlo_base_url: Url,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// Plivo's `log` value that keeps neither the text nor the full number in
/// its logs. A string, as Plivo's SDKs send it (the Python SDK refuses a boolean).
pub const LOG_NOTHING: &str = "false";
/// The shortest `message_expiry` Plivo accepts, in seconds.
pub const MIN_MESSAGE_EXPIRY_SECS: u64 = 5;
/// The longest: Plivo's default is 10 800 s, and it accepts 5 to 10 799.
pub const MAX_MESSAGE_EXPIRY_SECS: u64 = 10_799;

/// Body of `POST /v1/Account/{auth_id}/Message/`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageRequest {
    /// The sender; absent when a Powerpack chooses it (Plivo refuses both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub powerpack_uuid: Option<String>,
    pub dst: String,
    pub text: String,
    pub url: String,
    pub method: String,
    /// [`LOG_NOTHING`]: Plivo keeps neither the text (the code) nor the full number.
    pub log: String,
    /// Seconds Plivo may keep the message queued before giving up on it
    /// ([`MIN_MESSAGE_EXPIRY_SECS`] to [`MAX_MESSAGE_EXPIRY_SECS`]).
    pub message_expiry: u64,
    /// India's DLT registration, for +91 numbers only.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub dlt: Option<DltFields>,
}

/// The DLT fields Plivo takes on a Message to India.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DltFields {
    pub dlt_entity_id: String,
    pub dlt_template_id: String,
    pub dlt_template_category: String,
}

/// Body of `POST /v1/Account/{auth_id}/Call/`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallRequest {
    pub from: String,
    pub to: String,
    pub answer_url: String,
    pub answer_method: String,
    pub hangup_url: String,
    pub hangup_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_detection: Option<String>,
    pub time_limit: u32,
}

/// The flat JSON a PHLO run takes; these four keys are what the 2FA PHLO reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct PhloRunRequest {
    pub from: String,
    pub to: String,
    pub mode: String,
    pub otp: String,
}

/// What Plivo accepted: the id its callbacks will carry, when its answer
/// named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub provider_id: Option<String>,
}

/// Which of Plivo's create answers is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `{"api_id", "message", "message_uuid": [...]}`
    Message,
    /// `{"api_id", "message", "request_uuid"}`
    Call,
    /// `{"api_id", "phlo_id", "name", "message"}`, `api_id` being the run's
    /// id; some SDK fixtures add `phlo_run_id`.
    Phlo,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Message => "message",
            Endpoint::Call => "call",
            Endpoint::Phlo => "phlo",
        }
    }
}

/// One id or a list of them (Plivo's `message_uuid` is a list).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The fields of a 2xx answer this server reads; every one is optional, so
/// a missing field never fails a delivery Plivo accepted.
#[derive(Debug, Deserialize)]
struct CreatedAnswer {
    #[serde(default)]
    api_id: Option<String>,
    #[serde(default)]
    message_uuid: Option<OneOrMany>,
    #[serde(default)]
    request_uuid: Option<String>,
    #[serde(default)]
    phlo_run_id: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Reads Plivo's answer to a create request: a 4xx/5xx is a refusal with
/// Plivo's text; a 2xx is accepted, with the id when the answer names one
/// (for a PHLO run, `phlo_run_id` when present, else `api_id`); a 2xx that is
/// not a JSON object is [`PlivoError::InvalidResponse`] (ambiguous).
pub fn read_answer(endpoint: Endpoint, code: u16, body: &[u8]) -> Result<Accepted, PlivoError> {
    let status =
        reqwest::StatusCode::from_u16(code).unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
    if !status.is_success() {
        return Err(PlivoError::Rejected {
            status: code,
            message: error_text(body, status),
        });
    }
    let answer: CreatedAnswer = serde_json::from_slice(body).map_err(|e| {
        let text = error_text(body, status);
        PlivoError::InvalidResponse(if text.is_empty() { e.to_string() } else { text })
    })?;
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let provider_id = match endpoint {
        Endpoint::Message => non_empty(match answer.message_uuid {
            Some(OneOrMany::One(id)) => Some(id),
            Some(OneOrMany::Many(ids)) => ids.into_iter().next(),
            None => None,
        }),
        Endpoint::Call => non_empty(answer.request_uuid),
        Endpoint::Phlo => non_empty(answer.phlo_run_id).or_else(|| non_empty(answer.api_id)),
    };
    if provider_id.is_none() && answer.error.is_some() {
        // A 2xx that says "error" and names nothing: Plivo may or may not have it.
        return Err(PlivoError::InvalidResponse(error_text(body, status)));
    }
    Ok(Accepted { provider_id })
}

/// The fields of Plivo's account answer (`GET /v1/Account/{auth_id}/`)
/// this server logs; every one optional.
#[derive(Debug, Default, Deserialize)]
pub struct AccountAnswer {
    #[serde(default)]
    pub auth_id: Option<String>,
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub billing_mode: Option<String>,
}

#[derive(Clone)]
pub struct PlivoClient {
    http: reqwest::Client,
    auth_id: String,
    auth_token: SecretString,
    account_url: Url,
    message_url: Url,
    call_url: Url,
    phlo_base_url: Url,
    timeout: Duration,
}

impl std::fmt::Debug for PlivoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlivoClient")
            .field("message_url", &self.message_url.as_str())
            .finish_non_exhaustive()
    }
}

fn join(base: &Url, path: &str) -> Result<Url, String> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).map_err(|e| e.to_string())
}

impl PlivoClient {
    pub fn new(config: PlivoClientConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("plivo-2fa/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let account = format!("v1/Account/{}/", config.auth_id);
        Ok(Self {
            http,
            account_url: join(&config.api_base_url, &account)?,
            message_url: join(&config.api_base_url, &format!("{account}Message/"))?,
            call_url: join(&config.api_base_url, &format!("{account}Call/"))?,
            phlo_base_url: config.phlo_base_url,
            auth_id: config.auth_id,
            auth_token: config.auth_token,
            timeout: config.timeout,
        })
    }

    /// Sends an SMS; its id is Plivo's message_uuid.
    #[tracing::instrument(skip_all, fields(plivo.endpoint = "message"))]
    pub async fn send_message(&self, request: &MessageRequest) -> Result<Accepted, PlivoError> {
        self.post(Endpoint::Message, self.message_url.clone(), request)
            .await
    }

    /// Sends a WhatsApp template message; its id is Plivo's message_uuid,
    /// as for an SMS (the same Message endpoint and answer).
    #[tracing::instrument(skip_all, fields(plivo.endpoint = "message"))]
    pub async fn send_whatsapp(
        &self,
        request: &super::whatsapp::WhatsAppMessageRequest,
    ) -> Result<Accepted, PlivoError> {
        self.post(Endpoint::Message, self.message_url.clone(), request)
            .await
    }

    /// Places a call; its id is Plivo's request_uuid.
    #[tracing::instrument(skip_all, fields(plivo.endpoint = "call"))]
    pub async fn make_call(&self, request: &CallRequest) -> Result<Accepted, PlivoError> {
        self.post(Endpoint::Call, self.call_url.clone(), request)
            .await
    }

    /// Runs a PHLO; its id is the run's (`phlo_run_id`, else `api_id`).
    #[tracing::instrument(skip_all, fields(plivo.endpoint = "phlo"))]
    pub async fn run_phlo(
        &self,
        phlo_id: &str,
        request: &PhloRunRequest,
    ) -> Result<Accepted, PlivoError> {
        let url = join(
            &self.phlo_base_url,
            &format!("v1/account/{}/phlo/{phlo_id}", self.auth_id),
        )
        .map_err(PlivoError::NotSent)?;
        self.post(Endpoint::Phlo, url, request).await
    }

    /// Reads the account (`GET /v1/Account/{auth_id}/`, as Plivo's SDKs'
    /// `account.get()`): the one request that proves the credentials
    /// without sending anything. A 2xx is accepted whatever its body holds.
    #[tracing::instrument(skip_all, fields(plivo.endpoint = "account"))]
    pub async fn read_account(&self) -> Result<AccountAnswer, PlivoError> {
        let (status, bytes) = self.send(self.http.get(self.account_url.clone())).await?;
        if !status.is_success() {
            return Err(PlivoError::Rejected {
                status: status.as_u16(),
                message: self.without_credentials(&error_text(&bytes, status)),
            });
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// Sends `request` with Basic auth; Plivo's status and body.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), PlivoError> {
        let response = request
            .basic_auth(&self.auth_id, Some(self.auth_token.expose_secret()))
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        Ok((status, bytes.to_vec()))
    }

    /// `text` with the credentials redacted, however Plivo quotes the request.
    fn without_credentials(&self, text: &str) -> String {
        let token = self.auth_token.expose_secret();
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{token}", self.auth_id));
        scrub(text, &[(token, REDACTED), (basic.as_str(), REDACTED)])
    }

    async fn post<B: Serialize>(
        &self,
        endpoint: Endpoint,
        url: Url,
        body: &B,
    ) -> Result<Accepted, PlivoError> {
        let started = std::time::Instant::now();
        let result = self.post_inner(endpoint, url, body).await;
        let status = match &result {
            Ok(_) => "2xx".to_owned(),
            Err(PlivoError::Rejected { status, .. }) => status.to_string(),
            Err(PlivoError::Timeout(_)) => "timeout".to_owned(),
            Err(PlivoError::Unreachable) => "unreachable".to_owned(),
            Err(PlivoError::NotSent(_)) => "not_sent".to_owned(),
            Err(PlivoError::Interrupted) => "interrupted".to_owned(),
            Err(PlivoError::InvalidResponse(_)) => "invalid".to_owned(),
        };
        let endpoint = endpoint.label();
        metrics::histogram!("plivo2fa_plivo_request_duration_seconds", "endpoint" => endpoint, "status" => status.clone())
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("plivo2fa_plivo_errors_total", "endpoint" => endpoint, "status" => status).increment(1);
        }
        result
    }

    async fn post_inner<B: Serialize>(
        &self,
        endpoint: Endpoint,
        url: Url,
        body: &B,
    ) -> Result<Accepted, PlivoError> {
        let started = std::time::Instant::now();
        let (status, bytes) = self.send(self.http.post(url).json(body)).await?;
        tracing::debug!(
            http.status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plivo answered"
        );
        // The credentials never leave in an error text.
        read_answer(endpoint, status.as_u16(), &bytes).map_err(|e| match e {
            PlivoError::Rejected { status, message } => PlivoError::Rejected {
                status,
                message: self.without_credentials(&message),
            },
            PlivoError::InvalidResponse(text) => {
                PlivoError::InvalidResponse(self.without_credentials(&text))
            }
            other => other,
        })
    }

    /// A connection never made, or a request never built, is definite;
    /// anything after the request went out may have reached Plivo.
    fn transport_error(&self, e: &reqwest::Error) -> PlivoError {
        if e.is_builder() {
            PlivoError::NotSent("the request could not be built".to_owned())
        } else if e.is_connect() {
            tracing::warn!(error = %e, "plivo could not be reached");
            PlivoError::Unreachable
        } else if e.is_timeout() {
            PlivoError::Timeout(self.timeout)
        } else {
            tracing::warn!(error = %e, "plivo connection broke mid-request");
            PlivoError::Interrupted
        }
    }
}

/// Plivo's error text: `{"error": "…"}` or `{"error": {…}}`, else a short
/// printable prefix of the body, else the status's reason.
fn error_text(body: &[u8], status: reqwest::StatusCode) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| match v.get("error") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Object(o)) => Some(
                o.iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}: {s}"),
                        other => format!("{k}: {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        });
    let text = from_json.unwrap_or_else(|| {
        if status.is_success() {
            String::new()
        } else {
            let raw = String::from_utf8_lossy(body);
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('<') {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                trimmed.to_owned()
            }
        }
    });
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_RAW_ERROR_TEXT)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plivo_error_bodies_become_their_text() {
        let s = reqwest::StatusCode::BAD_REQUEST;
        assert_eq!(
            error_text(br#"{"api_id":"x","error":"src parameter not present"}"#, s),
            "src parameter not present"
        );
        assert_eq!(
            error_text(br#"{"error":{"dst":"invalid"}}"#, s),
            "dst: invalid"
        );
        assert_eq!(
            error_text(
                b"Could not verify your access level",
                reqwest::StatusCode::UNAUTHORIZED
            ),
            "Could not verify your access level"
        );
        assert_eq!(
            error_text(b"<html>oops</html>", reqwest::StatusCode::BAD_GATEWAY),
            "Bad Gateway"
        );
        assert_eq!(error_text(b"{}", reqwest::StatusCode::OK), "");
    }

    /// What each fixture must read as: the status Plivo answers it with, and
    /// the id (`Ok`) or the words of the refusal (`Err`).
    const FIXTURES: &[(&str, Endpoint, u16, Result<&str, &str>)] = &[
        (
            "message-create.json",
            Endpoint::Message,
            202,
            Ok("5b40a428-bfc7-4daf-9d06-726c558bf3b8"),
        ),
        (
            "call-create.json",
            Endpoint::Call,
            201,
            Ok("9834029e-58b6-11e1-b8b7-a5bd0e4e126f"),
        ),
        (
            "phlo-run-documented.json",
            Endpoint::Phlo,
            201,
            Ok("7b6f8256-07c7-4d9a-bf2a-a2cd0f05d269"),
        ),
        (
            "phlo-run-with-name.json",
            Endpoint::Phlo,
            201,
            Ok("2e802f94-cc03-4e35-b4c8-5a0328544135"),
        ),
        (
            "phlo-run-sdk-fixture.json",
            Endpoint::Phlo,
            200,
            Ok("2e802f94-cc03-4e35-b4c8-5a0328544135"),
        ),
        (
            "error-400.json",
            Endpoint::Message,
            400,
            Err("src parameter not present"),
        ),
        (
            "error-401.json",
            Endpoint::Message,
            401,
            Err("Could not verify your access level"),
        ),
        (
            "error-401-text.txt",
            Endpoint::Call,
            401,
            Err("Could not verify your access level"),
        ),
        ("error-404.json", Endpoint::Phlo, 404, Err("PHLO not found")),
        (
            "error-500.json",
            Endpoint::Message,
            500,
            Err("Internal server error"),
        ),
        (
            "error-503.html",
            Endpoint::Call,
            503,
            Err("Service Unavailable"),
        ),
    ];

    #[test]
    fn every_plivo_fixture_reads_as_plivo_meant_it() {
        const ACCOUNT_FIXTURE: &str = "account-get.json";
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plivo");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name == "README.md" {
                continue;
            }
            if name == ACCOUNT_FIXTURE {
                // The account read at start-up: a body, not a create answer.
                let body = std::fs::read(dir.join(&name)).unwrap();
                let account: AccountAnswer = serde_json::from_slice(&body).unwrap();
                assert_eq!(account.auth_id.as_deref(), Some("MAXXXXXXXXXXXXXXXXXX"));
                assert_eq!(account.account_type.as_deref(), Some("standard"));
                assert_eq!(account.billing_mode.as_deref(), Some("prepaid"));
                continue;
            }
            let (_, endpoint, status, want) = FIXTURES
                .iter()
                .find(|(f, ..)| *f == name)
                .unwrap_or_else(|| panic!("{name}: add it to FIXTURES with what it must read as"));
            let body = std::fs::read(dir.join(&name)).unwrap();
            let got = read_answer(*endpoint, *status, &body);
            match (want, got) {
                (Ok(id), Ok(accepted)) => {
                    assert_eq!(accepted.provider_id.as_deref(), Some(*id), "{name}")
                }
                (Err(text), Err(PlivoError::Rejected { status: s, message })) => {
                    assert_eq!(s, *status, "{name}");
                    assert!(message.contains(text), "{name}: {message}");
                }
                (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
            }
            seen += 1;
        }
        assert_eq!(
            seen,
            FIXTURES.len(),
            "a fixture in FIXTURES is missing from {dir:?}"
        );
    }

    #[test]
    fn a_2xx_missing_its_id_is_still_accepted_and_an_unreadable_one_is_ambiguous() {
        for endpoint in [Endpoint::Message, Endpoint::Call] {
            assert_eq!(
                read_answer(endpoint, 202, br#"{"api_id":"a","message":"queued"}"#),
                Ok(Accepted { provider_id: None })
            );
        }
        assert_eq!(
            read_answer(Endpoint::Phlo, 201, br#"{"api_id":"run-1"}"#),
            Ok(Accepted {
                provider_id: Some("run-1".into())
            })
        );
        assert_eq!(
            read_answer(Endpoint::Message, 202, br#"{"message_uuid":"one"}"#),
            Ok(Accepted {
                provider_id: Some("one".into())
            })
        );
        for body in [
            &b"<html>ok</html>"[..],
            b"",
            b"[1,2]",
            br#"{"error":"busy"}"#,
        ] {
            let e = read_answer(Endpoint::Message, 200, body);
            match e {
                Ok(Accepted { provider_id: None }) => {}
                Err(e) => assert!(e.is_ambiguous(), "{body:?}: {e:?}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
        assert!(
            read_answer(Endpoint::Message, 200, b"<html>")
                .unwrap_err()
                .is_ambiguous()
        );
    }

    #[test]
    fn only_a_refusal_or_no_connection_is_definite() {
        assert!(
            !PlivoError::Rejected {
                status: 500,
                message: String::new()
            }
            .is_ambiguous()
        );
        assert!(!PlivoError::Unreachable.is_ambiguous());
        assert!(!PlivoError::NotSent("x".into()).is_ambiguous());
        assert!(PlivoError::Timeout(Duration::from_secs(1)).is_ambiguous());
        assert!(PlivoError::Interrupted.is_ambiguous());
        assert!(PlivoError::InvalidResponse("x".into()).is_ambiguous());
    }

    #[test]
    fn redaction_removes_every_secret_before_the_text_is_cut() {
        let long = format!(
            "{} dst=+14155550100 text=123456 is your code",
            "x".repeat(290)
        );
        let e = PlivoError::Rejected {
            status: 400,
            message: long,
        }
        .redact(&[
            ("+14155550100", "+1415***0100"),
            ("14155550100", "+1415***0100"),
            ("123456", "[code]"),
        ]);
        let PlivoError::Rejected { message, .. } = e else {
            unreachable!()
        };
        assert!(
            !message.contains("14155550100") && !message.contains("123456"),
            "{message}"
        );
        assert!(message.chars().count() <= MAX_ERROR_TEXT);
        // A code inside the number is not left half-redacted.
        assert_eq!(
            scrub(
                "to 14155550100",
                &[("5550", "[code]"), ("14155550100", "N")]
            ),
            "to N"
        );
    }
}
