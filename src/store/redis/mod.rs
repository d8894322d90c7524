//! The Redis store. Every operation is one Lua script, so it is one atomic
//! round trip; every key of a number carries the same `{tag}`, so each script
//! touches one Redis Cluster slot (see [`keys`] for the layout). Redis TTLs
//! only collect garbage: expiry is decided from `expires_at` and the `now`
//! the caller passes.
//!
//! Records written before numbers were sealed hold `to` in plain E.164 and no
//! number hash; they are read as they are, so a rolling upgrade strands no
//! pending verification.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::{
    Admission, AdmissionStore, CallStore, CheckOutcome, CheckTarget, CounterStore, DeliveryUpdate,
    EventStore, FailureWindows, Failures, FallbackClaim, Feed, Finish, FinishOutcome, FlagStore,
    Gate, Gated, Health, JobStore, NewVerification, Nonce, NonceStore, Opening, Owner, QUEUE_SCAN,
    QueueDepth, RETENTION_MS, Recording, ResolvedCall, SendBudget, StartOutcome, StoreError,
    VerificationStore, window_before,
};
use crate::domain::verification::{CheckResult, FallbackSkip, ResendRefusal, SendPolicy};
use crate::domain::{
    CallRef, FallbackChannels, FallbackTrigger, Keyring, NumberKey, PhoneNumber, Status, Timestamp,
    Verification, VerificationId,
};
use keys::Keys;
pub use local::use_own_connections;
pub use persistence::Persistence;
use persistence::{collect_text, persistent_by_info};
pub use reply::VIEW_FIELDS;
use reply::{MAX_PLAIN_NUMBER, Reply, StoredDelivery, parse_id, parse_view};
use scripts::{Invocation, Scripts};
pub use target::RedisTarget;

mod factors;
pub mod keys;
mod local;
mod persistence;
mod reply;
mod scripts;
mod target;

pub const DEFAULT_KEY_PREFIX: &str = "p2fa";

/// One connection for the whole process: a single node's connection manager
/// (multiplexed, reconnects by itself) or a cluster connection.
#[derive(Clone)]
pub(super) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

#[derive(Clone)]
pub struct RedisStore {
    /// The shared connection; threads that ask for one also open their own
    /// (see [`local`]).
    conn: Connection,
    /// Tells this store's connections of each thread apart from other stores'.
    id: u64,
    /// Where Redis is, to open those.
    target: std::sync::Arc<RedisTarget>,
    scripts: std::sync::Arc<Scripts>,
    /// Seals and opens the number of each verification at rest.
    keyring: std::sync::Arc<Keyring>,
    keys: Keys,
    timeout: Duration,
    /// Where Redis is (`host:port`), for error messages.
    location: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects once at start-up; the connection is shared by every request and
    /// reconnects by itself.
    ///
    /// Reconnection is on demand, with no backoff to sit out: once Redis is
    /// back, the next request (or the job worker's next poll) reconnects, so
    /// the first success comes as soon as Redis accepts connections again.
    /// The redis crate's `ConnectionManager` retries with a backoff whose first
    /// wait is a fixed second or more (its `factor` multiplies a one-second
    /// floor), which held every request back for 2.7 to 3.7 s after Redis
    /// returned; with no retries, each failed attempt simply ends and the next
    /// request starts a new one. A request never waits longer than
    /// `REDIS_TIMEOUT_MS` either way, and attempts against a Redis that is down
    /// fail at once (connection refused), so nothing piles up.
    pub async fn connect(
        target: &RedisTarget,
        prefix: &str,
        timeout: Duration,
        keyring: std::sync::Arc<Keyring>,
    ) -> Result<Self, StoreError> {
        resolve(target, timeout).await?;
        let location = target.location();
        let unavailable = |e: redis::RedisError| failure(&location, timeout, &e);
        let timed_out = || {
            StoreError::Unavailable(format!(
                "Redis at {location} did not answer within {} ms (timeout)",
                (timeout * 3).as_millis()
            ))
        };
        let conn = open(target, timeout).await.map_err(|e| match e {
            OpenFailure::TimedOut => timed_out(),
            OpenFailure::Failed(e) => unavailable(e),
        })?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let store = Self {
            conn,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            target: std::sync::Arc::new(target.clone()),
            scripts: std::sync::Arc::new(Scripts::load()),
            keyring,
            keys: Keys::new(prefix),
            timeout,
            location: location.clone(),
        };
        store.ping().await.map_err(|e| match e {
            StoreError::Timeout => timed_out(),
            other => other,
        })?;
        Ok(store)
    }

