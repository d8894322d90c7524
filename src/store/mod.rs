//! Where the server's state lives, one trait per concern: verifications
//! ([`VerificationStore`]), the references of voice calls ([`CallStore`]),
//! the nonces of signed callbacks ([`NonceStore`]), windowed counters
//! ([`CounterStore`]), the job schedule ([`JobStore`]), events waiting for the
//! webhook ([`EventStore`]), expiring flags ([`FlagStore`]) and
//! authenticator-app factors ([`FactorStore`]). Redis is the
//! production implementation (every operation one atomic script, all of a
//! number's keys in one cluster slot) and memory the embedded default for one
//! process; [`Store`] is the one chosen at start-up. `tests/api/store_contract.rs`
//! runs one suite against both.

use std::future::Future;

use crate::domain::verification::{CheckResult, FallbackSkip, ResendRefusal, SendPolicy};
use crate::domain::{
    ApplicationId, CallRef, Channel, Delivery, Factor, FactorId, FactorStage, FactorStatus,
    FallbackChannels, FallbackTrigger, Locale, NumberKey, PhoneNumber, Status, Timestamp,
    Verification, VerificationId,
};

pub mod memory;
pub mod redis;

pub use memory::MemoryStore;
pub use redis::RedisStore;

/// How long a finished verification stays readable by id.
pub const RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store did not answer in time")]
    Timeout,
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the store returned data this server cannot read: {0}")]
    Corrupt(String),
}

/// A number's budget of sends (`RATE_LIMIT_NUMBER`): at most `max` in each
/// fixed window of `window_ms`. The start itself counts it, and only when it
/// sends a code: a start refused by the cooldown or the send limit sends
/// nothing and spends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendBudget {
    pub max: u64,
    pub window_ms: u64,
}

/// The fixed windows in which every wrong code counts against its number,
/// whatever later ends the verification: the lockout's (`LOCKOUT_MINUTES`)
/// and the UTC day's (`MAX_FAILED_CHECKS_PER_DAY`). The check counts them in
/// the same atomic step that compares the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindows {
    pub lockout_ms: u64,
    pub day_ms: u64,
}

/// Wrong codes counted against a number in the windows that contain `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub lockout: u64,
    pub day: u64,
}

/// The names of a number's counters (after its hash tag and before its hash):
/// sends, wrong codes in the lockout window, wrong codes in the day.
pub const SENDS_COUNTER: &str = "number";
pub const LOCKOUT_COUNTER: &str = "lockout";
pub const FAILED_COUNTER: &str = "failed";
/// The counter of an identity's wrong authenticator codes in the UTC day.
pub const FACTOR_FAILED_COUNTER: &str = "factor-failed";

/// A delivery to record (see [`VerificationStore::record_delivery`]).
#[derive(Debug, Clone)]
pub struct Recording<'a> {
    pub id: &'a VerificationId,
    /// The verification's number when the caller has it: a store that keeps
    /// numbers sealed then has none to open.
    pub to: Option<&'a PhoneNumber>,
    pub delivery: Delivery,
    /// A job to schedule with it (a send's fallback), and when it comes due.
    pub job: Option<(&'a str, Timestamp)>,
}

impl<'a> Recording<'a> {
    /// A report for `id`'s verification, with nothing else to schedule.
    pub fn new(id: &'a VerificationId, delivery: Delivery) -> Self {
        Self {
            id,
            to: None,
            delivery,
            job: None,
        }
    }
}

/// A verification about to be created, with its code in protected form only.
#[derive(Debug, Clone)]
pub struct NewVerification {
    pub verification: Verification,
    /// Keyed digest of the code (hex HMAC-SHA256).
    pub digest: String,
    /// AEAD-sealed copy of the code, for re-sends.
    pub sealed: String,
}

