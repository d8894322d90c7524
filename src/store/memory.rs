//! The embedded store: one process, no Redis. Same semantics as the Redis store
//! (the contract suite proves it) by applying the domain transitions directly
//! under one lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    AdmissionStore, AttemptOutcome, CallStore, CallView, CheckOutcome, CheckTarget, CounterStore,
    DeliveryUpdate, EventStore, FACTOR_FAILED_COUNTER, FAILED_COUNTER, FactorAttempt,
    FactorCreated, FactorLimits, FactorStore, FailureWindows, Failures, FallbackClaim, Finish,
    FinishOutcome, FlagStore, Health, Hit, JobStore, LOCKOUT_COUNTER, NewVerification, Nonce,
    NonceStore, Owner, QUEUE_SCAN, QueueDepth, RETENTION_MS, Recording, ResolvedCall,
    SENDS_COUNTER, SendBudget, StartOutcome, StoreError, StoredFactor, VerificationStore,
    window_of,
};
use crate::domain::verification::{CheckResult, SendPolicy};
use crate::domain::{
    CallRef, Factor, FactorId, FactorStage, FactorStatus, FallbackChannels, FallbackTrigger,
    NumberKey, PhoneNumber, Status, Timestamp, Verification, VerificationId,
};

/// How often expired records are swept out.
const SWEEP_EVERY_MS: i64 = 60_000;

#[derive(Debug)]
struct Record {
    verification: Verification,
    /// The keyed hash of its number, which its number's counters are named by.
    number_hash: String,
    digest: Option<String>,
    sealed: Option<String>,
    /// When the record may be forgotten.
    evict_at: Timestamp,
}

/// A factor with what bounds its wrong codes.
#[derive(Debug)]
struct FactorRecord {
    stored: StoredFactor,
    identity_hash: String,
    /// Wrong codes in a row since the last right one or the last lock.
    fails: u32,
    locked_until: Timestamp,
}

#[derive(Debug, Default)]
struct Inner {
    /// Factors last until deleted.
    factors: HashMap<FactorId, FactorRecord>,
    records: HashMap<VerificationId, Record>,
    /// Number hash → its latest verification.
    latest: HashMap<String, VerificationId>,
    /// Call reference → (verification, forget at).
    calls: HashMap<CallRef, (VerificationId, Timestamp)>,
    /// Nonce → forget at.
    nonces: HashMap<String, Timestamp>,
    counters: Counters,
    /// Job → when it is due.
    jobs: HashMap<String, Timestamp>,
    /// Small values → (value, forget at, measured in wall-clock ms).
    blobs: HashMap<String, (String, std::time::Instant)>,
    last_sweep: i64,
}

impl Inner {
    fn sweep(&mut self, now: Timestamp) {
        if now.as_millis() - self.last_sweep < SWEEP_EVERY_MS {
            return;
        }
        self.last_sweep = now.as_millis();
        self.records.retain(|_, r| r.evict_at > now);
        let records = &self.records;
        self.latest.retain(|_, id| records.contains_key(id));
        self.calls.retain(|_, (_, until)| *until > now);
        self.nonces.retain(|_, until| *until > now);
        self.counters.retain(|_, (_, until)| *until > now);
    }

    fn live(&mut self, id: &VerificationId, now: Timestamp) -> Option<&mut Record> {
        self.records.get_mut(id).filter(|r| r.evict_at > now)
    }

    /// Remembers a nonce for `ttl_ms`; `false` when it is already remembered.
    fn take_nonce(&mut self, nonce: &str, ttl_ms: u64, now: Timestamp) -> bool {
        self.sweep(now);
        if self.nonces.get(nonce).is_some_and(|until| *until > now) {
            return false;
        }
        self.nonces.insert(
            nonce.to_owned(),
            now.plus(std::time::Duration::from_millis(ttl_ms)),
        );
        true
    }

    fn resolve_call(&mut self, call: &CallRef, now: Timestamp) -> ResolvedCall {
        let (id, until) = self.calls.get(call).cloned()?;
        if until <= now {
            return None;
        }
        self.live(&id, now)
            .map(|r| CallView::of(&r.verification, r.sealed.clone()))
    }
}

/// Rate-limit window counter → (count, forget at).
type Counters = HashMap<String, (u64, Timestamp)>;

/// The name of one of a number's counters (as the Redis store names it, less
/// the prefix and the window).
fn counter_name(tag: &str, counter: &str, hash: &str) -> String {
    format!("{{{tag}}}:{counter}:{hash}")
}