    /// The connection for this thread: its own when it has one open, else
    /// the shared one.
    fn conn(&self) -> Connection {
        local::connection(self.id, || {
            let (target, timeout) = (std::sync::Arc::clone(&self.target), self.timeout);
            async move { open(&target, timeout).await.ok() }
        })
        .unwrap_or_else(|| self.conn.clone())
    }

    /// Runs one command with the store's timeout.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn();
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Err(_) => Err(StoreError::Timeout),
            Ok(Err(e)) => Err(failure(&self.location, self.timeout, &e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    async fn run(&self, invocation: Invocation<'_>) -> Result<Value, StoreError> {
        let mut conn = self.conn();
        match tokio::time::timeout(self.timeout, invocation.invoke::<Value>(&mut conn)).await {
            Err(_) => Err(StoreError::Timeout),
            Ok(Err(e)) => Err(failure(&self.location, self.timeout, &e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Whether this Redis keeps its data on disk (on a cluster, as one node
    /// answers). Reads `CONFIG GET appendonly` and `save`; where CONFIG is
    /// disabled or not allowed (managed Redis services often rename it), falls
    /// back to `INFO persistence`, which shows AOF but not the RDB schedule.
    pub async fn persistence(&self) -> Persistence {
        let config = |name: &'static str| {
            let mut cmd = redis::cmd("CONFIG");
            cmd.arg("GET").arg(name);
            async move { self.query::<Vec<String>>(&cmd).await }
        };
        if let (Ok(aof), Ok(save)) = (config("appendonly").await, config("save").await) {
            let aof_on = aof.get(1).is_some_and(|v| v == "yes");
            let save_on = save.get(1).is_some_and(|v| !v.trim().is_empty());
            return if aof_on || save_on {
                Persistence::On
            } else {
                Persistence::Off
            };
        }
        let mut info = redis::cmd("INFO");
        info.arg("persistence");
        match self.query::<Value>(&info).await {
            Ok(value) => {
                let mut sections = Vec::new();
                collect_text(&value, &mut sections);
                if sections.is_empty() {
                    Persistence::Unknown
                } else if sections.iter().all(|s| persistent_by_info(s)) {
                    Persistence::On
                } else {
                    Persistence::NoneSeen
                }
            }
            Err(_) => Persistence::Unknown,
        }
    }

    /// Where Redis is (`host:port`, or the seeds of a cluster).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Deletes every key under this store's prefix on a single node (tests only).
    pub async fn flush_prefix(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let pattern = format!("{}:*", self.keys.prefix());
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        for key in keys {
            let _: () = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }
}

/// Resolves every host of `target` (DNS) within `timeout`, so a name that
/// does not resolve is told apart from a Redis that refuses or hangs.
async fn resolve(target: &RedisTarget, timeout: Duration) -> Result<(), StoreError> {
    for (host, port) in target.endpoints() {
        match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await {
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "looking up {host} (DNS) took over {} ms (timeout)",
                    timeout.as_millis()
                )));
            }
            Ok(Err(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "{host} does not resolve (DNS): {e}"
                )));
            }
            Ok(Ok(_)) => {}
        }
    }
    Ok(())
}

/// Why a connection could not be opened.
enum OpenFailure {
    TimedOut,
    Failed(redis::RedisError),
}

/// Opens a connection: a single node's connection manager (multiplexed,
/// reconnecting by itself on demand) or a cluster connection, its driver
/// spawned on the current runtime.
async fn open(target: &RedisTarget, timeout: Duration) -> Result<Connection, OpenFailure> {
    match target {
        RedisTarget::Single(url) => {
            let client = redis::Client::open(url.as_str()).map_err(OpenFailure::Failed)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout)
                .set_number_of_retries(0);
            let manager = tokio::time::timeout(
                timeout * 3,
                ConnectionManager::new_with_config(client, config),
            )
            .await
            .map_err(|_| OpenFailure::TimedOut)?
            .map_err(OpenFailure::Failed)?;
            Ok(Connection::Single(manager))
        }
        RedisTarget::Cluster(seeds) => {
            // The cluster client reconnects on demand already: each new
            // request tries at once, and recovers within milliseconds of
            // the cluster serving again (tests/api/faults.rs). A restarted
            // master itself refuses writes for its first two seconds
            // (Redis's CLUSTER_WRITABLE_DELAY); no client setting helps there.
            let client = redis::cluster::ClusterClient::builder(seeds.clone())
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .build()
                .map_err(OpenFailure::Failed)?;
            let conn = tokio::time::timeout(timeout * 3, client.get_async_connection())
                .await
                .map_err(|_| OpenFailure::TimedOut)?
                .map_err(OpenFailure::Failed)?;
            Ok(Connection::Cluster(conn))
        }
    }
}

