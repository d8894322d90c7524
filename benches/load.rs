//! The load harness's helper, driven by `bench/load.sh` (not a criterion bench:
//! run bare by `cargo bench`, it says so and exits).
//!
//! - `preload`: writes pending verifications straight into the server's Redis
//!   through the crate's own store and keyring (the same Lua script and the
//!   same keyed digest and seal a start uses), with a code the harness knows,
//!   so the check scenarios can each spend a verification per request without
//!   first sending hundreds of thousands of SMS through the API. Voice
//!   verifications also get a registered call reference, as a real call does.
//! - `sign`: signs answer-URL callbacks the way Plivo does (V3, a fresh nonce
//!   each, since a nonce is accepted once), for wrk to replay.
//! - `wait-ready`: polls `/readyz` every millisecond and prints how long after
//!   the given launch instant it first answered 200.
//! - `fake-plivo`: a Plivo REST API that answers in microseconds, for the
//!   live-mode start row: Message create answers 202 and Call create 201 with
//!   the bodies Plivo documents (tests/fixtures/plivo/message-create.json and
//!   call-create.json, fresh ids each time), Basic auth taken as given. It
//!   sends no callbacks. On SIGTERM or SIGINT it prints what it answered.
//! - `shapes`: what a check costs Redis as the store's script, as a
//!   script-free transaction, as a one-string record and as the minimal
//!   script, and what one command costs the client multiplexed or on a
//!   socket of its own (`bench/shapes.sh` runs it; see `load/shapes.rs`).
#![allow(clippy::print_stdout, clippy::expect_used)] // a command-line tool

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Parser, Subcommand};
use futures::{StreamExt, TryStreamExt};
use plivo_2fa::domain::verification::SendPolicy;
use plivo_2fa::domain::{
    ApplicationId, CallRef, Channel, Clock, CodeLength, Keyring, Locale, OtpCode, PhoneNumber,
    Status, SystemClock, Verification, VerificationId,
};
use plivo_2fa::plivo::paths;
use plivo_2fa::plivo::signature::{Method, sign_v3};
use plivo_2fa::store::redis::RedisTarget;
use plivo_2fa::store::{
    CallStore, NewVerification, RedisStore, SendBudget, StartOutcome, VerificationStore,
};
use secrecy::SecretSlice;

#[path = "load/shapes.rs"]
mod shapes;

/// The code every preloaded verification holds.
const PRELOADED_CODE: &str = "123456";
/// How many store writes are in flight at once while preloading.
const PRELOAD_CONCURRENCY: usize = 128;

#[derive(Debug, Parser)]
#[command(name = "load", about = "bench/load.sh's helper")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes pending verifications into Redis; one id (or call reference) a line.
    Preload {
        #[arg(long)]
        redis: String,
        #[arg(long, default_value = "p2fa")]
        prefix: String,
        /// The server's OTP_SECRET (base64).
        #[arg(long)]
        otp_secret: String,
        /// SMS verifications to open.
        #[arg(long)]
        count: usize,
        /// Voice verifications instead, each with a registered call reference
        /// (the file then lists the references).
        #[arg(long)]
        voice: bool,
        /// The first number is +1, the area code, then this seven-digit value.
        #[arg(long)]
        first_number: u32,
        /// The numbers' (US) area code.
        #[arg(long, default_value_t = 415)]
        area_code: u16,
        /// List the numbers instead of the ids (for checks by number).
        #[arg(long, conflicts_with = "voice")]
        by_number: bool,
        #[arg(long, default_value_t = 20)]
        max_attempts: u32,
        #[arg(long, default_value_t = 10)]
        lifetime_minutes: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Signs `count` answer-URL callbacks over the call references in `calls`;
    /// writes `path nonce signature` lines and the shared form body.
    Sign {
        /// The server's PUBLIC_BASE_URL.
        #[arg(long)]
        base: String,
        /// The auth token (PLIVO_AUTH_TOKEN) to sign with.
        #[arg(long)]
        token: String,
        #[arg(long)]
        calls: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        body_out: PathBuf,
    },
    /// Polls GET /readyz until it answers 200; prints the milliseconds since
    /// `since_ns` (nanoseconds since the Unix epoch, as `date +%s%N`).
    WaitReady {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        since_ns: u128,
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
    },
    /// Serves Plivo's Message and Call create on `addr` until SIGTERM.
    FakePlivo {
        #[arg(long)]
        addr: String,
    },
    /// Measures a check's shapes and a command's two connections
    /// against the Redis at `redis`, whose process is `redis_pid`.
    Shapes(shapes::Shapes),
}

