//! Faults the sandbox cannot produce: Plivo refusing or hanging (wiremock), and
//! Redis going away under the server (a real redis-server we stop and kill).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{API_KEY, OTP_SECRET, RedisProcess, TestApp, random_number};
use wiremock::matchers::{basic_auth, body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) const AUTH_ID: &str = "MAZDQ1ZJIYMDRKNMFHOT";
pub(crate) const AUTH_TOKEN: &str = "live-token-for-wiremock";

async fn live_app(plivo: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    try_live_app(plivo, extra).await.expect("the app starts")
}

/// A live-mode server on Redis whose Plivo is `plivo`, with `extra` on top.
pub(crate) async fn try_live_app(
    plivo: &MockServer,
    extra: &[(&str, &str)],
) -> Result<TestApp, plivo_2fa::startup::StartupError> {
    let redis = crate::common::redis_url();
    let prefix = crate::common::unique_prefix();
    let uri = plivo.uri();
    let mut vars = vec![
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("API_KEYS", API_KEY),
        ("OTP_SECRET", OTP_SECRET),
        ("PLIVO_AUTH_ID", AUTH_ID),
        ("PLIVO_AUTH_TOKEN", AUTH_TOKEN),
        ("PLIVO_FROM_NUMBER", "+14155550199"),
        ("PLIVO_API_BASE_URL", uri.as_str()),
        ("PLIVO_PHLO_BASE_URL", uri.as_str()),
        ("PUBLIC_BASE_URL", "https://otp.example.com"),
    ];
    vars.extend_from_slice(extra);
    crate::common::try_spawn_with(&vars).await
}

fn message_path() -> String {
    format!("/v1/Account/{AUTH_ID}/Message/")
}

/// Starts a verification that Plivo fails, and proves it ended as failed.
async fn assert_plivo_failure_is_502(app: &TestApp, expected_text: &str) {
    let to = random_number();
    let r = app.start(&to, "sms").await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "plivo_error");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(expected_text), "{message}");
    // The verification is failed and nothing is half-done: checking finds
    // nothing pending, and a new start opens a fresh verification.
    let check = app.check(&to, "123456").await;
    assert_eq!(check.status, 404, "{:?}", check.body);
    assert_eq!(check.body["error"]["code"], "verification_not_pending");
    assert!(
        check.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed")
    );
}

#[tokio::test]
async fn the_live_client_sends_plivo_the_documented_message_request() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(message_path()))
        .and(basic_auth(AUTH_ID, AUTH_TOKEN))
        .and(body_partial_json(serde_json::json!({
            "src": "+14155550199",
            "method": "POST",
        })))
        .respond_with(ResponseTemplate::new(202).set_body_json(serde_json::json!({
            "api_id": "a", "message": "message(s) queued", "message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"]
        })))
        .expect(1)
        .mount(&plivo)
        .await;
    let app = live_app(&plivo, &[]).await;
    let to = random_number();
    let r = app.start(&to, "sms").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["deliveries"][0]["provider_id"],
        "db3ce55a-7f1d-11e1-8ea7-1231380bc196"
    );
    let requests = plivo.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["dst"], to.as_str());
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        body["url"],
        format!("https://otp.example.com/plivo/message-status/{id}")
    );
    assert!(crate::common::code_in(body["text"].as_str().unwrap()).len() == 6);
}

#[tokio::test]
async fn plivo_refusing_credentials_is_a_502_with_plivos_text() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string(
            "Could not verify your access level for that URL.\nYou have to login with proper credentials",
        ))
        .mount(&plivo)
        .await;
    let app = live_app(&plivo, &[]).await;
    assert_plivo_failure_is_502(&app, "Could not verify your access level").await;
}

#[tokio::test]
async fn plivo_answering_500_is_a_502_and_a_failed_verification() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            serde_json::json!({"api_id": "x", "error": "internal error, retry later"}),
        ))
        .mount(&plivo)
        .await;
    let app = live_app(&plivo, &[]).await;
    assert_plivo_failure_is_502(&app, "internal error, retry later").await;
}

