//! Operator surface: metrics, request ids, size limits, response headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{random_number, spawn_app};

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_text_format() {
    let app = spawn_app(&[("SCHEDULER_POLL_MS", "20")]).await;
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for(&id, |v| v["deliveries"][0]["status"] == "delivered")
        .await;
    let code = app.last_sms_code(&to).await;
    app.check(&to, &common::wrong(&code)).await;
    app.check(&to, &code).await;
    app.start("+2348031234567", "sms").await;
    app.http
        .post(app.url("/plivo/message-status/x"))
        .send()
        .await
        .unwrap();
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for name in [
        "plivo2fa_verifications_started_total{channel=\"sms\"}",
        "plivo2fa_checks_total{outcome=\"approved\"}",
        "plivo2fa_checks_total{outcome=\"wrong\"}",
        "plivo2fa_deliveries_total{",
        "plivo2fa_plivo_request_duration_seconds_bucket{",
        "plivo2fa_signature_failures_total{reason=\"invalid_signature\"}",
        "plivo2fa_blocks_total{reason=\"country_not_allowed\"}",
        "plivo2fa_conversion_ratio",
        "plivo2fa_http_request_duration_seconds_bucket{",
        "route=\"/v1/verifications/check\"",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(!text.contains(&to), "no phone numbers in metrics");
}

#[tokio::test]
async fn a_request_id_is_echoed_or_generated() {
    let app = spawn_app(&[]).await;
    let r = app
        .http
        .get(app.url("/healthz"))
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    let next = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(generated, next, "each request gets its own id");
    for id in [&generated, &next] {
        assert!(
            (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
            "a generated id is short and safe to log: {id}"
        );
    }
    let r = app
        .http
        .get(app.url("/healthz"))
        .header("X-Request-Id", "bad id <script>")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id <script>");
}

#[tokio::test]
async fn oversized_urls_and_headers_are_refused_in_the_error_shape() {
    let app = spawn_app(&[]).await;
    let long = format!("/v1/verifications/{}", "a".repeat(3000));
    let r = app.get(&long).await;
    assert_eq!(r.status, 414);
    assert_eq!(r.body["error"]["code"], "uri_too_long");
    let mut req = app.http.get(app.url("/healthz"));
    for i in 0..70 {
        req = req.header(format!("x-filler-{i}"), "x");
    }
    let r = common::TestApp::reply(req.send().await.unwrap()).await;
    assert_eq!(r.status, 431);
    let r = app
        .http
        .get(app.url("/healthz"))
        .header("x-big", "y".repeat(17 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
}

#[tokio::test]
async fn answers_carry_no_cors_and_are_not_cached_or_sniffed() {
    let app = spawn_app(&[]).await;
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/verifications"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-"))
    );
    let r = app
        .http
        .get(app.url("/v1/verifications/VE00000000000000000000000000000000"))
        .bearer_auth(&app.api_key)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
}

/// The `plivo2fa_http_request_duration_seconds` series in a scrape.
async fn http_series(app: &common::TestApp) -> Vec<String> {
    let text = app.metrics_text().await;
    text.lines()
        .filter(|l| l.starts_with("plivo2fa_http_request_duration_seconds_count{"))
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l, |(series, _)| series)
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn invented_methods_and_paths_do_not_grow_the_metrics() {
    let app = spawn_app(&[]).await;
    // Every kind of request once: an invented method on an unknown path, on a
    // known path, and a standard method on an unknown path.
    let send = |method: String, path: String| {
        let app = &app;
        async move {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            app.http
                .request(method, app.url(&path))
                .bearer_auth(&app.api_key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let kinds = |i: usize| {
        [
            (format!("QWERTY{i}"), format!("/x{i}")),
            (format!("ZZ{i}Z"), "/v1/verifications".to_owned()),
            ("GET".to_owned(), format!("/nothing/here/{i}")),
        ]
    };
    for (method, path) in kinds(0) {
        send(method, path).await;
    }
    // A scrape is recorded after it renders: the first one adds its own series.
    http_series(&app).await;
    let before = http_series(&app).await;
    assert!(!before.is_empty());
    for i in 1..=1_000 {
        for (method, path) in kinds(i) {
            let status = send(method, path).await;
            assert!(status.is_client_error(), "{status}");
        }
    }
    let after = http_series(&app).await;
    assert_eq!(
        before.len(),
        after.len(),
        "3,000 invented requests added series: {:?}",
        after
            .iter()
            .filter(|s| !before.contains(s))
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(after.iter().any(|s| s.contains("method=\"other\"")));
    assert!(after.iter().any(|s| s.contains("route=\"unmatched\"")));
    assert!(
        !after
            .iter()
            .any(|s| s.contains("QWERTY") || s.contains("/x1"))
    );
}

#[tokio::test]
async fn head_answers_the_health_and_readiness_probes() {
    let app = spawn_app(&[]).await;
    for path in ["/healthz", "/readyz"] {
        let r = app.http.head(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD {path}");
        assert!(r.bytes().await.unwrap().is_empty(), "HEAD has no body");
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
    }
    // Other methods get the error shape, not an empty 405.
    let r =
        common::TestApp::reply(app.http.delete(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error"]["code"], "method_not_allowed");
}
