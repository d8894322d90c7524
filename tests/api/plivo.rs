//! Plivo as it documents itself: a wiremock Plivo answering exactly the
//! shapes in Plivo's API reference and SDK fixtures (`tests/fixtures/plivo/`),
//! the Message fields real senders need, PHLO mode end to end, sends whose
//! outcome is unknown, Plivo errors that quote the request, and the sandbox
//! simulating every new setting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{API_KEY, OTP_SECRET, TestApp, random_number, spawn_app};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const AUTH_ID: &str = "MAZDQ1ZJIYMDRKNMFHOT";
const AUTH_TOKEN: &str = "live-token-for-wiremock";
const PUBLIC: &str = "https://otp.example.com";
const PHLO_ID: &str = "4c1a9f23-7f56-4879-bb80-db856e1e7701";
const FAST_JOBS: (&str, &str) = ("SCHEDULER_POLL_MS", "20");
const POWERPACK: &str = "d35f2e82-d387-427f-8db7-4e1f8a5e8a8b";
/// A valid Indian mobile number (DLT applies to +91).
const INDIAN_MOBILE: &str = "+919812345678";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/plivo/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn live_app(plivo: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    try_live_app(plivo, extra).await.expect("the app starts")
}

async fn try_live_app(
    plivo: &MockServer,
    extra: &[(&str, &str)],
) -> Result<TestApp, plivo_2fa::startup::StartupError> {
    let redis = crate::common::redis_url();
    let prefix = crate::common::unique_prefix();
    let uri = plivo.uri();
    let mut vars = vec![
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("API_KEYS", API_KEY),
        ("OTP_SECRET", OTP_SECRET),
        ("PLIVO_AUTH_ID", AUTH_ID),
        ("PLIVO_AUTH_TOKEN", AUTH_TOKEN),
        ("PLIVO_API_BASE_URL", uri.as_str()),
        ("PLIVO_PHLO_BASE_URL", uri.as_str()),
        ("PUBLIC_BASE_URL", PUBLIC),
    ];
    if !extra.iter().any(|(k, _)| *k == "PLIVO_POWERPACK_UUID") {
        vars.push(("PLIVO_FROM_NUMBER", "+14155550199"));
    }
    vars.extend_from_slice(extra);
    crate::common::try_spawn_with(&vars).await
}

/// Plivo's documented answer with a fresh id per request, as Plivo gives.
struct Documented {
    fixture: &'static str,
    status: u16,
    id_field: &'static str,
    count: Arc<AtomicUsize>,
}

impl Documented {
    fn new(fixture: &'static str, status: u16, id_field: &'static str) -> Self {
        Self {
            fixture,
            status,
            id_field,
            count: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Respond for Documented {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let mut body = fixture(self.fixture);
        let id = format!("7b6f8256-07c7-4d9a-bf2a-{n:012}");
        body[self.id_field] = match &body[self.id_field] {
            Value::Array(_) => json!([id]),
            _ => json!(id),
        };
        ResponseTemplate::new(self.status).set_body_json(body)
    }
}

fn phlo_path() -> String {
    format!("/v1/account/{AUTH_ID}/phlo/{PHLO_ID}")
}

fn message_path() -> String {
    format!("/v1/Account/{AUTH_ID}/Message/")
}

async fn bodies(plivo: &MockServer) -> Vec<Value> {
    crate::common::received_json(plivo).await
}

/// Waits (bounded) until Plivo has received `n` requests.
async fn wait_for_requests(plivo: &MockServer, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let got = bodies(plivo).await;
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("Plivo got {:?}, not {n} requests", bodies(plivo).await);
}

async fn phlo_plivo() -> MockServer {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(phlo_path()))
        .respond_with(Documented::new("phlo-run-documented.json", 201, "api_id"))
        .mount(&plivo)
        .await;
    plivo
}

// ---------------------------------------------------------------------------
// PHLO mode, against Plivo's documented "Run a PHLO" answer
// ---------------------------------------------------------------------------

#[tokio::test]
async fn phlo_mode_starts_checks_and_calls_on_request_against_the_documented_answer() {
    let plivo = phlo_plivo().await;
    let app = live_app(&plivo, &[("PLIVO_PHLO_ID", PHLO_ID), FAST_JOBS]).await;
    let to = random_number();
    let started = app.start(&to, "sms").await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    assert_eq!(started.body["status"], "pending");
    // The documented answer has no phlo_run_id: api_id identifies the run.
    let delivery = &started.body["deliveries"][0];
    assert_eq!(
        delivery["provider_id"],
        "7b6f8256-07c7-4d9a-bf2a-000000000000"
    );
    assert_eq!(delivery["status"], "queued");
    let runs = bodies(&plivo).await;
    assert_eq!(runs[0]["mode"], "sms");
    let otp = runs[0]["otp"].as_str().unwrap().to_owned();

    // Without PHLO_RECEIPTS, no receipt is expected: no call when none comes.
    app.advance(Duration::from_secs(46));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        bodies(&plivo).await.len(),
        1,
        "no call for a missing receipt"
    );