#[tokio::test]
async fn plivo_validation_errors_pass_their_text_through() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            serde_json::json!({"api_id": "x", "error": "dst number is not a valid mobile number"}),
        ))
        .mount(&plivo)
        .await;
    let app = live_app(&plivo, &[]).await;
    assert_plivo_failure_is_502(&app, "dst number is not a valid mobile number").await;
}

#[tokio::test]
async fn plivo_timing_out_leaves_the_verification_pending_with_an_unknown_delivery() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(5)))
        .mount(&plivo)
        .await;
    let app = live_app(&plivo, &[("PLIVO_TIMEOUT_MS", "300")]).await;
    // Plivo may have taken the message: the code the user may hold stays good.
    let r = app.start(&random_number(), "sms").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["deliveries"][0]["status"], "unknown");
}

#[tokio::test]
async fn a_failed_re_send_keeps_the_verification_pending() {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(serde_json::json!({"message_uuid": ["u-1"]})),
        )
        .up_to_n_times(1)
        .mount(&plivo)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("unavailable"))
        .mount(&plivo)
        .await;
    let app = live_app(&plivo, &[]).await;
    let to = random_number();
    let first = app.start(&to, "sms").await;
    assert_eq!(first.status, 201);
    app.advance(Duration::from_secs(30));
    let resend = app.start(&to, "sms").await;
    assert_eq!(resend.status, 502);
    let id = first.body["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/verifications/{id}")).await.body["status"],
        "pending"
    );
}

#[tokio::test]
async fn redis_hanging_or_gone_is_a_quick_503_and_the_server_recovers() {
    let redis = RedisProcess::start();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = crate::common::spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", &url),
        ("API_KEYS", API_KEY),
        ("REDIS_TIMEOUT_MS", "300"),
    ])
    .await;
    let to = random_number();
    assert_eq!(app.start(&to, "sms").await.status, 201);

    // Frozen: requests time out instead of hanging.
    redis.signal("-STOP");
    let began = Instant::now();
    let r = app.check(&to, "123456").await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "store_unavailable");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "no hang: {:?}",
        began.elapsed()
    );
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Thawed: the same server answers again without a restart.
    redis.signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = app.last_sms_code(&to).await;
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
}

/// A sandbox server whose Redis has been killed (kept, so it stays dead).
async fn app_with_redis_killed() -> (TestApp, RedisProcess) {
    let mut redis = RedisProcess::start();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = crate::common::spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", &url),
        ("API_KEYS", API_KEY),
        ("REDIS_TIMEOUT_MS", "300"),
    ])
    .await;
    redis.kill();
    (app, redis)
}

#[tokio::test]
async fn redis_killed_is_a_503_not_a_panic() {
    let (app, _redis) = app_with_redis_killed().await;
    for _ in 0..3 {
        let r = app.start(&random_number(), "sms").await;
        assert_eq!(r.status, 503, "{:?}", r.body);
        assert!(r.headers.contains_key("retry-after"));
    }
    assert!(
        app.sandbox_messages().await.is_empty(),
        "nothing was sent without a record"
    );
}

/// A check by number tells an invalid number before it asks the store, as
/// it always did: with Redis gone, an invalid number is still a 400 and a
/// valid one a 503.
#[tokio::test]
async fn with_redis_gone_a_check_by_an_invalid_number_is_still_a_400() {
    let (app, _redis) = app_with_redis_killed().await;
    let invalid = app.check("+19995550100", "123456").await;
    assert_eq!(invalid.status, 400, "{:?}", invalid.body);
    assert_eq!(invalid.body["error"]["code"], "invalid_phone_number");
    let valid = app.check(&random_number(), "123456").await;
    assert_eq!(valid.status, 503, "{:?}", valid.body);
}

#[tokio::test]
async fn an_unreachable_redis_at_start_up_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let err = crate::common::try_spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", &url),
        ("REDIS_TIMEOUT_MS", "200"),
    ])
    .await
    .err()
    .expect("start-up fails");
    assert!(err.to_string().starts_with("REDIS_URL:"), "{err}");
}

