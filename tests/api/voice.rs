//! Voice OTP: the sandbox places the call, fetches the signed answer URL,
//! follows the XML and hangs up; the spoken digits check as approved.

use crate::common::{API_KEY, OTP_SECRET, TestApp, random_number, spawn_app, spoken_digits};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn the_voice_flow_reads_the_code_digit_by_digit_and_it_checks_as_approved() {
    let app = spawn_app(&[]).await;
    let to = random_number();
    let started = app.start(&to, "voice").await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    assert_eq!(started.body["channel"], "voice");
    let id = started.body["id"].as_str().unwrap().to_owned();

    let call = app.finished_call(&to).await;
    assert_eq!(call["status"], "completed");
    let xml = call["answer_xml"].as_str().unwrap();
    assert!(xml.contains(r#"language="en-US""#));
    assert!(
        xml.contains(r#"<say-as interpret-as="digits">"#),
        "digit by digit: {xml}"
    );
    let spoken = call["spoken"].as_str().unwrap();
    let code_lines: Vec<String> = spoken
        .lines()
        .map(spoken_digits)
        .filter(|d| d.len() == 6)
        .collect();
    assert!(
        code_lines.len() >= 2,
        "the code is spoken at least twice: {spoken}"
    );
    assert!(code_lines.iter().all(|c| *c == code_lines[0]));
    assert!(
        !call["answer_xml"]
            .as_str()
            .unwrap()
            .contains(&code_lines[0]),
        "never as one number"
    );
    assert!(spoken.contains("press 1"), "{spoken}");

    let checked = app.check(&to, &code_lines[0]).await;
    assert_eq!(checked.body["status"], "approved");

    // The hangup callback recorded the call's outcome.
    let v = app
        .wait_for(&id, |v| v["deliveries"][0]["status"] == "completed")
        .await;
    let delivery = &v["deliveries"][0];
    assert_eq!(delivery["channel"], "voice");
    assert_eq!(delivery["provider_id"], call["request_uuid"]);
    assert_eq!(delivery["call"]["answered"], true);
    assert_eq!(delivery["call"]["hangup_cause_code"], "4000");
    assert!(delivery["call"]["duration"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn pressing_one_replays_the_code_three_times_then_says_goodbye() {
    let app = spawn_app(&[]).await;
    let to = plivo_2fa::sandbox::numbers::CALL_PRESSES_ONE;
    app.start(to, "voice").await;
    let call = app.finished_call(to).await;
    assert_eq!(call["digits"], "111", "{call}");
    let spoken = call["spoken"].as_str().unwrap();
    let readings = spoken
        .lines()
        .filter(|l| spoken_digits(l).len() == 6)
        .count();
    assert_eq!(readings, 2 + 3 * 2, "{spoken}");
    assert!(spoken.to_lowercase().contains("goodbye"));
}

#[tokio::test]
async fn an_unanswered_call_is_recorded_as_no_answer() {
    let app = spawn_app(&[]).await;
    let to = plivo_2fa::sandbox::numbers::CALL_NO_ANSWER;
    let id = app.start(to, "voice").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = app
        .wait_for(&id, |v| v["deliveries"][0]["status"] == "no-answer")
        .await;
    let d = &v["deliveries"][0];
    assert_eq!(d["call"]["answered"], false);
    assert_eq!(d["error_code"], "3020");
    assert_eq!(v["status"], "pending");
}

#[tokio::test]
async fn an_unknown_locale_falls_back_to_en_us_and_a_known_one_is_used() {
    let app = spawn_app(&[]).await;
    for (locale, language) in [
        ("ja-JP", "en-US"),
        ("fr-FR", "fr-FR"),
        ("es-MX", "es-ES"),
        ("hi-IN", "hi-IN"),
    ] {
        let to = random_number();
        let r = app
            .post_json(
                "/v1/verifications",
                json!({"to": to, "channel": "voice", "locale": locale}),
            )
            .await;
        assert_eq!(r.status, 201);
        let call = app.finished_call(&to).await;
        let xml = call["answer_xml"].as_str().unwrap();
        assert!(
            xml.contains(&format!(r#"language="{language}""#)),
            "{locale}: {xml}"
        );
    }
}

#[tokio::test]
async fn phlo_mode_sends_mode_call_for_voice() {
    let app = spawn_app(&[("PLIVO_PHLO_ID", "2fa-phlo-0001")]).await;
    let to = random_number();
    assert_eq!(app.start(&to, "voice").await.status, 201);
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
    assert_eq!(run["payload"]["mode"], "call");
}

const AUTH_ID: &str = "MAZDQ1ZJIYMDRKNMFHOT";
const AUTH_TOKEN: &str = "first-token";
const OLD_TOKEN: &str = "rotated-out-token";

/// A live-mode app whose Call API is wiremock; returns the app and the answer URL it handed Plivo.
async fn live_voice(brand: &str, public: &str) -> (TestApp, MockServer, String, String, String) {
    live_voice_with(brand, public, &[]).await
}

/// [`live_voice`] with `extra` settings on top.
async fn live_voice_with(
    brand: &str,
    public: &str,
    extra: &[(&str, &str)],
) -> (TestApp, MockServer, String, String, String) {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"api_id": "a", "message": "call fired", "request_uuid": "9834029e-58b6-11e1-b8b7-a5bd0e4e126f"})))
        .mount(&plivo)
        .await;
    let redis = crate::common::redis_url();
    let prefix = crate::common::unique_prefix();
    let uri = plivo.uri();
    let tokens = format!("{AUTH_TOKEN},{OLD_TOKEN}");
    let mut vars = vec![
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("API_KEYS", API_KEY),
        ("OTP_SECRET", OTP_SECRET),
        ("PLIVO_AUTH_ID", AUTH_ID),
        ("PLIVO_AUTH_TOKEN", tokens.as_str()),
        ("PLIVO_FROM_NUMBER", "+14155550199"),
        ("PLIVO_API_BASE_URL", uri.as_str()),
        ("PUBLIC_BASE_URL", public),
        ("BRAND_NAME", brand),
    ];
    vars.extend_from_slice(extra);
    let app = crate::common::spawn_with(&vars).await;
    let to = random_number();
    let r = app.start(&to, "voice").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let request = &plivo.received_requests().await.unwrap()[0];
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["answer_method"], "POST");
    assert_eq!(body["machine_detection"], "hangup");
    assert!(body["time_limit"].as_u64().is_some());
    let answer_url = body["answer_url"].as_str().unwrap().to_owned();
    assert!(body["hangup_url"].as_str().unwrap().starts_with(public));
    let id = r.body["id"].as_str().unwrap().to_owned();
    (app, plivo, answer_url, to, id)
}

/// Where a public URL lands on the test server.
fn local(app: &TestApp, public_url: &str, public: &str) -> String {
    app.url(public_url.strip_prefix(public).unwrap())
}

const PUBLIC: &str = "https://abc123.ngrok-free.app";

fn answer_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CallUUID", "4vbcpem8-0u46-x1ha-9af1-438vc92bf374"),
        ("From", "14155550199"),
        ("To", "14155550100"),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound"),
        ("RequestUUID", "9834029e-58b6-11e1-b8b7-a5bd0e4e126f"),
        ("Event", "StartApp"),
    ]
}

#[tokio::test]
async fn a_request_signed_for_the_ngrok_url_validates_on_loopback_and_the_code_is_not_in_the_url() {
    let (app, _plivo, answer_url, _, _) = live_voice("Acme", PUBLIC).await;
    assert!(
        answer_url.starts_with(&format!("{PUBLIC}/plivo/voice/answer/CR")),
        "{answer_url}"
    );
    let send_to = local(&app, &answer_url, PUBLIC);
    let ok = app
        .post_signed(
            &send_to,
            &answer_url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &answer_params(),
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "application/xml");
    let xml = ok.text().await.unwrap();
    let digits: String = xml
        .split(r#"<say-as interpret-as="digits">"#)
        .skip(1)
        .map(|s| &s[..1])
        .collect();
    assert!(digits.len() >= 12, "{xml}");
    let code = &digits[..6];
    assert!(!answer_url.contains(code), "the code is never in the URL");
    // Signed for the loopback URL instead of PUBLIC_BASE_URL: refused.
    let wrong_url = app
        .post_signed(
            &send_to,
            &send_to,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &answer_params(),
        )
        .await;
    assert_eq!(wrong_url.status(), 403);
    // A rotated token still verifies.
    let old = app
        .post_signed(
            &send_to,
            &answer_url,
            OLD_TOKEN,
            &crate::common::nonce(),
            &answer_params(),
        )
        .await;
    assert_eq!(old.status(), 200);
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let (app, _plivo, answer_url, _, _) = live_voice("Acme", PUBLIC).await;
    let send_to = local(&app, &answer_url, PUBLIC);
    let nonce = crate::common::nonce();
    let first = app
        .post_signed(&send_to, &answer_url, AUTH_TOKEN, &nonce, &answer_params())
        .await;
    assert_eq!(first.status(), 200);
    let again = app
        .post_signed(&send_to, &answer_url, AUTH_TOKEN, &nonce, &answer_params())
        .await;
    assert_eq!(again.status(), 403);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "replayed_request");
}

#[tokio::test]
async fn a_replayed_answer_for_an_unknown_or_malformed_call_reference_is_refused() {
    let (app, _plivo, answer_url, _, _) = live_voice("Acme", PUBLIC).await;
    let (base, _) = answer_url.rsplit_once('/').unwrap();
    let unknown = format!("CR{}", "0".repeat(32));
    for call in ["not-a-call-reference", unknown.as_str()] {
        let url = format!("{base}/{call}");
        let send_to = local(&app, &url, PUBLIC);
        let nonce = crate::common::nonce();
        let first = app
            .post_signed(&send_to, &url, AUTH_TOKEN, &nonce, &answer_params())
            .await;
        assert_eq!(first.status(), 200, "{call}: the apology");
        let again = app
            .post_signed(&send_to, &url, AUTH_TOKEN, &nonce, &answer_params())
            .await;
        assert_eq!(again.status(), 403, "{call}");
        let body: serde_json::Value = again.json().await.unwrap();
        assert_eq!(body["error"]["code"], "replayed_request", "{call}");
    }
}

#[tokio::test]
async fn tampered_missing_or_malformed_signatures_are_403_and_change_nothing() {
    let (app, _plivo, answer_url, _, id) = live_voice("Acme", PUBLIC).await;
    let hangup_url = answer_url.replace("/answer/", "/hangup/");
    let hangup_local = local(&app, &hangup_url, PUBLIC);
    let params: Vec<(String, String)> = [
        ("RequestUUID", "9834029e-58b6-11e1-b8b7-a5bd0e4e126f"),
        ("CallStatus", "completed"),
        ("HangupCauseCode", "4000"),
        ("Duration", "9"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let nonce = crate::common::nonce();
    let good = plivo_2fa::plivo::signature::sign_v3(
        AUTH_TOKEN.as_bytes(),
        plivo_2fa::plivo::signature::Method::Post,
        &hangup_url,
        &params,
        &nonce,
    )
    .unwrap();
    let truncated = &good[..good.len() - 4];
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no header", vec![]),
        (
            "empty header",
            vec![
                ("X-Plivo-Signature-V3", String::new()),
                ("X-Plivo-Signature-V3-Nonce", nonce.clone()),
            ],
        ),
        (
            "not base64",
            vec![
                ("X-Plivo-Signature-V3", "!!!not-base64!!!".into()),
                ("X-Plivo-Signature-V3-Nonce", nonce.clone()),
            ],
        ),
        (
            "truncated",
            vec![
                ("X-Plivo-Signature-V3", truncated.to_owned()),
                ("X-Plivo-Signature-V3-Nonce", nonce.clone()),
            ],
        ),
        ("no nonce", vec![("X-Plivo-Signature-V3", good.clone())]),
        (
            "other nonce",
            vec![
                ("X-Plivo-Signature-V3", good.clone()),
                ("X-Plivo-Signature-V3-Nonce", crate::common::nonce()),
            ],
        ),
        (
            "wrong v2",
            vec![
                ("X-Plivo-Signature-V2", good.clone()),
                ("X-Plivo-Signature-V2-Nonce", nonce.clone()),
            ],
        ),
    ];
    for (name, headers) in cases {
        let mut req = app.http.post(&hangup_local).form(&params);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{name}");
    }
    // A tampered body (one param changed) fails too.
    let mut tampered = params.clone();
    tampered[3].1 = "999".into();
    let r = app
        .http
        .post(&hangup_local)
        .header("X-Plivo-Signature-V3", &good)
        .header("X-Plivo-Signature-V3-Nonce", &nonce)
        .form(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Nothing was recorded by any of them.
    let v = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(v.body["deliveries"][0]["status"], "queued", "{:?}", v.body);
    // The genuine one is accepted and recorded.
    let r = app
        .http
        .post(&hangup_local)
        .header("X-Plivo-Signature-V3", &good)
        .header("X-Plivo-Signature-V3-Nonce", &nonce)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(v.body["deliveries"][0]["status"], "completed");
    assert_eq!(v.body["deliveries"][0]["call"]["duration"], 9);
}

/// POSTs `params` to `public_url` (on loopback) with only a V2 signature.
async fn post_v2(app: &TestApp, public_url: &str, params: &[(&str, &str)]) -> reqwest::Response {
    let nonce = crate::common::nonce();
    let v2 =
        plivo_2fa::plivo::signature::sign_v2(AUTH_TOKEN.as_bytes(), public_url, &nonce).unwrap();
    app.http
        .post(local(app, public_url, PUBLIC))
        .header("X-Plivo-Signature-V2", v2)
        .header("X-Plivo-Signature-V2-Nonce", &nonce)
        .form(params)
        .send()
        .await
        .unwrap()
}

fn hangup_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("RequestUUID", "9834029e-58b6-11e1-b8b7-a5bd0e4e126f"),
        ("CallStatus", "completed"),
        ("HangupCauseCode", "4000"),
        ("Duration", "9"),
    ]
}

#[tokio::test]
async fn a_v2_only_signature_is_refused_by_default_and_changes_nothing() {
    let (app, _plivo, answer_url, _, id) = live_voice("Acme", PUBLIC).await;
    let answer = post_v2(&app, &answer_url, &answer_params()).await;
    assert_eq!(answer.status(), 403);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_signature");
    let hangup = post_v2(
        &app,
        &answer_url.replace("/answer/", "/hangup/"),
        &hangup_params(),
    )
    .await;
    assert_eq!(hangup.status(), 403);
    let v = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(v.body["deliveries"][0]["status"], "queued", "{:?}", v.body);
}

#[tokio::test]
async fn with_plivo_accept_v2_a_v2_receipt_is_accepted_but_no_code_is_read_out_under_v2() {
    let (app, _plivo, answer_url, _, id) =
        live_voice_with("Acme", PUBLIC, &[("PLIVO_ACCEPT_V2", "true")]).await;
    // The answer URL and the "press 1" action read the code out: V3 only.
    let answer = post_v2(&app, &answer_url, &answer_params()).await;
    assert_eq!(answer.status(), 403);
    let xml = answer.text().await.unwrap();
    assert!(!xml.contains("say-as"), "no code under V2: {xml}");
    let again = answer_url.replace("/answer/", "/again/") + "?n=1";
    let replay = post_v2(&app, &again, &[("Digits", "1")]).await;
    assert_eq!(replay.status(), 403);
    // A receipt (the hangup) is accepted under V2 with the setting on.
    let hangup = post_v2(
        &app,
        &answer_url.replace("/answer/", "/hangup/"),
        &hangup_params(),
    )
    .await;
    assert_eq!(hangup.status(), 200);
    let v = app.get(&format!("/v1/verifications/{id}")).await;
    assert_eq!(
        v.body["deliveries"][0]["status"], "completed",
        "{:?}",
        v.body
    );
    // V3 still reads the code out.
    let ok = app
        .post_signed(
            &local(&app, &answer_url, PUBLIC),
            &answer_url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &answer_params(),
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("say-as"));
}

#[tokio::test]
async fn an_unknown_expired_or_used_call_reference_gets_a_spoken_apology() {
    let (app, _plivo, answer_url, to, _) = live_voice("Acme", PUBLIC).await;
    let unknown = format!("{PUBLIC}/plivo/voice/answer/CR0000000000000000000000000000000000");
    let junk = format!("{PUBLIC}/plivo/voice/answer/not-a-reference");
    for url in [unknown, junk] {
        let r = app
            .post_signed(
                &local(&app, &url, PUBLIC),
                &url,
                AUTH_TOKEN,
                &crate::common::nonce(),
                &answer_params(),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/xml");
        let xml = r.text().await.unwrap();
        assert!(xml.contains("<Speak") && xml.contains("<Hangup"), "{xml}");
        assert!(!xml.contains("say-as"));
    }
    // Used: once the code is approved the call reference reads nothing out.
    let send_to = local(&app, &answer_url, PUBLIC);
    let xml = app
        .post_signed(
            &send_to,
            &answer_url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &answer_params(),
        )
        .await
        .text()
        .await
        .unwrap();
    let code: String = xml
        .split(r#"<say-as interpret-as="digits">"#)
        .skip(1)
        .take(6)
        .map(|s| &s[..1])
        .collect();
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
    let after = app
        .post_signed(
            &send_to,
            &answer_url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &answer_params(),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        after.contains("<Hangup") && !after.contains("say-as"),
        "{after}"
    );
    // Expired: a new verification, then the clock passes its lifetime.
    app.advance(std::time::Duration::from_secs(601));
    let expired = app
        .post_signed(
            &send_to,
            &answer_url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &answer_params(),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(!expired.contains("say-as"));
}

#[tokio::test]
async fn a_brand_with_markup_characters_renders_escaped() {
    let brand = r#"A&B <Co> "Q" 'S'"#;
    let (app, _plivo, answer_url, _, _) = live_voice(brand, PUBLIC).await;
    let send_to = local(&app, &answer_url, PUBLIC);
    let xml = app
        .post_signed(
            &send_to,
            &answer_url,
            AUTH_TOKEN,
            &crate::common::nonce(),
            &answer_params(),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        xml.contains("A&amp;B &lt;Co&gt; &quot;Q&quot; &apos;S&apos;"),
        "{xml}"
    );
    assert!(plivo_2fa::sandbox::call::parse_steps(&xml).is_ok());
}

#[tokio::test]
async fn the_again_action_replays_up_to_three_times_and_otherwise_says_goodbye() {
    let (app, _plivo, answer_url, _, _) = live_voice("Acme", PUBLIC).await;
    let again = answer_url.replace("/answer/", "/again/");
    let post = |n: u8, digits: &'static str| {
        let url = format!("{again}?n={n}");
        let app = &app;
        async move {
            let mut p = answer_params();
            p.push(("Digits", digits));
            app.post_signed(
                &local(app, &url, PUBLIC),
                &url,
                AUTH_TOKEN,
                &crate::common::nonce(),
                &p,
            )
            .await
            .text()
            .await
            .unwrap()
        }
    };
    let first = post(1, "1").await;
    assert!(
        first.contains("<GetDigits") && first.contains("?n=2"),
        "{first}"
    );
    let third = post(3, "1").await;
    assert!(
        third.contains("say-as") && !third.contains("<GetDigits"),
        "{third}"
    );
    let beyond = post(4, "1").await;
    assert!(!beyond.contains("say-as") && beyond.contains("<Hangup"));
    let other_key = post(1, "7").await;
    assert!(!other_key.contains("say-as") && other_key.contains("<Hangup"));
}
