//! The WhatsApp channel: who may start on it, the template message Plivo
//! gets (wiremock answering as Plivo's docs do), its receipts' order, and
//! the fallback chain WhatsApp → SMS → voice through the sandbox over real
//! HTTP.

use std::time::Duration;

use crate::common::{API_KEY, TestApp, code_in, deliveries, has, random_number, spawn_app};
use crate::faults::{AUTH_ID, AUTH_TOKEN, try_live_app};
use plivo_2fa::sandbox::numbers;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FAST_JOBS: (&str, &str) = ("SCHEDULER_POLL_MS", "20");
const WHATSAPP_FROM: &str = "+14155550197";
const TEMPLATE: &str = "otp_copy_code";
const WHATSAPP: [(&str, &str); 2] = [
    ("PLIVO_WHATSAPP_FROM", WHATSAPP_FROM),
    ("WHATSAPP_TEMPLATE", TEMPLATE),
];
const PUBLIC: &str = "https://otp.example.com";

/// The sandbox with WhatsApp on, and `extra`.
async fn sandbox(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![FAST_JOBS];
    vars.extend_from_slice(&WHATSAPP);
    vars.extend_from_slice(extra);
    spawn_app(&vars).await
}

/// Live mode with WhatsApp on, Plivo being `plivo`, and `extra`.
async fn live_app(plivo: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    // Start-up's credentials check would be one more request Plivo saw.
    let mut vars = WHATSAPP.to_vec();
    vars.push(("PLIVO_CHECK_CREDENTIALS", "off"));
    vars.extend_from_slice(extra);
    try_live_app(plivo, &vars).await.expect("the app starts")
}

/// Plivo answers a Message request as its docs show (202, one message_uuid).
async fn plivo_accepting_messages() -> MockServer {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/Account/{AUTH_ID}/Message/")))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({
            "api_id": "db342550-7f1d-11e1-8ea7-1231380bc196",
            "message": "message(s) queued",
            "message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"]
        })))
        .mount(&plivo)
        .await;
    plivo
}