#[derive(Debug, Clone)]
pub enum StartOutcome {
    /// No verification was open for the number; this one now is.
    Created(Verification),
    /// One was open and may send again: here is its sealed code (the send is counted).
    Resend {
        verification: Verification,
        sealed: String,
    },
    /// One was open but may not send again yet (or ever).
    Refused {
        verification: Verification,
        refusal: ResendRefusal,
    },
    /// The number's send budget is spent until its window ends.
    NumberLimited { retry_after_ms: u64 },
}

/// Which verification a check is for.
#[derive(Debug, Clone, Copy)]
pub enum CheckTarget<'a> {
    /// The open (or latest) verification of a number.
    Number {
        number: &'a PhoneNumber,
        key: &'a NumberKey,
    },
    Id(&'a VerificationId),
}

/// Whose verifications an operation may see: an application's (what its API
/// key reaches; another's reads exactly as a missing one, and nothing
/// changes), or any (the jobs and Plivo's callbacks, which find a record by
/// its id or call reference and take its application from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    App(&'a ApplicationId),
    Any,
}

impl Owner<'_> {
    /// Whether a record of `app` is visible.
    pub fn sees(self, app: &ApplicationId) -> bool {
        match self {
            Owner::App(want) => want == app,
            Owner::Any => true,
        }
    }
}

/// A verification being finished by its owner or by a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Cancel,
    Fail,
    /// Settle as expired, if its lifetime is over (`Err(Pending)`: not yet).
    Expire,
}

impl Finish {
    fn status(self) -> Status {
        match self {
            Finish::Cancel => Status::Canceled,
            Finish::Fail => Status::Failed,
            Finish::Expire => Status::Expired,
        }
    }
}

/// The result of claiming a verification's automatic fallback.
#[derive(Debug, Clone)]
pub enum FallbackClaim {
    /// Claimed: send this sealed code on `channel`.
    Claimed {
        verification: Box<Verification>,
        sealed: String,
        channel: Channel,
    },
    Skipped(FallbackSkip),
    NotFound,
}

/// The counter key for `name`'s window at `now`, and when that window ends.
pub fn window_of(name: &str, window_ms: u64, now: Timestamp) -> (String, Timestamp) {
    let index = window_index(window_ms, now);
    let end = i64::try_from((index + 1).saturating_mul(window_ms.max(1))).unwrap_or(i64::MAX);
    (format!("{name}:{index}"), Timestamp::from_millis(end))
}

/// The index of the window of `window_ms` holding `now`, which ends its
/// counter's name.
pub(crate) fn window_index(window_ms: u64, now: Timestamp) -> u64 {
    u64::try_from(now.as_millis()).unwrap_or(0) / window_ms.max(1)
}

/// A time in the window of `window_ms` before the one containing `now`.
pub(crate) fn window_before(now: Timestamp, window_ms: u64) -> Timestamp {
    Timestamp::from_millis(now.as_millis() - i64::try_from(window_ms.max(1)).unwrap_or(i64::MAX))
}

/// A check's result with the verification after it; `None`: no such verification.
pub type CheckOutcome = Option<(CheckResult, Verification)>;

/// A finish's result (`Err`: the final status it already had) with the
/// verification after it; `None`: no such verification.
pub type FinishOutcome = Option<(Result<(), Status>, Verification)>;

/// What a delivery update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryUpdate {
    /// Recorded (new, or a step forward).
    Applied(Verification),
    /// Older or equal to what is recorded; nothing changed.
    Stale(Verification),
    /// No such verification (unknown or past retention).
    NotFound,
}

pub trait VerificationStore: Send + Sync {
    /// Opens a verification for a number, or re-sends the open one, counting
    /// the send against the number's `budget` (a start that sends nothing
    /// counts nothing).
    fn start(
        &self,
        new: NewVerification,
        key: &NumberKey,
        policy: SendPolicy,
        budget: SendBudget,
        now: Timestamp,
    ) -> impl Future<Output = Result<StartOutcome, StoreError>> + Send;