    // The user asks for a call: the same code, mode call.
    let call = app.start(&to, "voice").await;
    assert_eq!(call.status, 200, "{:?}", call.body);
    let runs = bodies(&plivo).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["mode"], "call");
    assert_eq!(runs[1]["otp"], otp.as_str());
    assert_eq!(call.body["deliveries"].as_array().unwrap().len(), 2);

    let checked = app.check(&to, &otp).await;
    assert_eq!(checked.body["status"], "approved", "{:?}", checked.body);
}

#[tokio::test]
async fn with_phlo_receipts_a_missing_receipt_makes_the_fallback_call() {
    let plivo = phlo_plivo().await;
    let app = live_app(
        &plivo,
        &[
            ("PLIVO_PHLO_ID", PHLO_ID),
            ("PHLO_RECEIPTS", "true"),
            FAST_JOBS,
        ],
    )
    .await;
    let to = random_number();
    assert_eq!(app.start(&to, "sms").await.status, 201);
    app.advance(Duration::from_secs(46));
    let runs = wait_for_requests(&plivo, 2).await;
    assert_eq!(runs[1]["mode"], "call");
    assert_eq!(runs[1]["otp"], runs[0]["otp"]);
}

#[tokio::test]
async fn without_phlo_receipts_an_explicit_failure_receipt_still_falls_back() {
    let plivo = phlo_plivo().await;
    let app = live_app(&plivo, &[("PLIVO_PHLO_ID", PHLO_ID), FAST_JOBS]).await;
    let to = random_number();
    assert_eq!(app.start(&to, "sms").await.status, 201);
    let url = format!("{PUBLIC}/plivo/phlo/message-status");
    let r = app
        .post_signed(
            &app.url("/plivo/phlo/message-status"),
            &url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &[
                ("MessageUUID", "8152b05a-3c04-11e9-aa1e-06c75f1208d2"),
                ("Status", "undelivered"),
                ("ErrorCode", "30"),
                ("To", to.trim_start_matches('+')),
                ("From", "14155550199"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let runs = wait_for_requests(&plivo, 2).await;
    assert_eq!(runs[1]["mode"], "call");
}

#[tokio::test]
async fn every_documented_create_answer_is_accepted_with_its_id() {
    for (fixture, status, endpoint, channel, id) in [
        (
            "message-create.json",
            202,
            message_path(),
            "sms",
            "5b40a428-bfc7-4daf-9d06-726c558bf3b8",
        ),
        (
            "call-create.json",
            201,
            format!("/v1/Account/{AUTH_ID}/Call/"),
            "voice",
            "9834029e-58b6-11e1-b8b7-a5bd0e4e126f",
        ),
    ] {
        let plivo = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(endpoint))
            .respond_with(ResponseTemplate::new(status).set_body_json(fixture_body(fixture)))
            .mount(&plivo)
            .await;
        let app = live_app(&plivo, &[]).await;
        let r = app.start(&random_number(), channel).await;
        assert_eq!(r.status, 201, "{fixture}: {:?}", r.body);
        assert_eq!(r.body["deliveries"][0]["provider_id"], id, "{fixture}");
    }
    for fixture in ["phlo-run-with-name.json", "phlo-run-sdk-fixture.json"] {
        let plivo = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(fixture_body(fixture)))
            .mount(&plivo)
            .await;
        let app = live_app(&plivo, &[("PLIVO_PHLO_ID", PHLO_ID)]).await;
        let r = app.start(&random_number(), "sms").await;
        assert_eq!(r.status, 201, "{fixture}: {:?}", r.body);
        assert_eq!(
            r.body["deliveries"][0]["provider_id"], "2e802f94-cc03-4e35-b4c8-5a0328544135",
            "{fixture}: phlo_run_id when present, else api_id"
        );
    }
}

fn fixture_body(name: &str) -> Value {
    fixture(name)
}

#[tokio::test]
async fn a_2xx_that_names_no_id_is_still_a_delivery_plivo_accepted() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(json!({"api_id": "a", "message": "message(s) queued"})),
        )
        .mount(&plivo)
        .await;
    let app = live_app(&plivo, &[]).await;
    let r = app.start(&random_number(), "sms").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["deliveries"][0]["status"], "queued");
    assert_eq!(r.body["deliveries"][0]["provider_id"], Value::Null);
}