/// Why a connection to Redis at `location` failed: refused, timed out, or
/// the client's own words.
fn failure(location: &str, timeout: Duration, e: &redis::RedisError) -> StoreError {
    StoreError::Unavailable(if e.is_connection_refusal() {
        format!(
            "Redis at {location} refused the connection (connection refused: is it running, on that port?)"
        )
    } else if e.is_timeout() {
        format!(
            "Redis at {location} did not answer within {} ms (timeout)",
            timeout.as_millis()
        )
    } else {
        format!("Redis at {location}: {e}")
    })
}

const RETENTION: u64 = RETENTION_MS;

/// An [`Owner`] as the scripts take it: the application's id, or '' for any.
fn owner_arg(owner: Owner<'_>) -> &str {
    match owner {
        Owner::App(app) => app.as_str(),
        Owner::Any => "",
    }
}

impl RedisStore {
    /// delivery.lua over a recording, its job among its keys (a single
    /// node: the schedule's key is in the same slot space).
    async fn deliver(&self, recording: Recording<'_>) -> Result<DeliveryUpdate, StoreError> {
        let Recording {
            id,
            to,
            delivery,
            job,
        } = recording;
        let rank = delivery.status.rank();
        let json = serde_json::to_string(&StoredDelivery {
            delivery: &delivery,
            rank,
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut invocation = Invocation::new(&self.scripts.delivery);
        invocation
            .key(self.keys.record_key(id))
            .arg(json)
            .arg(&delivery.provider_id)
            .arg(rank)
            .arg(delivery.sequence.map(|s| s.to_string()).unwrap_or_default())
            .arg(delivery.status.as_str())
            .arg(delivery.channel.as_str())
            .arg(crate::domain::LOCAL_ID_PREFIX);
        if let Some((job, due)) = job {
            invocation
                .key(self.keys.jobs_key())
                .arg(due.as_millis())
                .arg(job);
        }
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        Ok(match reply.text(0)?.as_str() {
            "not_found" => DeliveryUpdate::NotFound,
            "applied" => DeliveryUpdate::Applied(reply.verification(1, id, to)?),
            _ => DeliveryUpdate::Stale(reply.verification(1, id, to)?),
        })
    }

    /// start.lua's keys and its 18 arguments for `opening`: an ungated
    /// start (a gated one appends a 19th, then its gate's and feed's).
    fn start_args(&self, invocation: &mut Invocation<'_>, opening: &Opening<'_>, now: Timestamp) {
        let Opening {
            new,
            key,
            policy,
            budget,
        } = opening;
        let v = &new.verification;
        invocation
            .key(self.keys.pointer_key(key))
            .arg(self.keys.record_prefix(&key.tag))
            .arg(now.as_millis())
            .arg(v.id.as_str())
            .arg(self.keyring.seal_number(&v.to, v.id.as_str()))
            .arg(v.channel.as_str())
            .arg(v.locale.as_str())
            .arg(v.expires_at.as_millis())
            .arg(v.max_attempts)
            .arg(&new.digest)
            .arg(&new.sealed)
            .arg(policy.cooldown_ms)
            .arg(policy.max_sends)
            .arg(RETENTION)
            .arg(&key.hash)
            .arg(self.keys.counter_prefix(&key.tag))
            .arg(budget.max)
            .arg(budget.window_ms.max(1))
            .arg(if v.application.is_default() {
                ""
            } else {
                v.application.as_str()
            });
    }

    /// window.lua's `gate`'s keys and arguments, appended.
    fn gate_args(&self, invocation: &mut Invocation<'_>, gate: &Gate<'_>, now: Timestamp) {
        let [lockout, day] = self.keys.failure_counters(gate.number, gate.windows, now);
        invocation
            .key(lockout)
            .key(day)
            .arg(gate.lock_at.lockout)
            .arg(gate.lock_at.day)
            .arg(u8::from(gate.flag.is_some()))
            .arg(gate.hits.len());
        if let Some(flag) = gate.flag {
            invocation.key(self.keys.blob_key(flag));
        }
        for hit in gate.hits {
            invocation
                .key(self.keys.counter(hit.name, hit.window_ms, now))
                .arg(kept_for(hit.window_ms))
                .arg(hit.max);
        }
    }

    /// The feed's number of counters, then window.lua's
    /// `add_and_read_previous`'s keys and arguments, appended.
    fn feed_args(&self, invocation: &mut Invocation<'_>, feed: Feed<'_>, now: Timestamp) {
        let before = window_before(now, feed.window_ms);
        invocation
            .arg(feed.counters.len())
            .arg(kept_for(feed.window_ms));
        for (name, n) in feed.counters {
            invocation
                .key(self.keys.counter(name, feed.window_ms, now))
                .key(self.keys.counter(name, feed.window_ms, before))
                .arg(*n);
        }
    }
}

/// start.lua's reply, read. Every view in it is of a record the script found
/// by the number's pointer (and matched to its hash) or wrote for `to` itself.
fn start_outcome(reply: &Reply<'_>, to: &PhoneNumber) -> Result<StartOutcome, StoreError> {
    let outcome = reply.text(0)?;
    if outcome == "number_limited" {
        return Ok(StartOutcome::NumberLimited {
            retry_after_ms: reply.text(2)?.parse().unwrap_or(1),
        });
    }
    let id = parse_id(&reply.text(1)?)?;
    let verification = reply.verification(3, &id, Some(to))?;
    Ok(match outcome.as_str() {
        "created" => StartOutcome::Created(verification),
        "resend" => StartOutcome::Resend {
            verification,
            sealed: reply.text(2)?,
        },
        "cooldown" => StartOutcome::Refused {
            verification,
            refusal: ResendRefusal::Cooldown(reply.text(2)?.parse().unwrap_or(0)),
        },
        "send_limit" => StartOutcome::Refused {
            verification,
            refusal: ResendRefusal::SendLimit,
        },
        other => return Err(StoreError::Corrupt(format!("start said {other:?}"))),
    })
}

/// The gate's reply: `{lockout, day, blocked, counts…}`.
fn admission_of(counts: &[u64], gate: &Gate<'_>) -> Result<Admission, StoreError> {
    match counts {
        [lockout, day, blocked, hits @ ..] if hits.len() <= gate.hits.len() => Ok(Admission {
            failures: Failures {
                lockout: *lockout,
                day: *day,
            },
            blocked: *blocked == 1,
            counts: hits.to_vec(),
        }),
        other => Err(StoreError::Corrupt(format!(
            "the start's gate said {other:?}"
        ))),
    }
}

/// `add_and_read_previous`'s reply for `n` counters, in pairs.
fn pairs_of(counts: &[u64], n: usize) -> Result<Vec<(u64, u64)>, StoreError> {
    if counts.len() != 2 * n {
        return Err(StoreError::Corrupt(format!(
            "the start's feed said {} counts for {n} counters",
            counts.len()
        )));
    }
    Ok(counts.chunks(2).map(|c| (c[0], c[1])).collect())
}

impl VerificationStore for RedisStore {
    async fn start(
        &self,
        new: NewVerification,
        key: &NumberKey,
        policy: SendPolicy,
        budget: SendBudget,
        now: Timestamp,
    ) -> Result<StartOutcome, StoreError> {
        let opening = Opening {
            new,
            key,
            policy,
            budget,
        };
        let mut invocation = Invocation::new(&self.scripts.start);
        self.start_args(&mut invocation, &opening, now);
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        start_outcome(&reply, &opening.new.verification.to)
    }

    async fn check(
        &self,
        target: CheckTarget<'_>,
        owner: Owner<'_>,
        digests: &[String],
        windows: FailureWindows,
        now: Timestamp,
    ) -> Result<CheckOutcome, StoreError> {
        let mut invocation = Invocation::new(&self.scripts.check);
        let tag = match target {
            CheckTarget::Number { key, .. } => {
                invocation
                    .key(self.keys.pointer_key(key))
                    .arg("number")
                    .arg(self.keys.record_prefix(&key.tag))
                    .arg(now.as_millis())
                    .arg(RETENTION)
                    .arg(&key.hash)
                    .arg("");
                key.tag.as_str()
            }
            CheckTarget::Id(id) => {
                invocation
                    .key(self.keys.record_key(id))
                    .arg("id")
                    .arg("")
                    .arg(now.as_millis())
                    .arg(RETENTION)
                    .arg("")
                    .arg(id.as_str());
                id.tag()
            }
        };
        invocation
            .arg(self.keys.counter_prefix(tag))
            .arg(windows.lockout_ms.max(1))
            .arg(windows.day_ms.max(1))
            .arg(owner_arg(owner));
        for digest in digests {
            invocation.arg(digest);
        }
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        let outcome = reply.text(0)?;
        if outcome == "not_found" {
            return Ok(None);
        }
        let id = parse_id(&reply.text(1)?)?;
        let verification = match target {
            CheckTarget::Number { number, .. } => reply.verification(2, &id, Some(number))?,
            CheckTarget::Id(_) => reply.verification(2, &id, None)?,
        };
        let result = match outcome.as_str() {
            "approved" => CheckResult::Approved,
            "wrong" => CheckResult::Wrong,
            "exhausted" => CheckResult::Exhausted,
            "expired" => CheckResult::Expired,
            "not_pending" => CheckResult::NotPending(verification.status),
            other => return Err(StoreError::Corrupt(format!("check said {other:?}"))),
        };
        Ok(Some((result, verification)))
    }

    async fn failures(
        &self,
        key: &NumberKey,
        windows: FailureWindows,
        now: Timestamp,
    ) -> Result<Failures, StoreError> {
        // Both counters carry the number's hash tag: one slot, one round trip.
        let mut cmd = redis::cmd("MGET");
        cmd.arg(&self.keys.failure_counters(key, windows, now)[..]);
        let counts: Vec<Option<u64>> = self.query(&cmd).await?;
        let at = |i: usize| counts.get(i).copied().flatten().unwrap_or(0);
        Ok(Failures {
            lockout: at(0),
            day: at(1),
        })
    }

    async fn get(
        &self,
        id: &VerificationId,
        owner: Owner<'_>,
        _now: Timestamp,
    ) -> Result<Option<Verification>, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys.record_key(id)).arg(&VIEW_FIELDS);
        let fields: Vec<Value> = self.query(&cmd).await?;
        let to = match fields.first() {
            None | Some(Value::Nil) => return Ok(None),
            Some(Value::BulkString(to)) => to,
            Some(_) => return Err(StoreError::Corrupt("to is not text".into())),
        };
        // Sealed by a secret no longer configured: it can no longer be read
        // (SECURITY.md: keep a secret a day after its successor is promoted).
        if to.len() > MAX_PLAIN_NUMBER && !self.keyring.knows_seal(&String::from_utf8_lossy(to)) {
            return Ok(None);
        }
        // Another application's record reads exactly as a missing one.
        Ok(parse_view(&self.keyring, id, &fields)
            .map(Some)?
            .filter(|v| owner.sees(&v.application)))
    }

