//! Operator surface: metrics, request ids, size limits, response headers.

use crate::common::{random_number, spawn_app};

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
    app.check(&to, &crate::common::wrong(&code)).await;
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
        // Every use-case metric names the application it counted for.
        "plivo2fa_verifications_started_total{channel=\"sms\",application=\"default\"}",
        "plivo2fa_checks_total{outcome=\"approved\",application=\"default\"}",
        "plivo2fa_checks_total{outcome=\"wrong\",application=\"default\"}",
        "plivo2fa_deliveries_total{",
        "plivo2fa_plivo_request_duration_seconds_bucket{",
        "plivo2fa_signature_failures_total{reason=\"invalid_signature\"}",
        "plivo2fa_blocks_total{reason=\"country_not_allowed\",application=\"default\"}",
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
    // README: 12 hex digits random per process, `-`, a 10-hex-digit counter.
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    for id in [&generated, &next] {
        let (prefix, counter) = id.split_once('-').unwrap();
        assert!(
            lower_hex(prefix, 12) && lower_hex(counter, 10),
            "a generated id has the documented form: {id}"
        );
    }
    assert_eq!(
        generated.split_once('-').unwrap().0,
        next.split_once('-').unwrap().0,
        "one process, one prefix"
    );
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
    let r = crate::common::TestApp::reply(req.send().await.unwrap()).await;
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

/// Metric names the deploy kit may use before the server exports them: they
/// come with a later version (the webhook backlog gauge).
const NOT_YET_EXPORTED: &[&str] = &["plivo2fa_webhook_backlog"];

/// Every `plivo2fa_…` metric name in `text` (recording rules, `plivo2fa:…`, are not).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.match_indices("plivo2fa_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
        })
        .collect()
}

/// The `plivo2fa_http_request_duration_seconds` series in a scrape.
async fn http_series(app: &crate::common::TestApp) -> Vec<String> {
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

fn rust_sources(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn the_deploy_kits_dashboard_and_alerts_use_only_metrics_the_server_exports() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut source = String::new();
    rust_sources(&root.join("src"), &mut source);
    // The names the server's metrics macros are called with.
    let exported: std::collections::BTreeSet<String> = metric_names(&source)
        .into_iter()
        .filter(|n| source.contains(&format!("\"{n}\"")))
        .collect();
    assert!(exported.contains("plivo2fa_checks_total"), "{exported:?}");
    for name in NOT_YET_EXPORTED {
        assert!(
            !exported.contains(*name),
            "{name} is exported now: take it out of NOT_YET_EXPORTED and the notes in deploy/"
        );
    }
    let dashboard =
        std::fs::read_to_string(root.join("deploy/grafana/dashboards/plivo-2fa.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/prometheus/alerts.test.yml",
        "deploy/grafana/dashboards/plivo-2fa.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{file}");
        for name in used {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|b| exported.contains(*b))
                .unwrap_or(&name);
            assert!(
                exported.contains(base) || NOT_YET_EXPORTED.contains(&base),
                "{file} uses {name}, which the server does not export"
            );
        }
    }
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
        crate::common::TestApp::reply(app.http.delete(app.url("/healthz")).send().await.unwrap())
            .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error"]["code"], "method_not_allowed");
}
