//! The app API over HTTP, in sandbox mode, against real Redis.

use std::time::Duration;

use crate::common::{API_KEY, random_number, spawn_app, wrong};
use serde_json::json;

#[tokio::test]
async fn the_whole_sms_flow_verifies_a_number_end_to_end() {
    let app = spawn_app(&[]).await;
    let to = random_number();

    let started = app.start(&to, "sms").await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let v = &started.body;
    assert!(v["id"].as_str().unwrap().starts_with("VE"));
    assert_eq!(v["to"], to.as_str());
    assert_eq!(v["channel"], "sms");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["attempts_remaining"], 5);
    assert_eq!(v["deliveries"][0]["channel"], "sms");
    assert_eq!(v["deliveries"][0]["status"], "queued");
    let uuid = v["deliveries"][0]["provider_id"].as_str().unwrap();
    let expires = time::OffsetDateTime::parse(
        v["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let created = time::OffsetDateTime::parse(
        v["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((expires - created).whole_seconds(), 600);

    let messages = app.sandbox_messages().await;
    let sms = messages.iter().find(|m| m["to"] == to.as_str()).unwrap();
    assert_eq!(sms["message_uuid"], uuid);
    assert_eq!(sms["from"], "+14155550199");
    let text = sms["text"].as_str().unwrap();
    assert!(text.contains("Do not share"), "{text}");
    let code = crate::common::code_in(text);
    assert_eq!(code.len(), 6);
    assert!(
        !v.to_string().contains(&code),
        "the API never shows the code"
    );

    let checked = app.check(&to, &code).await;
    assert_eq!(checked.status, 200, "{:?}", checked.body);
    assert_eq!(checked.body["status"], "approved");
    assert_eq!(checked.body["id"], v["id"]);

    let got = app
        .get(&format!("/v1/verifications/{}", v["id"].as_str().unwrap()))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["status"], "approved");
}

#[tokio::test]
async fn a_right_code_approves_only_once() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    app.start(&to, "sms").await;
    let code = app.last_sms_code(&to).await;
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
    let again = app.check(&to, &code).await;
    assert_eq!(again.status, 404, "{:?}", again.body);
    assert_eq!(again.body["error"]["code"], "verification_not_pending");
}

#[tokio::test]
async fn every_answer_carries_twilios_valid_boolean_true_exactly_when_approved() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    let started = app.start(&to, "sms").await;
    assert_eq!(started.body["valid"], false, "{:?}", started.body);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let code = app.last_sms_code(&to).await;

    let wrong_try = app.check(&to, &wrong(&code)).await;
    assert_eq!(wrong_try.body["status"], "pending");
    assert_eq!(wrong_try.body["valid"], false);
    let pending = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(pending.body["valid"], false);

    let right = app.check(&to, &code).await;
    assert_eq!(right.body["status"], "approved");
    assert_eq!(right.body["valid"], true);
    let approved = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(approved.body["valid"], true);

    // Any other ending is not valid.
    let other = random_number();
    let other_id = app.start(&other, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let canceled = app
        .post_json(&format!("/v1/verifications/{other_id}/cancel"), json!({}))
        .await;
    assert_eq!(canceled.body["status"], "canceled");
    assert_eq!(canceled.body["valid"], false);
}

/// A check by number looks a number in the form the server stores numbers
/// up as written, and parses any other: a start given a UK mobile with its
/// trunk prefix after the calling code (+44 0 7400…) stored it without (+44
/// 7400…), and a check by either spelling reaches it and answers alike.
#[tokio::test]
async fn a_check_by_number_reaches_the_verification_by_either_spelling_its_start_accepted() {
    let app = spawn_app(&[("ALLOWED_COUNTRIES", "*")]).await;
    let to = format!("+447400{}", &random_number()[6..]);
    let trunk = format!("+440{}", &to[3..]);
    let started = app.start(&trunk, "sms").await;
    assert_eq!(started.body["to"], to.as_str(), "{:?}", started.body);
    let code = app.last_sms_code(&to).await;
    let by_trunk = app.check(&trunk, &wrong(&code)).await;
    let by_stored = app.check(&to, &wrong(&code)).await;
    assert_eq!((by_trunk.status, by_stored.status), (200, 200));
    let mut expected = by_trunk.body.clone();
    expected["attempts_remaining"] =
        json!(by_trunk.body["attempts_remaining"].as_u64().unwrap() - 1);
    assert_eq!(by_stored.body, expected);
    let approved = app.check(&trunk, &code).await;
    assert_eq!(approved.body["status"], "approved", "{:?}", approved.body);
    assert_eq!(approved.body["to"], to.as_str());
}

