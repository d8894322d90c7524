//! Authenticator apps over HTTP: enrol a factor, read its `uri` the way an
//! authenticator app does, compute codes from it with an RFC 6238
//! implementation of the test's own, and verify and check them; replay,
//! brute force, scoping to the application, bad input, events and logs.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{API_KEY, Reply, TestApp, spawn_app, table, try_spawn_with_tables};

const SHOP_KEY: &str = "shop-key-0123456789abcdef";
const BANK_KEY: &str = "bank-key-0123456789abcdef";

/// What an authenticator app keeps from a scanned `otpauth://` URI.
struct Scanned {
    label: String,
    secret: Vec<u8>,
    issuer: String,
    algorithm: String,
    digits: u32,
    period: u64,
}

fn scan(uri: &str) -> Scanned {
    let url = url::Url::parse(uri).unwrap();
    assert_eq!(url.scheme(), "otpauth");
    assert_eq!(url.host_str(), Some("totp"));
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no {name} in {uri}"))
    };
    let label = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
        .decode_utf8()
        .unwrap()
        .into_owned();
    Scanned {
        label,
        secret: data_encoding::BASE32_NOPAD
            .decode(query("secret").as_bytes())
            .unwrap(),
        issuer: query("issuer"),
        algorithm: query("algorithm"),
        digits: query("digits").parse().unwrap(),
        period: query("period").parse().unwrap(),
    }
}

impl Scanned {
    /// RFC 6238 as an authenticator app computes it, at Unix time `ms`.
    fn code_at(&self, ms: i64) -> String {
        let step = u64::try_from(ms).unwrap() / 1000 / self.period;
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&self.secret).unwrap();
        mac.update(&step.to_be_bytes());
        let h = mac.finalize().into_bytes();
        let o = usize::from(h[19] & 0x0f);
        let bin = (u32::from(h[o]) & 0x7f) << 24
            | u32::from(h[o + 1]) << 16
            | u32::from(h[o + 2]) << 8
            | u32::from(h[o + 3]);
        format!(
            "{:0width$}",
            bin % 10u32.pow(self.digits),
            width = self.digits as usize
        )
    }

    /// A code of the right length that no step from two before to two after
    /// `ms` makes.
    fn wrong_at(&self, ms: i64) -> String {
        let near: Vec<String> = (-2..=2).map(|k| self.code_at(ms + k * 30_000)).collect();
        let mut code = near[2].clone();
        while near.contains(&code) {
            code = crate::common::wrong(&code);
        }
        code
    }
}

async fn send(key: &str, req: reqwest::RequestBuilder) -> Reply {
    TestApp::reply(req.bearer_auth(key).send().await.unwrap()).await
}

