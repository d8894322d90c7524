//! Applications: several apps in one server, each seeing only its own
//! verifications, events and limits, through the real HTTP stack with a
//! `--config` file of `[applications.<id>]` tables; the start-up refusals;
//! and the rolling upgrade from the layout of the version before
//! applications.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use plivo_2fa::domain::{
    CodeLength, Delivery, DeliveryStatus, Keyring, OtpCode, PhoneNumber, Timestamp, VerificationId,
};
use secrecy::SecretSlice;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{
    API_KEY, OTP_SECRET, Reply, TestApp, code_in, random_number, received_json, redis_conn,
    redis_url, try_spawn_with_config, unique_prefix, wrong,
};

const SHOP_KEY: &str = "shop-key-0123456789";
const BANK_KEY: &str = "bank-key-0123456789";

/// Two applications besides the default one (the top level's): the shop's
/// codes are 8 digits and its locale Spanish, the bank allows 3 attempts and
/// SMS only.
const TWO_APPS: &str = r#"
[applications.shop]
BRAND_NAME = "Shop"
API_KEYS = "shop-key-0123456789"
OTP_LENGTH = 8
DEFAULT_LOCALE = "es-ES"

[applications.bank]
BRAND_NAME = "Bank"
API_KEYS = ["bank-key-0123456789"]
MAX_ATTEMPTS = 3
CHANNELS = "sms"
"#;

/// The top-level settings every test here starts with, and `extra`.
async fn spawn_apps(toml: &str, prefix: &str, extra: &[(&str, &str)]) -> TestApp {
    let redis = redis_url();
    let mut vars = vec![
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix),
        ("API_KEYS", API_KEY),
        ("BRAND_NAME", "Home"),
    ];
    vars.extend_from_slice(extra);
    try_spawn_with_config(&vars, toml)
        .await
        .expect("the app starts")
}

async fn two_apps(extra: &[(&str, &str)]) -> (TestApp, TestApp, TestApp) {
    let home = spawn_apps(TWO_APPS, &unique_prefix(), extra).await;
    let shop = home.with_key(SHOP_KEY);
    let bank = home.with_key(BANK_KEY);
    (home, shop, bank)
}

fn id_of(r: &Reply) -> String {
    assert!(
        r.status == 201 || r.status == 200,
        "{}: {}",
        r.status,
        r.body
    );
    r.body["id"].as_str().unwrap().to_owned()
}

/// The texts of every SMS the sandbox delivered to `to`, in order.
async fn texts_to(app: &TestApp, to: &str) -> Vec<String> {
    app.sandbox_messages()
        .await
        .iter()
        .filter(|m| m["to"] == to)
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

/// What an id no verification has answers, for the by-id routes.
async fn unknown_id_replies(app: &TestApp, code: &str) -> [Reply; 3] {
    let unknown = VerificationId::generate("abcd");
    by_id_replies(app, unknown.as_str(), code).await
}

/// Get, check by id and cancel of `id`.
async fn by_id_replies(app: &TestApp, id: &str, code: &str) -> [Reply; 3] {
    [
        app.get(&format!("/v1/verifications/{id}")).await,
        app.post_json("/v1/verifications/check", json!({"id": id, "code": code}))
            .await,
        app.post_json(&format!("/v1/verifications/{id}/cancel"), json!({}))
            .await,
    ]
}

fn assert_same_replies(got: &[Reply], unknown: &[Reply], what: &str) {
    for (got, unknown) in got.iter().zip(unknown) {
        assert_eq!(got.status, 404, "{what}: {}", got.body);
        assert_eq!(got.body, unknown.body, "{what}");
    }
}

#[tokio::test]
async fn another_applications_verification_answers_404_exactly_as_an_unknown_id() {
    let (home, shop, bank) = two_apps(&[]).await;
    let to = random_number();
    let started = shop.start(&to, "sms").await;
    let id = id_of(&started);
    assert_eq!(started.body["application"], "shop");
    let code = shop.last_sms_code(&to).await;

    for (other, name, length) in [(&bank, "bank", 6), (&home, "default", 6)] {
        // A code of the length the asking application takes, so the check
        // reaches the store rather than stopping at the code's format.
        let typed = "1".repeat(length);
        let got = by_id_replies(other, &id, &typed).await;
        let unknown = unknown_id_replies(other, &typed).await;
        assert_same_replies(&got, &unknown, name);
        // By number: nothing pending in this application, as for a number
        // nobody started.
        let by_number = other.check(&to, &typed).await;
        let nobody = other.check(&random_number(), &typed).await;
        assert_eq!(by_number.status, 404, "{name}: {}", by_number.body);
        assert_eq!(by_number.body, nobody.body, "{name}");
    }

    // Nothing the others tried changed it: no attempt spent, not canceled.
    let own = shop.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.body["status"], "pending");
    assert_eq!(own.body["attempts_remaining"], 5);
    assert_eq!(own.body["application"], "shop");
    let right = shop.check(&to, &code).await;
    assert_eq!(right.body["status"], "approved", "{}", right.body);
    assert_eq!(right.body["application"], "shop");
}

