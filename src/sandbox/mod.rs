//! The sandbox: a Plivo-compatible HTTP server on a loopback port that the
//! ordinary Plivo client talks to when no credentials are configured, so the
//! sandbox and production share every line of client code. It checks Basic auth
//! and request shape like Plivo, records what it delivered, and fails on
//! purpose for the documented test numbers.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::SecretString;
use serde::Serialize;
use url::Url;

mod api;
pub mod call;
pub mod numbers;
pub mod phlo;
mod receipts;

/// A message the simulator accepted, with the Message fields it was sent with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SandboxMessage {
    pub to: String,
    pub from: String,
    pub text: String,
    pub message_uuid: String,
    pub status: String,
    /// Set when a Powerpack chose the sender (`from` is then the pool's number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub powerpack_uuid: Option<String>,
    /// Seconds Plivo may keep it queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expiry: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlt_entity_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlt_template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlt_template_category: Option<String>,
    /// Plivo's `log` as sent (`"false"` keeps the text and number out of Plivo's logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// A PHLO run the simulator accepted, with the payload as it arrived.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxPhloRun {
    pub phlo_id: String,
    pub phlo_run_id: String,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// A call the simulator placed, with everything it heard.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxCall {
    pub to: String,
    pub from: String,
    pub call_uuid: String,
    pub request_uuid: String,
    /// The first XML document the answer URL returned.
    pub answer_xml: String,
    /// Every utterance, in order, one per line.
    #[serde(serialize_with = "lines")]
    pub spoken: Vec<String>,
    /// The keys the simulated callee pressed.
    pub digits: String,
    /// queued, in-progress, completed or no-answer.
    pub status: String,
}

fn lines<S: serde::Serializer>(spoken: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&spoken.join("\n"))
}

/// What the simulator has delivered, shared with the main server's `/sandbox/*` routes.
#[derive(Debug)]
pub struct SandboxState {
    auth_id: String,
    auth_token: SecretString,
    messages: Mutex<VecDeque<SandboxMessage>>,
    phlo_runs: Mutex<VecDeque<SandboxPhloRun>>,
    calls: Mutex<VecDeque<SandboxCall>>,
    /// For the simulator's own callbacks to the server.
    http: reqwest::Client,
    /// The server's PUBLIC_BASE_URL without a trailing slash (PHLO callbacks).
    public_base: String,
}

/// Records kept per list, so a long-running sandbox does not grow without bound.
const MAX_RECORDS: usize = 1_000;

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Appends, dropping the oldest record once the list is full (in O(1): under
/// load the simulator records thousands of messages a second).
fn push_bounded<T>(list: &Mutex<VecDeque<T>>, item: T) {
    let mut list = locked(list);
    if list.len() >= MAX_RECORDS {
        list.pop_front();
    }
    list.push_back(item);
}

fn snapshot<T: Clone>(list: &Mutex<VecDeque<T>>) -> Vec<T> {
    locked(list).iter().cloned().collect()
}

impl SandboxState {
    pub fn messages(&self) -> Vec<SandboxMessage> {
        snapshot(&self.messages)
    }

    pub fn phlo_runs(&self) -> Vec<SandboxPhloRun> {
        snapshot(&self.phlo_runs)
    }

    pub fn calls(&self) -> Vec<SandboxCall> {
        snapshot(&self.calls)
    }

    fn record_call(&self, call: SandboxCall) {
        push_bounded(&self.calls, call);
    }

    fn update_call(&self, request_uuid: &str, change: impl FnOnce(&mut SandboxCall)) {
        if let Some(call) = locked(&self.calls)
            .iter_mut()
            .rev()
            .find(|c| c.request_uuid == request_uuid)
        {
            change(call);
        }
    }

    /// POSTs a form to the server, V3-signed with the sandbox's auth token like Plivo does.
    async fn post_signed(&self, url: &str, params: &[(String, String)]) -> Result<String, String> {
        use secrecy::ExposeSecret;
        let nonce: String = (0..20)
            .map(|_| char::from(b'0' + (OsRng.next_u32() % 10) as u8))
            .collect();
        let signature = crate::plivo::signature::sign_v3(
            self.auth_token.expose_secret().as_bytes(),
            crate::plivo::signature::Method::Post,
            url,
            params,
            &nonce,
        )
        .map_err(|e| e.to_string())?;
        let body = serde_urlencoded::to_string(params).map_err(|e| e.to_string())?;
        let response = self
            .http
            .post(url)
            .header(crate::plivo::signature::V3_HEADER, signature)
            .header(crate::plivo::signature::V3_NONCE_HEADER, nonce)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("User-Agent", "PlivoHTTP/1.0 (plivo-2fa sandbox)")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("{url} answered {status}"))
        }
    }

    fn update_message(&self, uuid: &str, status: &str) {
        if let Some(m) = locked(&self.messages)
            .iter_mut()
            .rev()
            .find(|m| m.message_uuid == uuid)
        {
            status.clone_into(&mut m.status);
        }
    }

    fn record_message(&self, message: SandboxMessage) {
        push_bounded(&self.messages, message);
    }

    fn record_phlo_run(&self, run: SandboxPhloRun) {
        push_bounded(&self.phlo_runs, run);
    }
}

/// The running simulator.
#[derive(Debug)]
pub struct Simulator {
    pub base_url: Url,
    pub auth_id: String,
    pub auth_token: SecretString,
    pub state: Arc<SandboxState>,
    handle: ServerHandle,
}

impl Simulator {
    /// Starts the simulator on a free loopback port with fresh random credentials.
    pub fn start(public_base: &str) -> std::io::Result<Self> {
        let auth_id = format!("MA{}", random_hex(9).to_ascii_uppercase());
        let auth_token = SecretString::from(random_hex(20));
        let state = Arc::new(SandboxState {
            auth_id: auth_id.clone(),
            auth_token: auth_token.clone(),
            messages: Mutex::new(VecDeque::new()),
            phlo_runs: Mutex::new(VecDeque::new()),
            calls: Mutex::new(VecDeque::new()),
            public_base: public_base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| std::io::Error::other(e.to_string()))?,
        });
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(64 * 1024)
                        .error_handler(api::json_error),
                )
                .configure(api::configure)
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        let base_url = Url::parse(&format!("http://127.0.0.1:{port}/"))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        tracing::info!(sandbox.url = %base_url, "Plivo sandbox simulator listening");
        Ok(Self {
            base_url,
            auth_id,
            auth_token,
            state,
            handle,
        })
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A random version-4 UUID in Plivo's lowercase hyphenated form.
pub(crate) fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
