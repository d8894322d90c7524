//! `shapes`: what a check costs Redis in four shapes, and what one command
//! costs the client on two kinds of connection, so that a design meant to
//! meet issue 16's CPU targets can be measured before it is built.
//!
//! Each round opens `count` real verifications through the crate's store
//! (as `preload` does) and copies one record's fields, byte for byte, into
//! records for each of the other shapes (`count` for `MULTI`, twice as many
//! for the two fastest). Then, for each shape in
//! turn, `tasks` tasks on a two-thread runtime (the server's worker count on
//! this machine) spend one record per call, and the harness prints the
//! calls a second, the client's CPU per call and Redis's (from both
//! processes' `/proc/…/stat`: a tick is 10 ms, so the window is seconds).
//!
//! - `check.lua`: the store's own check by id (the script the server runs,
//!   through the store's multiplexed connection), a wrong code and then the
//!   right one;
//! - `MULTI`: the same right-code check without a script, as native
//!   commands in one transaction: count the attempt (`HINCRBY`), consume
//!   the code by renaming a key named by its digest (`RENAME` fails for a
//!   wrong one), read the view (`HMGET`), and read whether the rename took
//!   (`EXISTS`);
//! - `one string`: the check as a script over a record kept as
//!   one string rather than a hash (status, attempts, expiry and digest at
//!   fixed places up front, the rest of the fields after them): one `GET`,
//!   the comparisons, one `SET` of the closed record with its retention;
//!   a wrong code (run first, as for check.lua) also counts against the
//!   number in its two windows, as check.lua does;
//! - `minimal script`: `bench/load.sh`'s floor, one `HGET` of the digest and
//!   one `DEL` when it matches;
//! - `GET, multiplexed` and `GET, own socket`: one `GET` through redis-rs's
//!   multiplexed connection (two, one a thread, shared by the tasks), and on
//!   a socket each task owns, written and read by the task itself with
//!   redis-rs's encoder and parser: the hand-written client's shape.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use plivo_2fa::domain::verification::CheckResult;
use plivo_2fa::domain::{Clock, SystemClock, VerificationId};
use plivo_2fa::store::redis::VIEW_FIELDS;
use plivo_2fa::store::{CheckTarget, FailureWindows, Owner, VerificationStore};
use secrecy::SecretSlice;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use super::{Batch, PRELOADED_CODE, connect, open};
use plivo_2fa::domain::{CodeLength, Keyring, OtpCode};

const MINIMAL: &str = "local digest = redis.call('HGET', KEYS[1], 'digest')
if digest and digest == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0";

/// The `one string` shape's check. A wrong code counts the attempt in the
/// record and against the number in two windows, as check.lua does (the
/// last attempt's exhaustion is left out: these records allow 20).
/// `KEYS[1]` the record, 2 and 3 the number's lockout and day counters;
/// ARGV 1 now (ms), 2 retention (ms), 3 and 4 the two windows (ms), 5… the
/// typed code's digests.
const ONE_STRING: &str = "local v = redis.call('GET', KEYS[1])
if not v then return {'not_found'} end
if string.byte(v, 1) ~= 80 then return {'not_pending', v} end
local expires_at = string.sub(v, 6, 18)
local now = ARGV[1]
if #now > #expires_at or (#now == #expires_at and now >= expires_at) then
  return {'expired', v}
end
local digest = string.sub(v, 19, 82)
for i = 5, #ARGV do
  if ARGV[i] == digest then
    local closed = 'A' .. string.sub(v, 2, 18) .. string.sub(v, 83)
    redis.call('SET', KEYS[1], closed, 'PX', ARGV[2])
    return {'approved', closed}
  end
end
for k = 2, 3 do
  if redis.call('INCR', KEYS[k]) == 1 then
    redis.call('PEXPIRE', KEYS[k], ARGV[k + 1])
  end
end
local counted = 'P' .. string.format('%02d', tonumber(string.sub(v, 2, 3)) + 1) .. string.sub(v, 4)
redis.call('SET', KEYS[1], counted, 'KEEPTTL')
return {'wrong', counted}";

/// The store's windows for a number's wrong codes (the server's defaults).
const WINDOWS: FailureWindows = FailureWindows {
    lockout_ms: 3_600_000,
    day_ms: 86_400_000,
};