// ---------------------------------------------------------------------------
// The Message fields
// ---------------------------------------------------------------------------

async fn message_plivo() -> MockServer {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(message_path()))
        .respond_with(Documented::new("message-create.json", 202, "message_uuid"))
        .mount(&plivo)
        .await;
    plivo
}

#[tokio::test]
async fn every_sms_carries_log_as_a_string_and_the_codes_remaining_lifetime() {
    let plivo = message_plivo().await;
    let app = live_app(&plivo, &[("RESEND_COOLDOWN_SECS", "0")]).await;
    let to = random_number();
    assert_eq!(app.start(&to, "sms").await.status, 201);
    let first = &bodies(&plivo).await[0];
    assert_eq!(first["log"], json!("false"));
    assert_eq!(first["message_expiry"], 600);
    assert_eq!(first["src"], "+14155550199");
    assert!(first.get("powerpack_uuid").is_none() && first.get("dlt_entity_id").is_none());
    assert!(
        first["text"].as_str().unwrap().contains("10 minutes"),
        "{first}"
    );

    // A re-send says, and tells Plivo, what is left.
    app.advance(Duration::from_secs(570));
    assert_eq!(app.start(&to, "sms").await.status, 200);
    let second = &bodies(&plivo).await[1];
    assert_eq!(second["message_expiry"], 30);
    assert!(
        second["text"].as_str().unwrap().contains("1 minute."),
        "{second}"
    );

    // Too close to the end to arrive in time: not sent at all.
    app.advance(Duration::from_secs(26));
    let late = app.start(&to, "sms").await;
    assert_eq!(late.status, 429, "{:?}", late.body);
    assert_eq!(late.body["error"]["code"], "verification_expiring");
    assert_eq!(bodies(&plivo).await.len(), 2);
}

#[tokio::test]
async fn a_powerpack_sends_without_src_and_india_gets_the_dlt_fields() {
    let plivo = message_plivo().await;
    let app = live_app(
        &plivo,
        &[
            ("PLIVO_POWERPACK_UUID", POWERPACK),
            ("PLIVO_DLT_ENTITY_ID", "1201159543060917386"),
            ("PLIVO_DLT_TEMPLATE_ID", "1207161234567890123"),
            (
                "SMS_TEXT",
                "{code} is your {brand} code. Valid for {minutes} min.",
            ),
            ("BRAND_NAME", "Acme"),
        ],
    )
    .await;
    let india = app
        .post_json(
            "/v1/verifications",
            json!({"to": INDIAN_MOBILE, "channel": "sms", "locale": "hi-IN"}),
        )
        .await;
    assert_eq!(india.status, 201, "{:?}", india.body);
    let us = app.start(&random_number(), "sms").await;
    assert_eq!(us.status, 201, "{:?}", us.body);
    let sent = bodies(&plivo).await;
    let (to_india, to_us) = (&sent[0], &sent[1]);
    for body in [to_india, to_us] {
        assert_eq!(body["powerpack_uuid"], POWERPACK);
        assert!(body.get("src").is_none(), "{body}");
    }
    assert_eq!(to_india["dlt_entity_id"], "1201159543060917386");
    assert_eq!(to_india["dlt_template_id"], "1207161234567890123");
    assert_eq!(to_india["dlt_template_category"], "service_implicit");
    // The registered template's wording, whatever the locale asked for.
    let text = to_india["text"].as_str().unwrap();
    assert!(
        text.ends_with(" is your Acme code. Valid for 10 min."),
        "{text}"
    );
    for field in ["dlt_entity_id", "dlt_template_id", "dlt_template_category"] {
        assert!(to_us.get(field).is_none(), "{to_us}");
    }
    // No number to call from: voice is unavailable, said plainly.
    let voice = app.start(&random_number(), "voice").await;
    assert_eq!(voice.status, 400, "{:?}", voice.body);
    assert_eq!(voice.body["error"]["code"], "invalid_channel");
}

