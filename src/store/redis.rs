//! The Redis store. Every operation is one Lua script, so it is one atomic
//! round trip; every key of a number carries the same `{tag}`, so each script
//! touches one Redis Cluster slot. Redis TTLs only collect garbage: expiry is
//! decided from `expires_at` and the `now` the caller passes.
//!
//! Keys (prefix `p2fa` by default):
//! - `p2fa:{tag}:num:<number hash>` → id of the number's latest verification
//! - `p2fa:{tag}:v:<id>` → hash: the verification (its number sealed, bound to
//!   the id, and its number's keyed hash), its code digest and sealed copy
//! - `p2fa:{tag}:rl:<counter>:<number hash>:<window>` → a number's counters
//!
//! Records written before numbers were sealed hold `to` in plain E.164 and no
//! number hash; they are read as they are, so a rolling upgrade strands no
//! pending verification.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use serde::Serialize;

use super::{
    CheckOutcome, CheckTarget, DeliveryUpdate, FAILED_COUNTER, FailureWindows, Failures,
    FallbackClaim, Finish, FinishOutcome, LOCKOUT_COUNTER, NewVerification, RETENTION_MS,
    SendBudget, StartOutcome, StoreError, VerificationStore, parse_channel, window_of,
};
use crate::domain::verification::{
    CheckResult, FallbackSkip, ResendRefusal, SendPolicy, delivery_rank,
};
use crate::domain::{
    CallRef, Delivery, Keyring, Locale, NumberKey, PhoneNumber, Status, Timestamp, Verification,
    VerificationId,
};

pub const DEFAULT_KEY_PREFIX: &str = "p2fa";

macro_rules! lua {
    ($file:literal) => {
        concat!(include_str!("lua/prelude.lua"), include_str!($file))
    };
}