#[derive(Debug, clap::Args)]
pub(super) struct Shapes {
    #[arg(long)]
    redis: String,
    #[arg(long)]
    redis_pid: u32,
    /// Records per shape and round (twice as many for the two fastest):
    /// enough for the window at each shape's rate.
    #[arg(long, default_value_t = 300_000)]
    count: usize,
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    #[arg(long, default_value_t = 32)]
    tasks: usize,
}

/// CPU ticks (of 10 ms: Linux's USER_HZ) a process has spent.
fn ticks(pid: &str) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The fields after the command's closing parenthesis; utime and stime
    // are the 14th and 15th of the line.
    let rest = stat.rsplit_once(')').ok_or("unreadable stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |n: usize| -> Result<u64, String> {
        fields
            .get(n)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| "unreadable stat".to_owned())
    };
    Ok(tick(11)? + tick(12)?)
}

fn failed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub(super) async fn shapes(s: Shapes) -> Result<(), String> {
    let client = redis::Client::open(s.redis.as_str()).map_err(failed)?;
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .map_err(failed)?;
    // No server reads these records: any secret serves.
    let keyring = Arc::new(Keyring::new(&[SecretSlice::from(vec![7u8; 32])]));
    let code = OtpCode::parse(PRELOADED_CODE, CodeLength::default()).map_err(failed)?;
    let digests = Arc::new(keyring.digests(&code));
    let other = OtpCode::parse("654321", CodeLength::default()).map_err(failed)?;
    let wrong = Arc::new(keyring.digests(&other));
    let mut rounds = Vec::new();
    for round in 0..s.rounds {
        let prefix = format!("shapes{round}");
        let store = Arc::new(connect(&s.redis, &prefix, &keyring).await?);
        let batch = Batch {
            count: s.count,
            voice: false,
            first_number: 2_000_000,
            area_code: 415,
            by_number: false,
            max_attempts: 20,
            lifetime: Duration::from_secs(600),
        };
        let ids: Vec<VerificationId> = open(&store, &keyring, &batch)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let record = one_record(&mut admin, &prefix).await?;
        copy(
            &mut admin,
            &record,
            &format!("{prefix}:{{multi}}"),
            s.count,
            true,
        )
        .await?;
        copy(
            &mut admin,
            &record,
            &format!("{prefix}:{{minimal}}"),
            2 * s.count,
            false,
        )
        .await?;
        copy_as_string(
            &mut admin,
            &record,
            &format!("{prefix}:{{string}}"),
            2 * s.count,
        )
        .await?;
        rounds.push((prefix, store, Arc::new(ids), record));
    }
    let _: () = redis::cmd("SET")
        .arg("shapes:get")
        .arg(&digests[0])
        .query_async(&mut admin)
        .await
        .map_err(failed)?;
    grow_keyspace(&mut admin).await?;
    wait_for_rehash(&mut admin).await?;
    let muxes = Arc::new([
        client
            .get_multiplexed_async_connection()
            .await
            .map_err(failed)?,
        client
            .get_multiplexed_async_connection()
            .await
            .map_err(failed)?,
    ]);
    let minimal = Arc::new(redis::Script::new(MINIMAL));
    let one_string = Arc::new(redis::Script::new(ONE_STRING));
    let run = Run {
        tasks: s.tasks,
        window: Duration::from_secs(s.seconds),
        redis_pid: s.redis_pid.to_string(),
    };
    println!(
        "shapes: {} tasks, {} s a shape, {} records a shape and round",
        s.tasks, s.seconds, s.count
    );
    for (round, (prefix, store, ids, record)) in rounds.into_iter().enumerate() {
        let digest = Arc::new(field(&record, "digest")?);
        // The wrong codes first: they leave each record pending, one
        // attempt spent, for the right codes after them.
        for (name, typed, want) in [
            ("check.lua, wrong", &wrong, CheckResult::Wrong),
            ("check.lua, right", &digests, CheckResult::Approved),
        ] {
            let (store, ids, typed) = (Arc::clone(&store), Arc::clone(&ids), Arc::clone(typed));
            run.shape(round, name, s.count, move |_, i| {
                let (store, ids, digests) =
                    (Arc::clone(&store), Arc::clone(&ids), Arc::clone(&typed));
                async move {
                    match store
                        .check(
                            CheckTarget::Id(&ids[i]),
                            Owner::Any,
                            &digests,
                            WINDOWS,
                            SystemClock.now(),
                        )
                        .await
                    {
                        Ok(Some((result, _))) if result == want => Ok(()),
                        other => Err(format!("check.lua said {other:?}")),
                    }
                }
            })
            .await?;
        }
        let base = Arc::new(format!("{prefix}:{{multi}}"));
        let (m, d) = (Arc::clone(&muxes), Arc::clone(&digest));
        run.shape(round, "MULTI", s.count, move |t, i| {
            let (mut conn, base, digest) = (m[t % 2].clone(), Arc::clone(&base), Arc::clone(&d));
            async move {
                let record = format!("{base}:v:{i}");
                let won = format!("{base}:won:{i}");
                let (_, _, _, took): (i64, redis::Value, redis::Value, i64) = redis::pipe()
                    .atomic()
                    .cmd("HINCRBY")
                    .arg(&record)
                    .arg("attempts")
                    .arg(1)
                    .cmd("RENAME")
                    .arg(format!("{base}:c:{i}:{digest}"))
                    .arg(&won)
                    .cmd("HMGET")
                    .arg(&record)
                    .arg(&VIEW_FIELDS[..])
                    .cmd("EXISTS")
                    .arg(&won)
                    .query_async(&mut conn)
                    .await
                    .map_err(failed)?;
                if took == 1 {
                    Ok(())
                } else {
                    Err("MULTI did not take the code".into())
                }
            }
        })
        .await?;
        let base = Arc::new(format!("{prefix}:{{string}}"));
        for (name, typed, want) in [
            ("one string, wrong", &wrong, "wrong"),
            ("one string, right", &digests, "approved"),
        ] {
            let (m, script, typed) = (
                Arc::clone(&muxes),
                Arc::clone(&one_string),
                Arc::clone(typed),
            );
            let base = Arc::clone(&base);
            run.shape(round, name, 2 * s.count, move |t, i| {
                let (mut conn, base, script, digests) = (
                    m[t % 2].clone(),
                    Arc::clone(&base),
                    Arc::clone(&script),
                    Arc::clone(&typed),
                );
                async move {
                    let (outcome, _view): (String, Vec<u8>) = script
                        .key(format!("{base}:v:{i}"))
                        .key(format!("{base}:rl:lockout:{i}"))
                        .key(format!("{base}:rl:failed:{i}"))
                        .arg(SystemClock.now().as_millis())
                        .arg(600_000)
                        .arg(WINDOWS.lockout_ms)
                        .arg(WINDOWS.day_ms)
                        .arg(&digests[..])
                        .invoke_async(&mut conn)
                        .await
                        .map_err(failed)?;
                    if outcome == want {
                        Ok(())
                    } else {
                        Err(format!("one string said {outcome}"))
                    }
                }
            })
            .await?;
        }
        let base = Arc::new(format!("{prefix}:{{minimal}}"));
        let (m, d, script) = (
            Arc::clone(&muxes),
            Arc::clone(&digest),
            Arc::clone(&minimal),
        );
        run.shape(round, "minimal script", 2 * s.count, move |t, i| {
            let (mut conn, base, digest, script) = (
                m[t % 2].clone(),
                Arc::clone(&base),
                Arc::clone(&d),
                Arc::clone(&script),
            );
            async move {
                let matched: i64 = script
                    .key(format!("{base}:v:{i}"))
                    .arg(digest.as_str())
                    .invoke_async(&mut conn)
                    .await
                    .map_err(failed)?;
                if matched == 1 {
                    Ok(())
                } else {
                    Err("the minimal script found no record".into())
                }
            }
        })
        .await?;
        let m = Arc::clone(&muxes);
        run.shape(round, "GET, multiplexed", usize::MAX, move |t, _| {
            let mut conn = m[t % 2].clone();
            async move {
                let value: Option<String> = redis::cmd("GET")
                    .arg("shapes:get")
                    .query_async(&mut conn)
                    .await
                    .map_err(failed)?;
                value
                    .map(|_| ())
                    .ok_or_else(|| "GET found nothing".to_owned())
            }
        })
        .await?;
        let address = s
            .redis
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let mut sockets = Vec::with_capacity(s.tasks);
        for _ in 0..s.tasks {
            let socket = tokio::net::TcpStream::connect(&address)
                .await
                .map_err(failed)?;
            socket.set_nodelay(true).map_err(failed)?;
            sockets.push(Mutex::new(socket));
        }
        let sockets = Arc::new(sockets);
        let packed = Arc::new(redis::cmd("GET").arg("shapes:get").get_packed_command());
        run.shape(round, "GET, own socket", usize::MAX, move |t, _| {
            let (sockets, packed) = (Arc::clone(&sockets), Arc::clone(&packed));
            async move {
                let mut socket = sockets[t].lock().await;
                socket.write_all(&packed).await.map_err(failed)?;
                let mut reply = Vec::with_capacity(128);
                let mut chunk = [0u8; 256];
                loop {
                    let n = socket.read(&mut chunk).await.map_err(failed)?;
                    if n == 0 || reply.len() > 4096 {
                        return Err("Redis closed the socket or sent too much".into());
                    }
                    reply.extend_from_slice(&chunk[..n]);
                    // A reply cut short does not parse yet: read on.
                    if let Ok(value) = redis::parse_redis_value(&reply) {
                        let value: Option<String> =
                            redis::from_redis_value(&value).map_err(failed)?;
                        return value
                            .map(|_| ())
                            .ok_or_else(|| "GET found nothing".to_owned());
                    }
                }
            }
        })
        .await?;
    }
    Ok(())
}