    /// Checks a typed code: compares digests, counts the attempt on the
    /// verification and, for a wrong code, against its number in both
    /// `windows`, and approves and closes on success, atomically. `digests`
    /// are the typed code's digests under every configured secret. `None`
    /// when there is no such verification.
    fn check(
        &self,
        target: CheckTarget<'_>,
        owner: Owner<'_>,
        digests: &[String],
        windows: FailureWindows,
        now: Timestamp,
    ) -> impl Future<Output = Result<CheckOutcome, StoreError>> + Send;

    /// The wrong codes counted against a number in the windows containing `now`.
    fn failures(
        &self,
        key: &NumberKey,
        windows: FailureWindows,
        now: Timestamp,
    ) -> impl Future<Output = Result<Failures, StoreError>> + Send;

    fn get(
        &self,
        id: &VerificationId,
        owner: Owner<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Verification>, StoreError>> + Send;

    /// Cancels or fails a pending verification. `Err(status)` inside when it had
    /// already ended; `None` when there is no such verification.
    fn finish(
        &self,
        id: &VerificationId,
        owner: Owner<'_>,
        how: Finish,
        now: Timestamp,
    ) -> impl Future<Output = Result<FinishOutcome, StoreError>> + Send;

    /// Records or advances a delivery; never moves one backwards. Schedules
    /// the recording's job, if it has one, whether or not the verification is
    /// still there (the job finds out when it runs), and in the same round
    /// trip where the store can.
    fn record_delivery(
        &self,
        recording: Recording<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<DeliveryUpdate, StoreError>> + Send;

    /// The latest verification of a number (any status), if still kept.
    fn latest(
        &self,
        number: &PhoneNumber,
        key: &NumberKey,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Verification>, StoreError>> + Send;

    /// Claims the next step of a verification's automatic fallback along
    /// `channels` (see [`Verification::claim_fallback`]), atomically.
    fn claim_fallback(
        &self,
        id: &VerificationId,
        channels: FallbackChannels,
        trigger: FallbackTrigger,
        max_sends: u32,
        now: Timestamp,
    ) -> impl Future<Output = Result<FallbackClaim, StoreError>> + Send;
}

/// The opaque references in voice calls' answer URLs.
pub trait CallStore: Send + Sync {
    /// Remembers which verification a voice call's reference belongs to, until `until`.
    fn register_call(
        &self,
        call: &CallRef,
        id: &VerificationId,
        until: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What the verification behind a call reference is to the call (see
    /// [`CallView`]), with its sealed code while it has one.
    fn resolve_call(
        &self,
        call: &CallRef,
        now: Timestamp,
    ) -> impl Future<Output = Result<ResolvedCall, StoreError>> + Send;

    /// Takes a signed answer request's nonce and resolves its call in one
    /// atomic step (one round trip): [`Nonce::Replayed`] when the nonce was
    /// already taken within `nonce_ttl_ms`, and then nothing is resolved;
    /// else what [`CallStore::resolve_call`] finds.
    fn answer_call(
        &self,
        call: &CallRef,
        nonce: &str,
        nonce_ttl_ms: u64,
        now: Timestamp,
    ) -> impl Future<Output = Result<Nonce<ResolvedCall>, StoreError>> + Send;
}

/// A call's verification as the call sees it, when its reference is known.
pub type ResolvedCall = Option<CallView>;

/// What a voice call needs of its verification: what it reads out, in which
/// locale, until when, and whose reports it carries. Not the rest of the
/// verification: an answer opens no sealed number and parses no deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    pub id: VerificationId,
    pub application: ApplicationId,
    pub locale: Locale,
    pub status: Status,
    pub expires_at: Timestamp,
    /// The sealed code, while the verification has one.
    pub sealed: Option<String>,
}

impl CallView {
    /// `v` as its call sees it, with `sealed`.
    pub fn of(v: &Verification, sealed: Option<String>) -> Self {
        Self {
            id: v.id.clone(),
            application: v.application.clone(),
            locale: v.locale.clone(),
            status: v.status,
            expires_at: v.expires_at,
            sealed,
        }
    }

    /// The status a reader should see at `now` (see [`Status::at`]).
    pub fn status_at(&self, now: Timestamp) -> Status {
        self.status.at(self.expires_at, now)
    }
}

/// What became of a signed request whose nonce a store call took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nonce<T> {
    /// First seen: the store call did its work.
    First(T),
    /// Already seen: a replay, and nothing was done.
    Replayed,
}

/// The nonces of signed callbacks, so a captured one cannot be replayed.
pub trait NonceStore: Send + Sync {
    /// Records a signed callback's nonce; `false` when it was already seen
    /// within `ttl_ms` (a replay).
    fn remember_nonce(
        &self,
        nonce: &str,
        ttl_ms: u64,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Counters in fixed windows: `name` is suffixed with the window's index
/// (see [`window_of`]), so an injected clock moves the windows too.
pub trait CounterStore: Send + Sync {
    /// Adds `n` to the counter `name` for its window at `now` and returns the
    /// window's count.
    fn add(
        &self,
        name: &str,
        window_ms: u64,
        n: u64,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The window's count, unchanged.
    fn count(
        &self,
        name: &str,
        window_ms: u64,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.add(name, window_ms, 0, now)
    }

    /// Adds one hit to each counter in turn, as [`CounterStore::add`] would,
    /// and stops after the first whose count passes its `max` (that hit is
    /// counted, as every refused hit is): the counts of the counters hit, in
    /// order. One atomic step in memory; in turn in Redis (a single node
    /// counts a start's in its gated start instead).
    fn hit_in_order(
        &self,
        hits: &[Hit<'_>],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<u64>, StoreError>> + Send {
        hit_in_turn(self, hits, now)
    }

    /// Adds each `(name, n)`'s `n` to its counter for the window at `now`
    /// and reads the window before it, unchanged: for each, this window's
    /// count after adding and the previous window's count.
    fn add_and_read_previous(
        &self,
        counters: &[(&str, u64)],
        window_ms: u64,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<(u64, u64)>, StoreError>> + Send {
        add_and_read_previous_in_turn(self, counters, window_ms, now)
    }
}

/// [`CounterStore::add_and_read_previous`], one counter after the other.
async fn add_and_read_previous_in_turn<S: CounterStore + ?Sized>(
    store: &S,
    counters: &[(&str, u64)],
    window_ms: u64,
    now: Timestamp,
) -> Result<Vec<(u64, u64)>, StoreError> {
    let before = window_before(now, window_ms);
    let mut read = Vec::with_capacity(counters.len());
    for (name, n) in counters {
        let (current, previous) = tokio::join!(
            store.add(name, window_ms, *n, now),
            store.count(name, window_ms, before),
        );
        read.push((current?, previous?));
    }
    Ok(read)
}

/// One of the counters [`CounterStore::hit_in_order`] hits.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    pub name: &'a str,
    pub window_ms: u64,
    /// The most hits the window allows.
    pub max: u64,
}

/// [`CounterStore::hit_in_order`], one counter after the other.
async fn hit_in_turn<S: CounterStore + ?Sized>(
    store: &S,
    hits: &[Hit<'_>],
    now: Timestamp,
) -> Result<Vec<u64>, StoreError> {
    let mut counts = Vec::with_capacity(hits.len());
    for hit in hits {
        let count = store.add(hit.name, hit.window_ms, 1, now).await?;
        counts.push(count);
        if count > hit.max {
            break;
        }
    }
    Ok(counts)
}

/// What a start must pass before the store's start may count a send: the
/// number not locked by wrong codes, its destination not paused, and each
/// rate-limit counter hit in order within its limit. Built by the abuse rules
/// ([`crate::abuse::SendGuard`]), which turn an [`Admission`] into a refusal.
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    pub number: &'a NumberKey,
    /// The windows the number's wrong codes count in, and the counts in them
    /// that lock it (either one reached locks it).
    pub windows: FailureWindows,
    pub lock_at: Failures,
    /// A flag that, raised, refuses the start (the pumping detector's pause
    /// of the number's prefix); `None` when no flag applies.
    pub flag: Option<&'a str>,
    /// Counted only when the number is neither locked nor paused.
    pub hits: &'a [Hit<'a>],
}

impl Gate<'_> {
    /// Whether these wrong codes lock the number.
    pub fn locks(&self, failures: Failures) -> bool {
        failures.lockout >= self.lock_at.lockout || failures.day >= self.lock_at.day
    }

    /// Whether what [`AdmissionStore::admit`] found refuses the start: the
    /// number locked, its destination paused, or a counter past its limit.
    pub fn refuses(&self, admission: &Admission) -> bool {
        self.locks(admission.failures)
            || admission.blocked
            || admission
                .counts
                .iter()
                .zip(self.hits)
                .any(|(count, hit)| *count > hit.max)
    }
}

/// A start as [`VerificationStore::start`] takes it.
#[derive(Debug, Clone)]
pub struct Opening<'a> {
    pub new: NewVerification,
    pub key: &'a NumberKey,
    pub policy: SendPolicy,
    pub budget: SendBudget,
}

/// The counters a created verification feeds (the pumping detector's):
/// each `(name, n)` as [`CounterStore::add_and_read_previous`] adds and reads it.
#[derive(Debug, Clone, Copy)]
pub struct Feed<'a> {
    pub counters: &'a [(&'a str, u64)],
    pub window_ms: u64,
}

/// What [`AdmissionStore::gated_start`] did.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a return value, moved once: boxing would allocate on every start"
)]
pub enum Gated {
    /// The gate refused (see [`Gate::refuses`]): nothing was started.
    Refused(Admission),
    /// Past the gate, the start's own outcome, and for a created
    /// verification what its feed read (none otherwise); a feed that could
    /// not be read does not undo the start.
    Started {
        outcome: StartOutcome,
        fed: Result<Vec<(u64, u64)>, StoreError>,
    },
}