    async fn finish(
        &self,
        id: &VerificationId,
        owner: Owner<'_>,
        how: Finish,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let mut invocation = Invocation::new(&self.scripts.finish);
        invocation
            .key(self.keys.record_key(id))
            .arg(how.status().as_str())
            .arg(now.as_millis())
            .arg(RETENTION)
            .arg(owner_arg(owner));
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        let outcome = reply.text(0)?;
        if outcome == "not_found" {
            return Ok(None);
        }
        let verification = reply.verification(1, id, None)?;
        let result = match outcome.as_str() {
            "done" => Ok(()),
            // Not due yet: still pending.
            "not_due" => Err(Status::Pending),
            _ => Err(verification.status),
        };
        Ok(Some((result, verification)))
    }

    async fn record_delivery(
        &self,
        recording: Recording<'_>,
        _now: Timestamp,
    ) -> Result<DeliveryUpdate, StoreError> {
        match (&self.conn, recording.job) {
            // A Cluster keeps the job schedule in a slot of its own: the job
            // goes beside the script, in the same round trip of time.
            (Connection::Cluster(_), Some((job, due))) => {
                let (scheduled, recorded) = tokio::join!(
                    self.schedule(job, due),
                    self.deliver(Recording {
                        job: None,
                        ..recording
                    })
                );
                if let Err(e) = scheduled {
                    tracing::error!(error = %e, "could not schedule a job");
                }
                recorded
            }
            (_, job) => {
                let recorded = self.deliver(recording).await;
                if let (Err(e), Some(_)) = (&recorded, job) {
                    // The job was in the same script.
                    tracing::error!(error = %e, "could not schedule a job");
                }
                recorded
            }
        }
    }

