//! What the simulator keeps and shares: the records of what it delivered
//! (shown at `/sandbox/*`), its credentials, and its way of calling the
//! server back as Plivo does (V3-signed form posts). Every other part of the
//! sandbox builds on this one; it uses none of them.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::SecretString;
use serde::Serialize;

/// A message the simulator accepted, with the Message fields it was sent with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SandboxMessage {
    pub to: String,
    pub from: String,
    /// For a WhatsApp template, the text WhatsApp shows with the code.
    pub text: String,
    /// Plivo's message `type`: `sms` or `whatsapp`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A WhatsApp message's template, as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<serde_json::Value>,
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
    pub(super) auth_id: String,
    pub(super) auth_token: SecretString,
    messages: Mutex<VecDeque<SandboxMessage>>,
    phlo_runs: Mutex<VecDeque<SandboxPhloRun>>,
    calls: Mutex<VecDeque<SandboxCall>>,
    /// For the simulator's own callbacks to the server.
    http: reqwest::Client,
    /// At most [`MAX_CALLBACKS_IN_FLIGHT`] callbacks on their way at once,
    /// and [`MAX_CALLBACKS_WAITING`] waiting their turn.
    turns: Turns,
    /// The server's PUBLIC_BASE_URL without a trailing slash (PHLO callbacks).
    pub(super) public_base: String,
}

/// Records kept per list, so a long-running sandbox does not grow without bound.
const MAX_RECORDS: usize = 1_000;

/// Callbacks the simulator has on their way to the server at once; the rest
/// wait their turn. Under a burst of sends, every callback at once would be
/// a connection each (and its buffers, on both sides), past the server's
/// per-address limit; in turn, they reuse a few.
const MAX_CALLBACKS_IN_FLIGHT: usize = 32;

/// Callbacks waiting their turn at most: past it a callback is dropped (and
/// logged), as a receipt can be lost on the way from Plivo, so a burst of
/// sends cannot make the simulator hold callbacks without bound.
const MAX_CALLBACKS_WAITING: usize = 4_096;

/// Turns to send a callback: `in_flight` at once, `max_waiting` in line.
#[derive(Debug)]
struct Turns {
    in_flight: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
}

impl Turns {
    fn new(in_flight: usize, max_waiting: usize) -> Self {
        Self {
            in_flight: tokio::sync::Semaphore::new(in_flight),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// A turn, once one is free; an error when the line is full.
    async fn take(&self) -> Result<tokio::sync::SemaphorePermit<'_>, String> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.in_flight.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "{} callbacks are already waiting their turn; this one is dropped",
                self.max_waiting
            ));
        }
        // Out of the line however the wait ends (a permit, or the task dropped).
        struct InLine<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for InLine<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _in_line = InLine(&self.waiting);
        // Never closed, so a permit always comes.
        self.in_flight.acquire().await.map_err(|e| e.to_string())
    }
}

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
    /// Empty lists, these credentials, and `public_base` to call back.
    pub(super) fn new(
        auth_id: String,
        auth_token: SecretString,
        public_base: &str,
    ) -> std::io::Result<Self> {
        Ok(Self {
            auth_id,
            auth_token,
            messages: Mutex::new(VecDeque::new()),
            phlo_runs: Mutex::new(VecDeque::new()),
            calls: Mutex::new(VecDeque::new()),
            public_base: public_base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| std::io::Error::other(e.to_string()))?,
            turns: Turns::new(MAX_CALLBACKS_IN_FLIGHT, MAX_CALLBACKS_WAITING),
        })
    }

    pub fn messages(&self) -> Vec<SandboxMessage> {
        snapshot(&self.messages)
    }

    pub fn phlo_runs(&self) -> Vec<SandboxPhloRun> {
        snapshot(&self.phlo_runs)
    }

    pub fn calls(&self) -> Vec<SandboxCall> {
        snapshot(&self.calls)
    }

    pub(super) fn record_call(&self, call: SandboxCall) {
        push_bounded(&self.calls, call);
    }

    pub(super) fn update_call(&self, request_uuid: &str, change: impl FnOnce(&mut SandboxCall)) {
        if let Some(call) = locked(&self.calls)
            .iter_mut()
            .rev()
            .find(|c| c.request_uuid == request_uuid)
        {
            change(call);
        }
    }

    /// POSTs a form to the server, V3-signed with the sandbox's auth token like Plivo does.
    pub(super) async fn post_signed(
        &self,
        url: &str,
        params: &[(String, String)],
    ) -> Result<String, String> {
        let _turn = self.turn().await?;
        self.post_signed_now(url, params).await
    }

    /// [`SandboxState::post_signed`] with the form built once its turn has
    /// come, so a callback waiting its turn holds nothing but what builds it.
    pub(super) async fn post_signed_when_due(
        &self,
        url: &str,
        params: impl FnOnce() -> Vec<(String, String)>,
    ) -> Result<String, String> {
        let _turn = self.turn().await?;
        // Boxed: the request's state is allocated only once it is sent.
        Box::pin(self.post_signed_now(url, &params())).await
    }

    /// One of the [`MAX_CALLBACKS_IN_FLIGHT`] turns.
    async fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, String> {
        self.turns.take().await
    }

    async fn post_signed_now(
        &self,
        url: &str,
        params: &[(String, String)],
    ) -> Result<String, String> {
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

    pub(super) fn update_message(&self, uuid: &str, status: &str) {
        if let Some(m) = locked(&self.messages)
            .iter_mut()
            .rev()
            .find(|m| m.message_uuid == uuid)
        {
            status.clone_into(&mut m.status);
        }
    }

    pub(super) fn record_message(&self, message: SandboxMessage) {
        push_bounded(&self.messages, message);
    }

    pub(super) fn record_phlo_run(&self, run: SandboxPhloRun) {
        push_bounded(&self.phlo_runs, run);
    }
}

/// Plivo's timestamp form, `2026-11-25 19:45:12`.
pub(crate) fn now_text() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Turns;

    #[tokio::test]
    async fn callbacks_past_the_line_are_refused_and_the_line_moves_on() {
        let turns = std::sync::Arc::new(Turns::new(1, 2));
        let first = turns.take().await.unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let turns = turns.clone();
                tokio::spawn(async move { turns.take().await.map(drop) })
            })
            .collect();
        while turns.waiting.load(std::sync::atomic::Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        let refused = turns.take().await.unwrap_err();
        assert!(
            refused.contains("2 callbacks are already waiting"),
            "{refused}"
        );
        drop(first);
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        // The line is empty again: a new callback gets its turn.
        assert!(turns.take().await.is_ok());
        assert_eq!(turns.waiting.load(std::sync::atomic::Ordering::Acquire), 0);
    }
}