async fn enrol(app: &TestApp, key: &str, identity: &str) -> (String, Scanned, Value) {
    let r = send(
        key,
        app.http
            .post(app.url("/v1/factors"))
            .json(&json!({"identity": identity})),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let scanned = scan(r.body["uri"].as_str().unwrap());
    (id, scanned, r.body)
}

async fn code(app: &TestApp, key: &str, id: &str, stage: &str, code: &str) -> Reply {
    send(
        key,
        app.http
            .post(app.url(&format!("/v1/factors/{id}/{stage}")))
            .json(&json!({"code": code})),
    )
    .await
}

async fn get(app: &TestApp, key: &str, id: &str) -> Reply {
    send(key, app.http.get(app.url(&format!("/v1/factors/{id}")))).await
}

async fn delete(app: &TestApp, key: &str, id: &str) -> Reply {
    send(key, app.http.delete(app.url(&format!("/v1/factors/{id}")))).await
}

fn retry_after(r: &Reply) -> u64 {
    r.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

/// An enrolled factor, verified with its first code.
async fn verified(app: &TestApp, key: &str, identity: &str) -> (String, Scanned) {
    let (id, scanned, _) = enrol(app, key, identity).await;
    let r = code(
        app,
        key,
        &id,
        "verify",
        &scanned.code_at(app.now().as_millis()),
    )
    .await;
    assert_eq!(r.body["status"], "verified", "{:?}", r.body);
    (id, scanned)
}

#[tokio::test]
async fn an_app_enrols_scans_the_uri_and_its_codes_verify_and_check_and_none_is_taken_twice() {
    let app = spawn_app(&[("BRAND_NAME", "Acme Shop")]).await;
    let r = app
        .post_json(
            "/v1/factors",
            json!({"identity": "user-123", "friendly_name": "Alice's phone"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let b = &r.body;
    let id = b["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("YF") && id.len() == 34, "{id}");
    assert_eq!(b["identity"], "user-123");
    assert_eq!(b["friendly_name"], "Alice's phone");
    assert_eq!(b["type"], "totp");
    assert_eq!(b["status"], "unverified");
    assert_eq!(b["application"], "default");
    assert!(b["created_at"].as_str().unwrap().ends_with('Z'));
    let secret = b["secret"].as_str().unwrap();
    let uri = b["uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!(
            "otpauth://totp/Acme%20Shop:user-123?secret={secret}&issuer=Acme%20Shop&algorithm=SHA1&digits=6&period=30"
        )
    );
    let svg = b["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    let scanned = scan(uri);
    assert_eq!(scanned.label, "Acme Shop:user-123");
    assert_eq!(scanned.issuer, "Acme Shop");
    assert_eq!(
        (scanned.algorithm.as_str(), scanned.digits, scanned.period),
        ("SHA1", 6, 30)
    );
    assert_eq!(scanned.secret.len(), 20);

    // An unverified factor approves no check.
    let now = app.now().as_millis();
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now)).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "factor_not_verified");

    // A wrong code leaves it unverified; the app's current code verifies it.
    let r = code(&app, API_KEY, &id, "verify", &scanned.wrong_at(now)).await;
    assert_eq!((r.status, &r.body["status"]), (200, &json!("unverified")));
    assert_eq!(r.body["attempts_remaining"], 4);
    let r = code(&app, API_KEY, &id, "verify", &scanned.code_at(now)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "verified");
    assert!(r.body.get("attempts_remaining").is_none());
    let r = code(&app, API_KEY, &id, "verify", &scanned.code_at(now)).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"]["code"], "factor_already_verified");

    // The code that verified is not taken again within its window.
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now)).await;
    assert_eq!((r.status, &r.body["status"]), (200, &json!("pending")));
    assert_eq!(r.body["factor_id"], id.as_str());

    // The next step's code approves once; the step before it never again.
    app.advance(Duration::from_secs(30));
    let now = app.now().as_millis();
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now)).await;
    assert_eq!(r.body["status"], "approved", "{:?}", r.body);
    assert_eq!(r.body["identity"], "user-123");
    assert!(r.body.get("attempts_remaining").is_none());
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now)).await;
    assert_eq!(r.body["status"], "pending");
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now - 30_000)).await;
    assert_eq!(r.body["status"], "pending");

    // A phone a step ahead of the server's clock is accepted, and then the
    // server's own step, being earlier, is not.
    app.advance(Duration::from_secs(30));
    let now = app.now().as_millis();
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now + 30_000)).await;
    assert_eq!(r.body["status"], "approved", "{:?}", r.body);
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now)).await;
    assert_eq!(r.body["status"], "pending");
    // Two steps behind is outside the window.
    app.advance(Duration::from_secs(90));
    let now = app.now().as_millis();
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now - 60_000)).await;
    assert_eq!(r.body["status"], "pending");
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now - 30_000)).await;
    assert_eq!(r.body["status"], "approved", "{:?}", r.body);

    // GET never shows the secret again.
    let r = get(&app, API_KEY, &id).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "verified");
    assert_eq!(r.body["friendly_name"], "Alice's phone");
    let text = r.body.to_string();
    assert!(!text.contains(secret), "{text}");
    for field in ["secret", "uri", "qr_svg"] {
        assert!(r.body.get(field).is_none(), "{field} in {text}");
    }

    // DELETE removes it: then it is unknown everywhere.
    let r = delete(&app, API_KEY, &id).await;
    assert_eq!((r.status, &r.body["id"]), (200, &json!(id)));
    assert_eq!(get(&app, API_KEY, &id).await.status, 404);
    let now = app.now().as_millis();
    let r = code(&app, API_KEY, &id, "check", &scanned.code_at(now)).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "factor_not_found");
    assert_eq!(delete(&app, API_KEY, &id).await.status, 404);
}