struct Run {
    tasks: usize,
    window: Duration,
    redis_pid: String,
}

impl Run {
    /// Runs `call(task, i)` for i = 0, 1, … (each once, fewer than `records`)
    /// from every task until the window ends, half a second of warm-up
    /// first; prints the rate and each process's CPU per call inside the
    /// window.
    async fn shape<F, Fut>(
        &self,
        round: usize,
        name: &str,
        records: usize,
        call: F,
    ) -> Result<(), String>
    where
        F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let call = Arc::new(call);
        let (next, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..self.tasks)
            .map(|t| {
                let (call, next, done, stop) = (
                    Arc::clone(&call),
                    Arc::clone(&next),
                    Arc::clone(&done),
                    Arc::clone(&stop),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= records {
                            break;
                        }
                        call(t, i).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (c0, r0, n0) = (
            ticks("self")?,
            ticks(&self.redis_pid)?,
            done.load(Ordering::Relaxed),
        );
        let started = Instant::now();
        tokio::time::sleep(self.window).await;
        let (c1, r1, n1) = (
            ticks("self")?,
            ticks(&self.redis_pid)?,
            done.load(Ordering::Relaxed),
        );
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.map_err(failed)??;
        }
        if n1 == n0 {
            println!(
                "round {} {name:<16} ran out of records before the window: raise --count",
                round + 1
            );
            return Ok(());
        }
        let calls = (n1 - n0) as f64;
        let per_call = |ticks: u64| ticks as f64 * 10_000.0 / calls;
        println!(
            "round {} {name:<16} {:>8.0} calls/s; µs a call: client {:5.1}, Redis {:5.1}{}",
            round + 1,
            calls / elapsed.as_secs_f64(),
            per_call(c1 - c0),
            per_call(r1 - r0),
            if next.load(Ordering::Relaxed) >= records {
                " (ran out of records inside the window: raise --count)"
            } else {
                ""
            }
        );
        Ok(())
    }
}

/// One of the round's real records, every field.
async fn one_record(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg(format!("{prefix}:*:v:*"))
        .arg("COUNT")
        .arg(10_000)
        .query_async(conn)
        .await
        .map_err(failed)?;
    let key = keys.first().ok_or("no record to copy")?;
    redis::cmd("HGETALL")
        .arg(key)
        .query_async(conn)
        .await
        .map_err(failed)
}

fn field(record: &[(String, Vec<u8>)], name: &str) -> Result<String, String> {
    record
        .iter()
        .find(|(f, _)| f == name)
        .and_then(|(_, v)| String::from_utf8(v.clone()).ok())
        .ok_or_else(|| format!("the record has no {name}"))
}

/// Writes `count` copies of `record` as `{base}:v:{i}`; with `code`, each
/// also gets the key its code is consumed by, `{base}:c:{i}:{digest}`.
async fn copy(
    conn: &mut redis::aio::MultiplexedConnection,
    record: &[(String, Vec<u8>)],
    base: &str,
    count: usize,
    code: bool,
) -> Result<(), String> {
    let digest = field(record, "digest")?;
    pipelined(conn, count, |pipe, i| {
        pipe.cmd("HSET")
            .arg(format!("{base}:v:{i}"))
            .arg(record)
            .ignore();
        if code {
            pipe.cmd("SET")
                .arg(format!("{base}:c:{i}:{digest}"))
                .arg(1)
                .ignore();
        }
    })
    .await
}

/// Writes `count` copies of `record` as one string each, `{base}:v:{i}`:
/// `P` (pending), the attempts and their limit (two digits each), the expiry
/// (13 digits of ms) and the digest, then every other field's value, each
/// ended by a NUL.
async fn copy_as_string(
    conn: &mut redis::aio::MultiplexedConnection,
    record: &[(String, Vec<u8>)],
    base: &str,
    count: usize,
) -> Result<(), String> {
    let mut value = format!(
        "P0020{}{}",
        field(record, "expires_at")?,
        field(record, "digest")?
    )
    .into_bytes();
    if value.len() != 82 {
        return Err("the record's expiry is not 13 digits or its digest not 64".into());
    }
    for (name, v) in record {
        if !["status", "attempts", "max_attempts", "expires_at", "digest"].contains(&name.as_str())
        {
            value.extend_from_slice(v);
            value.push(0);
        }
    }
    pipelined(conn, count, |pipe, i| {
        pipe.cmd("SET")
            .arg(format!("{base}:v:{i}"))
            .arg(&value)
            .ignore();
    })
    .await
}

/// Sends what `add(pipe, i)` adds for i in 0..count, a thousand i at a time.
async fn pipelined(
    conn: &mut redis::aio::MultiplexedConnection,
    count: usize,
    add: impl Fn(&mut redis::Pipeline, usize),
) -> Result<(), String> {
    for start in (0..count).step_by(1000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 1000).min(count) {
            add(&mut pipe, i);
        }
        let _: () = pipe.query_async(conn).await.map_err(failed)?;
    }
    Ok(())
}