#[tokio::test]
async fn one_number_is_pending_in_two_applications_with_its_own_code_and_sms_each() {
    let (_home, shop, bank) = two_apps(&[]).await;
    let to = random_number();
    let in_shop = shop.start(&to, "sms").await;
    let in_bank = bank.start(&to, "sms").await;
    // Both new: neither start re-sent the other application's code.
    assert_eq!(in_shop.status, 201, "{}", in_shop.body);
    assert_eq!(in_bank.status, 201, "{}", in_bank.body);
    let (shop_id, bank_id) = (id_of(&in_shop), id_of(&in_bank));
    assert_ne!(shop_id, bank_id);
    assert_eq!(in_shop.body["application"], "shop");
    assert_eq!(in_bank.body["application"], "bank");

    let texts = texts_to(&shop, &to).await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    let shop_text = texts.iter().find(|t| t.contains("Shop")).unwrap();
    let bank_text = texts.iter().find(|t| t.contains("Bank")).unwrap();
    assert!(!shop_text.contains("Bank") && !bank_text.contains("Shop"));
    assert!(texts.iter().all(|t| !t.contains("Home")), "{texts:?}");
    let (shop_code, bank_code) = (code_in(shop_text), code_in(bank_text));
    assert_eq!(shop_code.len(), 8, "{shop_text}");
    assert_eq!(bank_code.len(), 6, "{bank_text}");

    // One application's approval leaves the other's pending.
    let approved = shop.check(&to, &shop_code).await;
    assert_eq!(approved.body["status"], "approved", "{}", approved.body);
    assert_eq!(approved.body["id"], shop_id.as_str());
    let still = bank.get(&format!("/v1/verifications/{bank_id}")).await;
    assert_eq!(still.body["status"], "pending");
    let approved = bank.check(&to, &bank_code).await;
    assert_eq!(approved.body["status"], "approved", "{}", approved.body);
    assert_eq!(approved.body["id"], bank_id.as_str());
}

#[tokio::test]
async fn each_application_has_its_own_code_length_attempts_channels_and_locale() {
    let (home, shop, bank) = two_apps(&[]).await;

    // OTP_LENGTH: the shop's 8 digits; a 6-digit code is not one of its codes.
    let to = random_number();
    id_of(&shop.start(&to, "sms").await);
    let typed = shop.check(&to, "123456").await;
    assert_eq!(typed.status, 400, "{}", typed.body);
    assert_eq!(typed.body["error"]["code"], "invalid_code");

    // DEFAULT_LOCALE: a start that names none gets the shop's; the others keep en-US.
    let v = shop
        .get(&format!(
            "/v1/verifications/{}",
            id_of(&shop.start(&random_number(), "sms").await)
        ))
        .await;
    assert_eq!(v.body["locale"], "es-ES");
    assert_eq!(
        home.start(&random_number(), "sms").await.body["locale"],
        "en-US"
    );

    // MAX_ATTEMPTS: the bank's 3, the default's 5.
    let to = random_number();
    id_of(&bank.start(&to, "sms").await);
    let code = bank.last_sms_code(&to).await;
    let first = bank.check(&to, &wrong(&code)).await;
    assert_eq!(first.body["attempts_remaining"], 2, "{}", first.body);
    bank.check(&to, &wrong(&code)).await;
    let last = bank.check(&to, &wrong(&code)).await;
    assert_eq!(last.status, 429, "{}", last.body);
    assert_eq!(last.body["error"]["code"], "max_attempts_reached");
    let to = random_number();
    id_of(&home.start(&to, "sms").await);
    let code = home.last_sms_code(&to).await;
    assert_eq!(
        home.check(&to, &wrong(&code)).await.body["attempts_remaining"],
        4
    );

    // CHANNELS: the bank sends SMS only; the shop may call.
    let voice = bank.start(&random_number(), "voice").await;
    assert_eq!(voice.status, 400, "{}", voice.body);
    assert_eq!(voice.body["error"]["code"], "channel_not_enabled");
    assert!(
        voice.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not enabled for this application")
    );
    assert_eq!(shop.start(&random_number(), "voice").await.status, 201);
}