#[tokio::test]
async fn max_attempts_wrong_codes_in_a_row_lock_the_factor_with_retry_after_even_for_the_right_code()
 {
    let app = spawn_app(&[("MAX_ATTEMPTS", "3"), ("LOCKOUT_MINUTES", "2")]).await;
    let (id, s) = verified(&app, API_KEY, "brute-1").await;
    app.advance(Duration::from_secs(30));
    let now = app.now().as_millis();

    // A right code resets the row: two wrong, right, two wrong stay pending.
    for remaining in [2, 1] {
        let r = code(&app, API_KEY, &id, "check", &s.wrong_at(now)).await;
        assert_eq!(r.body["attempts_remaining"], remaining, "{:?}", r.body);
    }
    let r = code(&app, API_KEY, &id, "check", &s.code_at(now)).await;
    assert_eq!(r.body["status"], "approved");
    for remaining in [2, 1] {
        let r = code(&app, API_KEY, &id, "check", &s.wrong_at(now)).await;
        assert_eq!(r.body["attempts_remaining"], remaining, "{:?}", r.body);
    }
    // The third wrong in a row locks it.
    let r = code(&app, API_KEY, &id, "check", &s.wrong_at(now)).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "max_attempts_reached");
    assert_eq!(retry_after(&r), 120);

    // While locked, even the right code is refused, and the lock runs on.
    app.advance(Duration::from_secs(60));
    let now = app.now().as_millis();
    let r = code(&app, API_KEY, &id, "check", &s.code_at(now)).await;
    assert_eq!(r.status, 429);
    assert_eq!(retry_after(&r), 60);

    app.advance(Duration::from_secs(61));
    let now = app.now().as_millis();
    let r = code(&app, API_KEY, &id, "check", &s.code_at(now)).await;
    assert_eq!(r.body["status"], "approved", "{:?}", r.body);
}

#[tokio::test]
async fn an_identitys_wrong_codes_stop_at_the_daily_ceiling_across_its_factors() {
    let app = spawn_app(&[("MAX_ATTEMPTS", "20"), ("MAX_FAILED_CHECKS_PER_DAY", "5")]).await;
    let (a, sa) = verified(&app, API_KEY, "ceiling-user").await;
    let (b, sb) = verified(&app, API_KEY, "ceiling-user").await;
    let (other, so) = verified(&app, API_KEY, "someone-else").await;
    app.advance(Duration::from_secs(30));
    let now = app.now().as_millis();
    for _ in 0..3 {
        let r = code(&app, API_KEY, &a, "check", &sa.wrong_at(now)).await;
        assert_eq!(r.body["status"], "pending");
    }
    for _ in 0..2 {
        let r = code(&app, API_KEY, &b, "check", &sb.wrong_at(now)).await;
        assert_eq!(r.body["status"], "pending");
    }
    let r = code(&app, API_KEY, &a, "check", &sa.code_at(now)).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "identity_locked");
    let until_midnight = 86_400 - (u64::try_from(now).unwrap() / 1000) % 86_400;
    assert!(
        (1..=until_midnight).contains(&retry_after(&r)),
        "{:?}",
        r.headers
    );
    let r = code(&app, API_KEY, &b, "check", &sb.code_at(now)).await;
    assert_eq!(r.status, 429);
    // Another identity is not held back.
    let r = code(&app, API_KEY, &other, "check", &so.code_at(now)).await;
    assert_eq!(r.body["status"], "approved", "{:?}", r.body);
}