/// One connection for the whole process: a single node's connection manager
/// (multiplexed, reconnects by itself) or a cluster connection.
#[derive(Clone)]
enum Connection {
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

struct Scripts {
    start: Script,
    check: Script,
    finish: Script,
    delivery: Script,
    resolve_call: Script,
    hit: Script,
    claim_jobs: Script,
    claim_fallback: Script,
}

impl Scripts {
    fn load() -> Self {
        Self {
            start: Script::new(lua!("lua/start.lua")),
            check: Script::new(lua!("lua/check.lua")),
            finish: Script::new(lua!("lua/finish.lua")),
            delivery: Script::new(lua!("lua/delivery.lua")),
            resolve_call: Script::new(lua!("lua/resolve_call.lua")),
            hit: Script::new(include_str!("lua/hit.lua")),
            claim_jobs: Script::new(include_str!("lua/claim_jobs.lua")),
            claim_fallback: Script::new(lua!("lua/claim_fallback.lua")),
        }
    }
}

#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    scripts: std::sync::Arc<Scripts>,
    /// Seals and opens the number of each verification at rest.
    keyring: std::sync::Arc<Keyring>,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where to find Redis, from `REDIS_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    Single(String),
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// `redis://`, `rediss://` or `unix://` is one node; several comma-separated
    /// `redis://` seeds, or `redis+cluster://host:port[,host:port…]`, a cluster.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let seeds: Vec<String> = rest
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.contains("://") {
                        s.to_owned()
                    } else {
                        format!("redis://{s}")
                    }
                })
                .collect();
            if seeds.is_empty() {
                return Err("redis+cluster:// needs at least one host:port".into());
            }
            return Ok(Self::Cluster(seeds));
        }
        let parts: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for part in &parts {
            redis::parse_redis_url(part)
                .ok_or_else(|| format!("{part:?} is not a redis://, rediss:// or unix:// URL"))?;
        }
        match parts.as_slice() {
            [] => Err("empty".into()),
            [one] => Ok(Self::Single((*one).to_owned())),
            many => Ok(Self::Cluster(
                many.iter().map(|s| (*s).to_owned()).collect(),
            )),
        }
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
        let unavailable = |e: redis::RedisError| StoreError::Unavailable(e.to_string());
        let conn = match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(unavailable)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout)
                    .set_number_of_retries(0);
                let manager = tokio::time::timeout(
                    timeout * 3,
                    ConnectionManager::new_with_config(client, config),
                )
                .await
                .map_err(|_| StoreError::Timeout)?
                .map_err(unavailable)?;
                Connection::Single(manager)
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
                    .map_err(unavailable)?;
                let conn = tokio::time::timeout(timeout * 3, client.get_async_connection())
                    .await
                    .map_err(|_| StoreError::Timeout)?
                    .map_err(unavailable)?;
                Connection::Cluster(conn)
            }
        };
        let store = Self {
            conn,
            scripts: std::sync::Arc::new(Scripts::load()),
            keyring,
            prefix: prefix.to_owned(),
            timeout,
        };
        store.ping().await?;
        Ok(store)
    }

    fn record_prefix(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:v:", self.prefix)
    }

    fn record_key(&self, id: &VerificationId) -> String {
        format!("{}{}", self.record_prefix(id.tag()), id.as_str())
    }

    fn call_key(&self, call: &CallRef) -> String {
        format!("{}:{{{}}}:call:{}", self.prefix, call.tag(), call.as_str())
    }

    fn jobs_key(&self) -> String {
        format!("{}:{{jobs}}", self.prefix)
    }

    fn blob_key(&self, key: &str) -> String {
        format!("{}:blob:{key}", self.prefix)
    }

    fn nonce_key(&self, nonce: &str) -> String {
        // Hashed: a nonce is caller-chosen text of any length.
        use sha2::Digest;
        format!(
            "{}:nonce:{}",
            self.prefix,
            hex::encode(sha2::Sha256::digest(nonce.as_bytes()))
        )
    }

    /// Runs one command with the store's timeout.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Err(_) => Err(StoreError::Timeout),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// What a number's counters are named after (`…:{tag}:rl:`), in its
    /// hash tag's slot so the scripts that count them stay in one slot.
    fn counter_prefix(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:rl:", self.prefix)
    }

    /// One of a number's counters for its window at `now` (as prelude.lua's `count` names it).
    fn counter_key(
        &self,
        key: &NumberKey,
        counter: &str,
        window_ms: u64,
        now: Timestamp,
    ) -> String {
        let name = format!("{}{counter}:{}", self.counter_prefix(&key.tag), key.hash);
        window_of(&name, window_ms, now).0
    }

    fn pointer_key(&self, key: &NumberKey) -> String {
        format!("{}:{{{}}}:num:{}", self.prefix, key.tag, key.hash)
    }

    async fn run(&self, invocation: redis::ScriptInvocation<'_>) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, invocation.invoke_async::<Value>(&mut conn)).await
        {
            Err(_) => Err(StoreError::Timeout),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
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

    /// Deletes every key under this store's prefix on a single node (tests only).
    pub async fn flush_prefix(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}:*", self.prefix);
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

/// What [`RedisStore::persistence`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// AOF, or RDB snapshots, are on.
    On,
    /// Neither AOF nor RDB snapshots (read from `CONFIG GET`).
    Off,
    /// `CONFIG GET` refused; `INFO` shows no AOF and no snapshot since Redis started.
    NoneSeen,
    /// Neither `CONFIG GET` nor `INFO` answered.
    Unknown,
}

/// Every text in a reply (a cluster answers `INFO` with one text per node).
fn collect_text(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::BulkString(b) => out.push(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => out.push(s.clone()),
        Value::Array(items) | Value::Set(items) => {
            items.iter().for_each(|v| collect_text(v, out));
        }
        Value::Map(pairs) => pairs.iter().for_each(|(_, v)| collect_text(v, out)),
        _ => {}
    }
}

/// Whether an `INFO persistence` text shows AOF on, or an RDB snapshot taken
/// since Redis started.
fn persistent_by_info(info: &str) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    field("aof_enabled") == Some("1")
        || field("rdb_saves")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
        || field("rdb_last_bgsave_time_sec").is_some_and(|t| t != "-1")
}

#[derive(Serialize)]
struct StoredDelivery<'a> {
    #[serde(flatten)]
    delivery: &'a Delivery,
    rank: u8,
}

/// A script's reply: an outcome word, then strings and a nested view (whose
/// number the keyring opens).
struct Reply<'k>(Vec<Value>, &'k Keyring);

impl<'k> Reply<'k> {
    fn new(v: Value, keyring: &'k Keyring) -> Result<Self, StoreError> {
        match v {
            Value::Array(items) if !items.is_empty() => Ok(Self(items, keyring)),
            other => Err(StoreError::Corrupt(format!("unexpected reply {other:?}"))),
        }
    }

    fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.0.get(i) {
            Some(Value::BulkString(b)) => String::from_utf8(b.clone())
                .map_err(|_| StoreError::Corrupt("non-UTF-8 reply".into())),
            Some(Value::SimpleString(s)) => Ok(s.clone()),
            Some(Value::Int(n)) => Ok(n.to_string()),
            other => Err(StoreError::Corrupt(format!("expected text, got {other:?}"))),
        }
    }

    fn verification(&self, i: usize, id: &VerificationId) -> Result<Verification, StoreError> {
        match self.0.get(i) {
            Some(Value::Array(fields)) => parse_view(self.1, id, fields),
            other => Err(StoreError::Corrupt(format!(
                "expected a view, got {other:?}"
            ))),
        }
    }
}

fn field(fields: &[Value], i: usize, name: &str) -> Result<String, StoreError> {
    match fields.get(i) {
        Some(Value::BulkString(b)) => String::from_utf8(b.clone())
            .map_err(|_| StoreError::Corrupt(format!("{name} is not UTF-8"))),
        _ => Err(StoreError::Corrupt(format!("{name} is missing"))),
    }
}

fn number<T: std::str::FromStr>(fields: &[Value], i: usize, name: &str) -> Result<T, StoreError> {
    field(fields, i, name)?
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("{name} is not a number")))
}

/// The FIELDS view of prelude.lua, in its order.
const VIEW_FIELDS: [&str; 12] = [
    "to",
    "channel",
    "locale",
    "status",
    "created_at",
    "expires_at",
    "attempts",
    "max_attempts",
    "sends",
    "last_sent_at",
    "deliveries",
    "fallback",
];

/// The longest E.164 number, `+` and 15 digits: a sealed number is far longer.
const MAX_PLAIN_NUMBER: usize = 16;

/// A record's `to`: sealed, or in plain E.164 in a record written before numbers were sealed.
fn stored_number(
    keyring: &Keyring,
    id: &VerificationId,
    to: String,
) -> Result<PhoneNumber, StoreError> {
    let plain = to.len() <= MAX_PLAIN_NUMBER
        && to
            .strip_prefix('+')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if plain {
        return Ok(PhoneNumber::from_trusted_e164(to));
    }
    keyring
        .open_number(&to, id.as_str())
        .map_err(|e| StoreError::Corrupt(format!("number of {id}: {e}")))
}

/// Reads the FIELDS view of prelude.lua, in its order.
fn parse_view(
    keyring: &Keyring,
    id: &VerificationId,
    f: &[Value],
) -> Result<Verification, StoreError> {
    let status = field(f, 3, "status")?;
    let deliveries: Vec<Delivery> = serde_json::from_str(&field(f, 10, "deliveries")?)
        .map_err(|e| StoreError::Corrupt(format!("deliveries: {e}")))?;
    Ok(Verification {
        id: id.clone(),
        to: stored_number(keyring, id, field(f, 0, "to")?)?,
        channel: parse_channel(&field(f, 1, "channel")?)?,
        locale: Locale::parse(&field(f, 2, "locale")?).unwrap_or_default(),
        status: status
            .parse::<Status>()
            .map_err(|()| StoreError::Corrupt(format!("unknown status {status:?}")))?,
        created_at: Timestamp::from_millis(number(f, 4, "created_at")?),
        expires_at: Timestamp::from_millis(number(f, 5, "expires_at")?),
        attempts: number(f, 6, "attempts")?,
        max_attempts: number(f, 7, "max_attempts")?,
        sends: number(f, 8, "sends")?,
        last_sent_at: Timestamp::from_millis(number(f, 9, "last_sent_at")?),
        deliveries,
        fallback_used: matches!(f.get(11), Some(Value::BulkString(b)) if b.as_slice() == b"1"),
    })
}

fn parse_id(s: &str) -> Result<VerificationId, StoreError> {
    VerificationId::parse(s).ok_or_else(|| StoreError::Corrupt("malformed id".into()))
}

const RETENTION: u64 = RETENTION_MS;

