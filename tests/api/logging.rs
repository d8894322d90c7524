//! Captures every log line of whole verifications, at TRACE for every crate,
//! and proves that no code, token, key or full phone number is in them.

use std::time::Duration;

use crate::common::{API_KEY, OTP_SECRET, random_number};
use base64::Engine;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn no_code_token_key_or_full_number_ever_reaches_the_logs() {
    let logs = crate::common::capture_logs();
    const AUTH_ID: &str = "MAZDQ1ZJIYMDRKNMFHOT";
    const AUTH_TOKEN: &str = "plivo-auth-token-that-must-not-leak";
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(serde_json::json!({"message_uuid": ["u-1"]})),
        )
        .mount(&plivo)
        .await;
    let redis = crate::common::redis_url();
    let prefix = crate::common::unique_prefix();
    let uri = plivo.uri();
    let live = crate::common::spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", &redis),
        ("REDIS_KEY_PREFIX", &prefix),
        ("API_KEYS", API_KEY),
        ("OTP_SECRET", OTP_SECRET),
        ("PLIVO_AUTH_ID", AUTH_ID),
        ("PLIVO_AUTH_TOKEN", AUTH_TOKEN),
        ("PLIVO_FROM_NUMBER", "+14155550199"),
        ("PLIVO_API_BASE_URL", &uri),
        ("PUBLIC_BASE_URL", "https://otp.example.com"),
    ])
    .await;
    let live_number = random_number();
    let started = live.start(&live_number, "sms").await;
    assert_eq!(started.status, 201);
    let sent: serde_json::Value =
        serde_json::from_slice(&plivo.received_requests().await.unwrap()[0].body).unwrap();
    let live_code = crate::common::code_in(sent["text"].as_str().unwrap());
    live.check(&live_number, &crate::common::wrong(&live_code))
        .await;
    assert_eq!(
        live.check(&live_number, &live_code).await.body["status"],
        "approved"
    );

    // And a sandbox verification: start, resend, wrong, right, cancel another.
    let sandbox = crate::common::spawn_app(&[]).await;
    let number = random_number();
    let v = sandbox.start(&number, "sms").await;
    assert_eq!(v.status, 201);
    sandbox.advance(Duration::from_secs(31));
    sandbox.start(&number, "sms").await;
    let code = sandbox.last_sms_code(&number).await;
    sandbox.check(&number, &crate::common::wrong(&code)).await;
    sandbox.check(&number, &code).await;
    let other = random_number();
    let id = sandbox.start(&other, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sandbox
        .post_json(
            &format!("/v1/verifications/{id}/cancel"),
            serde_json::json!({}),
        )
        .await;

    // And WhatsApp: a template message that fails, then its SMS fallback.
    let whatsapp = crate::common::spawn_app(&[
        ("PLIVO_WHATSAPP_FROM", "+14155550197"),
        ("WHATSAPP_TEMPLATE", "otp_copy_code"),
        ("SCHEDULER_POLL_MS", "20"),
    ])
    .await;
    let no_whatsapp = plivo_2fa::sandbox::numbers::NOT_ON_WHATSAPP;
    let id = whatsapp.start(no_whatsapp, "whatsapp").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = whatsapp
        .wait_for(&id, |v| {
            v["deliveries"].as_array().is_some_and(|d| d.len() == 2)
        })
        .await;
    assert_eq!(v["deliveries"][1]["channel"], "sms", "{v}");
    let whatsapp_code = whatsapp.last_sms_code(no_whatsapp).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let text = logs.text();
    assert!(text.lines().count() > 20, "logging is on: {text}");
    assert!(text.contains("verification opened"));
    let masked = &live_number[..5];
    assert!(
        text.contains(&format!("{masked}***")),
        "numbers are logged masked"
    );

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{AUTH_ID}:{AUTH_TOKEN}"));
    let secrets = [
        ("the live code", live_code.as_str()),
        ("the sandbox code", code.as_str()),
        ("the WhatsApp code", whatsapp_code.as_str()),
        ("the WhatsApp sandbox API key", whatsapp.api_key.as_str()),
        ("the API key", API_KEY),
        ("the sandbox API key", sandbox.api_key.as_str()),
        ("the Plivo auth token", AUTH_TOKEN),
        ("the Basic auth header", basic.as_str()),
        ("OTP_SECRET", OTP_SECRET),
        ("a full number", live_number.as_str()),
        ("a full number without +", &live_number[1..]),
        ("another full number", number.as_str()),
        ("a canceled number", other.as_str()),
    ];
    for (what, secret) in secrets {
        assert!(
            !contains_token(&text, secret),
            "{what} leaked into the logs"
        );
    }
}