    async fn latest(
        &self,
        number: &PhoneNumber,
        key: &NumberKey,
        now: Timestamp,
    ) -> Result<Option<Verification>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.pointer_key(key));
        let Some(id) = self.query::<Option<String>>(&cmd).await? else {
            return Ok(None);
        };
        let id = parse_id(&id)?;
        Ok(self
            .get(&id, Owner::Any, now)
            .await?
            .filter(|v| &v.to == number))
    }

    async fn claim_fallback(
        &self,
        id: &VerificationId,
        channels: FallbackChannels,
        trigger: FallbackTrigger,
        max_sends: u32,
        now: Timestamp,
    ) -> Result<FallbackClaim, StoreError> {
        let mut invocation = Invocation::new(&self.scripts.claim_fallback);
        invocation
            .key(self.keys.record_key(id))
            .arg(now.as_millis())
            .arg(max_sends)
            .arg(RETENTION)
            .arg(channels.to_list())
            .arg(match trigger {
                FallbackTrigger::Failed(channel) => channel.as_str(),
                FallbackTrigger::NoReceipt => "",
            });
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        Ok(match reply.text(0)?.as_str() {
            "claimed" => FallbackClaim::Claimed {
                sealed: reply.text(1)?,
                verification: Box::new(reply.verification(2, id, None)?),
                channel: crate::store::parse_channel(&reply.text(3)?)?,
            },
            "skip" => FallbackClaim::Skipped(match reply.text(1)?.as_str() {
                "already_used" => FallbackSkip::AlreadyUsed,
                "delivered" => FallbackSkip::Delivered,
                "send_limit" => FallbackSkip::SendLimit,
                _ => FallbackSkip::NotPending,
            }),
            _ => FallbackClaim::NotFound,
        })
    }
}