#[tokio::test]
async fn an_identity_enrols_at_most_max_factors_per_identity_until_it_deletes_one() {
    let app = spawn_app(&[("MAX_FACTORS_PER_IDENTITY", "2")]).await;
    let (first, _) = verified(&app, API_KEY, "many-phones").await;
    enrol(&app, API_KEY, "many-phones").await;
    let enrol_again = || {
        send(
            API_KEY,
            app.http
                .post(app.url("/v1/factors"))
                .json(&json!({"identity": "many-phones"})),
        )
    };
    let r = enrol_again().await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "too_many_factors");
    assert!(r.body.get("secret").is_none() && r.body.get("uri").is_none());
    // Another identity has places of its own.
    enrol(&app, API_KEY, "one-phone").await;
    // A deleted factor frees its place; an unfinished enrolment frees its own
    // after the hour.
    assert_eq!(delete(&app, API_KEY, &first).await.status, 200);
    enrol(&app, API_KEY, "many-phones").await;
    assert_eq!(enrol_again().await.status, 409);
    app.advance(Duration::from_secs(3_600));
    enrol(&app, API_KEY, "many-phones").await;
    enrol(&app, API_KEY, "many-phones").await;
    assert_eq!(enrol_again().await.status, 409);
}

#[tokio::test]
async fn another_applications_key_finds_no_factor_of_this_one_and_changes_nothing() {
    let redis = crate::common::redis_url();
    let prefix = crate::common::unique_prefix();
    let app = try_spawn_with_tables(
        &[
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("REDIS_URL", &redis),
            ("REDIS_KEY_PREFIX", &prefix),
        ],
        &[
            table("shop", &[("API_KEYS", SHOP_KEY), ("BRAND_NAME", "Shop")]),
            table("bank", &[("API_KEYS", BANK_KEY), ("TOTP_DIGITS", "8")]),
        ],
    )
    .await
    .unwrap();
    let (id, s, body) = enrol(&app, SHOP_KEY, "user-1").await;
    assert_eq!(body["application"], "shop");
    assert!(
        body["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Shop:user-1?")
    );
    assert_eq!(s.digits, 6);
    let now = app.now().as_millis();

    let unknown = get(&app, BANK_KEY, "YF00000000000000000000000000000000").await;
    assert_eq!(unknown.status, 404);
    let seen = [
        get(&app, BANK_KEY, &id).await,
        code(&app, BANK_KEY, &id, "verify", &s.code_at(now)).await,
        code(&app, BANK_KEY, &id, "check", &s.code_at(now)).await,
        delete(&app, BANK_KEY, &id).await,
    ];
    for r in &seen {
        assert_eq!((r.status, &r.body), (unknown.status, &unknown.body));
    }
    // Still there, still unverified, its code still unused.
    assert_eq!(get(&app, SHOP_KEY, &id).await.body["status"], "unverified");
    let r = code(&app, SHOP_KEY, &id, "verify", &s.code_at(now)).await;
    assert_eq!(r.body["status"], "verified", "{:?}", r.body);

    // Each application's TOTP_DIGITS makes its own factors' codes.
    let (bank_id, bank, body) = enrol(&app, BANK_KEY, "user-1").await;
    assert_eq!(body["application"], "bank");
    assert_eq!(bank.digits, 8);
    assert!(body["uri"].as_str().unwrap().contains("&digits=8&"));
    let r = code(&app, BANK_KEY, &bank_id, "verify", &bank.code_at(now)).await;
    assert_eq!(r.body["status"], "verified", "{:?}", r.body);
}