#[tokio::test]
async fn bad_values_of_the_new_settings_stop_start_up_naming_the_variable() {
    let plivo = MockServer::start().await;
    for (vars, var) in [
        (
            vec![("PLIVO_POWERPACK_UUID", "not-a-uuid")],
            "PLIVO_POWERPACK_UUID",
        ),
        (
            vec![("PLIVO_DLT_ENTITY_ID", "1201159543060917386")],
            "PLIVO_DLT_TEMPLATE_ID",
        ),
        (
            vec![
                ("PLIVO_DLT_ENTITY_ID", "1201159543060917386"),
                ("PLIVO_DLT_TEMPLATE_ID", "1207161234567890123"),
            ],
            "SMS_TEXT",
        ),
        (
            vec![
                ("PLIVO_DLT_ENTITY_ID", "1201159543060917386"),
                ("PLIVO_DLT_TEMPLATE_ID", "1207161234567890123"),
                ("PLIVO_DLT_TEMPLATE_CATEGORY", "marketing"),
                ("SMS_TEXT", "{code}"),
            ],
            "PLIVO_DLT_TEMPLATE_CATEGORY",
        ),
        (vec![("SMS_TEXT", "no code")], "SMS_TEXT"),
        (
            vec![("SMS_TEXT_ES_ES", "{code} {nombre}")],
            "SMS_TEXT_ES_ES",
        ),
        (vec![("SMS_TEXT_ENGLISH", "{code}")], "SMS_TEXT_ENGLISH"),
        (
            vec![("WEBOTP_DOMAIN", "https://example.com")],
            "WEBOTP_DOMAIN",
        ),
        (vec![("PHLO_RECEIPTS", "yes please")], "PHLO_RECEIPTS"),
        (vec![("PHLO_RECEIPTS", "true")], "PHLO_RECEIPTS"),
        (
            vec![("PLIVO_PHLO_ID", PHLO_ID), ("WEBOTP_DOMAIN", "example.com")],
            "WEBOTP_DOMAIN",
        ),
    ] {
        let Err(e) = try_live_app(&plivo, &vars).await else {
            panic!("{vars:?} started");
        };
        let line = e.to_string();
        assert!(line.starts_with(var), "{vars:?}: {line}");
        assert!(!line.contains('\n'), "{line}");
    }
}

// ---------------------------------------------------------------------------
// Autofill: WebOTP and the SMS Retriever hash, in every locale
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_app_hash_and_the_webotp_line_end_the_sms_in_every_locale_and_with_sms_text() {
    for extra in [vec![], vec![("SMS_TEXT", "Your {brand} code is {code}")]] {
        let mut settings = vec![("WEBOTP_DOMAIN", "Example.com")];
        settings.extend(extra.iter().copied());
        let app = spawn_app(&settings).await;
        for locale in plivo_2fa::delivery::sms::locales() {
            let to = random_number();
            let r = app
                .post_json(
                    "/v1/verifications",
                    json!({"to": to, "channel": "sms", "locale": locale, "app_hash": "FA+9qCX9VSu"}),
                )
                .await;
            assert_eq!(r.status, 201, "{locale}: {:?}", r.body);
            let text = app
                .sandbox_messages()
                .await
                .into_iter()
                .rev()
                .find(|m| m["to"] == to.as_str())
                .unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned();
            let code = crate::common::code_in(&text);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[lines.len() - 2], "FA+9qCX9VSu", "{locale}: {text}");
            assert_eq!(
                lines[lines.len() - 1],
                format!("@example.com #{code}"),
                "{locale}: {text}"
            );
            if !extra.is_empty() {
                assert!(lines[0].starts_with("Your plivo-2fa code is "), "{text}");
            }
        }
    }
}