/// What [`AdmissionStore::admit`] found and counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Admission {
    pub failures: Failures,
    /// Whether the gate's flag is raised (`false` when the number is locked:
    /// then it is not read).
    pub blocked: bool,
    /// The counts of the hits made, in order, as
    /// [`CounterStore::hit_in_order`] gives them; none when the number is
    /// locked or paused.
    pub counts: Vec<u64>,
}

/// A start's gate, and a start through it: one atomic step where the store
/// can (a single Redis node's gated start), in turn where its keys live
/// apart (a Redis Cluster) or in one process (memory).
pub trait AdmissionStore: VerificationStore + FlagStore + CounterStore {
    /// Reads the number's wrong codes, then the flag, and, when neither
    /// refuses, hits the gate's counters in order.
    fn admit(
        &self,
        gate: &Gate<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Admission, StoreError>> + Send {
        admit_in_turn(self, gate, now)
    }

    /// Passes the gate, then, when nothing in it refuses, starts, and feeds
    /// a created verification's counters: one atomic step where the store
    /// can, in turn where it cannot.
    fn gated_start(
        &self,
        gate: &Gate<'_>,
        opening: Opening<'_>,
        feed: Feed<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Gated, StoreError>> + Send {
        gated_start_in_turn(self, gate, opening, feed, now)
    }
}

/// [`AdmissionStore::gated_start`], one store call after the other.
async fn gated_start_in_turn<S: AdmissionStore + ?Sized>(
    store: &S,
    gate: &Gate<'_>,
    opening: Opening<'_>,
    feed: Feed<'_>,
    now: Timestamp,
) -> Result<Gated, StoreError> {
    let admission = store.admit(gate, now).await?;
    if gate.refuses(&admission) {
        return Ok(Gated::Refused(admission));
    }
    let Opening {
        new,
        key,
        policy,
        budget,
    } = opening;
    let outcome = store.start(new, key, policy, budget, now).await?;
    let fed = match outcome {
        StartOutcome::Created(_) if !feed.counters.is_empty() => {
            store
                .add_and_read_previous(feed.counters, feed.window_ms, now)
                .await
        }
        _ => Ok(Vec::new()),
    };
    Ok(Gated::Started { outcome, fed })
}

/// [`AdmissionStore::admit`], one store call after the other.
async fn admit_in_turn<S: AdmissionStore + ?Sized>(
    store: &S,
    gate: &Gate<'_>,
    now: Timestamp,
) -> Result<Admission, StoreError> {
    let flag = async {
        match gate.flag {
            Some(flag) => store.flag_raised(flag).await,
            None => Ok(false),
        }
    };
    // Both only read, so they go together.
    let (failures, blocked) = tokio::join!(store.failures(gate.number, gate.windows, now), flag);
    let failures = failures?;
    if gate.locks(failures) {
        return Ok(Admission {
            failures,
            ..Admission::default()
        });
    }
    let blocked = blocked?;
    let counts = if blocked {
        Vec::new()
    } else {
        store.hit_in_order(gate.hits, now).await?
    };
    Ok(Admission {
        failures,
        blocked,
        counts,
    })
}

/// The schedule of jobs every instance polls (fallbacks, expiries, events).
pub trait JobStore: Send + Sync {
    /// Schedules `job` (or moves it) to come due at `due`.
    fn schedule(
        &self,
        job: &str,
        due: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims up to `max` jobs due at `now`, each leased for `lease_ms`: no other
    /// claimer gets it meanwhile, and it comes due again if never completed.
    fn claim_jobs(
        &self,
        now: Timestamp,
        lease_ms: u64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Removes a job (done, or no longer wanted).
    fn complete_job(&self, job: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many jobs are scheduled, and how many of those are named with
    /// `prefix` (among the [`QUEUE_SCAN`] due soonest).
    fn queue_depth(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<QueueDepth, StoreError>> + Send;
}

/// Most jobs [`JobStore::queue_depth`] looks at to count those of a prefix:
/// the depth is read at every scrape, so it must stay cheap however long the
/// queue grows (past it the prefix's count is a lower bound).
pub const QUEUE_SCAN: usize = 10_000;

/// The job queue's length, and how much of it is of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub total: u64,
    pub with_prefix: u64,
}

/// Events waiting to be sent to the webhook, by event id.
pub trait EventStore: Send + Sync {
    /// Keeps an event (as the outbox writes it) for `ttl_ms`.
    fn put_event(
        &self,
        id: &str,
        event: &str,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn event(&self, id: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    fn delete_event(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Flags that lower themselves after a while (the pumping detector's pauses).
pub trait FlagStore: Send + Sync {
    /// Raises the flag `name` for `ttl_ms`.
    fn raise_flag(
        &self,
        name: &str,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the flag `name` is raised.
    fn flag_raised(&self, name: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A factor as the store keeps it: no expiry (it lasts until deleted), its
/// TOTP secret sealed with the keyring and bound to its id.
#[derive(Debug, Clone)]
pub struct StoredFactor {
    pub factor: Factor,
    pub sealed_secret: String,
    /// The last time step a code was accepted for: that step and every
    /// earlier one are never accepted again (no replay).
    pub last_step: Option<u64>,
}

/// What bounds wrong authenticator codes: `max_attempts` wrong in a row lock
/// the factor for `lock_ms` (`MAX_ATTEMPTS`, `LOCKOUT_MINUTES`), and
/// `max_per_day` wrong for one identity in a UTC day (`day_ms`) refuse its
/// codes until the day ends (`MAX_FAILED_CHECKS_PER_DAY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactorLimits {
    pub max_attempts: u32,
    pub lock_ms: u64,
    pub day_ms: u64,
    pub max_per_day: u64,
}

/// What the server made of a typed code before asking the store to record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorAttempt {
    /// It is the code of this step: accept it if no later or equal step was.
    Step(u64),
    Wrong,
}

/// What recording an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Accepted (and, at the verify stage, the factor is now verified).
    Approved,
    /// Wrong (or a step already used); this many more before the lock.
    Wrong {
        attempts_remaining: u32,
    },
    /// Locked after `max_attempts` wrong in a row (by this attempt or an
    /// earlier one): nothing is compared until the lock ends.
    Locked {
        retry_after_ms: u64,
    },
    /// The identity's wrong codes reached the day's ceiling.
    DailyCeiling {
        retry_after_ms: u64,
    },
    /// The factor is not in the status this stage needs; nothing changed.
    WrongStage(FactorStatus),
    NotFound,
}

/// What keeping a new factor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorCreated {
    Created,
    /// Its identity already has as many live factors (verified, or
    /// unverified and not yet abandoned) as it may; nothing was kept.
    IdentityFull,
}

/// Authenticator-app factors, each in its application.
pub trait FactorStore: Send + Sync {
    /// Keeps a new factor, atomically, unless its identity already has
    /// `max_per_identity` live factors; `identity_hash` names its
    /// identity's counters and index.
    fn create_factor(
        &self,
        factor: StoredFactor,
        identity_hash: &str,
        max_per_identity: u32,
    ) -> impl Future<Output = Result<FactorCreated, StoreError>> + Send;

    /// The factor, when `owner` may see it.
    fn factor(
        &self,
        id: &FactorId,
        owner: Owner<'_>,
    ) -> impl Future<Output = Result<Option<StoredFactor>, StoreError>> + Send;

    /// Records a typed code against the factor, atomically: refuses while it
    /// is locked or its identity is at the day's ceiling, accepts a step
    /// later than the last accepted (moving the factor on at `stage`), else
    /// counts a wrong code in a row and in the identity's day.
    fn attempt_factor(
        &self,
        id: &FactorId,
        owner: Owner<'_>,
        stage: FactorStage,
        attempt: FactorAttempt,
        limits: FactorLimits,
        now: Timestamp,
    ) -> impl Future<Output = Result<AttemptOutcome, StoreError>> + Send;

    /// Removes the factor (and its place in its identity's count at `now`);
    /// what it was, or `None` when there was none.
    fn delete_factor(
        &self,
        id: &FactorId,
        owner: Owner<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Factor>, StoreError>> + Send;
}

/// Whether the store answers at all.
pub trait Health: Send + Sync {
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The store chosen at start-up.
#[derive(Debug, Clone)]
pub enum Store {
    Redis(RedisStore),
    Memory(MemoryStore),
}

impl Store {
    pub fn describe(&self) -> &'static str {
        match self {
            Store::Redis(_) => "redis",
            Store::Memory(_) => "memory (one process only)",
        }
    }

    /// Where it is: Redis's `host:port`, or `memory`.
    pub fn location(&self) -> &str {
        match self {
            Store::Redis(r) => r.location(),
            Store::Memory(_) => "memory",
        }
    }
}

/// Implements store traits for [`Store`] by handing every call to the store
/// inside, timing each in the store-latency histogram by operation.
macro_rules! forward {
    ($($trait:ident { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* })*) => {$(
        impl $trait for Store {
            $(async fn $name(&self $(, $arg: $ty)*) -> $ret {
                let started = std::time::Instant::now();
                let result = match self {
                    Store::Redis(s) => s.$name($($arg),*).await,
                    Store::Memory(s) => s.$name($($arg),*).await,
                };
                metrics::histogram!(crate::telemetry::STORE_DURATION, "operation" => stringify!($name))
                    .record(started.elapsed().as_secs_f64());
                result
            })*
        }
    )*};
}

forward! {
    VerificationStore {
        fn start(&self, new: NewVerification, key: &NumberKey, policy: SendPolicy, budget: SendBudget, now: Timestamp) -> Result<StartOutcome, StoreError>;
        fn check(&self, target: CheckTarget<'_>, owner: Owner<'_>, digests: &[String], windows: FailureWindows, now: Timestamp) -> Result<CheckOutcome, StoreError>;
        fn failures(&self, key: &NumberKey, windows: FailureWindows, now: Timestamp) -> Result<Failures, StoreError>;
        fn get(&self, id: &VerificationId, owner: Owner<'_>, now: Timestamp) -> Result<Option<Verification>, StoreError>;
        fn finish(&self, id: &VerificationId, owner: Owner<'_>, how: Finish, now: Timestamp) -> Result<FinishOutcome, StoreError>;
        fn record_delivery(&self, recording: Recording<'_>, now: Timestamp) -> Result<DeliveryUpdate, StoreError>;
        fn latest(&self, number: &PhoneNumber, key: &NumberKey, now: Timestamp) -> Result<Option<Verification>, StoreError>;
        fn claim_fallback(&self, id: &VerificationId, channels: FallbackChannels, trigger: FallbackTrigger, max_sends: u32, now: Timestamp) -> Result<FallbackClaim, StoreError>;
    }
    CallStore {
        fn register_call(&self, call: &CallRef, id: &VerificationId, until: Timestamp, now: Timestamp) -> Result<(), StoreError>;
        fn resolve_call(&self, call: &CallRef, now: Timestamp) -> Result<ResolvedCall, StoreError>;
        fn answer_call(&self, call: &CallRef, nonce: &str, nonce_ttl_ms: u64, now: Timestamp) -> Result<Nonce<ResolvedCall>, StoreError>;
    }
    NonceStore {
        fn remember_nonce(&self, nonce: &str, ttl_ms: u64, now: Timestamp) -> Result<bool, StoreError>;
    }
    CounterStore {
        fn add(&self, name: &str, window_ms: u64, n: u64, now: Timestamp) -> Result<u64, StoreError>;
        fn hit_in_order(&self, hits: &[Hit<'_>], now: Timestamp) -> Result<Vec<u64>, StoreError>;
        fn add_and_read_previous(&self, counters: &[(&str, u64)], window_ms: u64, now: Timestamp) -> Result<Vec<(u64, u64)>, StoreError>;
    }
    AdmissionStore {
        fn admit(&self, gate: &Gate<'_>, now: Timestamp) -> Result<Admission, StoreError>;
        fn gated_start(&self, gate: &Gate<'_>, opening: Opening<'_>, feed: Feed<'_>, now: Timestamp) -> Result<Gated, StoreError>;
    }
    JobStore {
        fn schedule(&self, job: &str, due: Timestamp) -> Result<(), StoreError>;
        fn claim_jobs(&self, now: Timestamp, lease_ms: u64, max: usize) -> Result<Vec<String>, StoreError>;
        fn complete_job(&self, job: &str) -> Result<(), StoreError>;
        fn queue_depth(&self, prefix: &str) -> Result<QueueDepth, StoreError>;
    }
    EventStore {
        fn put_event(&self, id: &str, event: &str, ttl_ms: u64) -> Result<(), StoreError>;
        fn event(&self, id: &str) -> Result<Option<String>, StoreError>;
        fn delete_event(&self, id: &str) -> Result<(), StoreError>;
    }
    FlagStore {
        fn raise_flag(&self, name: &str, ttl_ms: u64) -> Result<(), StoreError>;
        fn flag_raised(&self, name: &str) -> Result<bool, StoreError>;
    }
    Health {
        fn ping(&self) -> Result<(), StoreError>;
    }
    FactorStore {
        fn create_factor(&self, factor: StoredFactor, identity_hash: &str, max_per_identity: u32) -> Result<FactorCreated, StoreError>;
        fn factor(&self, id: &FactorId, owner: Owner<'_>) -> Result<Option<StoredFactor>, StoreError>;
        fn attempt_factor(&self, id: &FactorId, owner: Owner<'_>, stage: FactorStage, attempt: FactorAttempt, limits: FactorLimits, now: Timestamp) -> Result<AttemptOutcome, StoreError>;
        fn delete_factor(&self, id: &FactorId, owner: Owner<'_>, now: Timestamp) -> Result<Option<Factor>, StoreError>;
    }
}

/// Channel parsing for stored values.
pub(crate) fn parse_channel(s: &str) -> Result<Channel, StoreError> {
    s.parse()
        .map_err(|()| StoreError::Corrupt(format!("unknown channel {s:?}")))
}