#[tokio::test]
async fn bad_factor_input_is_a_400_with_its_own_code_and_counts_nothing() {
    let app = spawn_app(&[]).await;
    for (body, error) in [
        (json!({}), "invalid_request"),
        (json!({"identity": ""}), "invalid_identity"),
        (json!({"identity": "x".repeat(65)}), "invalid_identity"),
        (json!({"identity": "shop:alice"}), "invalid_identity"),
        (json!({"identity": "a\u{0}b"}), "invalid_identity"),
        (json!({"identity": 7}), "invalid_request"),
        (
            json!({"identity": "u", "friendly_name": "n".repeat(65)}),
            "invalid_friendly_name",
        ),
        (
            json!({"identity": "u", "secret": "AAAA"}),
            "invalid_request",
        ),
    ] {
        let r = app.post_json("/v1/factors", body.clone()).await;
        assert_eq!(r.status, 400, "{body} → {:?}", r.body);
        assert_eq!(r.body["error"]["code"], error, "{body} → {:?}", r.body);
    }
    let longest = "é".repeat(64);
    let r = app
        .post_json(
            "/v1/factors",
            json!({"identity": longest, "friendly_name": longest}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    let (id, s, _) = enrol(&app, API_KEY, "input-user").await;
    let now = app.now().as_millis();
    for bad in [
        "12a456",
        "12345",
        "123456789",
        "",
        " 123456",
        "１２３４５６",
        "1234567",
    ] {
        let r = code(&app, API_KEY, &id, "verify", bad).await;
        assert_eq!(r.status, 400, "{bad:?} → {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_code", "{bad:?}");
    }
    // None of them counted: the first wrong code leaves all but one.
    let r = code(&app, API_KEY, &id, "verify", &s.wrong_at(now)).await;
    assert_eq!(r.body["attempts_remaining"], 4, "{:?}", r.body);
    for bad_id in ["nope", "YF0123", "VE00000000000000000000000000000000"] {
        let r = get(&app, API_KEY, bad_id).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["error"]["code"], "factor_not_found");
    }
    let r = TestApp::reply(
        app.http
            .get(app.url(&format!("/v1/factors/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(API_KEY, app.http.put(app.url(&format!("/v1/factors/{id}")))).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn verifying_and_deleting_a_factor_send_factor_events_without_its_secret() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            b"factor-events-secret-32-bytes!!!"
        )
    );
    let url = receiver.uri();
    let app = spawn_app(&[
        ("WEBHOOK_URL", &url),
        ("WEBHOOK_SECRET", &secret),
        ("SCHEDULER_POLL_MS", "20"),
    ])
    .await;
    let (id, s, body) = enrol(&app, API_KEY, "events-user").await;
    let now = app.now().as_millis();
    assert_eq!(
        code(&app, API_KEY, &id, "verify", &s.code_at(now))
            .await
            .body["status"],
        "verified"
    );
    assert_eq!(delete(&app, API_KEY, &id).await.status, 200);
    let mut events = Vec::new();
    for _ in 0..300 {
        events = receiver
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .collect::<Vec<_>>();
        if events.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"factor.verified") && kinds.contains(&"factor.deleted"),
        "{kinds:?}"
    );
    let secret = body["secret"].as_str().unwrap();
    for e in &events {
        assert_eq!(e["data"]["id"], id.as_str());
        assert_eq!(e["data"]["identity"], "events-user");
        assert_eq!(e["data"]["status"], "verified");
        assert!(!e.to_string().contains(secret));
    }
}

#[tokio::test]
async fn no_factor_secret_or_authenticator_code_ever_reaches_the_logs() {
    let logs = crate::common::capture_logs();
    let app = spawn_app(&[]).await;
    let (id, s, body) = enrol(&app, API_KEY, "logged-user").await;
    let now = app.now().as_millis();
    let right = s.code_at(now);
    let wrong = s.wrong_at(now);
    code(&app, API_KEY, &id, "verify", &wrong).await;
    code(&app, API_KEY, &id, "verify", &right).await;
    app.advance(Duration::from_secs(30));
    let next = s.code_at(app.now().as_millis());
    code(&app, API_KEY, &id, "check", &next).await;
    get(&app, API_KEY, &id).await;
    delete(&app, API_KEY, &id).await;
    let text = logs.text();
    assert!(text.contains(&id), "the factor's id is logged");
    let secret = body["secret"].as_str().unwrap();
    for needle in [secret, &secret[..16], &right, &wrong, &next] {
        assert!(!text.contains(needle), "{needle} in the logs");
    }
    assert!(!text.contains(&hex::encode(&s.secret)));
}

#[tokio::test]
async fn the_readmes_authenticator_walk_through_enrols_verifies_and_checks_as_written() {
    let app = spawn_app(&[]).await;
    let readme = include_str!("../../README.md");
    let block = readme
        .split_once("## Authenticator apps (TOTP)")
        .and_then(|(_, section)| section.split_once("```sh\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("README has the authenticator walk-through")
        .0;
    assert!(block.contains("KEY=sandbox_..."), "{block}");
    let host = app.base.trim_start_matches("http://").to_owned();
    let script = block
        .replace("KEY=sandbox_...", &format!("KEY={}", app.api_key))
        .replace("localhost:8080", &host);
    let dir = std::env::temp_dir().join(crate::common::unique_prefix());
    std::fs::create_dir_all(&dir).unwrap();
    // The server's clock is the test's, started at the wall clock's now; the
    // walk-through waits for the wall clock's next step, so move it along.
    let clock = app.clock.clone();
    let ticking = tokio::spawn(async move {
        let start = std::time::Instant::now();
        let mut moved = Duration::ZERO;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let behind = start.elapsed().saturating_sub(moved);
            clock.advance(behind);
            moved += behind;
        }
    });
    let cwd = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(cwd)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    ticking.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(answers.len(), 2, "{stdout}");
    assert_eq!(answers[0]["status"], "verified", "{stdout}");
    assert_eq!(answers[1]["status"], "approved", "{stdout}");
    let svg = std::fs::read_to_string(dir.join("factor.svg")).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_enrolment_not_verified_within_the_hour_is_gone_and_a_verified_factor_stays() {
    let prefix = crate::common::unique_prefix();
    let redis_url = crate::common::redis_url();
    let app = crate::common::spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", redis_url.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("API_KEYS", API_KEY),
    ])
    .await;
    let (abandoned, scanned, _) = enrol(&app, API_KEY, "user-abandons").await;
    let (kept, kept_scanned) = verified(&app, API_KEY, "user-keeps").await;
    // In Redis the unverified record expires by itself; the verified one has no expiry.
    let mut redis = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let ttl = |id: &str, redis: &mut redis::Connection| -> i64 {
        redis::cmd("PTTL")
            .arg(format!("{prefix}:{{{}}}:f:{id}", &id[2..6]))
            .query(redis)
            .unwrap()
    };
    let left = ttl(&abandoned, &mut redis);
    assert!(left > 0 && left <= 3_600_000, "{left}");
    assert_eq!(
        ttl(&kept, &mut redis),
        -1,
        "a verified factor never expires"
    );

    app.advance(Duration::from_secs(3_600));
    let now = app.now().as_millis();
    assert_eq!(get(&app, API_KEY, &abandoned).await.status, 404);
    let late = code(&app, API_KEY, &abandoned, "verify", &scanned.code_at(now)).await;
    assert_eq!(late.status, 404, "{:?}", late.body);
    assert_eq!(late.body["error"]["code"], "factor_not_found");
    assert_eq!(delete(&app, API_KEY, &abandoned).await.status, 404);
    // The verified factor is untouched by the hour.
    assert_eq!(get(&app, API_KEY, &kept).await.status, 200);
    let checked = code(&app, API_KEY, &kept, "check", &kept_scanned.code_at(now)).await;
    assert_eq!(checked.body["status"], "approved", "{:?}", checked.body);
}