/// Grows Redis's keyspace table ahead of the keys the wrong codes' counters
/// add: fills the keyspace with small keys just past the table's size, so
/// that the table doubles now, before the wait for its move, and not in the
/// middle of a measurement (a move of millions of keys costs every command
/// run meanwhile: see the ninth round).
async fn grow_keyspace(conn: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
    let keys: u64 = redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .map_err(failed)?;
    let fill = keys.next_power_of_two() - keys + 1;
    redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(fill)
        .arg("shapes:filler")
        .query_async(conn)
        .await
        .map_err(failed)
}

/// Waits until Redis has finished moving its keyspace to a bigger table (as
/// scripts/lib.sh's wait_for_rehash does), its cron at ten times the rate,
/// for ten minutes at most.
async fn wait_for_rehash(conn: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
    let hz: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hz")
        .query_async(conn)
        .await
        .map_err(failed)?;
    let set_hz = |hz: String| {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg("hz").arg(hz);
        cmd
    };
    let _: () = set_hz("100".into())
        .query_async(conn)
        .await
        .map_err(failed)?;
    // A move of millions of keys takes minutes even at hz 100.
    let mut moved = false;
    for _ in 0..6000 {
        let stats: String = redis::cmd("DEBUG")
            .arg("HTSTATS")
            .arg(0)
            .query_async(conn)
            .await
            .map_err(|e| format!("{e} (start Redis with --enable-debug-command local)"))?;
        if !stats.contains("rehashing target") {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !moved {
        eprintln!("shapes: Redis still moving its keyspace after 10 minutes; measuring anyway");
    }
    let old = hz.get(1).cloned().unwrap_or_else(|| "10".into());
    let _: () = set_hz(old).query_async(conn).await.map_err(failed)?;
    Ok(())
}