#[tokio::test]
async fn a_malformed_app_hash_is_a_400_and_sends_nothing() {
    let app = spawn_app(&[]).await;
    for bad in ["short", "FA+9qCX9VSu!", "FA 9qCX9VSu", "FA+9qCX9VSuu"] {
        let r = app
            .post_json(
                "/v1/verifications",
                json!({"to": random_number(), "channel": "sms", "app_hash": bad}),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_app_hash");
    }
    assert!(app.sandbox_messages().await.is_empty(), "nothing was sent");
}

// ---------------------------------------------------------------------------
// Sends whose outcome is unknown, and definite refusals
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_timed_out_send_keeps_the_verification_pending_and_its_first_receipt_names_it() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(5)))
        .mount(&plivo)
        .await;
    let app = live_app(
        &plivo,
        &[("PLIVO_TIMEOUT_MS", "300"), ("FALLBACK", "false")],
    )
    .await;
    let to = random_number();
    let r = app.start(&to, "sms").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    let delivery = &r.body["deliveries"][0];
    assert_eq!(delivery["status"], "unknown");
    assert_eq!(delivery["provider_id"], Value::Null);

    // Plivo did take it: its receipt moves the unknown delivery forward.
    let id = r.body["id"].as_str().unwrap();
    let url = format!("{PUBLIC}/plivo/message-status/{id}");
    let receipt = app
        .post_signed(
            &app.url(&format!("/plivo/message-status/{id}")),
            &url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &[
                ("MessageUUID", "m-late"),
                ("Status", "delivered"),
                ("ErrorCode", "000"),
                ("To", to.trim_start_matches('+')),
            ],
        )
        .await;
    assert_eq!(receipt.status(), 200);
    let v = app.get(&format!("/v1/verifications/{id}")).await.body;
    let deliveries = v["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{v}");
    assert_eq!(deliveries[0]["provider_id"], "m-late");
    assert_eq!(deliveries[0]["status"], "delivered");

    // And the code it carried checks.
    let sent = bodies(&plivo).await;
    let code = crate::common::code_in(sent[0]["text"].as_str().unwrap());
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
}

#[tokio::test]
async fn an_unreadable_2xx_is_an_unknown_delivery_on_a_start_and_a_re_send() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>queued</html>"))
        .mount(&plivo)
        .await;
    let app = live_app(&plivo, &[("RESEND_COOLDOWN_SECS", "0")]).await;
    let to = random_number();
    let first = app.start(&to, "sms").await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["deliveries"][0]["status"], "unknown");
    let again = app.start(&to, "sms").await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    let deliveries = again.body["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "two sends stay two deliveries");
    assert!(deliveries.iter().all(|d| d["status"] == "unknown"));
}

#[tokio::test]
async fn no_connection_at_all_is_a_definite_failure() {
    // A port with nothing listening: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let plivo = MockServer::start().await;
    let nowhere = format!("http://127.0.0.1:{port}");
    let app = live_app(&plivo, &[("PLIVO_API_BASE_URL", nowhere.as_str())]).await;
    let to = random_number();
    let r = app.start(&to, "sms").await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.body["error"]["message"], "Plivo could not be reached.");
    assert_eq!(
        app.check(&to, "123456").await.body["error"]["code"],
        "verification_not_pending"
    );
}

// ---------------------------------------------------------------------------
// Plivo's error text quoting the request
// ---------------------------------------------------------------------------