/// Adds `by` to `name`'s counter for its window at `now`; the count after, and
/// when the window ends.
fn add(
    counters: &mut Counters,
    name: &str,
    window_ms: u64,
    by: u64,
    now: Timestamp,
) -> (u64, Timestamp) {
    let (key, end) = window_of(name, window_ms, now);
    // Kept a window past its end, as Redis keeps it, so the window after
    // can still read it (the pumping detector weighs the previous window).
    let forget_at = end.plus(std::time::Duration::from_millis(window_ms));
    let entry = counters.entry(key).or_insert((0, forget_at));
    entry.0 = entry.0.saturating_add(by);
    (entry.0, end)
}

/// Counts one send against a number's budget; `Err(ms)`: spent for that long.
fn spend(
    counters: &mut Counters,
    key: &NumberKey,
    budget: SendBudget,
    now: Timestamp,
) -> Result<(), u64> {
    let name = counter_name(&key.tag, SENDS_COUNTER, &key.hash);
    let (count, end) = add(counters, &name, budget.window_ms, 1, now);
    if count > budget.max {
        Err(now.millis_until(end).max(1))
    } else {
        Ok(())
    }
}

fn retention_from(now: Timestamp) -> Timestamp {
    now.plus(std::time::Duration::from_millis(RETENTION_MS))
}

/// Closes a record that reached a final status: forget the code material and
/// keep the outcome readable for the retention period.
fn close(record: &mut Record, now: Timestamp) {
    if record.verification.status.is_final() {
        record.digest = None;
        record.sealed = None;
        record.evict_at = retention_from(now);
    }
}

