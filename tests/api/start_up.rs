//! What start-up checks and tells: Plivo's answer to the credentials (an
//! account read, answered here as Plivo's SDK fixtures and error shape do),
//! the in-memory store in live mode, Redis failures by kind and host, and
//! every bad setting at once.

use std::process::{Command, Stdio};

use crate::faults::{AUTH_ID, AUTH_TOKEN, try_live_app};
use wiremock::matchers::{basic_auth, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/plivo/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A live server whose Plivo is `plivo`; a blank `REDIS_URL` (unset) puts
/// it on the in-memory store.
async fn live(
    plivo: &MockServer,
    extra: &[(&str, &str)],
) -> Result<crate::common::TestApp, plivo_2fa::startup::StartupError> {
    let mut vars = vec![("REDIS_URL", "")];
    vars.extend_from_slice(extra);
    try_live_app(plivo, &vars).await
}

fn account_path() -> String {
    format!("/v1/Account/{AUTH_ID}/")
}

#[tokio::test]
async fn start_up_reads_the_plivo_account_once_and_logs_that_the_credentials_work() {
    let logs = crate::common::capture_logs();
    let plivo = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(account_path()))
        .and(basic_auth(AUTH_ID, AUTH_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(fixture("account-get.json")))
        .expect(1)
        .mount(&plivo)
        .await;
    live(&plivo, &[("PLIVO_CHECK_CREDENTIALS", "strict")])
        .await
        .expect("starts");
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("Plivo accepts the credentials"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("INFO") && line.contains("standard"), "{line}");
    assert!(!text.contains(AUTH_TOKEN));
    // Live mode with the in-memory store is said once, as a warning.
    let memory: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("live mode with the in-memory store"))
        .collect();
    assert_eq!(memory.len(), 1, "{text}");
    assert!(memory[0].contains("WARN"), "{}", memory[0]);
}

#[tokio::test]
async fn plivo_refusing_the_credentials_is_an_error_line_and_fatal_only_when_strict() {
    let logs = crate::common::capture_logs();
    let plivo = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(account_path()))
        .respond_with(ResponseTemplate::new(401).set_body_bytes(fixture("error-401.json")))
        .mount(&plivo)
        .await;
    // The default: the server starts, and says why every send will fail.
    live(&plivo, &[("PLIVO_CHECK_CREDENTIALS", "warn")])
        .await
        .expect("starts all the same");
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("Plivo refuses PLIVO_AUTH_ID"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("ERROR") && line.contains("401"), "{line}");
    assert!(
        line.contains("Could not verify your access level"),
        "{line}"
    );
    // strict: start-up stops, naming the variables and Plivo's answer.
    let err = live(&plivo, &[("PLIVO_CHECK_CREDENTIALS", "strict")])
        .await
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(
        message.starts_with("PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN: Plivo refused them"),
        "{message}"
    );
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains(AUTH_TOKEN));
    // off: Plivo is not asked.
    let before = plivo.received_requests().await.unwrap().len();
    live(&plivo, &[("PLIVO_CHECK_CREDENTIALS", "off")])
        .await
        .expect("starts");
    assert_eq!(plivo.received_requests().await.unwrap().len(), before);
}

#[tokio::test]
async fn plivo_unreachable_at_start_up_is_a_warning_even_when_strict() {
    let logs = crate::common::capture_logs();
    let plivo = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(30)))
        .mount(&plivo)
        .await;
    live(
        &plivo,
        &[
            ("PLIVO_CHECK_CREDENTIALS", "strict"),
            ("PLIVO_TIMEOUT_MS", "200"),
        ],
    )
    .await
    .expect("a Plivo outage does not keep the server down");
    let text = logs.text();
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains("cannot check the Plivo credentials")
            && l.contains("did not answer")),
        "{text}"
    );
}

/// The start-up error for this `REDIS_URL`.
async fn redis_error(url: &str) -> String {
    crate::common::try_spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", url),
        ("REDIS_TIMEOUT_MS", "300"),
    ])
    .await
    .err()
    .expect("start-up fails")
    .to_string()
}

#[tokio::test]
async fn redis_failures_at_start_up_say_refused_dns_or_timeout_and_name_the_host() {
    // Refused: nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = redis_error(&format!("redis://127.0.0.1:{port}")).await;
    assert!(refused.starts_with("REDIS_URL:"), "{refused}");
    assert!(refused.contains(&format!("127.0.0.1:{port}")), "{refused}");
    assert!(refused.contains("refused"), "{refused}");
    // DNS: `.invalid` never resolves (RFC 6761).
    let dns = redis_error("redis://no-such-redis.invalid:6379").await;
    assert!(dns.contains("no-such-redis.invalid"), "{dns}");
    assert!(dns.contains("DNS"), "{dns}");
    // Timeout: a port that takes connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let timeout = redis_error(&format!("redis://127.0.0.1:{port}")).await;
    assert!(timeout.contains(&format!("127.0.0.1:{port}")), "{timeout}");
    assert!(timeout.contains("timeout"), "{timeout}");
    drop(silent);
}

#[test]
fn four_bad_settings_are_named_at_once_one_line_each() {
    let out = Command::new(env!("CARGO_BIN_EXE_plivo-2fa"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DEMO_PAGE", "yes")
        .env("RUST_LOG", "plivo_2fa=loud")
        .env("PUBLIC_BASE_URL", "otp.example.com")
        .env("OTP_LENGTH", "six")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("plivo-2fa: configuration: "))
        .collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    for (var, says) in [
        ("DEMO_PAGE", "\"yes\" is not true or false"),
        ("RUST_LOG", "plivo_2fa=loud"),
        (
            "PUBLIC_BASE_URL",
            "must start with https:// (or http:// for a loopback address)",
        ),
        ("OTP_LENGTH", "between 4 and 10"),
    ] {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("configuration: {var}")))
            .unwrap_or_else(|| panic!("{var} not named: {stderr}"));
        assert!(line.contains(says), "{line}");
    }
}