impl CallStore for RedisStore {
    async fn register_call(
        &self,
        call: &CallRef,
        id: &VerificationId,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let ttl = now.millis_until(until).max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.call_key(call))
            .arg(id.as_str())
            .arg("PX")
            .arg(ttl);
        self.query::<()>(&cmd).await
    }

    async fn resolve_call(
        &self,
        call: &CallRef,
        _now: Timestamp,
    ) -> Result<ResolvedCall, StoreError> {
        let mut invocation = Invocation::new(&self.scripts.resolve_call);
        invocation
            .key(self.keys.call_key(call))
            .arg(self.keys.record_prefix(call.tag()));
        let reply = match self.run(invocation).await? {
            Value::Array(items) if items.is_empty() => return Ok(None),
            other => Reply::new(other, &self.keyring)?,
        };
        reply.call(0).map(Some)
    }

    async fn answer_call(
        &self,
        call: &CallRef,
        nonce: &str,
        nonce_ttl_ms: u64,
        _now: Timestamp,
    ) -> Result<Nonce<ResolvedCall>, StoreError> {
        let mut invocation = Invocation::new(&self.scripts.answer_call);
        invocation
            .key(self.keys.call_nonce_key(call, nonce))
            .key(self.keys.call_key(call))
            .arg(nonce_ttl_ms.max(1))
            .arg(self.keys.record_prefix(call.tag()));
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        match reply.text(0)?.as_str() {
            "replayed" => Ok(Nonce::Replayed),
            "unknown" => Ok(Nonce::First(None)),
            "found" => reply.call(1).map(|found| Nonce::First(Some(found))),
            other => Err(StoreError::Corrupt(format!("answer_call said {other:?}"))),
        }
    }
}

