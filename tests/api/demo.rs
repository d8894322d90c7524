//! The demo page's serving and endpoints over plain HTTP (no browser): the
//! CSRF token, the per-address limits, the security headers, `DEMO_PAGE`, and
//! the replies the page builds on.

use crate::common::{OTP_SECRET, Reply, TestApp, code_in, random_number, spawn_app};
use serde_json::{Value, json};

const COOKIE: &str = "p2fa_demo_csrf";

/// The page's CSRF token, as its cookie and meta tag carry it.
async fn session(app: &TestApp) -> String {
    let resp = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let token = cookie
        .strip_prefix(&format!("{COOKIE}="))
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_owned();
    let html = resp.text().await.unwrap();
    assert!(html.contains(&format!("<meta name=\"csrf-token\" content=\"{token}\">")));
    token
}

async fn demo_post(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    header: Option<&str>,
    body: Value,
) -> Reply {
    let mut req = app.http.post(app.url(path)).json(&body);
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("{COOKIE}={c}"));
    }
    if let Some(h) = header {
        req = req.header("X-CSRF-Token", h);
    }
    TestApp::reply(req.send().await.unwrap()).await
}

async fn demo_get(app: &TestApp, path: &str, token: &str) -> Reply {
    let resp = app
        .http
        .get(app.url(path))
        .header("Cookie", format!("{COOKIE}={token}"))
        .header("X-CSRF-Token", token)
        .send()
        .await
        .unwrap();
    TestApp::reply(resp).await
}

async fn start(app: &TestApp, token: &str, to: &str, channel: &str) -> Reply {
    demo_post(
        app,
        "/demo/api/start",
        Some(token),
        Some(token),
        json!({"to": to, "channel": channel}),
    )
    .await
}

fn live_settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PLIVO_AUTH_ID", "MAXXXXXXXXXXXXXXXXXX"),
        ("PLIVO_AUTH_TOKEN", "live-token-0123456789"),
        ("PLIVO_FROM_NUMBER", "+14155550100"),
        ("OTP_SECRET", OTP_SECRET),
        ("PLIVO_API_BASE_URL", "http://127.0.0.1:9"),
        ("PUBLIC_BASE_URL", "https://otp.example.com"),
    ]
}

#[tokio::test]
async fn the_page_sets_an_httponly_strict_csrf_cookie_and_strict_security_headers() {
    let app = spawn_app(&[]).await;
    let resp = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with(&format!("{COOKIE}=")), "{cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.get("access-control-allow-origin").is_none());
    let html = resp.text().await.unwrap();
    assert!(html.contains("<script src=\"/demo/app.js\" defer></script>"));
    assert!(html.contains("Sandbox inbox"));
    assert!(html.contains("+12025550150"), "the test numbers are listed");

    for (path, kind) in [
        ("/demo/app.js", "text/javascript; charset=utf-8"),
        ("/demo/app.css", "text/css; charset=utf-8"),
        ("/demo/icon.svg", "image/svg+xml"),
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], kind, "{path}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert!(resp.headers().get("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn a_second_visit_keeps_the_sessions_token_so_open_tabs_keep_working() {
    let app = spawn_app(&[]).await;
    let token = session(&app).await;
    let again = app
        .http
        .get(app.url("/"))
        .header("Cookie", format!("{COOKIE}={token}"))
        .send()
        .await
        .unwrap();
    let cookie = again.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("{COOKIE}={token};")),
        "{cookie}"
    );
    let forged = app
        .http
        .get(app.url("/"))
        .header("Cookie", format!("{COOKIE}=chosen-by-an-attacker"))
        .send()
        .await
        .unwrap();
    let cookie = forged.headers()["set-cookie"].to_str().unwrap();
    assert!(!cookie.contains("chosen-by-an-attacker"), "{cookie}");
}

