//! Shared test harness: spawns the real App on port 0 (real actix, real HTTP,
//! real Redis from `scripts/test.sh`, the sandbox simulator or wiremock for
//! Plivo) with an injectable clock.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use plivo_2fa::config::Settings;
use plivo_2fa::domain::{ManualClock, Timestamp};
use plivo_2fa::startup::Application;
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

pub const API_KEY: &str = "test-api-key-0123456789";
pub const OTP_SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// The Redis started by `scripts/test.sh`.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .expect("TEST_REDIS_URL is unset: run the tests with ./scripts/test.sh, which starts Redis")
}

/// A connection to the Redis started by `scripts/test.sh`, for a test that
/// reads or writes its keys directly.
pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The 3-master Redis Cluster started by `scripts/test.sh`.
pub fn redis_cluster_url() -> String {
    std::env::var("TEST_REDIS_CLUSTER_URL").expect(
        "TEST_REDIS_CLUSTER_URL is unset: run the tests with ./scripts/test.sh, which starts a Redis Cluster",
    )
}

/// A key prefix no other test uses, so tests share one Redis without meeting.
pub fn unique_prefix() -> String {
    format!("test{}", rand::rngs::OsRng.r#gen::<u64>())
}

/// A valid US number no other test is likely to use.
pub fn random_number() -> String {
    let mut rng = rand::rngs::OsRng;
    format!(
        "+1415{}{:06}",
        rng.gen_range(2..=9),
        rng.gen_range(0..1_000_000)
    )
}

pub struct TestApp {
    /// The use cases behind the routes, for tests that drive them in process.
    pub use_cases: plivo_2fa::routes::UseCases,
    pub apps: Arc<plivo_2fa::apps::Apps>,
    pub base: String,
    pub api_key: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    /// Where `/metrics` is served apart from the app, with `METRICS_ADDR`.
    pub metrics_base: Option<String>,
}

/// Sandbox mode on real Redis, with `extra` settings on top.
pub async fn spawn_app(extra: &[(&str, &str)]) -> TestApp {
    spawn_app_under(&unique_prefix(), extra).await
}

/// As [`spawn_app`], with its keys under `prefix`, for a test that reads them.
pub async fn spawn_app_under(prefix: &str, extra: &[(&str, &str)]) -> TestApp {
    let redis = redis_url();
    let mut vars = vec![
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix),
        ("API_KEYS", API_KEY),
    ];
    vars.extend_from_slice(extra);
    spawn_with(&vars).await
}

/// Exactly these settings (nothing added).
pub async fn spawn_with(vars: &[(&str, &str)]) -> TestApp {
    try_spawn_with(vars).await.expect("the app starts")
}

pub async fn try_spawn_with(
    vars: &[(&str, &str)],
) -> Result<TestApp, plivo_2fa::startup::StartupError> {
    try_spawn_with_tables(vars, &[]).await
}

/// These top-level settings and these `[applications.<id>]` tables.
pub async fn try_spawn_with_tables(
    vars: &[(&str, &str)],
    tables: &[plivo_2fa::config::Table],
) -> Result<TestApp, plivo_2fa::startup::StartupError> {
    launch(Settings::from_sources(&map_of(vars), tables)?).await
}

/// These top-level settings over a `--config` file holding `toml`, read as
/// the server reads its file.
pub async fn try_spawn_with_config(
    vars: &[(&str, &str)],
    toml: &str,
) -> Result<TestApp, plivo_2fa::startup::StartupError> {
    let path = std::env::temp_dir().join(format!("p2fa-config-{}.toml", unique_prefix()));
    std::fs::write(&path, toml).unwrap();
    let settings = Settings::from_file_under(Some(&path), map_of(vars));
    std::fs::remove_file(&path).unwrap();
    launch(settings?).await
}

/// The settings as given, with start-up's credentials check (an account
/// read, which would be one more request in every wiremock Plivo's log)
/// off unless a test turns it on.
fn map_of(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    map.entry("PLIVO_CHECK_CREDENTIALS".to_owned())
        .or_insert_with(|| "off".to_owned());
    map
}