impl VerificationStore for RedisStore {
    async fn start(
        &self,
        new: NewVerification,
        key: &NumberKey,
        policy: SendPolicy,
        budget: SendBudget,
        now: Timestamp,
    ) -> Result<StartOutcome, StoreError> {
        let v = &new.verification;
        let mut invocation = self.scripts.start.prepare_invoke();
        invocation
            .key(self.pointer_key(key))
            .arg(self.record_prefix(&key.tag))
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
            .arg(self.counter_prefix(&key.tag))
            .arg(budget.max)
            .arg(budget.window_ms.max(1));
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        let outcome = reply.text(0)?;
        if outcome == "number_limited" {
            return Ok(StartOutcome::NumberLimited {
                retry_after_ms: reply.text(2)?.parse().unwrap_or(1),
            });
        }
        let id = parse_id(&reply.text(1)?)?;
        let verification = reply.verification(3, &id)?;
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

    async fn check(
        &self,
        target: CheckTarget<'_>,
        digests: &[String],
        windows: FailureWindows,
        now: Timestamp,
    ) -> Result<CheckOutcome, StoreError> {
        let mut invocation = self.scripts.check.prepare_invoke();
        let tag = match target {
            CheckTarget::Number { key, .. } => {
                invocation
                    .key(self.pointer_key(key))
                    .arg("number")
                    .arg(self.record_prefix(&key.tag))
                    .arg(now.as_millis())
                    .arg(RETENTION)
                    .arg(&key.hash)
                    .arg(digests.len())
                    .arg("");
                key.tag.as_str()
            }
            CheckTarget::Id(id) => {
                invocation
                    .key(self.record_key(id))
                    .arg("id")
                    .arg("")
                    .arg(now.as_millis())
                    .arg(RETENTION)
                    .arg("")
                    .arg(digests.len())
                    .arg(id.as_str());
                id.tag()
            }
        };
        invocation
            .arg(self.counter_prefix(tag))
            .arg(windows.lockout_ms.max(1))
            .arg(windows.day_ms.max(1));
        for digest in digests {
            invocation.arg(digest);
        }
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        let outcome = reply.text(0)?;
        if outcome == "not_found" {
            return Ok(None);
        }
        let id = parse_id(&reply.text(1)?)?;
        let verification = reply.verification(2, &id)?;
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
        cmd.arg(self.counter_key(key, LOCKOUT_COUNTER, windows.lockout_ms.max(1), now))
            .arg(self.counter_key(key, FAILED_COUNTER, windows.day_ms.max(1), now));
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
        _now: Timestamp,
    ) -> Result<Option<Verification>, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.record_key(id)).arg(&VIEW_FIELDS);
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
        parse_view(&self.keyring, id, &fields).map(Some)
    }

    async fn finish(
        &self,
        id: &VerificationId,
        how: Finish,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let mut invocation = self.scripts.finish.prepare_invoke();
        invocation
            .key(self.record_key(id))
            .arg(how.status().as_str())
            .arg(now.as_millis())
            .arg(RETENTION);
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        let outcome = reply.text(0)?;
        if outcome == "not_found" {
            return Ok(None);
        }
        let verification = reply.verification(1, id)?;
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
        id: &VerificationId,
        delivery: Delivery,
        _now: Timestamp,
    ) -> Result<DeliveryUpdate, StoreError> {
        let rank = delivery_rank(&delivery.status);
        let json = serde_json::to_string(&StoredDelivery {
            delivery: &delivery,
            rank,
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut invocation = self.scripts.delivery.prepare_invoke();
        invocation
            .key(self.record_key(id))
            .arg(json)
            .arg(&delivery.provider_id)
            .arg(rank)
            .arg(delivery.sequence.map(|s| s.to_string()).unwrap_or_default())
            .arg(&delivery.status)
            .arg(delivery.channel.as_str())
            .arg(crate::domain::LOCAL_ID_PREFIX);
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        Ok(match reply.text(0)?.as_str() {
            "not_found" => DeliveryUpdate::NotFound,
            "applied" => DeliveryUpdate::Applied(reply.verification(1, id)?),
            _ => DeliveryUpdate::Stale(reply.verification(1, id)?),
        })
    }

    async fn register_call(
        &self,
        call: &CallRef,
        id: &VerificationId,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let ttl = now.millis_until(until).max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.call_key(call))
            .arg(id.as_str())
            .arg("PX")
            .arg(ttl);
        self.query::<()>(&cmd).await
    }

    async fn resolve_call(
        &self,
        call: &CallRef,
        _now: Timestamp,
    ) -> Result<Option<(Verification, Option<String>)>, StoreError> {
        let mut invocation = self.scripts.resolve_call.prepare_invoke();
        invocation
            .key(self.call_key(call))
            .arg(self.record_prefix(call.tag()));
        let reply = match self.run(invocation).await? {
            Value::Array(items) if items.is_empty() => return Ok(None),
            other => Reply::new(other, &self.keyring)?,
        };
        let id = parse_id(&reply.text(0)?)?;
        let sealed = reply.text(1)?;
        let verification = reply.verification(2, &id)?;
        Ok(Some((verification, (!sealed.is_empty()).then_some(sealed))))
    }

    async fn remember_nonce(
        &self,
        nonce: &str,
        ttl_ms: u64,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.nonce_key(nonce))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1));
        let set: Option<String> = self.query(&cmd).await?;
        Ok(set.is_some())
    }

    async fn hit(
        &self,
        name: &str,
        window_ms: u64,
        by: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let (key, _) = super::window_of(name, window_ms, now);
        let mut invocation = self.scripts.hit.prepare_invoke();
        // Kept twice the window: the window index comes from the caller's clock.
        invocation
            .key(format!("{}:rl:{{{key}}}", self.prefix))
            .arg(window_ms.saturating_mul(2).max(1))
            .arg(by);
        match self.run(invocation).await? {
            Value::Int(n) => Ok(u64::try_from(n).unwrap_or(0)),
            other => Err(StoreError::Corrupt(format!("hit said {other:?}"))),
        }
    }

    async fn latest(
        &self,
        number: &PhoneNumber,
        key: &NumberKey,
        now: Timestamp,
    ) -> Result<Option<Verification>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.pointer_key(key));
        let Some(id) = self.query::<Option<String>>(&cmd).await? else {
            return Ok(None);
        };
        let id = parse_id(&id)?;
        Ok(self.get(&id, now).await?.filter(|v| &v.to == number))
    }

    async fn schedule(&self, job: &str, due: Timestamp) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.jobs_key()).arg(due.as_millis()).arg(job);
        self.query::<()>(&cmd).await
    }

    async fn claim_jobs(
        &self,
        now: Timestamp,
        lease_ms: u64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let lease_end = now.plus(Duration::from_millis(lease_ms));
        let mut invocation = self.scripts.claim_jobs.prepare_invoke();
        invocation
            .key(self.jobs_key())
            .arg(now.as_millis())
            .arg(lease_end.as_millis())
            .arg(max);
        let mut conn = self.conn.clone();
        match tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<Vec<String>>(&mut conn),
        )
        .await
        {
            Err(_) => Err(StoreError::Timeout),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Ok(Ok(jobs)) => Ok(jobs),
        }
    }

    async fn complete_job(&self, job: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.jobs_key()).arg(job);
        self.query::<()>(&cmd).await
    }

    async fn claim_fallback(
        &self,
        id: &VerificationId,
        max_sends: u32,
        now: Timestamp,
    ) -> Result<FallbackClaim, StoreError> {
        let mut invocation = self.scripts.claim_fallback.prepare_invoke();
        invocation
            .key(self.record_key(id))
            .arg(now.as_millis())
            .arg(max_sends)
            .arg(RETENTION);
        let reply = Reply::new(self.run(invocation).await?, &self.keyring)?;
        Ok(match reply.text(0)?.as_str() {
            "claimed" => FallbackClaim::Claimed {
                sealed: reply.text(1)?,
                verification: reply.verification(2, id)?,
            },
            "skip" => FallbackClaim::Skipped(match reply.text(1)?.as_str() {
                "already_called" => FallbackSkip::AlreadyCalled,
                "delivered" => FallbackSkip::Delivered,
                "send_limit" => FallbackSkip::SendLimit,
                _ => FallbackSkip::NotPending,
            }),
            _ => FallbackClaim::NotFound,
        })
    }

    async fn put_blob(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.blob_key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms.max(1));
        self.query::<()>(&cmd).await
    }

    async fn get_blob(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.blob_key(key));
        self.query(&cmd).await
    }

    async fn delete_blob(&self, key: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.blob_key(key));
        self.query::<()>(&cmd).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