#[tokio::test]
async fn under_load_redis_going_away_is_a_quick_503_and_coming_back_heals_the_server() {
    let mut redis = RedisProcess::start();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = std::sync::Arc::new(
        crate::common::spawn_with(&[
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("REDIS_URL", &url),
            ("API_KEYS", API_KEY),
            ("REDIS_TIMEOUT_MS", "300"),
        ])
        .await,
    );
    let to = random_number();
    let id = app.start(&to, "sms").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.last_sms_code(&to).await;

    // Load: 16 workers reading the verification in a loop, recording every answer.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (app, stop, id) = (app.clone(), stop.clone(), id.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let began = Instant::now();
                let status = app.get(&format!("/v1/verifications/{id}")).await.status;
                seen.push((status, began.elapsed(), Instant::now()));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    let down_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    redis.restart();
    let back_at = Instant::now();
    // Wait (bounded) for the first success after Redis is back.
    let deadline = back_at + Duration::from_secs(15);
    loop {
        if app.get(&format!("/v1/verifications/{id}")).await.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not heal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let healed_after = back_at.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answers = Vec::new();
    for w in workers {
        answers.extend(w.await.unwrap());
    }
    assert!(
        answers.iter().all(|(s, _, _)| *s == 200 || *s == 503),
        "only 200 or 503, never a 500 or a hang"
    );
    let while_down: Vec<_> = answers
        .iter()
        .filter(|(_, _, at)| *at > down_at + Duration::from_millis(100) && *at < back_at)
        .collect();
    assert!(
        !while_down.is_empty() && while_down.iter().all(|(s, _, _)| *s == 503),
        "503 while Redis is down"
    );
    let slowest = answers.iter().map(|(_, d, _)| *d).max().unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "no answer hung: slowest {slowest:?}"
    );
    eprintln!(
        "healed {healed_after:?} after Redis came back; slowest answer {slowest:?}; {} answers",
        answers.len()
    );
    // Nothing the user had was lost: the pending verification still takes its code.
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
}

