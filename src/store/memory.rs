//! The embedded store: one process, no Redis. Same semantics as the Redis store
//! (the contract suite proves it) by applying the domain transitions directly
//! under one lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    CheckOutcome, CheckTarget, DeliveryUpdate, FallbackClaim, Finish, FinishOutcome,
    NewVerification, RETENTION_MS, StartOutcome, StoreError, VerificationStore,
};
use crate::domain::verification::SendPolicy;
use crate::domain::{
    CallRef, Delivery, NumberKey, PhoneNumber, Status, Timestamp, Verification, VerificationId,
};

/// How often expired records are swept out.
const SWEEP_EVERY_MS: i64 = 60_000;

#[derive(Debug)]
struct Record {
    verification: Verification,
    digest: Option<String>,
    sealed: Option<String>,
    /// When the record may be forgotten.
    evict_at: Timestamp,
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<VerificationId, Record>,
    /// Number hash → its latest verification.
    latest: HashMap<String, VerificationId>,
    /// Call reference → (verification, forget at).
    calls: HashMap<CallRef, (VerificationId, Timestamp)>,
    /// Nonce → forget at.
    nonces: HashMap<String, Timestamp>,
    /// Rate-limit window counter → (count, forget at).
    counters: HashMap<String, (u64, Timestamp)>,
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
        now: Timestamp,
    ) -> Result<StartOutcome, StoreError> {
        let mut inner = self.lock();
        inner.sweep(now);
        if let Some(id) = inner.latest.get(&key.hash).cloned()
            && let Some(record) = inner.live(&id, now)
            && record.verification.to == new.verification.to
            && record.verification.status == Status::Pending
        {
            if record.verification.is_open(now) {
                let channel = new.verification.channel;
                return Ok(match record.verification.resend(channel, policy, now) {
                    Ok(()) => StartOutcome::Resend {
                        verification: record.verification.clone(),
                        sealed: record.sealed.clone().unwrap_or_default(),
                    },
                    Err(refusal) => StartOutcome::Refused {
                        verification: record.verification.clone(),
                        refusal,
                    },
                });
            }
            record.verification.status = Status::Expired;
            close(record, now);
        }
        let v = new.verification;
        let evict_at = retention_from(v.expires_at);
        inner.latest.insert(key.hash.clone(), v.id.clone());
        inner.records.insert(
            v.id.clone(),
            Record {
                verification: v.clone(),
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
        digests: &[String],
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
        let Some(record) = inner.live(&id, now) else {
            return Ok(None);
        };
        if let CheckTarget::Number { number, .. } = target
            && &record.verification.to != number
        {
            return Ok(None);
        }
        let matched = record
            .digest
            .as_ref()
            .is_some_and(|stored| digests.iter().any(|d| d == stored));
        let result = record.verification.check(matched, now);
        close(record, now);
        Ok(Some((result, record.verification.clone())))
    }

    async fn get(
        &self,
        id: &VerificationId,
        now: Timestamp,
    ) -> Result<Option<Verification>, StoreError> {
        let mut inner = self.lock();
        Ok(inner.live(id, now).map(|r| r.verification.clone()))
    }

    async fn finish(
        &self,
        id: &VerificationId,
        how: Finish,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner.live(id, now) else {
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
        id: &VerificationId,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<DeliveryUpdate, StoreError> {
        let mut inner = self.lock();
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
                *existing = delivery;
                existing.created_at = created_at;
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
    ) -> Result<Option<(Verification, Option<String>)>, StoreError> {
        let mut inner = self.lock();
        let Some((id, until)) = inner.calls.get(call).cloned() else {
            return Ok(None);
        };
        if until <= now {
            return Ok(None);
        }
        Ok(inner
            .live(&id, now)
            .map(|r| (r.verification.clone(), r.sealed.clone())))
    }

    async fn remember_nonce(
        &self,
        nonce: &str,
        ttl_ms: u64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        inner.sweep(now);
        if inner.nonces.get(nonce).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        inner.nonces.insert(
            nonce.to_owned(),
            now.plus(std::time::Duration::from_millis(ttl_ms)),
        );
        Ok(true)
    }

    async fn hit(
        &self,
        name: &str,
        window_ms: u64,
        by: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let (key, end) = super::window_of(name, window_ms, now);
        let mut inner = self.lock();
        inner.sweep(now);
        let entry = inner.counters.entry(key).or_insert((0, end));
        entry.0 = entry.0.saturating_add(by);
        Ok(entry.0)
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

    async fn claim_fallback(
        &self,
        id: &VerificationId,
        max_sends: u32,
        now: Timestamp,
    ) -> Result<FallbackClaim, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner.live(id, now) else {
            return Ok(FallbackClaim::NotFound);
        };
        let result = record.verification.claim_fallback(max_sends, now);
        close(record, now);
        Ok(match result {
            Ok(()) => FallbackClaim::Claimed {
                verification: record.verification.clone(),
                sealed: record.sealed.clone().unwrap_or_default(),
            },
            Err(skip) => FallbackClaim::Skipped(skip),
        })
    }

    async fn put_blob(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), StoreError> {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(ttl_ms);
        let mut inner = self.lock();
        inner
            .blobs
            .retain(|_, (_, t)| *t > std::time::Instant::now());
        inner
            .blobs
            .insert(key.to_owned(), (value.to_owned(), until));
        Ok(())
    }

    async fn get_blob(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .blobs
            .get(key)
            .filter(|(_, t)| *t > std::time::Instant::now())
            .map(|(v, _)| v.clone()))
    }

    async fn delete_blob(&self, key: &str) -> Result<(), StoreError> {
        self.lock().blobs.remove(key);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