/// The answers a check by number gave when every number was parsed first:
/// an invalid number, in E.164's form or not, is a 400 before anything
/// else (an invalid code too), and a valid one with nothing pending a 404.
#[tokio::test]
async fn a_check_by_number_tells_an_invalid_number_from_one_with_nothing_pending() {
    let app = spawn_app(&[]).await;
    let error = |r: &crate::common::Reply| {
        (
            r.status,
            r.body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            r.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let invalid = (
        400,
        "invalid_phone_number".to_owned(),
        "`to`: this is not a valid phone number in any numbering plan.".to_owned(),
    );
    let not_e164 = (
        400,
        "invalid_phone_number".to_owned(),
        "`to`: phone numbers must be in E.164 format, such as +14155550100.".to_owned(),
    );
    assert_eq!(error(&app.check("+19995550100", "123456").await), invalid);
    assert_eq!(error(&app.check("+19995550100", "12").await), invalid);
    assert_eq!(
        error(&app.check("+1 415 555 0100", "123456").await),
        not_e164
    );
    assert_eq!(error(&app.check("+1 415 555 0100", "12").await), not_e164);
    let nothing = random_number();
    assert_eq!(
        error(&app.check(&nothing, "123456").await),
        (
            404,
            "verification_not_found".to_owned(),
            "There is no pending verification for this number or id.".to_owned()
        )
    );
    assert_eq!(error(&app.check(&nothing, "12").await).1, "invalid_code");
}

#[tokio::test]
async fn a_check_by_id_works_like_a_check_by_number() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.last_sms_code(&to).await;
    let wrong_try = app
        .post_json(
            "/v1/verifications/check",
            json!({"id": id, "code": wrong(&code)}),
        )
        .await;
    assert_eq!(wrong_try.status, 200);
    assert_eq!(wrong_try.body["attempts_remaining"], 4);
    let right = app
        .post_json("/v1/verifications/check", json!({"id": id, "code": code}))
        .await;
    assert_eq!(right.body["status"], "approved");
}

#[tokio::test]
async fn fifty_concurrent_checks_of_the_right_code_approve_exactly_once() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    app.start(&to, "sms").await;
    let code = app.last_sms_code(&to).await;
    let checks = (0..50).map(|_| app.check(&to, &code));
    let replies = futures::future::join_all(checks).await;
    let approved = replies
        .iter()
        .filter(|r| r.status == 200 && r.body["status"] == "approved")
        .count();
    assert_eq!(approved, 1);
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 404));
}

#[tokio::test]
async fn five_wrong_codes_end_the_verification_as_max_attempts_reached() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.last_sms_code(&to).await;
    let bad = wrong(&code);
    for left in (1..=4).rev() {
        let r = app.check(&to, &bad).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["status"], "pending");
        assert_eq!(r.body["attempts_remaining"], left);
    }
    let fifth = app.check(&to, &bad).await;
    assert_eq!(fifth.status, 429);
    assert_eq!(fifth.body["error"]["code"], "max_attempts_reached");
    assert!(fifth.headers.contains_key("retry-after"));
    // Even the right code is refused now.
    let right = app.check(&to, &code).await;
    assert_eq!(right.status, 429);
    let got = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(got.body["status"], "max_attempts_reached");
    assert_eq!(got.body["attempts_remaining"], 0);
    // A new start opens a new verification with a new code.
    let again = app.start(&to, "sms").await;
    assert_eq!(again.status, 201);
    assert_ne!(again.body["id"], id.as_str());
}

#[tokio::test]
async fn a_code_expires_with_its_verification() {
    let app = spawn_app(&[("VERIFICATION_LIFETIME_MINUTES", "1")]).await;
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.last_sms_code(&to).await;
    app.advance(Duration::from_secs(59));
    assert_eq!(
        app.get(&format!("/v1/verifications/{id}")).await.body["status"],
        "pending"
    );
    app.advance(Duration::from_secs(1));
    assert_eq!(
        app.get(&format!("/v1/verifications/{id}")).await.body["status"],
        "expired"
    );
    let late = app.check(&to, &code).await;
    assert_eq!(late.status, 404);
    assert_eq!(late.body["error"]["code"], "verification_expired");
    // Its final status stays readable by id.
    app.advance(Duration::from_secs(3600));
    let got = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["status"], "expired");
}

#[tokio::test]
async fn starting_again_re_sends_the_same_code_after_the_cooldown() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    let first = app.start(&to, "sms").await;
    let code = app.last_sms_code(&to).await;

    let too_soon = app.start(&to, "sms").await;
    assert_eq!(too_soon.status, 429);
    assert_eq!(too_soon.body["error"]["code"], "resend_cooldown");
    assert_eq!(too_soon.headers["retry-after"], "30");

    app.advance(Duration::from_secs(30));
    let again = app.start(&to, "sms").await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(app.last_sms_code(&to).await, code);
    let sent_to: Vec<_> = app
        .sandbox_messages()
        .await
        .into_iter()
        .filter(|m| m["to"] == to.as_str())
        .collect();
    assert_eq!(sent_to.len(), 2);
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
}

