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
