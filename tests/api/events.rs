//! Events out: signed, verifiable by the receiver, and retried after it fails.

use std::time::Duration;

use crate::common::{random_number, spawn_app};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET_BYTES: &[u8] = b"an-events-secret-of-32-bytes!!!!";

/// What a receiver does, written from the Standard Webhooks description, not from the server's code.
fn verify(secret: &[u8], id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()))
}

struct Received {
    id: String,
    kind: String,
    verification: String,
    body: Value,
}

async fn received(receiver: &MockServer) -> Vec<Received> {
    receiver
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let header = |n: &str| r.headers.get(n).unwrap().to_str().unwrap().to_owned();
            let (id, ts, sig) = (
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
            );
            assert!(
                verify(SECRET_BYTES, &id, &ts, &r.body, &sig),
                "bad signature on {id}"
            );
            assert!(!verify(
                b"some-other-secret-of-32-bytes!!!",
                &id,
                &ts,
                &r.body,
                &sig
            ));
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            Received {
                id,
                kind: body["type"].as_str().unwrap().to_owned(),
                verification: body["data"]["id"].as_str().unwrap().to_owned(),
                body,
            }
        })
        .collect()
}

async fn wait_until(
    receiver: &MockServer,
    what: &str,
    check: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    for _ in 0..300 {
        let got = received(receiver).await;
        if check(&got) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "never received {what}: {:?}",
        received(receiver)
            .await
            .iter()
            .map(|r| r.kind.clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn events_are_signed_verifiable_and_retried_after_the_receiver_fails() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let secret = format!("whsec_{}", STANDARD.encode(SECRET_BYTES));
    let url = receiver.uri();
    let app = spawn_app(&[
        ("WEBHOOK_URL", &url),
        ("WEBHOOK_SECRET", &secret),
        ("SCHEDULER_POLL_MS", "20"),
    ])
    .await;

    // approved (after the receipts' delivery.updated events)
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for(&id, |v| v["deliveries"][0]["status"] == "delivered")
        .await;
    let code = app.last_sms_code(&to).await;
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
    // The first attempt got a 500; the retry waits for its backoff.
    wait_until(&receiver, "the first attempt", |r| !r.is_empty()).await;
    app.advance(Duration::from_secs(6));
    // Both must arrive, in either order: the approval may be sent before the
    // failed event's retry comes due.
    let got = wait_until(&receiver, "approved, and the failed event retried", |r| {
        r.iter().any(|e| e.kind == "verification.approved")
            && r.iter().skip(1).any(|e| e.id == r[0].id)
    })
    .await;
    let first = &got[0];
    assert!(
        got.iter()
            .skip(1)
            .any(|e| e.id == first.id && e.body == first.body),
        "the failed event was retried with the same id and body"
    );
    assert!(
        got.iter()
            .any(|e| e.kind == "delivery.updated" && e.verification == id)
    );
    let approved = got
        .iter()
        .find(|e| e.kind == "verification.approved")
        .unwrap();
    assert_eq!(approved.body["data"]["status"], "approved");
    assert!(
        !approved.body.to_string().contains(&code),
        "events never carry the code"
    );

    // canceled
    let other = app.start(&random_number(), "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_json(
        &format!("/v1/verifications/{other}/cancel"),
        serde_json::json!({}),
    )
    .await;
    wait_until(&receiver, "canceled", |r| {
        r.iter()
            .any(|e| e.kind == "verification.canceled" && e.verification == other)
    })
    .await;

    // failed (Plivo answers 500 for this test number)
    let r = app
        .start(plivo_2fa::sandbox::numbers::API_ERROR_500, "sms")
        .await;
    assert_eq!(r.status, 502);
    wait_until(&receiver, "failed", |r| {
        r.iter().any(|e| e.kind == "verification.failed")
    })
    .await;

    // expired, by the expiry job once the lifetime has passed
    let late = app.start(&random_number(), "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.advance(Duration::from_secs(601));
    wait_until(&receiver, "expired", |r| {
        r.iter()
            .any(|e| e.kind == "verification.expired" && e.verification == late)
    })
    .await;
}
