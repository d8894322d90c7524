//! What a leaked Redis dump gives away: after whole SMS, voice and fallback
//! flows (with webhook events waiting to be delivered), every key and every
//! value is searched for the numbers, in any form, and for the codes.

use crate::common::random_number;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A connection to the test Redis, and the keys that match `pattern` on it.
async fn keys_matching(pattern: &str) -> (redis::aio::MultiplexedConnection, Vec<String>) {
    let mut conn = crate::common::redis_conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    (conn, keys)
}

/// Every key under `prefix` and every value it holds, as text.
async fn dump(prefix: &str) -> String {
    let (mut conn, keys) = keys_matching(&format!("{prefix}:*")).await;
    assert!(keys.len() > 10, "the flows wrote to Redis: {keys:?}");
    let mut out = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<String> = match kind.as_str() {
            "string" => vec![
                redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            ],
            "hash" => redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .unwrap(),
            "set" => redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "list" => redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "none" => continue,
            other => panic!("{key} is a {other}"),
        };
        out.push_str(&key);
        out.push('\n');
        for v in values {
            out.push_str(&v);
            out.push('\n');
        }
    }
    out
}

#[tokio::test]
async fn a_redis_dump_after_sms_voice_and_fallback_flows_holds_no_number_and_no_code() {
    // The receiver refuses every event, so they all stay queued in Redis.
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&receiver)
        .await;
    let url = receiver.uri();
    let prefix = crate::common::unique_prefix();
    let redis = crate::common::redis_url();
    // Ten-digit codes: a code found by chance inside a timestamp is then out of the question.
    let app = crate::common::spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", &redis),
        ("REDIS_KEY_PREFIX", &prefix),
        ("API_KEYS", crate::common::API_KEY),
        ("OTP_SECRET", crate::common::OTP_SECRET),
        ("OTP_LENGTH", "10"),
        ("SCHEDULER_POLL_MS", "20"),
        ("WEBHOOK_URL", &url),
        ("WEBHOOK_SECRET", "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"),
    ])
    .await;
    let mut numbers = Vec::new();
    let mut codes = Vec::new();

    // SMS: delivered, one wrong code, approved.
    let sms = random_number();
    let id = app.start(&sms, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for(&id, |v| v["deliveries"][0]["status"] == "delivered")
        .await;
    let code = app.last_sms_code(&sms).await;
    app.check(&sms, &crate::common::wrong(&code)).await;
    assert_eq!(app.check(&sms, &code).await.body["status"], "approved");
    numbers.push(sms);
    codes.push(code);

    // SMS left pending: its code is still at rest (as a digest and a seal).
    let pending = random_number();
    assert_eq!(app.start(&pending, "sms").await.status, 201);
    codes.push(app.last_sms_code(&pending).await);
    numbers.push(pending);

    // Voice: the call reads the code out, and it approves.
    let voice = random_number();
    let id = app.start(&voice, "voice").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let spoken = app.spoken_code(&voice, 10).await;
    app.wait_for(&id, |v| v["deliveries"][0]["status"] == "completed")
        .await;
    assert_eq!(app.check(&voice, &spoken).await.body["status"], "approved");
    numbers.push(voice);
    codes.push(spoken);

    // Fallback: the SMS is undelivered, so a call reads the code out.
    let fallback = plivo_2fa::sandbox::numbers::SMS_UNDELIVERED.to_owned();
    let id = app.start(&fallback, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for_completed_call(&id).await;
    codes.push(app.last_sms_code(&fallback).await);
    numbers.push(fallback);

    // The events are waiting for the receiver.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while receiver.received_requests().await.unwrap().len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "events were not attempted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let text = dump(&prefix).await;
    assert!(text.contains(":blob:evt_"), "events are queued: {text}");
    for number in &numbers {
        let national = number.strip_prefix("+1").unwrap();
        for form in [number.as_str(), &number[1..], national] {
            assert!(!text.contains(form), "{form} is in the dump:\n{text}");
        }
    }
    for code in &codes {
        assert!(
            !text.contains(code.as_str()),
            "the code {code} is in the dump:\n{text}"
        );
    }
}

/// The record of verification `id` under `prefix`: its digest, sealed code,
/// status and attempts as stored (an absent field as `None`), and its TTL.
async fn record(prefix: &str, id: &str) -> (Vec<Option<String>>, i64) {
    let (mut conn, keys) = keys_matching(&format!("{prefix}:*:v:{id}")).await;
    assert_eq!(keys.len(), 1, "one record for {id}: {keys:?}");
    let fields: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(&keys[0])
        .arg(&["digest", "sealed", "status", "attempts"])
        .query_async(&mut conn)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    (fields, ttl)
}

#[tokio::test]
async fn a_verification_that_ends_approved_exhausted_canceled_or_expired_keeps_no_digest_and_no_sealed_code()
 {
    let prefix = crate::common::unique_prefix();
    let app = crate::common::spawn_app_under(&prefix, &[("MAX_ATTEMPTS", "2")]).await;
    let id_of = |reply: &crate::common::Reply| reply.body["id"].as_str().unwrap().to_owned();

    let approved = random_number();
    let approved_id = id_of(&app.start(&approved, "sms").await);
    let code = app.last_sms_code(&approved).await;
    assert_eq!(app.check(&approved, &code).await.body["status"], "approved");

    let exhausted = random_number();
    let exhausted_id = id_of(&app.start(&exhausted, "sms").await);
    let code = app.last_sms_code(&exhausted).await;
    app.check(&exhausted, &crate::common::wrong(&code)).await;
    assert_eq!(
        app.check(&exhausted, &crate::common::wrong(&code))
            .await
            .status,
        429
    );

    let canceled = random_number();
    let canceled_id = id_of(&app.start(&canceled, "sms").await);
    let reply = app
        .post_json(
            &format!("/v1/verifications/{canceled_id}/cancel"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(reply.body["status"], "canceled", "{}", reply.body);

    // Still pending: its code material is at rest, and this is where the
    // lookups below find it.
    let pending = random_number();
    let pending_id = id_of(&app.start(&pending, "sms").await);
    let (fields, _) = record(&prefix, &pending_id).await;
    assert!(
        fields[0].as_deref().is_some_and(|d| d.len() == 64) && fields[1].is_some(),
        "{fields:?}"
    );

    let expired = random_number();
    let expired_id = id_of(&app.start(&expired, "sms").await);
    let code = app.last_sms_code(&expired).await;
    app.advance(std::time::Duration::from_secs(24 * 3600));
    app.check(&expired, &code).await;

    for (id, status, attempts) in [
        (&approved_id, "approved", "0"),
        (&exhausted_id, "max_attempts_reached", "2"),
        (&canceled_id, "canceled", "0"),
        (&expired_id, "expired", "0"),
    ] {
        let (fields, ttl) = record(&prefix, id).await;
        for (name, value) in ["digest", "sealed"].iter().zip(&fields) {
            assert!(
                value.as_deref().unwrap_or("").is_empty(),
                "{status}: {name} is {value:?}"
            );
        }
        assert_eq!(fields[2].as_deref(), Some(status), "{fields:?}");
        assert_eq!(fields[3].as_deref(), Some(attempts), "{status}: {fields:?}");
        // Kept for the retention period (a day), not the code's lifetime.
        assert!(ttl > 3_600_000, "{status}: PTTL {ttl}");
    }
}