/// A Plivo whose error echoes the whole request, credentials included.
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = String::from_utf8_lossy(&request.body).into_owned();
        ResponseTemplate::new(400).set_body_json(json!({
            "api_id": "e",
            "error": format!("invalid request {body} (auth {auth}, token {AUTH_TOKEN})"),
        }))
    }
}

#[tokio::test]
async fn plivo_errors_that_quote_the_request_reach_neither_the_client_nor_the_logs() {
    let logs = crate::common::capture_logs();
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Echo)
        .mount(&plivo)
        .await;
    let app = live_app(&plivo, &[]).await;
    let to = random_number();
    let r = app.start(&to, "sms").await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("invalid request"), "{message}");

    let sent = bodies(&plivo).await;
    let code = crate::common::code_in(sent[0]["text"].as_str().unwrap());
    let digits = to.trim_start_matches('+');
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{AUTH_ID}:{AUTH_TOKEN}"))
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logged = logs.text();
    assert!(logged.contains("invalid request"), "the error was logged");
    for (what, text) in [
        ("the answer", message.as_str()),
        ("the logs", logged.as_str()),
    ] {
        for secret in [code.as_str(), digits, AUTH_TOKEN, basic.as_str()] {
            assert!(!text.contains(secret), "{what} holds {secret:?}: {text}");
        }
    }
    assert!(
        message.contains(&to[..5]),
        "the number is masked, not dropped: {message}"
    );
}

// ---------------------------------------------------------------------------
// The voice side speaks the caller's language
// ---------------------------------------------------------------------------

async fn call_plivo() -> MockServer {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Documented::new("call-create.json", 201, "request_uuid"))
        .mount(&plivo)
        .await;
    plivo
}

