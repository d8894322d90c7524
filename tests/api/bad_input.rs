//! Every kind of bad input gets a 4xx in the error shape and changes nothing.

use crate::common::{random_number, spawn_app};
use serde_json::{Value, json};

fn assert_error_shape(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn raw(
    app: &crate::common::TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    key: Option<&str>,
) -> crate::common::Reply {
    let mut req = app.http.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    crate::common::TestApp::reply(req.send().await.unwrap()).await
}

#[tokio::test]
async fn malformed_bodies_get_a_clear_4xx_and_send_nothing() {
    let app = spawn_app(&[]).await;
    let key = app.api_key.clone();
    // (name, content type, body, status, error code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "malformed json",
            Some("application/json"),
            b"{\"to\": ".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "not json at all",
            Some("application/json"),
            b"to=+14155550100".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "wrong content type",
            Some("text/plain"),
            br#"{"to":"+14155550100"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            b"to=%2B14155550100".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            None,
            br#"{"to":"+14155550100"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "body over 16 KiB",
            Some("application/json"),
            format!(
                "{{\"to\":\"+14155550100\",\"locale\":\"{}\"}}",
                "a".repeat(17 * 1024)
            )
            .into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            "unknown field",
            Some("application/json"),
            br#"{"to":"+14155550100","channel":"sms","code":"123456"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "missing to",
            Some("application/json"),
            br#"{"channel":"sms"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "to is a number",
            Some("application/json"),
            br#"{"to":14155550100}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "not e164",
            Some("application/json"),
            br#"{"to":"4155550100"}"#.to_vec(),
            400,
            "invalid_phone_number",
        ),
        (
            "spaces in number",
            Some("application/json"),
            br#"{"to":"+1 415 555 0100"}"#.to_vec(),
            400,
            "invalid_phone_number",
        ),
        (
            "impossible number",
            Some("application/json"),
            br#"{"to":"+19995550100"}"#.to_vec(),
            400,
            "invalid_phone_number",
        ),
        (
            "unknown channel",
            Some("application/json"),
            br#"{"to":"+14155550100","channel":"email"}"#.to_vec(),
            400,
            "invalid_channel",
        ),
        (
            "channel case",
            Some("application/json"),
            br#"{"to":"+14155550100","channel":"SMS"}"#.to_vec(),
            400,
            "invalid_channel",
        ),
        (
            "bad locale",
            Some("application/json"),
            br#"{"to":"+14155550100","locale":"<script>"}"#.to_vec(),
            400,
            "invalid_locale",
        ),
        (
            "array body",
            Some("application/json"),
            br#"[]"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "empty body",
            Some("application/json"),
            b"".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "invalid utf8",
            Some("application/json"),
            b"{\"to\":\"\xff\xfe\"}".to_vec(),
            400,
            "malformed_json",
        ),
    ];
    for (name, ct, body, status, code) in cases {
        let r = raw(&app, "/v1/verifications", ct, body, Some(&key)).await;
        assert_eq!(r.status, status, "{name}: {:?}", r.body);
        assert_error_shape(&r.body, code);
    }
    assert!(app.sandbox_messages().await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn bad_codes_are_refused_without_spending_an_attempt() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    app.start(&to, "sms").await;
    for bad in [
        "12345",
        "1234567",
        "12a456",
        " 123456",
        "١٢٣٤٥٦",
        "",
        "123 456",
    ] {
        let r = app.check(&to, bad).await;
        assert_eq!(r.status, 400, "{bad:?}");
        assert_error_shape(&r.body, "invalid_code");
    }
    let r = app
        .post_json("/v1/verifications/check", json!({"to": to, "code": 123456}))
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .post_json("/v1/verifications/check", json!({"code": "123456"}))
        .await;
    assert_error_shape(&r.body, "invalid_request");
    let r = app
        .post_json(
            "/v1/verifications/check",
            json!({"to": to, "id": "VE00000000000000000000000000000000", "code": "123456"}),
        )
        .await;
    assert_error_shape(&r.body, "invalid_request");
    // Not one attempt was spent.
    let code = app.last_sms_code(&to).await;
    let wrong = app.check(&to, &crate::common::wrong(&code)).await;
    assert_eq!(wrong.body["attempts_remaining"], 4);
}

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_401_before_anything_else() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    let body = serde_json::to_vec(&json!({"to": to})).unwrap();
    let cases = [
        (None, "missing_api_key"),
        (Some("wrong-key-0123456789"), "invalid_api_key"),
        (Some(""), "missing_api_key"),
    ];
    for (key, code) in cases {
        let r = raw(
            &app,
            "/v1/verifications",
            Some("application/json"),
            body.clone(),
            key,
        )
        .await;
        assert_eq!(r.status, 401, "{key:?}");
        assert_error_shape(&r.body, code);
    }
    // Even a malformed body from an unauthenticated caller is a 401, not a 400.
    let r = raw(
        &app,
        "/v1/verifications",
        Some("application/json"),
        b"{".to_vec(),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    // Basic auth and a key in the query string are not accepted.
    let r = app
        .http
        .get(app.url(&format!(
            "/v1/verifications/VE00000000000000000000000000000000?api_key={}",
            app.api_key
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "api_key_in_url");
    let r = app
        .http
        .get(app.url("/v1/verifications/VE00000000000000000000000000000000"))
        .basic_auth(&app.api_key, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(app.sandbox_messages().await.is_empty());
}

#[tokio::test]
async fn a_wrong_method_is_405_in_the_error_shape() {
    let app = spawn_app(&[]).await;
    let r = app.get("/v1/verifications").await;
    assert_eq!(r.status, 405);
    assert_error_shape(&r.body, "method_not_allowed");
}