#[tokio::test]
async fn limits_are_counted_apart_for_each_application() {
    let (_home, shop, bank) = two_apps(&[
        ("RATE_LIMIT_NUMBER", "1/1h"),
        ("RATE_LIMIT_API_KEY", "3/1h"),
    ])
    .await;
    let to = random_number();
    let first = id_of(&shop.start(&to, "sms").await);
    let canceled = shop
        .post_json(&format!("/v1/verifications/{first}/cancel"), json!({}))
        .await;
    assert_eq!(canceled.body["status"], "canceled");
    // The shop spent this number's one send of the hour…
    let again = shop.start(&to, "sms").await;
    assert_eq!(again.status, 429, "{}", again.body);
    assert_eq!(again.body["error"]["code"], "number_rate_limited");
    // …and its key's three starts.
    assert_eq!(shop.start(&random_number(), "sms").await.status, 201);
    let over = shop.start(&random_number(), "sms").await;
    assert_eq!(over.status, 429, "{}", over.body);
    assert_eq!(over.body["error"]["code"], "api_key_rate_limited");
    // The bank has both of its own.
    let in_bank = bank.start(&to, "sms").await;
    assert_eq!(in_bank.status, 201, "{}", in_bank.body);
    assert_eq!(bank.start(&random_number(), "sms").await.status, 201);
    assert_eq!(bank.start(&random_number(), "sms").await.status, 201);
}

#[tokio::test]
async fn the_global_budget_is_one_ceiling_across_every_application() {
    let (home, shop, bank) = two_apps(&[("RATE_LIMIT_GLOBAL", "2/1h")]).await;
    assert_eq!(shop.start(&random_number(), "sms").await.status, 201);
    assert_eq!(bank.start(&random_number(), "sms").await.status, 201);
    // Two starts in all, whichever applications made them: the server's
    // (its one Plivo account's) budget is spent for everyone.
    for app in [&home, &shop, &bank] {
        let over = app.start(&random_number(), "sms").await;
        assert_eq!(over.status, 429, "{}", over.body);
        assert_eq!(over.body["error"]["code"], "global_budget_exhausted");
    }
}

/// A receiver of one application's events, taking every one.
async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    server
}

