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

/// Metric names the deploy kit may use before the server exports them (none
/// now: the webhook backlog gauge came last).
const NOT_YET_EXPORTED: &[&str] = &[];

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

/// The family a sample line belongs to (its name less a histogram's suffix).
fn family_of<'a>(
    sample: &'a str,
    families: &std::collections::BTreeMap<String, String>,
) -> &'a str {
    let name = sample.split(['{', ' ']).next().unwrap_or(sample);
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .filter(|base| families.get(*base).is_some_and(|kind| kind == "histogram"))
        .unwrap_or(name)
}

/// The value of the sample `series` (name and labels exactly as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn every_metric_family_is_described_and_starts_at_zero_before_any_event() {
    let app = spawn_app(&[]).await;
    let text = app.metrics_text().await;
    let mut families = std::collections::BTreeMap::new();
    let mut described = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.insert(name.to_owned(), kind.to_owned());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(!help.trim().is_empty(), "{name} has an empty HELP");
            described.insert(name.to_owned());
        }
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let family = family_of(line, &families);
        assert!(families.contains_key(family), "no # TYPE for {line}");
        assert!(described.contains(family), "no # HELP for {line}");
    }
    // Before any start, check, send or callback, the counters alerts read are 0.
    for series in [
        "plivo2fa_plivo_errors_total{endpoint=\"message\",status=\"401\"}",
        "plivo2fa_plivo_errors_total{endpoint=\"call\",status=\"timeout\"}",
        "plivo2fa_checks_total{outcome=\"approved\",application=\"default\"}",
        "plivo2fa_verifications_started_total{channel=\"sms\",application=\"default\"}",
        "plivo2fa_verifications_started_total{channel=\"voice\",application=\"default\"}",
        "plivo2fa_blocks_total{reason=\"country_not_allowed\",application=\"default\"}",
        "plivo2fa_verifications_started_total{channel=\"whatsapp\",application=\"default\"}",
        "plivo2fa_fallbacks_total{channel=\"sms\",application=\"default\"}",
        "plivo2fa_fallbacks_total{channel=\"voice\",application=\"default\"}",
        "plivo2fa_deliveries_total{channel=\"whatsapp\",status=\"read\",error_code=\"\",application=\"default\"}",
        "plivo2fa_deliveries_total{channel=\"sms\",status=\"undelivered\",error_code=\"\",application=\"default\"}",
        "plivo2fa_deliveries_total{channel=\"voice\",status=\"completed\",error_code=\"\",application=\"default\"}",
        "plivo2fa_signature_failures_total{reason=\"invalid_signature\"}",
        "plivo2fa_jobs_queued",
        "plivo2fa_webhook_backlog",
    ] {
        assert_eq!(sample(&text, series), Some(0.0), "{series} in:\n{text}");
    }
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        sample(
            &text,
            &format!("plivo2fa_build_info{{version=\"{version}\"}}")
        ),
        Some(1.0)
    );
    for (series, kind) in [
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(families.get(series).map(String::as_str), Some(kind));
        assert!(sample(&text, series).unwrap() > 0.0, "{series}");
    }
    // promtool, from Debian's `prometheus` package, where it is installed
    // (scripts/check-deploy.sh installs it): its lint must find nothing.
    if let Ok(mut promtool) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        // A scrape after some traffic, so histograms and labelled series are in.
        let to = random_number();
        app.start(&to, "sms").await;
        let text = app.metrics_text().await;
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = promtool.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn the_webhook_backlog_the_job_queue_and_store_latency_are_measured() {
    use base64::Engine;
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    // A receiver that refuses every event: they wait for their retries.
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&receiver)
        .await;
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let url = receiver.uri();
    let app = spawn_app(&[
        ("WEBHOOK_URL", &url),
        ("WEBHOOK_SECRET", &secret),
        ("SCHEDULER_POLL_MS", "20"),
    ])
    .await;
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for(&id, |v| v["deliveries"][0]["status"] == "delivered")
        .await;
    // Bounded: the receiver has refused at least one event.
    for _ in 0..200 {
        if !receiver.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!receiver.received_requests().await.unwrap().is_empty());
    let text = app.metrics_text().await;
    let backlog = sample(&text, "plivo2fa_webhook_backlog").unwrap();
    let queued = sample(&text, "plivo2fa_jobs_queued").unwrap();
    assert!(backlog >= 1.0, "refused events wait: {text}");
    // The verification's expiry job waits too.
    assert!(queued > backlog, "{queued} jobs, {backlog} events");
    for operation in [
        "gated_start",
        "record_delivery",
        "claim_jobs",
        "queue_depth",
    ] {
        let series =
            format!("plivo2fa_store_operation_duration_seconds_count{{operation=\"{operation}\"}}");
        assert!(
            sample(&text, &series).is_some_and(|n| n >= 1.0),
            "{series} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn with_metrics_addr_the_metrics_are_served_there_and_not_on_the_app_listener() {
    let app = spawn_app(&[("METRICS_ADDR", "127.0.0.1:0")]).await;
    let apart = app.metrics_base.clone().expect("a metrics listener");
    // A start, so there is something to count.
    assert_eq!(
        app.start(&crate::common::random_number(), "sms")
            .await
            .status,
        201
    );
    let on_app = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(on_app.status(), 404, "the public listener has no /metrics");
    let r = app
        .http
        .get(format!("{apart}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            "plivo2fa_verifications_started_total{channel=\"sms\",application=\"default\"} 1"
        ),
        "{text}"
    );
    // The metrics listener serves nothing else.
    for path in [
        "/healthz",
        "/v1/verifications/VE00000000000000000000000000000000",
    ] {
        let other = app.http.get(format!("{apart}{path}")).send().await.unwrap();
        assert_eq!(other.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn a_bad_or_clashing_metrics_addr_stops_start_up_naming_it() {
    for (value, listen) in [
        ("not an address", "127.0.0.1:0"),
        ("127.0.0.1:18080", "127.0.0.1:18080"),
    ] {
        let Err(e) = crate::common::try_spawn_with(&[
            ("LISTEN_ADDR", listen),
            ("API_KEYS", crate::common::API_KEY),
            ("METRICS_ADDR", value),
        ])
        .await
        else {
            panic!("{value} started");
        };
        let line = e.to_string();
        assert!(line.starts_with("METRICS_ADDR"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}