/// Whether `needle` occurs in `text` as a token of its own (not inside a
/// longer run of letters and digits, as a six-digit code may inside a UUID).
fn contains_token(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[test]
fn the_token_search_finds_standalone_codes_only() {
    assert!(contains_token("code=123456 sent", "123456"));
    assert!(contains_token("\"123456\"", "123456"));
    assert!(!contains_token("uuid a123456b", "123456"));
    assert!(!contains_token("port 91234567", "123456"));
}

#[tokio::test]
async fn a_flood_of_forged_callbacks_writes_a_few_log_lines_and_counts_every_one() {
    let logs = crate::common::capture_logs();
    let app = crate::common::spawn_app(&[]).await;
    let forged = app.url("/plivo/message-status/VE00000000000000000000000000000000");
    const FORGERIES: usize = 300;
    let began = std::time::Instant::now();
    for _ in 0..FORGERIES {
        let r = app
            .http
            .post(&forged)
            .header(
                "X-Plivo-Signature-V3",
                "Zm9yZ2VkIHNpZ25hdHVyZSBmb3JnZWQgc2lnbmF0dXJlIQ==",
            )
            .header("X-Plivo-Signature-V3-Nonce", crate::common::nonce())
            .form(&[("MessageUUID", "m-1"), ("Status", "delivered")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let elapsed = began.elapsed();
    let text = logs.text();
    let lines = text
        .lines()
        .filter(|l| l.contains("Plivo callback refused"))
        .count();
    // One line a second gets through, each saying how many it stood for.
    assert!(lines >= 1, "the first forgery is logged: {text}");
    assert!(
        lines <= usize::try_from(elapsed.as_secs()).unwrap() + 2,
        "{lines} log lines for {FORGERIES} forgeries in {elapsed:?}"
    );
    let metrics = app.metrics_text().await;
    let counted: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("plivo2fa_signature_failures_total{reason=\"invalid_signature\"} ")
        })
        .expect("forgeries are counted")
        .parse()
        .unwrap();
    assert_eq!(counted as usize, FORGERIES, "every forgery is counted");
}

#[tokio::test]
async fn start_up_warns_when_redis_keeps_nothing_on_disk() {
    let logs = crate::common::capture_logs();
    let warnings = || {
        let text = logs.text();
        text.lines()
            .filter(|l| {
                l.contains("WARN") && l.contains("a Redis restart loses every pending verification")
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let spawn = |url: String| async move {
        crate::common::spawn_with(&[
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("REDIS_URL", &url),
            ("REDIS_KEY_PREFIX", &crate::common::unique_prefix()),
            ("API_KEYS", API_KEY),
        ])
        .await
    };
    // The Redis of scripts/test.sh keeps nothing: no AOF, no RDB snapshots.
    spawn(crate::common::redis_url()).await;
    assert_eq!(warnings().len(), 1, "{:?}", warnings());
    assert!(warnings()[0].contains("neither AOF nor RDB"));
    // With AOF on, nothing to warn about.
    let aof = crate::common::RedisProcess::start();
    spawn(aof.url()).await;
    assert_eq!(warnings().len(), 1, "{:?}", warnings());
    // With RDB snapshots on, neither.
    let rdb = crate::common::RedisProcess::start_with(&["--save", "3600 1"]);
    spawn(rdb.url()).await;
    assert_eq!(warnings().len(), 1, "{:?}", warnings());
    // CONFIG renamed away, as managed services do: INFO still tells.
    let no_config = crate::common::RedisProcess::start_with(&["--rename-command", "CONFIG", ""]);
    spawn(no_config.url()).await;
    assert_eq!(warnings().len(), 2, "{:?}", warnings());
    assert!(warnings()[1].contains("CONFIG GET is not allowed"));
}

#[tokio::test]
async fn every_request_writes_one_access_line_with_its_route_pattern_status_and_id() {
    let logs = crate::common::capture_logs();
    let app = crate::common::spawn_app(&[]).await;
    let number = random_number();
    let id = app.start(&number, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.last_sms_code(&number).await;
    app.check(&number, &code).await;
    // A refused key and an unknown id: visible in the log, not silence.
    let refused = app
        .http
        .get(app.url(&format!("/v1/verifications/{id}")))
        .bearer_auth("not-the-key")
        .header("X-Request-Id", "refused-1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let missing = "VE00000000000000000000000000000000";
    let r = app.get(&format!("/v1/verifications/{missing}")).await;
    assert_eq!(r.status, 404);
    app.http
        .get(app.url(&format!("/v1/verifications/{id}?to={number}")))
        .send()
        .await
        .unwrap();
    let text = logs.text();
    let access: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("plivo_2fa::access"))
        .collect();
    let line = |needle: &str| {
        access
            .iter()
            .copied()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no access line with {needle}: {access:#?}"))
    };
    let start = line("route=\"/v1/verifications\"");
    for field in [
        "INFO",
        "method=\"POST\"",
        "status=201",
        "latency_ms=",
        "request_id=\"",
    ] {
        assert!(start.contains(field), "{field} missing: {start}");
    }
    assert!(line("route=\"/v1/verifications/check\"").contains("status=200"));
    let refused = line("request_id=\"refused-1\"");
    assert!(refused.contains("status=401"), "{refused}");
    assert!(
        refused.contains("route=\"/v1/verifications/{id}\""),
        "{refused}"
    );
    assert!(line("status=404").contains("method=\"GET\""));
    // Every request once: the start, the sandbox inbox read, the check, the
    // refused read, the missing one and the one with a query.
    assert!(access.len() >= 6, "{access:#?}");
    for secret in [
        id.as_str(),
        missing,
        number.as_str(),
        &number[1..],
        code.as_str(),
        app.api_key.as_str(),
        "not-the-key",
    ] {
        assert!(
            !access.iter().any(|l| contains_token(l, secret)),
            "{secret} is in the access log: {access:#?}"
        );
    }
}