impl NonceStore for RedisStore {
    async fn remember_nonce(
        &self,
        nonce: &str,
        ttl_ms: u64,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.nonce_key(nonce))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1));
        let set: Option<String> = self.query(&cmd).await?;
        Ok(set.is_some())
    }
}

impl CounterStore for RedisStore {
    async fn add(
        &self,
        name: &str,
        window_ms: u64,
        n: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut invocation = Invocation::new(&self.scripts.hit);
        invocation
            .key(self.keys.counter(name, window_ms, now))
            .arg(kept_for(window_ms))
            .arg(n);
        match self.run(invocation).await? {
            Value::Int(n) => Ok(u64::try_from(n).unwrap_or(0)),
            other => Err(StoreError::Corrupt(format!("hit said {other:?}"))),
        }
    }
}

/// A single node passes a start's gate, starts and feeds in one script
/// (start.lua, gated). Everything else goes in turn: a Cluster keeps the
/// counters in slots of their own, and hit_in_order, admit and
/// add_and_read_previous alone serve no start on a single node.
impl AdmissionStore for RedisStore {
    async fn gated_start(
        &self,
        gate: &Gate<'_>,
        opening: Opening<'_>,
        feed: Feed<'_>,
        now: Timestamp,
    ) -> Result<Gated, StoreError> {
        if matches!(self.conn, Connection::Cluster(_)) {
            return super::gated_start_in_turn(self, gate, opening, feed, now).await;
        }
        let mut invocation = Invocation::new(&self.scripts.start);
        self.start_args(&mut invocation, &opening, now);
        // The 19th argument: a gate follows.
        invocation.arg(1);
        self.gate_args(&mut invocation, gate, now);
        self.feed_args(&mut invocation, feed, now);
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        if reply.text(0)? == "gated" {
            let counts = counts_of(reply.item(1)?)?;
            return admission_of(&counts, gate).map(Gated::Refused);
        }
        let outcome = start_outcome(&reply, &opening.new.verification.to)?;
        let fed = if matches!(outcome, StartOutcome::Created(_)) {
            let counts = counts_of(reply.item(4)?)?;
            pairs_of(&counts, feed.counters.len())?
        } else {
            Vec::new()
        };
        Ok(Gated::Started {
            outcome,
            fed: Ok(fed),
        })
    }
}

