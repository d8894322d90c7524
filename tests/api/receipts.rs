//! Delivery receipts and the automatic SMS→voice fallback, in sandbox mode on
//! real Redis, plus receipts posted by hand for the ordering cases.

use std::time::Duration;

use crate::common::{API_KEY, OTP_SECRET, TestApp, deliveries, has, random_number, spawn_app};
use plivo_2fa::sandbox::numbers;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FAST_JOBS: (&str, &str) = ("SCHEDULER_POLL_MS", "20");

#[tokio::test]
async fn receipts_move_an_sms_to_delivered_and_no_call_follows() {
    let app = spawn_app(&[FAST_JOBS]).await;
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = app.wait_for(&id, |v| has(v, "sms", "delivered")).await;
    let d = &deliveries(&v)[0];
    assert!(d["created_at"].as_str().is_some() && d["updated_at"].as_str().is_some());
    assert!(d["error_code"].is_null());
    // Long past the fallback delay, still no call.
    app.advance(Duration::from_secs(120));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.sandbox_calls().await.is_empty());
    assert_eq!(
        deliveries(&app.get(&format!("/v1/verifications/{id}")).await.body).len(),
        1
    );
}

async fn assert_falls_back_to_a_call_with_the_same_code(
    app: &TestApp,
    to: &str,
    status: &str,
    error: &str,
    reason: &str,
) {
    let id = app.start(to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sms_code = app.last_sms_code(to).await;
    let v = app.wait_for(&id, |v| has(v, "voice", "completed")).await;
    let sms = deliveries(&v)
        .into_iter()
        .find(|d| d["channel"] == "sms")
        .unwrap();
    assert_eq!(sms["status"], status);
    assert_eq!(sms["error_code"], error);
    assert_eq!(sms["error_reason"], reason);
    assert_eq!(deliveries(&v).len(), 2, "{v}");
    assert_eq!(app.spoken_code(to, sms_code.len()).await, sms_code);
    assert_eq!(app.check(to, &sms_code).await.body["status"], "approved");
    assert_eq!(
        app.sandbox_calls()
            .await
            .iter()
            .filter(|c| c["to"] == to)
            .count(),
        1
    );
}

#[tokio::test]
async fn an_undelivered_sms_falls_back_to_one_call_with_the_same_code() {
    let app = spawn_app(&[FAST_JOBS]).await;
    assert_falls_back_to_a_call_with_the_same_code(
        &app,
        numbers::SMS_UNDELIVERED,
        "undelivered",
        "30",
        "Spam detected",
    )
    .await;
}

#[tokio::test]
async fn a_failed_sms_falls_back_to_a_call() {
    let app = spawn_app(&[FAST_JOBS]).await;
    assert_falls_back_to_a_call_with_the_same_code(
        &app,
        numbers::SMS_FAILED,
        "failed",
        "300",
        "Failed to dispatch message",
    )
    .await;
}

#[tokio::test]
async fn an_sms_without_a_receipt_falls_back_after_the_timeout() {
    let app = spawn_app(&[FAST_JOBS, ("FALLBACK_AFTER_SECS", "45")]).await;
    let to = numbers::SMS_NO_RECEIPT;
    let id = app.start(to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = app
        .fallback_call_after(&id, Duration::from_secs(45), "not before the timeout")
        .await;
    assert_eq!(v["status"], "pending");
    assert_eq!(app.sandbox_calls().await.len(), 1);
}

#[tokio::test]
async fn the_fallback_respects_the_send_limit_and_can_be_turned_off() {
    let app = spawn_app(&[FAST_JOBS, ("MAX_SENDS", "1")]).await;
    let id = app.start(numbers::SMS_UNDELIVERED, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for(&id, |v| has(v, "sms", "undelivered")).await;
    app.advance(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.sandbox_calls().await.is_empty());

    let off = spawn_app(&[FAST_JOBS, ("FALLBACK", "false")]).await;
    let id = off.start(numbers::SMS_UNDELIVERED, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    off.wait_for(&id, |v| has(v, "sms", "undelivered")).await;
    off.advance(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(off.sandbox_calls().await.is_empty());
}

const AUTH_ID: &str = "MAZDQ1ZJIYMDRKNMFHOT";
const AUTH_TOKEN: &str = "receipts-token";
const PUBLIC: &str = "https://otp.example.com";

fn live_vars<'a>(redis: &'a str, prefix: &'a str, plivo: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", redis),
        ("REDIS_KEY_PREFIX", prefix),
        ("API_KEYS", API_KEY),
        ("OTP_SECRET", OTP_SECRET),
        ("PLIVO_AUTH_ID", AUTH_ID),
        ("PLIVO_AUTH_TOKEN", AUTH_TOKEN),
        ("PLIVO_FROM_NUMBER", "+14155550199"),
        ("PLIVO_API_BASE_URL", plivo),
        ("PUBLIC_BASE_URL", PUBLIC),
        ("FALLBACK", "false"),
    ]
}

async fn receipt(app: &TestApp, id: &str, uuid: &str, status: &str, sequence: &str) -> u16 {
    let url = format!("{PUBLIC}/plivo/message-status/{id}");
    app.post_signed(
        &app.url(&format!("/plivo/message-status/{id}")),
        &url,
        AUTH_TOKEN,
        &crate::common::nonce(),
        &[
            ("MessageUUID", uuid),
            ("Status", status),
            ("ErrorCode", ""),
            ("Sequence", sequence),
            ("To", "14155550100"),
        ],
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn duplicate_and_out_of_order_receipts_never_move_a_delivery_backwards() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"message_uuid": ["m-1"]})))
        .mount(&plivo)
        .await;
    let (redis, prefix, uri) = (
        crate::common::redis_url(),
        crate::common::unique_prefix(),
        plivo.uri(),
    );
    let app = crate::common::spawn_with(&live_vars(&redis, &prefix, &uri)).await;
    let id = app.start(&random_number(), "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = |v: &Value| deliveries(v)[0]["status"].as_str().unwrap().to_owned();
    assert_eq!(receipt(&app, &id, "m-1", "delivered", "3").await, 200);
    assert_eq!(receipt(&app, &id, "m-1", "sent", "2").await, 200);
    assert_eq!(receipt(&app, &id, "m-1", "queued", "1").await, 200);
    assert_eq!(receipt(&app, &id, "m-1", "delivered", "3").await, 200);
    let v = app.get(&format!("/v1/verifications/{id}")).await.body;
    assert_eq!(status(&v), "delivered");
    assert_eq!(deliveries(&v).len(), 1);
    // An older terminal report by Sequence does not replace a newer one.
    assert_eq!(receipt(&app, &id, "m-1", "undelivered", "1").await, 200);
    assert_eq!(
        status(&app.get(&format!("/v1/verifications/{id}")).await.body),
        "delivered"
    );
    // Unknown verifications and malformed receipts still get 200.
    assert_eq!(
        receipt(
            &app,
            "VE00000000000000000000000000000000",
            "m-9",
            "sent",
            "1"
        )
        .await,
        200
    );
    assert_eq!(receipt(&app, "nonsense", "m-9", "sent", "1").await, 200);
}

#[tokio::test]
async fn a_receipt_that_arrives_before_the_send_response_is_not_lost() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/Message/$"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(json!({"message_uuid": ["m-early"]}))
                .set_delay(Duration::from_millis(800)),
        )
        .mount(&plivo)
        .await;
    let (redis, prefix, uri) = (
        crate::common::redis_url(),
        crate::common::unique_prefix(),
        plivo.uri(),
    );
    let app =
        std::sync::Arc::new(crate::common::spawn_with(&live_vars(&redis, &prefix, &uri)).await);
    let to = random_number();
    let starting = {
        let app = app.clone();
        let to = to.clone();
        tokio::spawn(async move { app.start(&to, "sms").await })
    };
    // While Plivo "thinks", its receipt for the message arrives.
    let id = loop {
        let requests = plivo.received_requests().await.unwrap();
        if let Some(r) = requests.first() {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            break body["url"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(receipt(&app, &id, "m-early", "delivered", "3").await, 200);
    let started = starting.await.unwrap();
    assert_eq!(started.status, 201);
    let v = app.get(&format!("/v1/verifications/{id}")).await.body;
    assert_eq!(deliveries(&v).len(), 1, "{v}");
    assert_eq!(deliveries(&v)[0]["status"], "delivered");
}

#[tokio::test]
async fn the_phlo_definition_runs_in_the_sandbox_for_both_modes() {
    let app = spawn_app(&[("PLIVO_PHLO_ID", "2fa-phlo-0001"), FAST_JOBS]).await;
    // mode sms: the Send Message node, then receipts to the PHLO callback.
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.last_sms_code(&to).await;
    let sms = app
        .sandbox_messages()
        .await
        .into_iter()
        .find(|m| m["to"] == to.as_str())
        .unwrap();
    assert!(sms["text"].as_str().unwrap().contains("Do not share"));
    app.wait_for(&id, |v| has(v, "sms", "delivered")).await;
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
    // mode call: Initiate Call, then the code read out digit by digit.
    let to = random_number();
    let id = app.start(&to, "voice").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = app.finished_call(&to).await;
    assert!(
        call["answer_xml"]
            .as_str()
            .unwrap()
            .contains(r#"interpret-as="digits""#)
    );
    // One Speak reads the code twice: twelve digits, the same six repeated.
    let digits = crate::common::spoken_digits(call["spoken"].as_str().unwrap());
    assert_eq!(digits.len(), 12, "{call}");
    let code = digits[..6].to_owned();
    assert_eq!(&digits[6..], code);
    app.wait_for(&id, |v| has(v, "voice", "completed")).await;
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
}