#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps a small value (an event, a flag) for `ttl_ms` of wall-clock time.
    fn put_blob(&self, key: &str, value: &str, ttl_ms: u64) {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(ttl_ms);
        let mut inner = self.lock();
        inner
            .blobs
            .retain(|_, (_, t)| *t > std::time::Instant::now());
        inner
            .blobs
            .insert(key.to_owned(), (value.to_owned(), until));
    }

    fn blob(&self, key: &str) -> Option<String> {
        self.lock()
            .blobs
            .get(key)
            .filter(|(_, t)| *t > std::time::Instant::now())
            .map(|(v, _)| v.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a record half-written
        // (every mutation is a plain field assignment), so poisoning is ignored.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl VerificationStore for MemoryStore {
    async fn start(
        &self,
        new: NewVerification,
        key: &NumberKey,
        policy: SendPolicy,
        budget: SendBudget,
        now: Timestamp,
    ) -> Result<StartOutcome, StoreError> {
        let mut inner = self.lock();
        inner.sweep(now);
        let Inner {
            records,
            latest,
            counters,
            ..
        } = &mut *inner;
        if let Some(id) = latest.get(&key.hash).cloned()
            && let Some(record) = records.get_mut(&id).filter(|r| r.evict_at > now)
            && record.number_hash == key.hash
            && record.verification.status == Status::Pending
        {
            if record.verification.is_open(now) {
                let v = &mut record.verification;
                if let Err(refusal) = v.may_resend(policy, now) {
                    return Ok(StartOutcome::Refused {
                        verification: v.clone(),
                        refusal,
                    });
                }
                if let Err(retry_after_ms) = spend(counters, key, budget, now) {
                    return Ok(StartOutcome::NumberLimited { retry_after_ms });
                }
                return Ok(match v.resend(new.verification.channel, policy, now) {
                    Ok(()) => StartOutcome::Resend {
                        verification: v.clone(),
                        sealed: record.sealed.clone().unwrap_or_default(),
                    },
                    Err(refusal) => StartOutcome::Refused {
                        verification: v.clone(),
                        refusal,
                    },
                });
            }
            record.verification.status = Status::Expired;
            close(record, now);
        }
        if let Err(retry_after_ms) = spend(counters, key, budget, now) {
            return Ok(StartOutcome::NumberLimited { retry_after_ms });
        }
        let v = new.verification;
        let evict_at = retention_from(v.expires_at);
        latest.insert(key.hash.clone(), v.id.clone());
        records.insert(
            v.id.clone(),
            Record {
                verification: v.clone(),
                number_hash: key.hash.clone(),
                digest: Some(new.digest),
                sealed: Some(new.sealed),
                evict_at,
            },
        );
        Ok(StartOutcome::Created(v))
    }

    async fn check(
        &self,
        target: CheckTarget<'_>,
        owner: Owner<'_>,
        digests: &[String],
        windows: FailureWindows,
        now: Timestamp,
    ) -> Result<CheckOutcome, StoreError> {
        let mut inner = self.lock();
        let id = match target {
            CheckTarget::Id(id) => id.clone(),
            CheckTarget::Number { key, .. } => match inner.latest.get(&key.hash) {
                Some(id) => id.clone(),
                None => return Ok(None),
            },
        };
        let Inner {
            records, counters, ..
        } = &mut *inner;
        let Some(record) = records
            .get_mut(&id)
            .filter(|r| r.evict_at > now && owner.sees(&r.verification.application))
        else {
            return Ok(None);
        };
        if let CheckTarget::Number { key, .. } = target
            && record.number_hash != key.hash
        {
            return Ok(None);
        }
        let matched = record
            .digest
            .as_ref()
            .is_some_and(|stored| digests.iter().any(|d| d == stored));
        let result = record.verification.check(matched, now);
        if matches!(result, CheckResult::Wrong | CheckResult::Exhausted) {
            let (tag, hash) = (id.tag(), record.number_hash.as_str());
            add(
                counters,
                &counter_name(tag, LOCKOUT_COUNTER, hash),
                windows.lockout_ms,
                1,
                now,
            );
            add(
                counters,
                &counter_name(tag, FAILED_COUNTER, hash),
                windows.day_ms,
                1,
                now,
            );
        }
        close(record, now);
        Ok(Some((result, record.verification.clone())))
    }

    async fn failures(
        &self,
        key: &NumberKey,
        windows: FailureWindows,
        now: Timestamp,
    ) -> Result<Failures, StoreError> {
        let mut inner = self.lock();
        let counters = &mut inner.counters;
        let mut read = |counter: &str, window_ms: u64| {
            let name = counter_name(&key.tag, counter, &key.hash);
            add(counters, &name, window_ms, 0, now).0
        };
        Ok(Failures {
            lockout: read(LOCKOUT_COUNTER, windows.lockout_ms),
            day: read(FAILED_COUNTER, windows.day_ms),
        })
    }

    async fn get(
        &self,
        id: &VerificationId,
        owner: Owner<'_>,
        now: Timestamp,
    ) -> Result<Option<Verification>, StoreError> {
        let mut inner = self.lock();
        Ok(inner
            .live(id, now)
            .map(|r| r.verification.clone())
            .filter(|v| owner.sees(&v.application)))
    }

    async fn finish(
        &self,
        id: &VerificationId,
        owner: Owner<'_>,
        how: Finish,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner
            .live(id, now)
            .filter(|r| owner.sees(&r.verification.application))
        else {
            return Ok(None);
        };
        let v = &mut record.verification;
        let outcome = match how {
            Finish::Cancel => v.cancel(now),
            Finish::Fail => {
                if v.fail(now) {
                    Ok(())
                } else {
                    Err(v.status)
                }
            }
            Finish::Expire => match (v.status, v.status_at(now)) {
                (Status::Pending, Status::Expired) => {
                    v.status = Status::Expired;
                    Ok(())
                }
                (status, _) => Err(status),
            },
        };
        debug_assert!(outcome.is_err() || record.verification.status == how.status());
        close(record, now);
        Ok(Some((outcome, record.verification.clone())))
    }

    async fn record_delivery(
        &self,
        recording: Recording<'_>,
        now: Timestamp,
    ) -> Result<DeliveryUpdate, StoreError> {
        let Recording {
            id, delivery, job, ..
        } = recording;
        let mut inner = self.lock();
        if let Some((job, due)) = job {
            inner.jobs.insert(job.to_owned(), due);
        }
        let Some(record) = inner.live(id, now) else {
            return Ok(DeliveryUpdate::NotFound);
        };
        let deliveries = &mut record.verification.deliveries;
        let same = deliveries
            .iter()
            .position(|d| d.provider_id == delivery.provider_id)
            .or_else(|| deliveries.iter().position(|d| delivery.adopts(d)));
        let applied = match same.and_then(|i| deliveries.get_mut(i)) {
            Some(existing) if !delivery.supersedes(existing) => false,
            Some(existing) => {
                let created_at = existing.created_at.or(delivery.created_at);
                // A receipt without its `Type` is of the message it names.
                let channel = existing.channel;
                *existing = delivery;
                existing.created_at = created_at;
                existing.channel = channel;
                true
            }
            None => {
                deliveries.push(delivery);
                true
            }
        };
        let v = record.verification.clone();
        Ok(if applied {
            DeliveryUpdate::Applied(v)
        } else {
            DeliveryUpdate::Stale(v)
        })
    }

    async fn latest(
        &self,
        number: &PhoneNumber,
        key: &NumberKey,
        now: Timestamp,
    ) -> Result<Option<Verification>, StoreError> {
        let mut inner = self.lock();
        let Some(id) = inner.latest.get(&key.hash).cloned() else {
            return Ok(None);
        };
        Ok(inner
            .live(&id, now)
            .map(|r| r.verification.clone())
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
        let mut inner = self.lock();
        let Some(record) = inner.live(id, now) else {
            return Ok(FallbackClaim::NotFound);
        };
        let result = record
            .verification
            .claim_fallback(channels, trigger, max_sends, now);
        close(record, now);
        Ok(match result {
            Ok(channel) => FallbackClaim::Claimed {
                verification: Box::new(record.verification.clone()),
                sealed: record.sealed.clone().unwrap_or_default(),
                channel,
            },
            Err(skip) => FallbackClaim::Skipped(skip),
        })
    }
}

impl CallStore for MemoryStore {
    async fn register_call(
        &self,
        call: &CallRef,
        id: &VerificationId,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.sweep(now);
        inner.calls.insert(call.clone(), (id.clone(), until));
        Ok(())
    }

    async fn resolve_call(
        &self,
        call: &CallRef,
        now: Timestamp,
    ) -> Result<ResolvedCall, StoreError> {
        Ok(self.lock().resolve_call(call, now))
    }

    async fn answer_call(
        &self,
        call: &CallRef,
        nonce: &str,
        nonce_ttl_ms: u64,
        now: Timestamp,
    ) -> Result<Nonce<ResolvedCall>, StoreError> {
        // One lock for both steps, as the Redis script is one atomic step.
        let mut inner = self.lock();
        if !inner.take_nonce(nonce, nonce_ttl_ms, now) {
            return Ok(Nonce::Replayed);
        }
        Ok(Nonce::First(inner.resolve_call(call, now)))
    }
}

impl NonceStore for MemoryStore {
    async fn remember_nonce(
        &self,
        nonce: &str,
        ttl_ms: u64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(self.lock().take_nonce(nonce, ttl_ms, now))
    }
}

impl CounterStore for MemoryStore {
    async fn add(
        &self,
        name: &str,
        window_ms: u64,
        n: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        inner.sweep(now);
        Ok(add(&mut inner.counters, name, window_ms, n, now).0)
    }

    async fn hit_in_order(&self, hits: &[Hit<'_>], now: Timestamp) -> Result<Vec<u64>, StoreError> {
        let mut inner = self.lock();
        inner.sweep(now);
        let mut counts = Vec::with_capacity(hits.len());
        for hit in hits {
            let (count, _) = add(&mut inner.counters, hit.name, hit.window_ms, 1, now);
            counts.push(count);
            if count > hit.max {
                break;
            }
        }
        Ok(counts)
    }
}

impl JobStore for MemoryStore {
    async fn schedule(&self, job: &str, due: Timestamp) -> Result<(), StoreError> {
        self.lock().jobs.insert(job.to_owned(), due);
        Ok(())
    }

    async fn claim_jobs(
        &self,
        now: Timestamp,
        lease_ms: u64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut inner = self.lock();
        let mut due: Vec<(Timestamp, String)> = inner
            .jobs
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(job, at)| (*at, job.clone()))
            .collect();
        due.sort();
        due.truncate(max);
        let lease_end = now.plus(std::time::Duration::from_millis(lease_ms));
        for (_, job) in &due {
            inner.jobs.insert(job.clone(), lease_end);
        }
        Ok(due.into_iter().map(|(_, job)| job).collect())
    }

    async fn complete_job(&self, job: &str) -> Result<(), StoreError> {
        self.lock().jobs.remove(job);
        Ok(())
    }

    async fn queue_depth(&self, prefix: &str) -> Result<QueueDepth, StoreError> {
        let inner = self.lock();
        let mut due: Vec<(Timestamp, &String)> =
            inner.jobs.iter().map(|(job, at)| (*at, job)).collect();
        due.sort_unstable();
        let with_prefix = due
            .iter()
            .take(QUEUE_SCAN)
            .filter(|(_, job)| job.starts_with(prefix))
            .count();
        Ok(QueueDepth {
            total: inner.jobs.len() as u64,
            with_prefix: with_prefix as u64,
        })
    }
}

impl EventStore for MemoryStore {
    async fn put_event(&self, id: &str, event: &str, ttl_ms: u64) -> Result<(), StoreError> {
        self.put_blob(id, event, ttl_ms);
        Ok(())
    }

    async fn event(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.blob(id))
    }

    async fn delete_event(&self, id: &str) -> Result<(), StoreError> {
        self.lock().blobs.remove(id);
        Ok(())
    }
}

impl AdmissionStore for MemoryStore {}

impl FlagStore for MemoryStore {
    async fn raise_flag(&self, name: &str, ttl_ms: u64) -> Result<(), StoreError> {
        self.put_blob(name, "1", ttl_ms);
        Ok(())
    }

    async fn flag_raised(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.blob(name).is_some())
    }
}

