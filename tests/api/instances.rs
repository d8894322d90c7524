//! Several server processes on one Redis: a verification started on one is
//! checked on another, callbacks reach either, the fallback fires exactly once,
//! and a scheduled fallback survives the process that scheduled it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{API_KEY, OTP_SECRET, random_number};
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const AUTH_ID: &str = "MAZDQ1ZJIYMDRKNMFHOT";
const AUTH_TOKEN: &str = "instances-token";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn server(redis: &str, prefix: &str, plivo: &str, extra: &[(&str, &str)]) -> Server {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/xml-templates");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plivo-2fa"));
    cmd.env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("PUBLIC_BASE_URL", &base)
        .env("REDIS_URL", redis)
        .env("REDIS_KEY_PREFIX", prefix)
        .env("API_KEYS", API_KEY)
        .env("OTP_SECRET", OTP_SECRET)
        .env("PLIVO_AUTH_ID", AUTH_ID)
        .env("PLIVO_AUTH_TOKEN", AUTH_TOKEN)
        .env("PLIVO_FROM_NUMBER", "+14155550199")
        .env("PLIVO_API_BASE_URL", plivo)
        .env("XML_TEMPLATES_DIR", templates)
        .env("SCHEDULER_POLL_MS", "10")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let server = Server { child, base };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await
            && r.status() == 200
        {
            return server;
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn plivo() -> MockServer {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/Message/$"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"message_uuid": ["m-1"]})))
        .mount(&plivo)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/Call/$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"request_uuid": "r-1"})))
        .mount(&plivo)
        .await;
    plivo
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn calls(plivo: &MockServer) -> Vec<Value> {
    plivo
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/Call/"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn wait_for_calls(plivo: &MockServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while calls(plivo).await.len() < n {
        assert!(Instant::now() < deadline, "no fallback call was placed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn two_processes_share_verifications_and_callbacks() {
    let (redis, prefix, plivo) = (
        crate::common::redis_url(),
        crate::common::unique_prefix(),
        plivo().await,
    );
    let a = server(&redis, &prefix, &plivo.uri(), &[("FALLBACK", "false")]).await;
    let b = server(&redis, &prefix, &plivo.uri(), &[("FALLBACK", "false")]).await;
    let to = random_number();
    let (status, v) = post(
        &a.base,
        "/v1/verifications",
        json!({"to": to, "channel": "sms"}),
    )
    .await;
    assert_eq!(status, 201);
    let id = v["id"].as_str().unwrap();
    let sent: Value =
        serde_json::from_slice(&plivo.received_requests().await.unwrap()[0].body).unwrap();
    let code = crate::common::code_in(sent["text"].as_str().unwrap());
    // The receipt reaches B, signed for B's public URL.
    let url = format!("{}/plivo/message-status/{id}", b.base);
    let params: Vec<(String, String)> = [
        ("MessageUUID", "m-1"),
        ("Status", "delivered"),
        ("Sequence", "3"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let nonce = crate::common::nonce();
    let signature = plivo_2fa::plivo::signature::sign_v3(
        AUTH_TOKEN.as_bytes(),
        plivo_2fa::plivo::signature::Method::Post,
        &url,
        &params,
        &nonce,
    )
    .unwrap();
    let r = reqwest::Client::new()
        .post(&url)
        .header("X-Plivo-Signature-V3", signature)
        .header("X-Plivo-Signature-V3-Nonce", &nonce)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The check happens on B; A sees the outcome.
    let (status, checked) = post(
        &b.base,
        "/v1/verifications/check",
        json!({"to": to, "code": code}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(checked["status"], "approved");
    assert_eq!(checked["deliveries"][0]["status"], "delivered");
    let got: Value = reqwest::Client::new()
        .get(format!("{}/v1/verifications/{id}", a.base))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "approved");
}

#[tokio::test]
async fn the_fallback_fires_exactly_once_across_two_processes() {
    let (redis, prefix, plivo) = (
        crate::common::redis_url(),
        crate::common::unique_prefix(),
        plivo().await,
    );
    let fast = [("FALLBACK_AFTER_SECS", "1")];
    let a = server(&redis, &prefix, &plivo.uri(), &fast).await;
    let _b = server(&redis, &prefix, &plivo.uri(), &fast).await;
    for _ in 0..3 {
        let (status, _) = post(
            &a.base,
            "/v1/verifications",
            json!({"to": random_number(), "channel": "sms"}),
        )
        .await;
        assert_eq!(status, 201);
    }
    wait_for_calls(&plivo, 3).await;
    // Both workers polled every 10 ms for a good while longer: still one call each.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let placed = calls(&plivo).await;
    assert_eq!(placed.len(), 3, "{placed:?}");
    let mut to: Vec<&str> = placed.iter().map(|c| c["to"].as_str().unwrap()).collect();
    to.sort_unstable();
    to.dedup();
    assert_eq!(to.len(), 3);
}

#[tokio::test]
async fn a_scheduled_fallback_survives_the_process_that_scheduled_it() {
    let (redis, prefix, plivo) = (
        crate::common::redis_url(),
        crate::common::unique_prefix(),
        plivo().await,
    );
    let slow = [("FALLBACK_AFTER_SECS", "2")];
    let a = server(&redis, &prefix, &plivo.uri(), &slow).await;
    let (status, _) = post(
        &a.base,
        "/v1/verifications",
        json!({"to": random_number(), "channel": "sms"}),
    )
    .await;
    assert_eq!(status, 201);
    drop(a);
    assert!(calls(&plivo).await.is_empty());
    let _c = server(&redis, &prefix, &plivo.uri(), &slow).await;
    wait_for_calls(&plivo, 1).await;
}

#[tokio::test]
async fn limits_hold_across_two_processes_on_one_redis() {
    let (redis, prefix, plivo) = (
        crate::common::redis_url(),
        crate::common::unique_prefix(),
        plivo().await,
    );
    let limits = [
        ("RATE_LIMIT_NUMBER", "3/10m"),
        ("RESEND_COOLDOWN_SECS", "0"),
        ("FALLBACK", "false"),
    ];
    let a = server(&redis, &prefix, &plivo.uri(), &limits).await;
    let b = server(&redis, &prefix, &plivo.uri(), &limits).await;
    let to = random_number();
    let body = json!({"to": to, "channel": "sms"});
    assert!(post(&a.base, "/v1/verifications", body.clone()).await.0 < 300);
    assert!(post(&b.base, "/v1/verifications", body.clone()).await.0 < 300);
    assert!(post(&a.base, "/v1/verifications", body.clone()).await.0 < 300);
    let (status, refused) = post(&b.base, "/v1/verifications", body).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "number_rate_limited");
}
