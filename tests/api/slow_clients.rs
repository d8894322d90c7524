//! Clients that hold connections: bodies trickled forever, many connections
//! from one address, requests actix-http itself refuses. Raw TCP, so every
//! byte on the wire is the test's choice.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::{API_KEY, spawn_app};

/// Longest the tests wait for an answer that must come.
const PATIENCE: Duration = Duration::from_secs(15);

fn port_of(app: &crate::common::TestApp) -> u16 {
    app.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// A connection to the server on 127.0.0.1 from `source` (any loopback address).
async fn connect_from(source: &str, port: u16) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{source}:0").parse::<SocketAddr>().unwrap())?;
    socket.connect(([127, 0, 0, 1], port).into()).await
}

/// Everything the server writes until it closes the connection (bounded).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status and the JSON body of a raw answer.
fn parse(answer: &str) -> (u16, Value) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A request head announcing `length` bytes of body, and the first few of them.
fn head_and_a_little(path: &str, extra_headers: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: plivo-2fa\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n{extra_headers}\r\n{{\"to\":"
    )
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_408_and_the_connection_closes() {
    let app = spawn_app(&[]).await;
    let port = port_of(&app);
    let csrf = "ab".repeat(32);
    // The API with a key, a Plivo route with a signature header, a demo
    // endpoint with a self-made CSRF pair: each reads a body.
    let cases = [
        (
            "/v1/verifications",
            format!("authorization: Bearer {}\r\n", app.api_key),
            "application/json",
        ),
        (
            "/plivo/message-status/VE00000000000000000000000000000000",
            "x-plivo-signature-v3: c2lnbmF0dXJl\r\nx-plivo-signature-v3-nonce: 12345\r\n"
                .to_owned(),
            "application/x-www-form-urlencoded",
        ),
        (
            "/demo/api/start",
            format!("cookie: p2fa_demo_csrf={csrf}\r\nx-csrf-token: {csrf}\r\n"),
            "application/json",
        ),
    ];
    // All at once: each waits out the whole deadline.
    let answers = futures::future::join_all(cases.iter().map(|(path, headers, _)| async move {
        let mut stream = connect_from("127.0.0.1", port).await.unwrap();
        stream
            .write_all(head_and_a_little(path, headers, 200).as_bytes())
            .await
            .unwrap();
        let began = Instant::now();
        let answer = read_until_closed(&mut stream).await;
        (path, answer, began.elapsed())
    }))
    .await;
    for (path, answer, waited) in answers {
        let (status, body) = parse(&answer);
        assert_eq!(status, 408, "{path}: {answer}");
        assert_eq!(body["error"]["code"], "request_timeout", "{path}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(
            waited >= Duration::from_secs(4),
            "{path}: a body has its whole deadline"
        );
    }
    assert!(app.sandbox_messages().await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn one_address_gets_its_share_of_connections_and_others_are_unaffected() {
    let app = spawn_app(&[("MAX_CONNECTIONS_PER_IP", "3")]).await;
    let port = port_of(&app);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from("127.0.0.2", port).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: plivo-2fa\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200", "kept alive and held");
        held.push(stream);
    }
    // The fourth from the same address is refused at once, in the error shape.
    let mut fourth = connect_from("127.0.0.2", port).await.unwrap();
    let answer = read_until_closed(&mut fourth).await;
    let (status, body) = parse(&answer);
    assert_eq!(status, 429, "{answer}");
    assert_eq!(body["error"]["code"], "too_many_connections");
    // Another address is unaffected.
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A closed connection gives its slot back.
    drop(held.pop());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut again = connect_from("127.0.0.2", port).await.unwrap();
        again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: plivo-2fa\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until_closed(&mut again).await;
        if parse(&answer).0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot never came back: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn requests_actix_refuses_itself_are_answered_in_the_error_shape() {
    let app = spawn_app(&[]).await;
    let port = port_of(&app);
    let garbage = b"GARBAGE\x01 / HTTP/1.1\r\n\r\n".to_vec();
    let mut many_headers = b"GET /healthz HTTP/1.1\r\nHost: plivo-2fa\r\n".to_vec();
    for i in 0..120 {
        many_headers.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let mut huge_head = b"GET /healthz HTTP/1.1\r\nHost: plivo-2fa\r\nx-big: ".to_vec();
    huge_head.extend(std::iter::repeat_n(b'y', 200 * 1024));
    huge_head.extend_from_slice(b"\r\n\r\n");
    for (name, request, status, code) in [
        ("not HTTP", garbage, 400, "malformed_request"),
        ("too many headers", many_headers, 431, "headers_too_large"),
        ("a head over 128 KiB", huge_head, 431, "headers_too_large"),
    ] {
        let mut stream = connect_from("127.0.0.1", port).await.unwrap();
        // The server may answer and close before it has read all of a huge head.
        let _ = stream.write_all(&request).await;
        let answer = read_until_closed(&mut stream).await;
        let (got, body) = parse(&answer);
        assert_eq!(got, status, "{name}: {answer}");
        assert_eq!(body["error"]["code"], code, "{name}: {answer}");
        assert!(
            answer.contains("content-type: application/json"),
            "{name}: {answer}"
        );
    }
}

/// The server binary, started with at most `soft` open files (raisable to `hard`).
fn server_with_fd_limits(port: u16, soft: u32, hard: u32) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {hard} && ulimit -Sn {soft} && exec \"$0\""
        ))
        .arg(env!("CARGO_BIN_EXE_plivo-2fa"))
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("API_KEYS", API_KEY)
        .env(
            "XML_TEMPLATES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/xml-templates"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_client_holding_unfinished_bodies_does_not_stop_the_server_answering_others() {
    // The test itself holds every connection it opens: it needs the descriptors.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A soft limit of 512 file descriptors, raisable to 1,024.
    let server = Killed(server_with_fd_limits(port, 512, 1024));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.0.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        numbers,
        ["1024", "1024"],
        "the soft limit was raised: {open_files}"
    );

    // One client, from 127.0.0.2, opens more connections than there are file
    // descriptors, each a request head and the start of a body that never ends.
    let mut held = Vec::new();
    let attack = head_and_a_little(
        "/v1/verifications",
        &format!("authorization: Bearer {API_KEY}\r\n"),
        1000,
    );
    for _ in 0..1_100 {
        let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_millis(500), connect_from("127.0.0.2", port)).await
        else {
            continue;
        };
        if stream.write_all(attack.as_bytes()).await.is_ok() {
            held.push(stream);
        }
    }
    assert!(!held.is_empty());

    // Everyone else, from 127.0.0.1, is still answered within a second.
    for attempt in 1..=3 {
        let health = http.get(format!("{base}/healthz")).send().await;
        let api = http
            .get(format!(
                "{base}/v1/verifications/VE00000000000000000000000000000000"
            ))
            .bearer_auth(API_KEY)
            .send()
            .await;
        match (health, api) {
            (Ok(h), Ok(a)) => {
                assert_eq!(h.status(), 200);
                assert_eq!(a.status(), 404);
                break;
            }
            (h, a) => assert!(
                attempt < 3,
                "not answered within a second while one client holds connections: {:?} {:?}",
                h.map(|r| r.status()),
                a.map(|r| r.status())
            ),
        }
    }
    drop(held);
}