impl FactorStore for MemoryStore {
    async fn create_factor(
        &self,
        factor: StoredFactor,
        identity_hash: &str,
        max_per_identity: u32,
    ) -> Result<FactorCreated, StoreError> {
        let mut inner = self.lock();
        // Enrolments nobody finished in time go (Redis expires them likewise).
        let now = factor.factor.created_at;
        inner.factors.retain(|_, r| !r.stored.factor.abandoned(now));
        let live = inner
            .factors
            .values()
            .filter(|r| r.identity_hash == identity_hash)
            .count();
        if live >= usize::try_from(max_per_identity).unwrap_or(usize::MAX) {
            return Ok(FactorCreated::IdentityFull);
        }
        inner.factors.insert(
            factor.factor.id.clone(),
            FactorRecord {
                stored: factor,
                identity_hash: identity_hash.to_owned(),
                fails: 0,
                locked_until: Timestamp::from_millis(0),
            },
        );
        Ok(FactorCreated::Created)
    }

    async fn factor(
        &self,
        id: &FactorId,
        owner: Owner<'_>,
    ) -> Result<Option<StoredFactor>, StoreError> {
        Ok(self
            .lock()
            .factors
            .get(id)
            .filter(|r| owner.sees(&r.stored.factor.application))
            .map(|r| r.stored.clone()))
    }