/// Waits (bounded) until `receiver` has an event of type `kind`.
async fn wait_for_event(receiver: &MockServer, kind: &str) -> Vec<Value> {
    for _ in 0..1_000 {
        let events = received_json(receiver).await;
        if events.iter().any(|e| e["type"] == kind) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {kind} event: {:?}", received_json(receiver).await);
}

#[tokio::test]
async fn each_applications_events_go_to_its_own_webhook_and_name_it() {
    let (shop_hook, bank_hook) = (receiver().await, receiver().await);
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let toml = format!(
        r#"
[applications.shop]
BRAND_NAME = "Shop"
API_KEYS = "{SHOP_KEY}"
WEBHOOK_URL = "{}/shop"
WEBHOOK_SECRET = "{secret}"

[applications.bank]
BRAND_NAME = "Bank"
API_KEYS = "{BANK_KEY}"
WEBHOOK_URL = "{}/bank"
WEBHOOK_SECRET = "{secret}"
"#,
        shop_hook.uri(),
        bank_hook.uri()
    );
    let home = spawn_apps(&toml, &unique_prefix(), &[("SCHEDULER_POLL_MS", "20")]).await;
    let (shop, bank) = (home.with_key(SHOP_KEY), home.with_key(BANK_KEY));
    let to = random_number();
    let shop_id = id_of(&shop.start(&to, "sms").await);
    let code = shop.last_sms_code(&to).await;
    let bank_id = id_of(&bank.start(&to, "sms").await);
    assert_eq!(shop.check(&to, &code).await.body["status"], "approved");
    let canceled = bank
        .post_json(&format!("/v1/verifications/{bank_id}/cancel"), json!({}))
        .await;
    assert_eq!(canceled.body["status"], "canceled");
    // The default application has no webhook: its verification is no one's event.
    id_of(&home.start(&random_number(), "sms").await);

    for (hook, name, id, kind) in [
        (&shop_hook, "shop", &shop_id, "verification.approved"),
        (&bank_hook, "bank", &bank_id, "verification.canceled"),
    ] {
        let events = wait_for_event(hook, kind).await;
        for e in &events {
            assert_eq!(e["data"]["application"], name, "{e}");
            assert_eq!(e["data"]["id"], id.as_str(), "{e}");
        }
    }
    for request in shop_hook.received_requests().await.unwrap() {
        assert_eq!(request.url.path(), "/shop");
    }
    for request in bank_hook.received_requests().await.unwrap() {
        assert_eq!(request.url.path(), "/bank");
    }
}

/// Every `application` label value in a metrics scrape.
fn application_labels(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split("application=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn metrics_label_only_the_configured_applications() {
    let prefix = unique_prefix();
    let (home, shop, bank) = {
        let home = spawn_apps(TWO_APPS, &prefix, &[("OTP_SECRET", OTP_SECRET)]).await;
        let (shop, bank) = (home.with_key(SHOP_KEY), home.with_key(BANK_KEY));
        (home, shop, bank)
    };
    for app in [&home, &shop, &bank] {
        let to = random_number();
        id_of(&app.start(&to, "sms").await);
        let code = app.last_sms_code(&to).await;
        app.check(&to, &code).await;
    }
    // A verification of an application this server no longer serves (its
    // table removed since), written as the start script writes one, gets a
    // delivery receipt.
    let now = home.now();
    let old = OldVerification::start(&prefix, &random_number(), (5, 3_600_000), now).await;
    old.set_application("retired").await;
    let receipt = Delivery {
        channel: plivo_2fa::domain::Channel::Sms,
        provider_id: "8152b05a-3c04-11e9-aa1e-06c75f1208d2".to_owned(),
        status: DeliveryStatus::Delivered,
        error_code: None,
        updated_at: now.as_millis(),
        call: None,
        sequence: None,
        created_at: None,
    };
    let id = VerificationId::parse(&old.id).unwrap();
    assert!(
        home.use_cases
            .receipts
            .message_status(&id, receipt)
            .await
            .unwrap()
    );

    let text = home.metrics_text().await;
    let labels = application_labels(&text);
    let expected: BTreeSet<String> = ["bank", "default", "other", "shop"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(labels, expected, "{text}");
    for name in ["shop", "bank", "default"] {
        for metric in [
            "plivo2fa_verifications_started_total{",
            "plivo2fa_checks_total{outcome=\"approved\"",
        ] {
            assert!(
                text.lines().any(
                    |l| l.starts_with(metric) && l.contains(&format!("application=\"{name}\""))
                ),
                "{metric} for {name}:\n{text}"
            );
        }
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("plivo2fa_deliveries_total{")
                && l.contains("application=\"other\"")),
        "{text}"
    );
}

/// The TOML block of README's "Applications", its elisions filled in.
fn readme_example() -> String {
    let block = crate::common::readme_block("## Applications", "toml");
    let secret = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    block
        .replace("whsec_…", &format!("whsec_{secret}"))
        .replace('…', "0123456789abcdef")
}

#[tokio::test]
async fn the_readmes_example_configuration_starts_the_applications_it_describes() {
    // The test's own address and Redis win over the example's top level.
    let home = spawn_apps(&readme_example(), &unique_prefix(), &[]).await;
    let ids: Vec<&str> = home.apps.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["default", "bank", "shop"]);
    let shop = home.with_key("shop-key-0123456789abcdef");
    let to = random_number();
    let started = shop.start(&to, "sms").await;
    assert_eq!(started.body["application"], "shop", "{}", started.body);
    assert_eq!(started.body["locale"], "es-ES");
    let text = texts_to(&shop, &to).await.pop().unwrap();
    assert!(text.contains("Shop"), "{text}");
    assert_eq!(code_in(&text).len(), 8, "{text}");
    let bank = home.with_key("bank-key-2-0123456789abcdef");
    let voice = bank.start(&random_number(), "voice").await;
    assert_eq!(voice.body["error"]["code"], "channel_not_enabled");
}

#[tokio::test]
async fn the_openapi_document_gives_every_verification_its_application() {
    let (home, _, _) = two_apps(&[]).await;
    let doc = home.get("/openapi.json").await.body;
    let view = &doc["components"]["schemas"]["VerificationView"];
    assert_eq!(view["properties"]["application"]["type"], "string");
    assert!(
        view["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "application"),
        "{view}"
    );
    let get = &doc["paths"]["/v1/verifications/{id}"]["get"]["responses"]["404"];
    assert!(
        get["description"]
            .as_str()
            .unwrap()
            .contains("another application"),
        "{get}"
    );
}

// The version before applications, as it leaves a verification in Redis.

/// A pending SMS verification of the default application written by the
/// start script of the version before applications (the frozen copy in
/// `tests/fixtures/redis-before-applications/`), with the arguments that
/// version's `RedisStore::start` passed: no `app` field on the record, the
/// number's pointer and send counter under the keys of that time. The
/// number's key, the id and the code's digest are made here as that
/// version's keyring made them; the sealed number and code come from
/// today's keyring, whose sealing has not changed since.
struct OldVerification {
    id: String,
    code: String,
    record_key: String,
}

fn secret() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(OTP_SECRET)
        .unwrap()
}

fn keyring() -> Keyring {
    Keyring::new(&[SecretSlice::from(secret())])
}

/// Hex HMAC-SHA256 of `data` under the key derived from `OTP_SECRET` for
/// `label`, as `KeySet::derive` did in the version before applications.
fn derived_mac(label: &[u8], data: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    type HmacSha256 = Hmac<sha2::Sha256>;
    let mut sub = HmacSha256::new_from_slice(&secret()).unwrap();
    sub.update(label);
    let mut mac = HmacSha256::new_from_slice(&sub.finalize().into_bytes()).unwrap();
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

impl OldVerification {
    /// `budget`: the number's sends allowed per window and the window (ms),
    /// as `RATE_LIMIT_NUMBER` gave them.
    async fn start(prefix: &str, to: &str, budget: (u64, u64), now: Timestamp) -> Self {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redis-before-applications");
        let script = std::fs::read_to_string(dir.join("prelude.lua")).unwrap()
            + &std::fs::read_to_string(dir.join("start.lua")).unwrap();
        let keyring = keyring();
        let number = PhoneNumber::parse(to).unwrap();
        // The number's key: its hash under the number label, and the
        // hash's first four hex digits as the Cluster hash tag.
        let hash = derived_mac(b"plivo-2fa/v1/number", number.as_e164().as_bytes());
        let tag = &hash[..4];
        let mut random = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
        let random = hex::encode(random);
        let id = VerificationId::parse(&format!("VE{tag}{}", &random[..28])).unwrap();
        let code = OtpCode::generate(CodeLength::default());
        let digest = derived_mac(b"plivo-2fa/v1/code-digest", code.expose().as_bytes());
        let record_prefix = format!("{prefix}:{{{tag}}}:v:");
        let now_ms = now.as_millis();
        let reply: Vec<redis::Value> = redis::Script::new(&script)
            .key(format!("{prefix}:{{{tag}}}:num:{hash}"))
            .arg(&record_prefix)
            .arg(now_ms)
            .arg(id.as_str())
            .arg(keyring.seal_number(&number, id.as_str()))
            .arg("sms")
            .arg("en-US")
            .arg(now_ms + 10 * 60 * 1000)
            .arg(5)
            .arg(&digest)
            .arg(keyring.seal(&code, id.as_str()))
            .arg(30_000)
            .arg(5)
            .arg(24 * 60 * 60 * 1000)
            .arg(&hash)
            .arg(format!("{prefix}:{{{tag}}}:rl:"))
            .arg(budget.0)
            .arg(budget.1)
            .invoke_async(&mut redis_conn().await)
            .await
            .unwrap();
        assert_eq!(
            reply.first(),
            Some(&redis::Value::BulkString(b"created".to_vec())),
            "{reply:?}"
        );
        Self {
            record_key: format!("{record_prefix}{}", id.as_str()),
            id: id.as_str().to_owned(),
            code: code.expose().to_owned(),
        }
    }

    /// Names the record's application, as the start script does for any but the default.
    async fn set_application(&self, app: &str) {
        let _: () = redis::cmd("HSET")
            .arg(&self.record_key)
            .arg("app")
            .arg(app)
            .query_async(&mut redis_conn().await)
            .await
            .unwrap();
    }

    async fn fields(&self) -> BTreeSet<String> {
        redis::cmd("HKEYS")
            .arg(&self.record_key)
            .query_async(&mut redis_conn().await)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_verification_pending_under_the_layout_before_applications_keeps_working() {
    let prefix = unique_prefix();
    let hour = 3_600_000;
    // The new instance shares the old one's Redis, prefix and OTP_SECRET.
    let home = spawn_apps(
        TWO_APPS,
        &prefix,
        &[("OTP_SECRET", OTP_SECRET), ("RATE_LIMIT_NUMBER", "1/1h")],
    )
    .await;
    let (by_number, by_id) = (random_number(), random_number());
    let first = OldVerification::start(&prefix, &by_number, (1, hour), home.now()).await;
    let second = OldVerification::start(&prefix, &by_id, (1, hour), home.now()).await;
    let fields = first.fields().await;
    assert!(!fields.contains("app"), "the old layout: {fields:?}");
    assert!(
        fields.contains("digest") && fields.contains("nh"),
        "{fields:?}"
    );

    // Read: the default application's, as it was.
    let v = home.get(&format!("/v1/verifications/{}", first.id)).await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.body["application"], "default");
    assert_eq!(v.body["status"], "pending");
    assert_eq!(v.body["to"], by_number.as_str());
    // Another application's key does not see it.
    let shop = home.with_key(SHOP_KEY);
    let unknown = unknown_id_replies(&shop, "12345678").await;
    let got = by_id_replies(&shop, &first.id, "12345678").await;
    assert_same_replies(&got, &unknown, "shop");

    // Checked by number (the old pointer) and by id.
    let approved = home.check(&by_number, &first.code).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["id"], first.id.as_str());
    let approved = home
        .post_json(
            "/v1/verifications/check",
            json!({"id": second.id, "code": second.code}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["application"], "default");

    // The old instance's send counted against the number's budget of one an
    // hour: the new instance refuses the next…
    let next = home.start(&by_number, "sms").await;
    assert_eq!(next.status, 429, "{}", next.body);
    assert_eq!(next.body["error"]["code"], "number_rate_limited");
    // …while another application has that number's budget to itself.
    assert_eq!(shop.start(&by_number, "sms").await.status, 201);
}

// Start-up refusals: one clear line each, naming the table and the key.

/// What the server says on stderr when started with this `--config` file.
fn refusal(toml: &str) -> String {
    let path = std::env::temp_dir().join(format!("p2fa-refusal-{}.toml", unique_prefix()));
    std::fs::write(&path, toml).unwrap();
    let out = crate::cli::bin()
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let (_, err) = crate::cli::text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_server_wide_key_in_an_applications_table_is_refused_naming_both() {
    let err = refusal(
        "[applications.shop]\nAPI_KEYS = \"shop-key-0123456789\"\nLISTEN_ADDR = \"127.0.0.1:0\"\n",
    );
    assert!(err.contains("[applications.shop] LISTEN_ADDR"), "{err}");
    assert!(err.contains("server-wide"), "{err}");
    // The global budget is the server's, not an application's.
    let err = refusal(
        "[applications.shop]\nAPI_KEYS = \"shop-key-0123456789\"\nRATE_LIMIT_GLOBAL = \"5/1h\"\n",
    );
    assert!(
        err.contains("[applications.shop] RATE_LIMIT_GLOBAL"),
        "{err}"
    );
    assert!(err.contains("server-wide"), "{err}");
}

#[test]
fn one_api_key_in_two_applications_is_refused() {
    let err = refusal(
        "[applications.shop]\nAPI_KEYS = \"same-key-0123456789\"\n\n[applications.bank]\nAPI_KEYS = \"other-key-0123456789,same-key-0123456789\"\n",
    );
    assert!(err.contains("API_KEYS"), "{err}");
    assert!(
        err.contains("[applications.shop]") && err.contains("[applications.bank]"),
        "{err}"
    );
    assert!(!err.contains("same-key"), "no key in the error: {err}");
}

#[test]
fn a_bad_application_id_is_refused() {
    let long = format!("{:?}", "a".repeat(33));
    for id in ["Shop", "\"shop.eu\"", long.as_str()] {
        let err = refusal(&format!(
            "[applications.{id}]\nAPI_KEYS = \"shop-key-0123456789\"\n"
        ));
        assert!(err.contains("application id"), "{id}: {err}");
    }
}

#[test]
fn an_application_without_api_keys_is_refused() {
    let err = refusal("[applications.shop]\nBRAND_NAME = \"Shop\"\n");
    assert!(err.contains("[applications.shop] API_KEYS"), "{err}");
}

#[test]
fn the_default_applications_table_and_unknown_keys_are_refused() {
    let err = refusal("[applications.default]\nAPI_KEYS = \"home-key-0123456789\"\n");
    assert!(err.contains("[applications.default]"), "{err}");
    let err =
        refusal("[applications.shop]\nAPI_KEYS = \"shop-key-0123456789\"\nBRAND = \"Shop\"\n");
    assert!(err.contains("[applications.shop] BRAND"), "{err}");
}