/// How long a rate-limit counter is kept: twice its window, since the
/// window's index comes from the caller's clock.
fn kept_for(window_ms: u64) -> u64 {
    window_ms.saturating_mul(2).max(1)
}

/// A list of counts in start.lua's reply.
fn counts_of(value: &Value) -> Result<Vec<u64>, StoreError> {
    match value {
        Value::Array(counts) => counts
            .iter()
            .map(|c| match c {
                Value::Int(n) => Ok(u64::try_from(*n).unwrap_or(0)),
                other => Err(StoreError::Corrupt(format!("start said {other:?}"))),
            })
            .collect(),
        other => Err(StoreError::Corrupt(format!("start said {other:?}"))),
    }
}

impl JobStore for RedisStore {
    async fn schedule(&self, job: &str, due: Timestamp) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.keys.jobs_key()).arg(due.as_millis()).arg(job);
        self.query::<()>(&cmd).await
    }

    async fn claim_jobs(
        &self,
        now: Timestamp,
        lease_ms: u64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let lease_end = now.plus(Duration::from_millis(lease_ms));
        let mut invocation = Invocation::new(&self.scripts.claim_jobs);
        invocation
            .key(self.keys.jobs_key())
            .arg(now.as_millis())
            .arg(lease_end.as_millis())
            .arg(max);
        let mut conn = self.conn();
        match tokio::time::timeout(self.timeout, invocation.invoke::<Vec<String>>(&mut conn)).await
        {
            Err(_) => Err(StoreError::Timeout),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Ok(Ok(jobs)) => Ok(jobs),
        }
    }

    async fn complete_job(&self, job: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.keys.jobs_key()).arg(job);
        self.query::<()>(&cmd).await
    }

    async fn queue_depth(&self, prefix: &str) -> Result<QueueDepth, StoreError> {
        let mut invocation = Invocation::new(&self.scripts.queue_depth);
        invocation
            .key(self.keys.jobs_key())
            .arg(QUEUE_SCAN)
            .arg(prefix);
        match self.run(invocation).await? {
            Value::Array(counts) => match counts.as_slice() {
                [Value::Int(total), Value::Int(with_prefix)] => Ok(QueueDepth {
                    total: u64::try_from(*total).unwrap_or(0),
                    with_prefix: u64::try_from(*with_prefix).unwrap_or(0),
                }),
                other => Err(StoreError::Corrupt(format!("queue depth said {other:?}"))),
            },
            other => Err(StoreError::Corrupt(format!("queue depth said {other:?}"))),
        }
    }
}

impl RedisStore {
    /// Keeps a small value (an event, a flag) for `ttl_ms`.
    async fn put_blob(&self, name: &str, value: &str, ttl_ms: u64) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.blob_key(name))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms.max(1));
        self.query::<()>(&cmd).await
    }

    async fn blob(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.blob_key(name));
        self.query(&cmd).await
    }
}

impl EventStore for RedisStore {
    async fn put_event(&self, id: &str, event: &str, ttl_ms: u64) -> Result<(), StoreError> {
        self.put_blob(id, event, ttl_ms).await
    }

    async fn event(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.blob(id).await
    }

    async fn delete_event(&self, id: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.keys.blob_key(id));
        self.query::<()>(&cmd).await
    }
}

impl FlagStore for RedisStore {
    async fn raise_flag(&self, name: &str, ttl_ms: u64) -> Result<(), StoreError> {
        self.put_blob(name, "1", ttl_ms).await
    }

    async fn flag_raised(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.blob(name).await?.is_some())
    }
}

impl Health for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