fn main() -> ExitCode {
    // `cargo bench` appends `--bench`; it means nothing here.
    let args = std::env::args().filter(|a| a != "--bench");
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        None => {
            println!("load: the helper of bench/load.sh; run that script for the load numbers");
            return ExitCode::SUCCESS;
        }
        Some(Command::Preload {
            redis,
            prefix,
            otp_secret,
            count,
            voice,
            first_number,
            area_code,
            by_number,
            max_attempts,
            lifetime_minutes,
            out,
        }) => block_on(
            tokio::runtime::Builder::new_multi_thread(),
            preload(Preload {
                redis,
                prefix,
                otp_secret,
                batch: Batch {
                    count,
                    voice,
                    first_number,
                    area_code,
                    by_number,
                    max_attempts,
                    lifetime: Duration::from_secs(60 * lifetime_minutes),
                },
                out,
            }),
        ),
        Some(Command::Sign {
            base,
            token,
            calls,
            count,
            out,
            body_out,
        }) => sign(&base, &token, &calls, count, &out, &body_out),
        Some(Command::WaitReady {
            addr,
            since_ns,
            timeout_ms,
        }) => wait_ready(&addr, since_ns, Duration::from_millis(timeout_ms)),
        Some(Command::FakePlivo { addr }) => block_on(
            tokio::runtime::Builder::new_current_thread(),
            fake_plivo(&addr),
        ),
        Some(Command::Shapes(shapes)) => block_on(
            // The server's worker count on this two-core machine.
            {
                let mut two = tokio::runtime::Builder::new_multi_thread();
                two.worker_threads(2);
                two
            },
            shapes::shapes(shapes),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` to its end on a runtime from `builder`.
fn block_on(
    mut builder: tokio::runtime::Builder,
    work: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    let runtime = builder.enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(work)
}

struct Preload {
    redis: String,
    prefix: String,
    otp_secret: String,
    batch: Batch,
    out: PathBuf,
}

/// The verifications a preload opens.
struct Batch {
    count: usize,
    voice: bool,
    first_number: u32,
    area_code: u16,
    by_number: bool,
    max_attempts: u32,
    lifetime: Duration,
}

/// The keyring of a server whose OTP_SECRET is `otp_secret` (base64).
fn keyring(otp_secret: &str) -> Result<std::sync::Arc<Keyring>, String> {
    let secret = STANDARD
        .decode(otp_secret.trim())
        .map_err(|_| "--otp-secret must be base64".to_owned())?;
    Ok(std::sync::Arc::new(Keyring::new(&[SecretSlice::from(
        secret,
    )])))
}

async fn connect(
    redis: &str,
    prefix: &str,
    keyring: &std::sync::Arc<Keyring>,
) -> Result<RedisStore, String> {
    let target = RedisTarget::parse(redis)?;
    RedisStore::connect(
        &target,
        prefix,
        Duration::from_secs(10),
        std::sync::Arc::clone(keyring),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn preload(p: Preload) -> Result<(), String> {
    let keyring = keyring(&p.otp_secret)?;
    let store = connect(&p.redis, &p.prefix, &keyring).await?;
    let started = Instant::now();
    let opened = open(&store, &keyring, &p.batch).await?;
    let mut file = BufWriter::new(File::create(&p.out).map_err(|e| e.to_string())?);
    for (_, line) in opened {
        writeln!(file, "{line}").map_err(|e| e.to_string())?;
    }
    file.flush().map_err(|e| e.to_string())?;
    eprintln!(
        "load: preloaded {} {} verifications in {:.1} s",
        p.batch.count,
        if p.batch.voice { "voice" } else { "SMS" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Opens the batch's verifications, each holding [`PRELOADED_CODE`]: their
/// ids and, for each, its line (the id, number or call reference).
async fn open(
    store: &RedisStore,
    keyring: &Keyring,
    p: &Batch,
) -> Result<Vec<(VerificationId, String)>, String> {
    let code = OtpCode::parse(PRELOADED_CODE, CodeLength::default()).map_err(|e| e.to_string())?;
    let policy = SendPolicy {
        cooldown_ms: 30_000,
        max_sends: 5,
    };
    let code = &code;
    futures::stream::iter(0..p.count)
        .map(|i| async move {
            let digits = u64::from(p.first_number) + i as u64;
            let e164 = format!("+1{}{digits:07}", p.area_code);
            let to = PhoneNumber::parse(&e164).map_err(|e| format!("{e164}: {e}"))?;
            let key = keyring.number_key(&to);
            let id = VerificationId::generate(&key.tag);
            let now = SystemClock.now();
            let expires_at = now.plus(p.lifetime);
            let new = NewVerification {
                digest: keyring.primary_digest(code),
                sealed: keyring.seal(code, id.as_str()),
                verification: Verification {
                    id: id.clone(),
                    application: ApplicationId::default(),
                    to,
                    channel: if p.voice {
                        Channel::Voice
                    } else {
                        Channel::Sms
                    },
                    locale: Locale::default(),
                    status: Status::Pending,
                    created_at: now,
                    expires_at,
                    attempts: 0,
                    max_attempts: p.max_attempts,
                    sends: 1,
                    last_sent_at: now,
                    deliveries: Vec::new(),
                    fallbacks: Vec::new(),
                },
            };
            // The preload is not a client: no send budget binds it.
            let budget = SendBudget {
                max: u64::MAX,
                window_ms: 60_000,
            };
            match store.start(new, &key, policy, budget, now).await {
                Ok(StartOutcome::Created(_)) => {}
                Ok(_) => return Err(format!("{e164} already has a verification")),
                Err(e) => return Err(e.to_string()),
            }
            if p.by_number {
                return Ok((id, e164));
            }
            if !p.voice {
                let line = id.as_str().to_owned();
                return Ok((id, line));
            }
            let call = CallRef::generate(id.tag());
            store
                .register_call(&call, &id, expires_at, now)
                .await
                .map_err(|e| e.to_string())?;
            Ok((id, call.as_str().to_owned()))
        })
        .buffer_unordered(PRELOAD_CONCURRENCY)
        .try_collect()
        .await
}

/// The form Plivo posts to an answer URL when an outbound call is answered.
fn answer_callback() -> Vec<(String, String)> {
    [
        ("ALegRequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
        ("ALegUUID", "9b1c3d7e-5f2a-4c8b-a6d4-2e0f1b3c5d7e"),
        ("BillRate", "0.0085"),
        ("CallStatus", "in-progress"),
        ("CallUUID", "9b1c3d7e-5f2a-4c8b-a6d4-2e0f1b3c5d7e"),
        ("CallerName", "+14155550199"),
        ("Direction", "outbound"),
        ("Event", "StartApp"),
        ("From", "14155550199"),
        ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
        ("RequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
        ("SessionStart", "2026-11-25 19:45:12.345678"),
        ("To", "14155550100"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn sign(
    base: &str,
    token: &str,
    calls: &Path,
    count: usize,
    out: &Path,
    body_out: &Path,
) -> Result<(), String> {
    let refs: Vec<CallRef> = BufReader::new(File::open(calls).map_err(|e| e.to_string())?)
        .lines()
        .map(|line| {
            let line = line.map_err(|e| e.to_string())?;
            CallRef::parse(line.trim()).ok_or_else(|| format!("{line:?} is not a call reference"))
        })
        .collect::<Result<_, _>>()?;
    if refs.is_empty() {
        return Err(format!("{} lists no call references", calls.display()));
    }
    let params = answer_callback();
    let base = base.trim_end_matches('/');
    // Unique per run, so two runs against one Redis never replay each other.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_micros();
    let mut file = BufWriter::new(File::create(out).map_err(|e| e.to_string())?);
    for i in 0..count {
        let path = paths::voice_answer(&refs[i % refs.len()]);
        let nonce = format!("{run}{i:08}");
        let signature = sign_v3(
            token.as_bytes(),
            Method::Post,
            &format!("{base}{path}"),
            &params,
            &nonce,
        )
        .map_err(|e| e.to_string())?;
        writeln!(file, "{path} {nonce} {signature}").map_err(|e| e.to_string())?;
    }
    file.flush().map_err(|e| e.to_string())?;
    let body = serde_urlencoded::to_string(&params).map_err(|e| e.to_string())?;
    std::fs::write(body_out, body).map_err(|e| e.to_string())?;
    Ok(())
}

fn wait_ready(addr: &str, since_ns: u128, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    loop {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let mut head = [0u8; 12];
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_exact(&mut head).is_ok()
                && head.ends_with(b" 200")
            {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_err(|e| e.to_string())?
                    .as_nanos();
                println!("{:.1}", now.saturating_sub(since_ns) as f64 / 1e6);
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{addr} was not ready within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What the fake Plivo answered, printed when it stops.
#[derive(Debug)]
struct FakeCounts {
    /// Distinguishes this process's ids from another run's.
    run: u64,
    messages: AtomicU64,
    calls: AtomicU64,
    refused: AtomicU64,
}

impl FakeCounts {
    /// A fresh id in the UUID shape Plivo uses (`8-4-4-4-12` hex digits).
    fn next_id(&self, n: u64) -> String {
        let r = self.run;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            r >> 32,
            (r >> 16) & 0xffff,
            r & 0xfff,
            (n >> 48) & 0xfff,
            n & 0xffff_ffff_ffff
        )
    }
}

/// The fields Plivo requires of a Message create (it answers 400 without them).
#[derive(Debug, serde::Deserialize)]
struct FakeMessage {
    dst: String,
    text: String,
}

impl FakeMessage {
    fn is_complete(&self) -> bool {
        !self.dst.is_empty() && !self.text.is_empty()
    }
}

/// The fields Plivo requires of a Call create.
#[derive(Debug, serde::Deserialize)]
struct FakeCall {
    from: String,
    to: String,
    answer_url: String,
}

impl FakeCall {
    fn is_complete(&self) -> bool {
        !self.from.is_empty() && !self.to.is_empty() && !self.answer_url.is_empty()
    }
}

fn fake_refusal(counts: &FakeCounts, error: &str) -> HttpResponse {
    let n = counts.refused.fetch_add(1, Ordering::Relaxed);
    HttpResponse::BadRequest().json(serde_json::json!({
        "api_id": counts.next_id(u64::MAX - n),
        "error": error,
    }))
}

/// `POST /v1/Account/{auth_id}/Message/`: 202, as plivo-go's
/// `fixtures/messageSendResponse.json`.
async fn fake_message(counts: web::Data<FakeCounts>, body: web::Bytes) -> HttpResponse {
    if !serde_json::from_slice::<FakeMessage>(&body).is_ok_and(|m| m.is_complete()) {
        return fake_refusal(&counts, "dst and text are required");
    }
    let n = counts.messages.fetch_add(1, Ordering::Relaxed);
    let api_id = counts.next_id(n << 1);
    let uuid = counts.next_id((n << 1) | 1);
    HttpResponse::Accepted()
        .content_type("application/json")
        .body(format!(
            r#"{{"api_id":"{api_id}","message":"message(s) queued","message_uuid":["{uuid}"]}}"#
        ))
}

/// `POST /v1/Account/{auth_id}/Call/`: 201, as plivo-go's
/// `fixtures/callCreateResponse.json`.
async fn fake_call(counts: web::Data<FakeCounts>, body: web::Bytes) -> HttpResponse {
    if !serde_json::from_slice::<FakeCall>(&body).is_ok_and(|c| c.is_complete()) {
        return fake_refusal(&counts, "from, to and answer_url are required");
    }
    let n = counts.calls.fetch_add(1, Ordering::Relaxed);
    let api_id = counts.next_id((1 << 47) | (n << 1));
    let uuid = counts.next_id((1 << 47) | (n << 1) | 1);
    HttpResponse::Created()
        .content_type("application/json")
        .body(format!(
            r#"{{"message":"call fired","request_uuid":"{uuid}","api_id":"{api_id}"}}"#
        ))
}

async fn fake_not_found(counts: web::Data<FakeCounts>) -> HttpResponse {
    let n = counts.refused.fetch_add(1, Ordering::Relaxed);
    HttpResponse::NotFound().json(serde_json::json!({
        "api_id": counts.next_id(u64::MAX - n),
        "error": "not found",
    }))
}

async fn fake_plivo(addr: &str) -> Result<(), String> {
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos() as u64
        ^ u64::from(std::process::id()) << 40;
    let counts = web::Data::new(FakeCounts {
        run,
        messages: AtomicU64::new(0),
        calls: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    });
    let data = counts.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route(
                "/v1/Account/{auth_id}/Message/",
                web::post().to(fake_message),
            )
            .route("/v1/Account/{auth_id}/Call/", web::post().to(fake_call))
            .default_service(web::to(fake_not_found))
    })
    // One worker: it answers in microseconds, and it shares the cores with
    // the server it answers.
    .workers(1)
    .disable_signals()
    .bind(addr)
    .map_err(|e| format!("{addr}: {e}"))?
    .run();
    let handle = server.handle();
    let running = tokio::spawn(server);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    handle.stop(false).await;
    running
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    eprintln!(
        "fake-plivo: answered {} Message creates, {} Call creates, refused {}",
        counts.messages.load(Ordering::Relaxed),
        counts.calls.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed)
    );
    Ok(())
}