async fn signed_xml(app: &TestApp, public_url: &str, to: &str, digits: Option<&str>) -> String {
    let local = app.url(public_url.strip_prefix(PUBLIC).unwrap());
    let mut params = vec![
        ("CallUUID", "4vbcpem8-0u46-x1ha-9af1-438vc92bf374"),
        ("From", "14155550199"),
        ("To", to),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound"),
    ];
    if let Some(d) = digits {
        params.push(("Digits", d));
    }
    let r = app
        .post_signed(
            &local,
            public_url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &params,
        )
        .await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn language_of(xml: &str) -> String {
    xml.split("language=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_apology_and_goodbye_speak_the_verifications_locale_else_the_callees_country() {
    let plivo = call_plivo().await;
    let app = live_app(&plivo, &[]).await;
    let to = random_number();
    let r = app
        .post_json(
            "/v1/verifications",
            json!({"to": to, "channel": "voice", "locale": "fr-FR"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let answer_url = bodies(&plivo).await[0]["answer_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let call_ref = answer_url.rsplit('/').next().unwrap().to_owned();
    let digits = to.trim_start_matches('+');

    // Goodbye after the code, in the verification's French.
    let again = format!("{PUBLIC}/plivo/voice/again/{call_ref}?n=1");
    let bye = signed_xml(&app, &again, digits, Some("2")).await;
    assert_eq!(language_of(&bye), "fr-FR", "{bye}");

    // Once canceled, the apology is still in French.
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        app.post_json(&format!("/v1/verifications/{id}/cancel"), json!({}))
            .await
            .status,
        200
    );
    let sorry = signed_xml(&app, &answer_url, digits, None).await;
    assert!(
        sorry.contains("<Hangup") && !sorry.contains("say-as"),
        "{sorry}"
    );
    assert_eq!(language_of(&sorry), "fr-FR", "{sorry}");

    // An unknown reference: the called number's country decides, en-US last.
    let unknown = format!("{PUBLIC}/plivo/voice/answer/CR0000000000000000000000000000000000");
    for (callee, locale) in [
        ("4930123456", "de-DE"),
        ("5511987654321", "pt-BR"),
        ("919812345678", "hi-IN"),
        ("34612345678", "es-ES"),
        ("14155550100", "en-US"),
        ("81312345678", "en-US"),
    ] {
        let xml = signed_xml(&app, &unknown, callee, None).await;
        assert_eq!(language_of(&xml), locale, "{callee}: {xml}");
    }
}

// ---------------------------------------------------------------------------
// The sandbox simulates every new setting
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_sandbox_records_expiry_log_powerpack_and_dlt_fields() {
    let app = spawn_app(&[
        ("PLIVO_POWERPACK_UUID", POWERPACK),
        ("PLIVO_DLT_ENTITY_ID", "1201159543060917386"),
        ("PLIVO_DLT_TEMPLATE_ID", "1207161234567890123"),
        ("PLIVO_DLT_TEMPLATE_CATEGORY", "transactional"),
        ("SMS_TEXT", "{code} is your {brand} code"),
    ])
    .await;
    assert_eq!(app.start(INDIAN_MOBILE, "sms").await.status, 201);
    let us = random_number();
    assert_eq!(app.start(&us, "sms").await.status, 201);
    let messages = app.sandbox_messages().await;
    let india = messages.iter().find(|m| m["to"] == INDIAN_MOBILE).unwrap();
    let other = messages.iter().find(|m| m["to"] == us.as_str()).unwrap();
    for m in [india, other] {
        assert_eq!(m["powerpack_uuid"], POWERPACK);
        assert_eq!(m["from"], plivo_2fa::sandbox::numbers::POWERPACK_NUMBER);
        assert_eq!(m["message_expiry"], 600);
        assert_eq!(m["log"], "false");
    }
    assert_eq!(india["dlt_entity_id"], "1201159543060917386");
    assert_eq!(india["dlt_template_id"], "1207161234567890123");
    assert_eq!(india["dlt_template_category"], "transactional");
    assert!(other.get("dlt_entity_id").is_none(), "{other}");
}

#[tokio::test]
async fn the_sandbox_refuses_src_and_powerpack_together_as_plivo_does() {
    let sim = plivo_2fa::sandbox::Simulator::start("http://127.0.0.1:1").unwrap();
    let url = sim
        .base_url
        .join(&format!("v1/Account/{}/Message/", sim.auth_id))
        .unwrap();
    let token = {
        use secrecy::ExposeSecret;
        sim.auth_token.expose_secret().to_owned()
    };
    let http = reqwest::Client::new();
    let send = |body: Value| {
        http.post(url.clone())
            .basic_auth(&sim.auth_id, Some(&token))
            .json(&body)
            .send()
    };
    let base = json!({"dst": "+14155550100", "text": "hi", "log": "false"});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let both = send(with(
        json!({"src": "+14155550199", "powerpack_uuid": POWERPACK}),
    ))
    .await
    .unwrap();
    assert_eq!(both.status(), 400);
    let error: Value = both.json().await.unwrap();
    assert!(error["api_id"].is_string());
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("Both powerpack_uuid and src cannot be specified"),
        "{error}"
    );
    for (body, words) in [
        (base.clone(), "Specify either powerpack_uuid or src"),
        (
            with(json!({"src": "+14155550199", "log": false})),
            "log must be a string",
        ),
        (
            with(json!({"src": "+14155550199", "message_expiry": 4})),
            "message_expiry",
        ),
        (
            with(json!({"src": "+14155550199", "message_expiry": 10_800})),
            "message_expiry",
        ),
    ] {
        let r = send(body).await.unwrap();
        assert_eq!(r.status(), 400);
        let error: Value = r.json().await.unwrap();
        assert!(error["error"].as_str().unwrap().contains(words), "{error}");
    }
    let ok = send(with(
        json!({"powerpack_uuid": POWERPACK, "message_expiry": 300}),
    ))
    .await
    .unwrap();
    assert_eq!(ok.status(), 202);
}

#[tokio::test]
async fn the_sandbox_phlo_runner_answers_the_documented_shape_without_phlo_run_id() {
    let app = spawn_app(&[("PLIVO_PHLO_ID", PHLO_ID)]).await;
    let to = random_number();
    let r = app.start(&to, "sms").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let runs = app.sandbox_phlo_runs().await;
    let run = runs
        .iter()
        .find(|run| run["payload"]["to"] == to.as_str())
        .unwrap();
    // The run's id is the answer's api_id, which the delivery carries.
    assert_eq!(r.body["deliveries"][0]["provider_id"], run["phlo_run_id"]);
}