/// Kills every one of `redis` three times for a second and a half, with a
/// request for verification `id` every 50 ms meanwhile (each a quick 503),
/// and requires the first success within a second of Redis serving again
/// (`serving` waits for that after a restart), without restarting the server.
async fn recovers_within_a_second(
    app: &TestApp,
    id: &str,
    redis: &mut [RedisProcess],
    serving: impl Fn(&RedisProcess),
) {
    let path = format!("/v1/verifications/{id}");
    for round in 1..=3 {
        redis.iter_mut().for_each(RedisProcess::kill);
        let down_until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < down_until {
            let status = app.get(&path).await.status;
            assert_eq!(status, 503, "round {round}: Redis is down");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        redis.iter_mut().for_each(RedisProcess::restart);
        redis.iter().for_each(&serving);
        let back = Instant::now();
        while app.get(&path).await.status != 200 {
            assert!(
                back.elapsed() < Duration::from_secs(1),
                "round {round}: no success within a second of Redis serving again"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An app on the Redis at `url` (with a short timeout), its number and the
/// id of the verification it opened for it.
async fn app_with_a_verification(url: &str) -> (TestApp, String, String) {
    let app = crate::common::spawn_with(&[
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("REDIS_URL", url),
        ("API_KEYS", API_KEY),
        ("REDIS_TIMEOUT_MS", "300"),
    ])
    .await;
    let to = random_number();
    let started = app.start(&to, "sms").await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let id = started.body["id"].as_str().unwrap().to_owned();
    (app, to, id)
}

#[tokio::test]
async fn after_redis_comes_back_the_first_success_is_within_a_second() {
    let mut redis = RedisProcess::start();
    let (app, to, id) = app_with_a_verification(&redis.url()).await;
    // Serving as soon as it accepts connections, which `restart` waits for.
    recovers_within_a_second(&app, &id, std::slice::from_mut(&mut redis), |_| {}).await;
    let code = app.last_sms_code(&to).await;
    let checked = app.check(&to, &code).await;
    assert_eq!(checked.body["status"], "approved", "{:?}", checked.body);
}

#[tokio::test]
async fn after_a_cluster_master_comes_back_the_first_success_is_within_a_second_of_it_serving() {
    // A cluster of three masters of the test's own, so one can be killed.
    let mut nodes: Vec<RedisProcess> = (0..3).map(|_| RedisProcess::start_cluster_node()).collect();
    let seeds: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&seeds)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(created.success());
    for node in &nodes {
        cluster_ok(node);
    }
    let url = format!("redis+cluster://{}", seeds.join(","));
    let (app, to, id) = app_with_a_verification(&url).await;
    // The master holding this verification's slot (its keys share the id's tag).
    let mut admin = redis::Client::open(nodes[0].url())
        .unwrap()
        .get_connection()
        .unwrap();
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(format!("{{{}}}", &id[2..6]))
        .query(&mut admin)
        .unwrap();
    let layout: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut admin)
        .unwrap();
    // `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <state> <slots…>`
    let port = layout
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let owns = fields.get(8..)?.iter().any(|range| {
                let (start, end) = range.split_once('-').unwrap_or((range, range));
                (start.parse().unwrap_or(u16::MAX)..=end.parse().unwrap_or(0)).contains(&slot)
            });
            let address = fields.get(1)?.split('@').next()?;
            owns.then(|| address.rsplit_once(':')?.1.parse::<u16>().ok())?
        })
        .unwrap();
    let owner = nodes.iter().position(|n| n.port == port).unwrap();
    // Measured from the master serving again: a restarted master refuses
    // writes for its first two seconds whatever the client does.
    recovers_within_a_second(
        &app,
        &id,
        std::slice::from_mut(&mut nodes[owner]),
        cluster_ok,
    )
    .await;
    let code = app.last_sms_code(&to).await;
    assert_eq!(app.check(&to, &code).await.body["status"], "approved");
}

/// Waits (bounded) until a cluster node says the cluster is ok: a master that
/// restarts refuses writes for its first two seconds (Redis's
/// CLUSTER_WRITABLE_DELAY), whatever the client does.
fn cluster_ok(redis: &RedisProcess) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A node that just restarted answers LOADING while it reads its AOF.
        let info = redis::Client::open(redis.url())
            .and_then(|c| c.get_connection())
            .and_then(|mut admin| {
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query::<String>(&mut admin)
            });
        let last = match info {
            Ok(info) if info.contains("cluster_state:ok") => return,
            Ok(info) => info,
            Err(e) => e.to_string(),
        };
        assert!(Instant::now() < deadline, "the cluster is not ok: {last}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_and_exits_zero() {
    drains_on("-TERM").await;
}

#[tokio::test]
async fn sigint_drains_like_sigterm() {
    drains_on("-INT").await;
}

async fn drains_on(signal: &str) {
    let plivo = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(serde_json::json!({"message_uuid": ["m-1"]}))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&plivo)
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_plivo-2fa"))
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("REDIS_URL", crate::common::redis_url())
        .env("REDIS_KEY_PREFIX", crate::common::unique_prefix())
        .env("API_KEYS", API_KEY)
        .env("OTP_SECRET", OTP_SECRET)
        .env("PLIVO_AUTH_ID", AUTH_ID)
        .env("PLIVO_AUTH_TOKEN", AUTH_TOKEN)
        .env("PLIVO_FROM_NUMBER", "+14155550199")
        .env("PLIVO_API_BASE_URL", plivo.uri())
        .env("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env(
            "XML_TEMPLATES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/xml-templates"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let in_flight = {
        let http = http.clone();
        let base = base.clone();
        tokio::spawn(async move {
            http.post(format!("{base}/v1/verifications"))
                .bearer_auth(API_KEY)
                .json(&serde_json::json!({"to": random_number()}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    // A keep-alive connection opened before the signal, to ask /readyz on
    // while the server drains (new connections are no longer accepted).
    let mut open = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    open.write_all(b"GET /readyz HTTP/1.1\r\nHost: plivo-2fa\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    open.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(
        answer.starts_with("http/1.1 503"),
        "not ready while draining: {answer}"
    );
    assert!(
        answer.contains("connection: close") && answer.contains("shutting_down"),
        "and the connection is closed after the answer: {answer}"
    );
    assert_eq!(
        in_flight.await.unwrap().unwrap(),
        201,
        "the request in flight finished"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "no longer accepting"
    );
}