#[tokio::test]
async fn a_verification_is_sent_at_most_five_times() {
    let app = spawn_app(&[("RATE_LIMIT_NUMBER", "100/10m")]).await;
    let to = random_number();
    app.start(&to, "sms").await;
    for _ in 0..4 {
        app.advance(Duration::from_secs(31));
        assert_eq!(app.start(&to, "sms").await.status, 200);
    }
    app.advance(Duration::from_secs(31));
    let sixth = app.start(&to, "sms").await;
    assert_eq!(sixth.status, 429);
    assert_eq!(sixth.body["error"]["code"], "max_sends_reached");
    assert!(sixth.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn cancel_closes_a_pending_verification_and_only_once() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.last_sms_code(&to).await;
    let canceled = app
        .post_json(&format!("/v1/verifications/{id}/cancel"), json!({}))
        .await;
    assert_eq!(canceled.status, 200);
    assert_eq!(canceled.body["status"], "canceled");
    let twice = app
        .post_json(&format!("/v1/verifications/{id}/cancel"), json!({}))
        .await;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.body["error"]["code"], "verification_not_pending");
    assert_eq!(app.check(&to, &code).await.status, 404);
}

#[tokio::test]
async fn unknown_verifications_are_404_in_the_error_shape() {
    let app = spawn_app(&[]).await;
    for path in [
        "/v1/verifications/VE00000000000000000000000000000000",
        "/v1/verifications/not-an-id",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body["error"]["code"], "verification_not_found");
    }
    let r = app.check(&random_number(), "123456").await;
    assert_eq!(r.status, 404);
    let r = app.get("/nowhere").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "not_found");
}

#[tokio::test]
async fn phlo_mode_runs_the_phlo_with_from_to_mode_and_a_six_digit_otp() {
    let app = spawn_app(&[("PLIVO_PHLO_ID", "2fa-phlo-0001")]).await;
    let to = random_number();
    let started = app.start(&to, "sms").await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let runs: Vec<serde_json::Value> = app
        .http
        .get(app.url("/sandbox/phlo-runs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = runs
        .iter()
        .find(|r| r["payload"]["to"] == to.as_str())
        .unwrap();
    assert_eq!(run["phlo_id"], "2fa-phlo-0001");
    let payload = run["payload"].as_object().unwrap();
    let mut keys: Vec<_> = payload.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["from", "mode", "otp", "to"]);
    assert_eq!(payload["mode"], "sms");
    assert_eq!(payload["from"], "+14155550199");
    let otp = payload["otp"].as_str().unwrap();
    assert_eq!(otp.len(), 6);
    assert!(otp.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        started.body["deliveries"][0]["provider_id"],
        run["phlo_run_id"]
    );
    assert_eq!(app.check(&to, otp).await.body["status"], "approved");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app(&[]).await;
    let h = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn sandbox_routes_exist_only_in_sandbox_mode() {
    let server = wiremock::MockServer::start().await;
    let redis = crate::common::redis_url();
    let prefix = crate::common::unique_prefix();
    let app = crate::common::spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", &redis),
        ("REDIS_KEY_PREFIX", &prefix),
        ("API_KEYS", API_KEY),
        ("OTP_SECRET", crate::common::OTP_SECRET),
        ("PLIVO_AUTH_ID", "MAZDQ1ZJIYMDRKNMFHOT"),
        ("PLIVO_AUTH_TOKEN", "live-token"),
        ("PLIVO_FROM_NUMBER", "+14155550199"),
        ("PLIVO_API_BASE_URL", &server.uri()),
        ("PUBLIC_BASE_URL", "https://otp.example.com"),
    ])
    .await;
    let r = app
        .http
        .get(app.url("/sandbox/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// The shell block of README's "Try it with curl", pointed at `app`.
fn readme_walk_through(app: &crate::common::TestApp) -> String {
    let block = crate::common::readme_block("## Try it with curl", "sh");
    assert!(block.contains("KEY=sandbox_..."), "{block}");
    let host = app.base.trim_start_matches("http://");
    block
        .replace("KEY=sandbox_...", &format!("KEY={}", app.api_key))
        .replace("localhost:8080", host)
}

#[tokio::test]
async fn the_readmes_curl_walk_through_verifies_a_number_as_written() {
    let app = spawn_app(&[]).await;
    let script = readme_walk_through(&app);
    for tool in ["curl", "jq"] {
        assert!(
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{tool} is missing: ./scripts/test.sh installs it"
        );
    }
    // On a blocking thread: the server answers curl on this test's runtime.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two answers: the start's, then the check's.
    let answers: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(answers.len(), 2, "{stdout}");
    assert_eq!(answers[0]["status"], "pending");
    assert_eq!(answers[1]["status"], "approved", "{stdout}");
    assert_eq!(answers[1]["valid"], true);
    assert_eq!(answers[1]["attempts_remaining"], 5, "no attempt was burnt");
}
