//! The Plivo REST client: one `reqwest::Client` built at start-up (connection
//! pool, rustls, connect and request timeouts) and Basic auth on every request.
//! The sandbox and production share every line of it; only the base URLs differ.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

/// Longest Plivo error text passed on to API clients.
const MAX_ERROR_TEXT: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlivoError {
    /// Plivo answered with an error status (its own text, when it gave one).
    #[error("Plivo answered {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("Plivo did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Plivo could not be reached")]
    Unreachable,
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
            PlivoError::InvalidResponse(_) => "Plivo's answer could not be understood.".to_owned(),
        }
    }
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

/// Body of `POST /v1/Account/{auth_id}/Message/`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageRequest {
    pub src: String,
    pub dst: String,
    pub text: String,
    pub url: String,
    pub method: String,
    /// `false`: Plivo keeps neither the text (the code) nor the full number in its logs.
    pub log: bool,
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

#[derive(Debug, Deserialize)]
struct MessageResponse {
    message_uuid: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct CallResponse {
    request_uuid: String,
}

#[derive(Debug, Deserialize)]
struct PhloRunResponse {
    phlo_run_id: String,
}

#[derive(Clone)]
pub struct PlivoClient {
    http: reqwest::Client,
    auth_id: String,
    auth_token: SecretString,
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
            message_url: join(&config.api_base_url, &format!("{account}Message/"))?,
            call_url: join(&config.api_base_url, &format!("{account}Call/"))?,
            phlo_base_url: config.phlo_base_url,
            auth_id: config.auth_id,
            auth_token: config.auth_token,
            timeout: config.timeout,
        })
    }

    /// Sends an SMS; returns Plivo's message_uuid.
    #[tracing::instrument(skip_all, fields(plivo.endpoint = "message"))]
    pub async fn send_message(&self, request: &MessageRequest) -> Result<String, PlivoError> {
        let response: MessageResponse = self
            .post("message", self.message_url.clone(), request)
            .await?;
        response
            .message_uuid
            .into_iter()
            .next()
            .ok_or_else(|| PlivoError::InvalidResponse("no message_uuid".into()))
    }

    /// Places a call; returns Plivo's request_uuid.
    #[tracing::instrument(skip_all, fields(plivo.endpoint = "call"))]
    pub async fn make_call(&self, request: &CallRequest) -> Result<String, PlivoError> {
        let response: CallResponse = self.post("call", self.call_url.clone(), request).await?;
        Ok(response.request_uuid)
    }

    /// Runs a PHLO; returns its phlo_run_id.
    #[tracing::instrument(skip_all, fields(plivo.endpoint = "phlo"))]
    pub async fn run_phlo(
        &self,
        phlo_id: &str,
        request: &PhloRunRequest,
    ) -> Result<String, PlivoError> {
        let url = join(
            &self.phlo_base_url,
            &format!("v1/account/{}/phlo/{phlo_id}", self.auth_id),
        )
        .map_err(PlivoError::InvalidResponse)?;
        let response: PhloRunResponse = self.post("phlo", url, request).await?;
        Ok(response.phlo_run_id)
    }

    async fn post<B: Serialize, R: for<'de> Deserialize<'de>>(
        &self,
        endpoint: &'static str,
        url: Url,
        body: &B,
    ) -> Result<R, PlivoError> {
        let started = std::time::Instant::now();
        let result = self.post_inner(url, body).await;
        let status = match &result {
            Ok(_) => "2xx".to_owned(),
            Err(PlivoError::Rejected { status, .. }) => status.to_string(),
            Err(PlivoError::Timeout(_)) => "timeout".to_owned(),
            Err(PlivoError::Unreachable) => "unreachable".to_owned(),
            Err(PlivoError::InvalidResponse(_)) => "invalid".to_owned(),
        };
        metrics::histogram!("plivo2fa_plivo_request_duration_seconds", "endpoint" => endpoint, "status" => status.clone())
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("plivo2fa_plivo_errors_total", "endpoint" => endpoint, "status" => status).increment(1);
        }
        result
    }

    async fn post_inner<B: Serialize, R: for<'de> Deserialize<'de>>(
        &self,
        url: Url,
        body: &B,
    ) -> Result<R, PlivoError> {
        let started = std::time::Instant::now();
        let response = self
            .http
            .post(url)
            .basic_auth(&self.auth_id, Some(self.auth_token.expose_secret()))
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        tracing::debug!(
            http.status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plivo answered"
        );
        if !status.is_success() {
            return Err(PlivoError::Rejected {
                status: status.as_u16(),
                message: error_text(&bytes, status),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            // A 2xx whose body says {"error": …} is still an error.
            let text = error_text(&bytes, status);
            if text.is_empty() {
                PlivoError::InvalidResponse(e.to_string())
            } else {
                PlivoError::Rejected {
                    status: status.as_u16(),
                    message: text,
                }
            }
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> PlivoError {
        if e.is_timeout() {
            PlivoError::Timeout(self.timeout)
        } else {
            tracing::warn!(error = %e, "plivo request failed");
            PlivoError::Unreachable
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
        .take(MAX_ERROR_TEXT)
        .collect()
}

#[cfg(test)]
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
}