async fn launch(settings: Settings) -> Result<TestApp, plivo_2fa::startup::StartupError> {
    let clock = Arc::new(ManualClock::starting_now());
    let app = Application::build(settings, clock.clone()).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let metrics_base = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let api_key = app
        .generated_api_key
        .as_ref()
        .map(|k| k.expose_secret().to_owned())
        .unwrap_or_else(|| API_KEY.to_owned());
    let use_cases = app.use_cases();
    let apps = app.apps();
    tokio::spawn(app.run_until_stopped());
    Ok(TestApp {
        use_cases,
        apps,
        base,
        api_key,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        clock,
        metrics_base,
    })
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// An `[applications.<id>]` table of these settings.
pub fn table(id: &str, settings: &[(&str, &str)]) -> plivo_2fa::config::Table {
    plivo_2fa::config::Table {
        id: plivo_2fa::domain::ApplicationId::parse(id).expect("an application id"),
        values: settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

impl TestApp {
    /// The same server, reached with another API key.
    pub fn with_key(&self, key: &str) -> TestApp {
        TestApp {
            use_cases: self.use_cases.clone(),
            apps: Arc::clone(&self.apps),
            base: self.base.clone(),
            api_key: key.to_owned(),
            http: self.http.clone(),
            clock: Arc::clone(&self.clock),
            metrics_base: self.metrics_base.clone(),
        }
    }

    /// The default application (the top-level settings').
    pub fn default_app(&self) -> Arc<plivo_2fa::apps::App> {
        Arc::clone(self.apps.default_app().expect("a default application"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        Self::reply(resp).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap();
        Self::reply(resp).await
    }

    pub async fn reply(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn start(&self, to: &str, channel: &str) -> Reply {
        self.post_json("/v1/verifications", json!({"to": to, "channel": channel}))
            .await
    }

    pub async fn check(&self, to: &str, code: &str) -> Reply {
        self.post_json("/v1/verifications/check", json!({"to": to, "code": code}))
            .await
    }

    /// What the sandbox delivered, newest last.
    pub async fn sandbox_messages(&self) -> Vec<Value> {
        let resp = self
            .http
            .get(self.url("/sandbox/messages"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<Vec<Value>>().await.unwrap()
    }

    /// The PHLO runs the sandbox accepted, newest last.
    pub async fn sandbox_phlo_runs(&self) -> Vec<Value> {
        let resp = self
            .http
            .get(self.url("/sandbox/phlo-runs"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<Vec<Value>>().await.unwrap()
    }

    /// The code in the newest SMS the sandbox delivered to `to`.
    pub async fn last_sms_code(&self, to: &str) -> String {
        let messages = self.sandbox_messages().await;
        let text = messages
            .iter()
            .rev()
            .find(|m| m["to"] == to)
            .and_then(|m| m["text"].as_str())
            .unwrap_or_else(|| panic!("no SMS to {to} in {messages:?}"))
            .to_owned();
        code_in(&text)
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub fn now(&self) -> Timestamp {
        plivo_2fa::domain::Clock::now(self.clock.as_ref())
    }
}

/// The first fenced block of `lang` after README's heading `heading`.
pub fn readme_block(heading: &str, lang: &str) -> &'static str {
    let readme = include_str!("../../README.md");
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has {heading:?}"))
        .1;
    section
        .split_once(&format!("```{lang}\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("{heading:?} has a {lang} block"))
        .0
}

/// The JSON bodies a mock server received, in order.
pub async fn received_json(server: &wiremock::MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// The first run of 4 to 10 digits in a message.
pub fn code_in(text: &str) -> String {
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else if (4..=10).contains(&run.len()) {
            return run;
        } else {
            run.clear();
        }
    }
    assert!((4..=10).contains(&run.len()), "no code in {text:?}");
    run
}

/// A wrong code of the same length as `code`.
pub fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| char::from(b'0' + (c as u8 - b'0' + 1) % 10))
        .collect()
}

impl TestApp {
    /// Calls the sandbox placed, newest last.
    pub async fn sandbox_calls(&self) -> Vec<Value> {
        let resp = self
            .http
            .get(self.url("/sandbox/calls"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json::<Vec<Value>>().await.unwrap()
    }

    /// Waits (bounded) until the sandbox's call to `to` has ended, and returns it.
    pub async fn finished_call(&self, to: &str) -> Value {
        for _ in 0..200 {
            let calls = self.sandbox_calls().await;
            if let Some(call) = calls.iter().rev().find(|c| c["to"] == to)
                && (call["status"] == "completed" || call["status"] == "no-answer")
            {
                return call.clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the sandbox call to {to} did not end: {:?}",
            self.sandbox_calls().await
        );
    }

    /// The code the sandbox's call to `to` read out (`digits` long), once the call ended.
    pub async fn spoken_code(&self, to: &str, digits: usize) -> String {
        let call = self.finished_call(to).await;
        call["spoken"]
            .as_str()
            .unwrap()
            .lines()
            .map(spoken_digits)
            .find(|d| d.len() == digits)
            .unwrap_or_else(|| panic!("no {digits}-digit code in {call}"))
    }

    /// Moves the clock to a second before `wait` is over and finds no call
    /// placed (`before` says whose wait), then past it and waits (bounded)
    /// for verification `id`'s completed fallback call, which it returns.
    pub async fn fallback_call_after(&self, id: &str, wait: Duration, before: &str) -> Value {
        self.advance(wait - Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(self.sandbox_calls().await.is_empty(), "{before}");
        self.advance(Duration::from_secs(1));
        self.wait_for_completed_call(id).await
    }

    /// Waits (bounded) until verification `id` has a completed voice delivery
    /// (a call, or the fallback call after an SMS), and returns it.
    pub async fn wait_for_completed_call(&self, id: &str) -> Value {
        self.wait_for(id, |v| {
            v["deliveries"].as_array().is_some_and(|d| {
                d.iter()
                    .any(|d| d["channel"] == "voice" && d["status"] == "completed")
            })
        })
        .await
    }

    /// The `/metrics` scrape.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits (bounded) until `check` holds for the verification `id`.
    pub async fn wait_for(&self, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let v = self.get(&format!("/v1/verifications/{id}")).await.body;
            if check(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "verification {id} never reached the expected state: {:?}",
            self.get(&format!("/v1/verifications/{id}")).await.body
        );
    }

    /// POSTs a form signed with `token` for `signed_url` (which may differ from where it is sent).
    pub async fn post_signed(
        &self,
        send_to: &str,
        signed_url: &str,
        token: &str,
        nonce: &str,
        params: &[(&str, &str)],
    ) -> reqwest::Response {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let signature = plivo_2fa::plivo::signature::sign_v3(
            token.as_bytes(),
            plivo_2fa::plivo::signature::Method::Post,
            signed_url,
            &params,
            nonce,
        )
        .unwrap();
        self.http
            .post(send_to)
            .header("X-Plivo-Signature-V3", signature)
            .header("X-Plivo-Signature-V3-Nonce", nonce)
            .form(&params)
            .send()
            .await
            .unwrap()
    }
}

/// Every log line written after [`capture_logs`], at TRACE for every crate.
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Installs this process's log subscriber (nextest runs each test in a
/// process of its own) writing every line, at TRACE, into the returned buffer.
pub fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .init();
    captured
}

/// A fresh nonce, as Plivo sends: 20 digits.
pub fn nonce() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// The digits read out in a transcript, in order (one utterance's digits at a time).
pub fn spoken_digits(utterance: &str) -> String {
    utterance.chars().filter(char::is_ascii_digit).collect()
}

/// A redis-server of a test's own, to stop, kill and restart under the server.
pub struct RedisProcess {
    child: std::process::Child,
    pub port: u16,
    dir: std::path::PathBuf,
    args: Vec<String>,
}

impl RedisProcess {
    /// Persistent (append-only file, fsync on every write), so a restart keeps
    /// what was written, as the deployment docs recommend.
    pub fn start() -> Self {
        Self::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// With these arguments on top of the port, loopback and no RDB snapshots.
    pub fn start_with(args: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port, args)
    }

    /// A persistent Redis Cluster node, not yet in a cluster: its port leaves
    /// room for the cluster bus (port + 10000), which must be free too.
    pub fn start_cluster_node() -> Self {
        let mut rng = rand::rngs::OsRng;
        let port = loop {
            let port = rng.gen_range(20_000..50_000u16);
            let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
            if free(port) && free(port + 10_000) {
                break port;
            }
        };
        Self::start_on(
            port,
            &[
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "10000",
            ],
        )
    }

    fn start_on(port: u16, args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("p2fa-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let child = Self::spawn(port, &dir, &args);
        Self {
            child,
            port,
            dir,
            args,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(port: u16, dir: &std::path::Path, args: &[String]) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(args)
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed by scripts/test.sh");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts it again on the same port and directory; returns once it accepts connections.
    pub fn restart(&mut self) {
        self.child = Self::spawn(self.port, &self.dir, &self.args);
    }

    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A verification's deliveries, as its JSON view lists them.
pub fn deliveries(v: &Value) -> Vec<Value> {
    v["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Whether the verification has a delivery on `channel` with `status`.
pub fn has(v: &Value, channel: &str, status: &str) -> bool {
    deliveries(v)
        .iter()
        .any(|d| d["channel"] == channel && d["status"] == status)
}