#[tokio::test]
async fn the_demo_endpoints_refuse_a_missing_or_wrong_csrf_token_with_403() {
    let app = spawn_app(&[]).await;
    let token = session(&app).await;
    let other = session(&app).await;
    assert_ne!(token, other);
    let to = random_number();
    let body = json!({"to": to, "channel": "sms"});

    for (cookie, header) in [
        (None, None),
        (Some(token.as_str()), None),
        (None, Some(token.as_str())),
        (Some(token.as_str()), Some(other.as_str())),
        (Some(token.as_str()), Some("")),
        (Some(""), Some("")),
    ] {
        for path in ["/demo/api/start", "/demo/api/check"] {
            let reply = demo_post(&app, path, cookie, header, body.clone()).await;
            assert_eq!(reply.status, 403, "{path} {cookie:?} {header:?}");
            assert_eq!(reply.body["error"]["code"], "csrf_token_invalid");
            assert!(
                reply.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .ends_with('.')
            );
        }
    }
    let no_token = app
        .http
        .get(app.url("/demo/api/verifications/VEx"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    assert!(
        app.sandbox_messages()
            .await
            .iter()
            .all(|m| m["to"] != to.as_str()),
        "nothing was sent for a refused request"
    );

    let ok = start(&app, &token, &to, "sms").await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
}

#[tokio::test]
async fn the_demo_endpoints_run_a_whole_verification_on_the_servers_clock() {
    let app = spawn_app(&[]).await;
    let token = session(&app).await;
    let to = random_number();

    let started = start(&app, &token, &to, "sms").await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let v = &started.body["verification"];
    assert_eq!(v["to"], to.as_str());
    assert_eq!(v["status"], "pending");
    assert_eq!(v["attempts_remaining"], 5);
    assert_eq!(started.body["resend_in_secs"], 30);
    assert_eq!(started.body["server_time"], v["created_at"]);
    let id = v["id"].as_str().unwrap().to_owned();

    let status = demo_get(&app, &format!("/demo/api/verifications/{id}"), &token).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["verification"]["id"], id.as_str());

    let sandbox = demo_get(
        &app,
        &format!("/demo/api/verifications/{id}/sandbox"),
        &token,
    )
    .await;
    assert_eq!(sandbox.status, 200);
    let text = sandbox.body["messages"][0]["text"].as_str().unwrap();
    let code = code_in(text);
    assert_eq!(code, app.last_sms_code(&to).await);
    assert_eq!(sandbox.body["calls"], json!([]));

    let wrong = crate::common::wrong(&code);
    let checked = demo_post(
        &app,
        "/demo/api/check",
        Some(&token),
        Some(&token),
        json!({"id": id, "code": wrong}),
    )
    .await;
    assert_eq!(checked.status, 200);
    assert_eq!(checked.body["verification"]["attempts_remaining"], 4);

    app.advance(std::time::Duration::from_secs(31));
    let status = demo_get(&app, &format!("/demo/api/verifications/{id}"), &token).await;
    assert_eq!(status.body["resend_in_secs"], 0, "the cooldown is over");

    let approved = demo_post(
        &app,
        "/demo/api/check",
        Some(&token),
        Some(&token),
        json!({"id": id, "code": code}),
    )
    .await;
    assert_eq!(approved.status, 200);
    assert_eq!(approved.body["verification"]["status"], "approved");
    assert_eq!(approved.body["resend_in_secs"], Value::Null);
    assert!(!approved.body.to_string().contains(&code));
}

#[tokio::test]
async fn the_demo_endpoints_answer_errors_in_the_apis_shape() {
    let app = spawn_app(&[]).await;
    let token = session(&app).await;

    let bad = start(&app, &token, "415 555 0100", "sms").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["code"], "invalid_phone_number");

    let plivo = start(
        &app,
        &token,
        plivo_2fa::sandbox::numbers::API_ERROR_500,
        "sms",
    )
    .await;
    assert_eq!(plivo.status, 502);
    assert_eq!(plivo.body["error"]["code"], "plivo_error");

    let to = random_number();
    assert_eq!(start(&app, &token, &to, "sms").await.status, 201);
    let again = start(&app, &token, &to, "voice").await;
    assert_eq!(again.status, 429);
    assert_eq!(again.body["error"]["code"], "resend_cooldown");
    assert_eq!(again.headers["retry-after"], "30");

    let unknown = demo_get(&app, "/demo/api/verifications/VEnope", &token).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"]["code"], "verification_not_found");
}

#[tokio::test]
async fn starts_are_limited_per_client_address_with_retry_after() {
    let app = spawn_app(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let token = session(&app).await;
    let from = |ip: &'static str| {
        let token = token.clone();
        let app = &app;
        async move {
            let resp = app
                .http
                .post(app.url("/demo/api/start"))
                .header("Cookie", format!("{COOKIE}={token}"))
                .header("X-CSRF-Token", token.as_str())
                .header("X-Forwarded-For", ip)
                .json(&json!({"to": random_number(), "channel": "sms"}))
                .send()
                .await
                .unwrap();
            TestApp::reply(resp).await
        }
    };
    for _ in 0..10 {
        assert_eq!(from("203.0.113.7").await.status, 201);
    }
    let limited = from("203.0.113.7").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["error"]["code"], "demo_rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(
        from("198.51.100.20").await.status,
        201,
        "another address has its own limit"
    );
}

