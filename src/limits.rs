//! Rate limits kept in the store (Redis in production), so one limit holds
//! across every instance. Fixed windows: a subject may make `max` hits per
//! `window`; the hit that passes the limit is told when the window ends.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Clock, Timestamp};
use crate::store::{
    Admission, AdmissionStore, CounterStore, Gate, Hit, Store, StoreError, window_of,
};

/// At most `max` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

impl Limit {
    pub const fn new(max: u64, window: Duration) -> Self {
        Self { max, window }
    }

    fn window_ms(self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { count: u64 },
    Limited { retry_after_ms: u64 },
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

#[derive(Debug, Clone)]
pub struct Limiter {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Limiter {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    fn name(scope: &str, subject: &str) -> String {
        format!("{scope}:{subject}")
    }

    fn decide(count: u64, limit: Limit, name: &str, now: Timestamp) -> Decision {
        if count <= limit.max {
            Decision::Allowed { count }
        } else {
            let (_, end) = window_of(name, limit.window_ms(), now);
            Decision::Limited {
                retry_after_ms: now.millis_until(end).max(1),
            }
        }
    }

    /// Counts one hit for `subject` under `scope` and decides.
    pub async fn hit(
        &self,
        scope: &str,
        subject: &str,
        limit: Limit,
    ) -> Result<Decision, StoreError> {
        let now = self.clock.now();
        let name = Self::name(scope, subject);
        let count = self.store.add(&name, limit.window_ms(), 1, now).await?;
        Ok(Self::decide(count, limit, &name, now))
    }

    /// Passes a start's `gate` (see [`Gate`]) with its counters `hits`, each
    /// `(scope, subject, limit)` counted in turn until one refuses, as
    /// calling [`Limiter::hit`] for each would, in one round trip where the
    /// store can: what the store found, and the decisions made, in order
    /// (the last one refused, if any was; none when the gate refused first).
    pub async fn admit(
        &self,
        gate: Gate<'_>,
        hits: &[(&str, &str, Limit)],
    ) -> Result<(Admission, Vec<Decision>), StoreError> {
        let now = self.clock.now();
        let names: Vec<String> = hits
            .iter()
            .map(|(scope, subject, _)| Self::name(scope, subject))
            .collect();
        let counters: Vec<Hit<'_>> = names
            .iter()
            .zip(hits)
            .map(|(name, (_, _, limit))| Hit {
                name,
                window_ms: limit.window_ms(),
                max: limit.max,
            })
            .collect();
        let admission = self
            .store
            .admit(
                &Gate {
                    hits: &counters,
                    ..gate
                },
                now,
            )
            .await?;
        let decisions = admission
            .counts
            .iter()
            .zip(names.iter().zip(hits))
            .map(|(count, (name, (_, _, limit)))| Self::decide(*count, *limit, name, now))
            .collect();
        Ok((admission, decisions))
    }

    /// Adds each `(scope, subject, n)`'s `n` hits (0 to only read) to this
    /// window's count and weighs the sliding window ending now: this window's
    /// count after adding, and the previous window's weighted by how much of
    /// it the sliding window still covers (a sliding window without a sorted
    /// set). One round trip where the store can.
    pub async fn add_and_weigh(
        &self,
        window: Duration,
        counters: &[(&str, &str, u64)],
    ) -> Result<Vec<f64>, StoreError> {
        let now = self.clock.now();
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let names: Vec<String> = counters
            .iter()
            .map(|(scope, subject, _)| Self::name(scope, subject))
            .collect();
        let adds: Vec<(&str, u64)> = names
            .iter()
            .zip(counters)
            .map(|(name, (_, _, n))| (name.as_str(), *n))
            .collect();
        let read = self
            .store
            .add_and_read_previous(&adds, window_ms, now)
            .await?;
        // Every name's windows end together: the index is the time's alone.
        let (_, end) = window_of("", window_ms, now);
        let left = now.millis_until(end) as f64 / window_ms as f64;
        Ok(read
            .into_iter()
            .map(|(current, previous)| current as f64 + previous as f64 * left)
            .collect())
    }

    /// Adds `n` hits without deciding (events a later `peek` judges).
    pub async fn add(
        &self,
        scope: &str,
        subject: &str,
        window: Duration,
        n: u64,
    ) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        self.store
            .add(&Self::name(scope, subject), window_ms, n, now)
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::{ManualClock, NumberKey};
    use crate::store::{FailureWindows, Failures, FlagStore, MemoryStore};

    #[tokio::test]
    async fn a_limit_allows_max_hits_per_window_then_says_when_to_retry() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let limiter = Limiter::new(Store::Memory(MemoryStore::new()), clock.clone());
        let limit = Limit::new(2, Duration::from_secs(10));
        assert!(limiter.hit("t", "a", limit).await.unwrap().is_allowed());
        assert!(limiter.hit("t", "a", limit).await.unwrap().is_allowed());
        assert_eq!(
            limiter.hit("t", "a", limit).await.unwrap(),
            Decision::Limited {
                retry_after_ms: 10_000
            }
        );
        assert!(limiter.hit("t", "b", limit).await.unwrap().is_allowed());
        clock.advance(Duration::from_secs(10));
        assert!(limiter.hit("t", "a", limit).await.unwrap().is_allowed());
    }

    fn number() -> NumberKey {
        NumberKey {
            hash: "ab".repeat(32),
            tag: "abab".to_owned(),
        }
    }

    /// A gate that locks after `lock_at` wrong codes in either window.
    fn gate<'a>(number: &'a NumberKey, lock_at: u64, flag: Option<&'a str>) -> Gate<'a> {
        Gate {
            number,
            windows: FailureWindows {
                lockout_ms: 60_000,
                day_ms: 86_400_000,
            },
            lock_at: Failures {
                lockout: lock_at,
                day: lock_at,
            },
            flag,
            hits: &[],
        }
    }

    #[tokio::test]
    async fn hits_in_order_decide_as_hitting_each_in_turn_until_one_refuses() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let limiter = Limiter::new(Store::Memory(MemoryStore::new()), clock.clone());
        let (tight, loose) = (
            Limit::new(1, Duration::from_secs(10)),
            Limit::new(5, Duration::from_secs(10)),
        );
        let order = [
            ("ip", "a", loose),
            ("key", "a", tight),
            ("global", "all", loose),
        ];
        let number = number();
        let open = gate(&number, 3, None);
        let allowed = |count| Decision::Allowed { count };
        assert_eq!(
            limiter.admit(open, &order).await.unwrap().1,
            [allowed(1), allowed(1), allowed(1)]
        );
        assert_eq!(
            limiter.admit(open, &order).await.unwrap().1,
            [
                allowed(2),
                Decision::Limited {
                    retry_after_ms: 10_000
                }
            ]
        );
        // The refused request stopped before the global counter.
        assert_eq!(
            limiter.hit("global", "all", loose).await.unwrap(),
            allowed(2)
        );
    }

    #[tokio::test]
    async fn a_locked_or_paused_gate_counts_none_of_its_hits() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let store = Store::Memory(MemoryStore::new());
        let limiter = Limiter::new(store.clone(), clock.clone());
        let limit = Limit::new(5, Duration::from_secs(10));
        let order = [("ip", "a", limit)];
        let number = number();
        // No wrong codes yet: a gate that locks at none locks already.
        let (admission, decisions) = limiter.admit(gate(&number, 0, None), &order).await.unwrap();
        assert_eq!(admission.failures, Failures::default());
        assert!(decisions.is_empty() && admission.counts.is_empty());
        store.raise_flag("paused", 60_000).await.unwrap();
        let (admission, decisions) = limiter
            .admit(gate(&number, 3, Some("paused")), &order)
            .await
            .unwrap();
        assert!(admission.blocked);
        assert!(decisions.is_empty());
        // Neither start counted against the address.
        assert_eq!(
            limiter.hit("ip", "a", limit).await.unwrap(),
            Decision::Allowed { count: 1 }
        );
    }
}