    async fn attempt_factor(
        &self,
        id: &FactorId,
        owner: Owner<'_>,
        stage: FactorStage,
        attempt: FactorAttempt,
        limits: FactorLimits,
        now: Timestamp,
    ) -> Result<AttemptOutcome, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(record) = inner
            .factors
            .get_mut(id)
            .filter(|r| owner.sees(&r.stored.factor.application))
        else {
            return Ok(AttemptOutcome::NotFound);
        };
        if record.locked_until > now {
            return Ok(AttemptOutcome::Locked {
                retry_after_ms: now.millis_until(record.locked_until),
            });
        }
        let day = counter_name(id.tag(), FACTOR_FAILED_COUNTER, &record.identity_hash);
        let (failed, day_end) = add(&mut inner.counters, &day, limits.day_ms, 0, now);
        if failed >= limits.max_per_day {
            return Ok(AttemptOutcome::DailyCeiling {
                retry_after_ms: now.millis_until(day_end).max(1),
            });
        }
        let factor = &mut record.stored.factor;
        if factor.status != stage.expects() {
            return Ok(AttemptOutcome::WrongStage(factor.status));
        }
        if let FactorAttempt::Step(step) = attempt
            && record.stored.last_step.is_none_or(|last| step > last)
        {
            record.stored.last_step = Some(step);
            record.fails = 0;
            factor.status = FactorStatus::Verified;
            return Ok(AttemptOutcome::Approved);
        }
        add(&mut inner.counters, &day, limits.day_ms, 1, now);
        record.fails += 1;
        if record.fails >= limits.max_attempts {
            record.fails = 0;
            record.locked_until = now.plus(std::time::Duration::from_millis(limits.lock_ms));
            return Ok(AttemptOutcome::Locked {
                retry_after_ms: limits.lock_ms.max(1),
            });
        }
        Ok(AttemptOutcome::Wrong {
            attempts_remaining: limits.max_attempts - record.fails,
        })
    }

    async fn delete_factor(
        &self,
        id: &FactorId,
        owner: Owner<'_>,
        _now: Timestamp,
    ) -> Result<Option<Factor>, StoreError> {
        let mut inner = self.lock();
        if !inner
            .factors
            .get(id)
            .is_some_and(|r| owner.sees(&r.stored.factor.application))
        {
            return Ok(None);
        }
        Ok(inner.factors.remove(id).map(|r| r.stored.factor))
    }
}

impl Health for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