#[tokio::test]
async fn with_demo_page_false_the_page_and_its_endpoints_are_404() {
    let app = spawn_app(&[("DEMO_PAGE", "false")]).await;
    for path in [
        "/",
        "/demo/app.js",
        "/demo/app.css",
        "/demo/api/verifications/VEx",
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    let resp = app
        .http
        .post(app.url("/demo/api/start"))
        .json(&json!({"to": random_number()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        app.get("/healthz").await.status,
        200,
        "the rest still serves"
    );
}

#[tokio::test]
async fn with_plivo_credentials_the_page_is_off_unless_demo_page_is_set() {
    let app = spawn_app(&live_settings()).await;
    let resp = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    let mut on = live_settings();
    on.push(("DEMO_PAGE", "true"));
    let app = spawn_app(&on).await;
    let resp = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(
        !html.contains("Sandbox inbox"),
        "no sandbox panel when live"
    );
    assert!(html.contains("<meta name=\"demo-sandbox\" content=\"false\">"));
    let token = session(&app).await;
    let sandbox = demo_get(&app, "/demo/api/verifications/VEx/sandbox", &token).await;
    assert_eq!(sandbox.status, 404);
}

/// The value of attribute `name` in one tag, if it has it.
fn attr<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    tag[start..].split('"').next()
}

/// The options of the `<select id="…">` on the page: each option's tag.
fn options<'h>(html: &'h str, select_id: &str) -> Vec<&'h str> {
    let open = format!("<select id=\"{select_id}\"");
    let body = html
        .split_once(open.as_str())
        .and_then(|(_, rest)| rest.split_once("</select>"))
        .unwrap_or_else(|| panic!("no select #{select_id}"))
        .0;
    body.split("<option").skip(1).collect()
}

async fn page(app: &TestApp) -> String {
    let resp = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// What the page's script makes of an example: the trunk prefix dropped, the
/// calling code put in front (see `e164` in web/app.js).
fn e164_of(option: &str) -> String {
    let dial = attr(option, "data-dial").unwrap();
    let example = attr(option, "data-example").unwrap();
    let mut digits: String = example.chars().filter(char::is_ascii_digit).collect();
    if let Some(prefix) = attr(option, "data-prefix")
        && digits.starts_with(prefix)
    {
        digits.drain(..prefix.len());
    }
    format!("+{dial}{digits}")
}

#[tokio::test]
async fn the_country_picker_offers_exactly_the_allowed_countries_and_every_example_verifies() {
    let app = spawn_app(&[]).await;
    let html = page(&app).await;
    let countries = options(&html, "country");
    let mut offered: Vec<&str> = countries
        .iter()
        .map(|o| attr(o, "value").unwrap())
        .collect();
    offered.sort_unstable();
    let mut allowed: Vec<&str> = plivo_2fa::abuse::DEFAULT_ALLOWED_COUNTRIES
        .split(',')
        .collect();
    allowed.sort_unstable();
    assert_eq!(
        offered, allowed,
        "the server's allowed countries, no others"
    );

    // Each hint's example, typed as the hint shows it, is a number the server
    // sends a code to: a real start through the app API.
    for option in &countries {
        let to = e164_of(option);
        let r = app.start(&to, "sms").await;
        assert_eq!(r.status, 201, "{option}: {to}: {:?}", r.body);
    }
    let gb = countries
        .iter()
        .find(|o| attr(o, "value") == Some("GB"))
        .unwrap();
    assert_eq!(attr(gb, "data-dial"), Some("44"));
    assert_eq!(attr(gb, "data-prefix"), Some("0"));
    assert_ne!(
        attr(gb, "data-example"),
        Some("7700 900123"),
        "not the hint the server refused"
    );
}

#[tokio::test]
async fn the_country_picker_follows_allowed_countries() {
    let app = spawn_app(&[("ALLOWED_COUNTRIES", "ie,GB")]).await;
    let html = page(&app).await;
    let offered: Vec<&str> = options(&html, "country")
        .iter()
        .map(|o| attr(o, "value").unwrap())
        .collect();
    assert_eq!(offered, ["GB", "IE"]);
}

#[tokio::test]
async fn the_page_offers_the_servers_languages_and_a_start_carries_the_one_chosen() {
    let app = spawn_app(&[]).await;
    let html = page(&app).await;
    let offered: Vec<&str> = options(&html, "locale")
        .iter()
        .map(|o| attr(o, "value").unwrap())
        .collect();
    let dirs: std::collections::BTreeSet<String> = std::fs::read_dir("xml-templates")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let offered_set: std::collections::BTreeSet<String> =
        offered.iter().map(|l| (*l).to_owned()).collect();
    assert_eq!(offered_set, dirs, "one option per voice template set");

    let token = session(&app).await;
    let to = random_number();
    let r = demo_post(
        &app,
        "/demo/api/start",
        Some(&token),
        Some(&token),
        json!({"to": to, "channel": "voice", "locale": "de-DE"}),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["verification"]["locale"], "de-DE");
}

#[tokio::test]
async fn the_page_names_the_webotp_domain_only_when_it_is_set() {
    let off = spawn_app(&[]).await;
    assert!(
        page(&off)
            .await
            .contains("<meta name=\"webotp-domain\" content=\"\">")
    );
    let on = spawn_app(&[("WEBOTP_DOMAIN", "Otp.Example.com")]).await;
    assert!(
        page(&on)
            .await
            .contains("<meta name=\"webotp-domain\" content=\"otp.example.com\">")
    );
}