async fn start_id(app: &TestApp, to: &str, channel: &str) -> String {
    let r = app.start(to, channel).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// The messages the sandbox delivered to `to`, oldest first.
async fn messages_to(app: &TestApp, to: &str) -> Vec<Value> {
    app.sandbox_messages()
        .await
        .into_iter()
        .filter(|m| m["to"] == to)
        .collect()
}

/// Waits (bounded) until the sandbox delivered `count` messages to `to`.
async fn wait_for_messages(app: &TestApp, to: &str, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let list = messages_to(app, to).await;
        if list.len() >= count {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "never {count} messages to {to}: {:?}",
        messages_to(app, to).await
    );
}

/// Moves the clock well past every fallback delay and lets the job worker
/// look: what was sent by then is all that will be.
async fn long_after(app: &TestApp) {
    app.advance(Duration::from_secs(120));
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The code of a WhatsApp message as sent: its template's body parameter.
fn template_code(m: &Value) -> String {
    m["template"]["components"][0]["parameters"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_whatsapp_start_without_its_sender_and_template_is_400_channel_not_enabled() {
    let app = spawn_app(&[]).await;
    let r = app.start(&random_number(), "whatsapp").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "channel_not_enabled");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("WHATSAPP_TEMPLATE")
    );
    // Configured, but left out of the application's channels.
    let off = sandbox(&[("CHANNELS", "sms,voice")]).await;
    let r = off.start(&random_number(), "whatsapp").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "channel_not_enabled");
    assert!(off.sandbox_messages().await.is_empty());
}

#[tokio::test]
async fn a_live_whatsapp_start_posts_plivos_template_message_with_the_code_in_body_and_button_and_no_text()
 {
    let plivo = plivo_accepting_messages().await;
    let app = live_app(&plivo, &[]).await;
    let to = "+34600111222";
    let r = app
        .post_json(
            "/v1/verifications",
            json!({"to": to, "channel": "whatsapp", "locale": "es-ES"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["channel"], "whatsapp");
    assert_eq!(r.body["deliveries"][0]["channel"], "whatsapp");
    assert_eq!(
        r.body["deliveries"][0]["provider_id"],
        "db3ce55a-7f1d-11e1-8ea7-1231380bc196"
    );
    let sent = crate::common::received_json(&plivo).await;
    assert_eq!(sent.len(), 1);
    let code = sent[0]["template"]["components"][0]["parameters"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 6);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        sent[0],
        json!({
            "src": WHATSAPP_FROM,
            "dst": to,
            "type": "whatsapp",
            "url": format!("{PUBLIC}/plivo/message-status/{id}"),
            "method": "POST",
            "log": "false",
            "template": {
                "name": TEMPLATE,
                "language": "es_ES",
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": code}]},
                    {"type": "button", "sub_type": "url", "index": "0",
                     "parameters": [{"type": "text", "text": code}]}
                ]
            }
        })
    );
    assert!(sent[0].get("text").is_none());
    assert!(!sent[0]["url"].as_str().unwrap().contains(&code));
    assert_eq!(app.check(to, &code).await.body["status"], "approved");
}

#[tokio::test]
async fn the_template_language_follows_the_locale_then_its_language_then_english() {
    let plivo = plivo_accepting_messages().await;
    let app = live_app(&plivo, &[]).await;
    for (locale, language) in [
        ("en-US", "en_US"),
        ("pt-BR", "pt_BR"),
        ("es-CL", "es"),
        ("fr-CA", "fr"),
        ("eu", "en"),
    ] {
        let r = app
            .post_json(
                "/v1/verifications",
                json!({"to": random_number(), "channel": "whatsapp", "locale": locale}),
            )
            .await;
        assert_eq!(r.status, 201, "{locale}: {}", r.body);
        let sent = crate::common::received_json(&plivo).await;
        assert_eq!(
            sent.last().unwrap()["template"]["language"],
            language,
            "{locale}"
        );
    }
}

async fn receipt(app: &TestApp, id: &str, status: &str, sequence: &str) -> u16 {
    let url = format!("{PUBLIC}/plivo/message-status/{id}");
    app.post_signed(
        &app.url(&format!("/plivo/message-status/{id}")),
        &url,
        AUTH_TOKEN,
        &crate::common::nonce(),
        &[
            ("MessageUUID", "db3ce55a-7f1d-11e1-8ea7-1231380bc196"),
            ("Type", "whatsapp"),
            ("Status", status),
            ("ErrorCode", "000"),
            ("Sequence", sequence),
            ("To", "34600111222"),
            ("ConversationOrigin", "authentication"),
        ],
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn whatsapp_receipts_go_delivered_then_read_and_never_backwards() {
    let plivo = plivo_accepting_messages().await;
    let app = live_app(&plivo, &[("FALLBACK", "false")]).await;
    let id = start_id(&app, "+34600111222", "whatsapp").await;
    let status = || async {
        let v = app.get(&format!("/v1/verifications/{id}")).await.body;
        assert_eq!(deliveries(&v).len(), 1, "{v}");
        assert_eq!(v["deliveries"][0]["channel"], "whatsapp");
        v["deliveries"][0]["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(receipt(&app, &id, "sent", "1").await, 200);
    assert_eq!(receipt(&app, &id, "delivered", "2").await, 200);
    assert_eq!(status().await, "delivered");
    assert_eq!(receipt(&app, &id, "read", "3").await, 200);
    assert_eq!(status().await, "read");
    // Late and repeated reports, even with a later Sequence, stay below read.
    for (late, sequence) in [("delivered", "4"), ("sent", "5"), ("failed", "6")] {
        assert_eq!(receipt(&app, &id, late, sequence).await, 200);
        assert_eq!(status().await, "read", "after a late {late}");
    }
}

#[tokio::test]
async fn a_failed_whatsapp_message_falls_back_once_to_an_sms_with_the_same_code() {
    let app = sandbox(&[]).await;
    let to = numbers::NOT_ON_WHATSAPP;
    let id = start_id(&app, to, "whatsapp").await;
    let v = app.wait_for(&id, |v| has(v, "sms", "delivered")).await;
    let whatsapp = deliveries(&v)
        .into_iter()
        .find(|d| d["channel"] == "whatsapp")
        .unwrap();
    assert_eq!(whatsapp["status"], "failed");
    assert_eq!(whatsapp["error_code"], numbers::NOT_ON_WHATSAPP_ERROR);
    let sent = messages_to(&app, to).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["type"], "whatsapp");
    assert_eq!(sent[1]["type"], "sms");
    let sms_code = code_in(sent[1]["text"].as_str().unwrap());
    assert_eq!(sms_code, template_code(&sent[0]), "the same code");
    // Long past the fallback delay: the SMS arrived, so no call.
    long_after(&app).await;
    assert!(app.sandbox_calls().await.is_empty());
    assert_eq!(messages_to(&app, to).await.len(), 2);
    let v = app.get(&format!("/v1/verifications/{id}")).await.body;
    assert_eq!(deliveries(&v).len(), 2, "{v}");
    assert_eq!(v["channel"], "whatsapp");
    assert_eq!(app.check(to, &sms_code).await.body["status"], "approved");
}

#[tokio::test]
async fn a_failed_whatsapp_message_then_an_undelivered_sms_end_in_one_call_with_the_same_code() {
    let app = sandbox(&[]).await;
    let to = numbers::SMS_UNDELIVERED;
    let id = start_id(&app, to, "whatsapp").await;
    let v = app.wait_for(&id, |v| has(v, "voice", "completed")).await;
    assert!(has(&v, "whatsapp", "failed"), "{v}");
    assert!(has(&v, "sms", "undelivered"), "{v}");
    assert_eq!(deliveries(&v).len(), 3, "{v}");
    let sent = messages_to(&app, to).await;
    assert_eq!(
        sent.iter().map(|m| m["type"].clone()).collect::<Vec<_>>(),
        vec!["whatsapp", "sms"]
    );
    let code = template_code(&sent[0]);
    assert_eq!(app.spoken_code(to, code.len()).await, code);
    assert_eq!(app.sandbox_calls().await.len(), 1);
    assert_eq!(app.check(to, &code).await.body["status"], "approved");
}

#[tokio::test]
async fn a_whatsapp_message_without_a_receipt_falls_back_to_sms_after_fallback_after_secs_then_to_voice()
 {
    let app = sandbox(&[("FALLBACK_AFTER_SECS", "45")]).await;
    let to = numbers::SMS_NO_RECEIPT;
    let id = start_id(&app, to, "whatsapp").await;
    app.advance(Duration::from_secs(44));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        messages_to(&app, to).await.len(),
        1,
        "not before the timeout"
    );
    app.advance(Duration::from_secs(1));
    let sent = wait_for_messages(&app, to, 2).await;
    assert_eq!(sent[1]["type"], "sms");
    assert_eq!(
        code_in(sent[1]["text"].as_str().unwrap()),
        template_code(&sent[0])
    );
    // The SMS gets no receipt either: its own wait, then the call.
    let v = app
        .fallback_call_after(&id, Duration::from_secs(45), "not before the SMS's timeout")
        .await;
    assert_eq!(v["status"], "pending");
    assert_eq!(app.sandbox_calls().await.len(), 1);
    assert_eq!(messages_to(&app, to).await.len(), 2);
}

#[tokio::test]
async fn max_sends_bounds_the_fallback_chain() {
    let app = sandbox(&[("MAX_SENDS", "2")]).await;
    let to = numbers::SMS_UNDELIVERED;
    let id = start_id(&app, to, "whatsapp").await;
    let v = app.wait_for(&id, |v| has(v, "sms", "undelivered")).await;
    assert!(has(&v, "whatsapp", "failed"), "{v}");
    long_after(&app).await;
    assert!(
        app.sandbox_calls().await.is_empty(),
        "a third send is past MAX_SENDS"
    );
    assert_eq!(messages_to(&app, to).await.len(), 2);
}

#[tokio::test]
async fn fallback_channels_voice_makes_a_failed_whatsapp_message_a_call_without_an_sms() {
    let app = sandbox(&[("FALLBACK_CHANNELS", "voice")]).await;
    let to = numbers::NOT_ON_WHATSAPP;
    let id = start_id(&app, to, "whatsapp").await;
    let v = app.wait_for(&id, |v| has(v, "voice", "completed")).await;
    assert_eq!(deliveries(&v).len(), 2, "{v}");
    let sent = messages_to(&app, to).await;
    assert_eq!(sent.len(), 1, "no SMS: {sent:?}");
    assert_eq!(sent[0]["type"], "whatsapp");
}

#[tokio::test]
async fn a_whatsapp_message_that_is_read_ends_the_wait_and_nothing_follows() {
    let app = sandbox(&[]).await;
    let to = random_number();
    let id = start_id(&app, &to, "whatsapp").await;
    app.wait_for(&id, |v| has(v, "whatsapp", "read")).await;
    let sent = messages_to(&app, &to).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "whatsapp");
    assert_eq!(sent[0]["from"], WHATSAPP_FROM);
    assert_eq!(sent[0]["status"], "read");
    assert!(
        sent[0]["text"]
            .as_str()
            .unwrap()
            .contains(&template_code(&sent[0]))
    );
    long_after(&app).await;
    assert_eq!(messages_to(&app, &to).await.len(), 1);
    assert!(app.sandbox_calls().await.is_empty());
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(
            "plivo2fa_verifications_started_total{channel=\"whatsapp\",application=\"default\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "plivo2fa_deliveries_total{channel=\"whatsapp\",status=\"read\",error_code=\"\",application=\"default\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_table_without_whatsapp_refuses_it_while_the_default_sends_it() {
    let tables = [crate::common::table(
        "shop",
        &[
            ("API_KEYS", "shop-key-0123456789"),
            ("CHANNELS", "sms,voice"),
        ],
    )];
    let redis = crate::common::redis_url();
    let prefix = crate::common::unique_prefix();
    let vars = [
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("API_KEYS", API_KEY),
        WHATSAPP[0],
        WHATSAPP[1],
    ];
    let app = crate::common::try_spawn_with_tables(&vars, &tables)
        .await
        .unwrap();
    assert_eq!(app.start(&random_number(), "whatsapp").await.status, 201);
    let shop = app.with_key("shop-key-0123456789");
    let r = shop.start(&random_number(), "whatsapp").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "channel_not_enabled");
}

#[tokio::test]
async fn a_bad_fallback_channels_value_stops_start_up_naming_it() {
    let e = crate::common::try_spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("FALLBACK_CHANNELS", "sms,whatsapp"),
    ])
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(e.starts_with("FALLBACK_CHANNELS: "), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}
