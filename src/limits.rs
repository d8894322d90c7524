//! Rate limits kept in the store (Redis in production), so one limit holds
//! across every instance. Fixed windows: a subject may make `max` hits per
//! `window`; the hit that passes the limit is told when the window ends.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Clock, Timestamp};
use crate::store::{
    Admission, AdmissionStore, CounterStore, Feed, Gate, Gated, Hit, Opening, StartOutcome, Store,
    StoreError, window_of,
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
        millis_of(self.window)
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

/// What [`Limiter::start`] did.
#[derive(Debug)]
pub enum LimitedStart {
    /// The gate refused and nothing started: what the store found, and the
    /// decisions on the counters hit (the last one refused, when a counter
    /// refused).
    Refused {
        admission: Admission,
        decisions: Vec<Decision>,
    },
    /// Past the gate: the start's outcome and, for a created verification,
    /// the feed's sliding weights, in order (none otherwise; `Err` when they
    /// could not be read, which does not undo the start).
    Started {
        outcome: StartOutcome,
        weights: Result<Vec<f64>, StoreError>,
    },
}

fn millis_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Each counter's sliding-window estimate: this window's count, and the
/// previous window's weighted by how much of it the sliding window ending
/// `now` still covers.
fn weigh(read: &[(u64, u64)], window_ms: u64, now: Timestamp) -> Vec<f64> {
    // Every name's windows end together: the index is the time's alone.
    let (_, end) = window_of("", window_ms, now);
    let left = now.millis_until(end) as f64 / window_ms as f64;
    read.iter()
        .map(|(current, previous)| *current as f64 + *previous as f64 * left)
        .collect()
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

    /// A start through its `gate` (see [`Gate`]), whose counters are
    /// `hits` (they take the place of the gate's own): each `(scope,
    /// subject, limit)` counted in turn until one refuses, as calling
    /// [`Limiter::hit`] for each would. Then, when the gate lets it through,
    /// the store's start of `opening`, and for a created verification the
    /// `feed`'s counters, each `(scope, subject, n)` added in its window and
    /// weighed with the window before (a sliding window without a sorted
    /// set). One round trip where the store can.
    pub async fn start(
        &self,
        gate: Gate<'_>,
        hits: &[(&str, &str, Limit)],
        opening: Opening<'_>,
        feed: (Duration, &[(&str, &str, u64)]),
        now: Timestamp,
    ) -> Result<LimitedStart, StoreError> {
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
        let (window, fed) = feed;
        let window_ms = millis_of(window).max(1);
        let fed_names: Vec<String> = fed
            .iter()
            .map(|(scope, subject, _)| Self::name(scope, subject))
            .collect();
        let fed_counters: Vec<(&str, u64)> = fed_names
            .iter()
            .zip(fed)
            .map(|(name, (_, _, n))| (name.as_str(), *n))
            .collect();
        let gate = Gate {
            hits: &counters,
            ..gate
        };
        let feed = Feed {
            counters: &fed_counters,
            window_ms,
        };
        Ok(
            match self.store.gated_start(&gate, opening, feed, now).await? {
                Gated::Refused(admission) => {
                    let decisions = admission
                        .counts
                        .iter()
                        .zip(names.iter().zip(hits))
                        .map(|(count, (name, (_, _, limit)))| {
                            Self::decide(*count, *limit, name, now)
                        })
                        .collect();
                    LimitedStart::Refused {
                        admission,
                        decisions,
                    }
                }
                Gated::Started { outcome, fed } => LimitedStart::Started {
                    outcome,
                    weights: fed.map(|read| weigh(&read, window_ms, now)),
                },
            },
        )
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
        let window_ms = millis_of(window);
        self.store
            .add(&Self::name(scope, subject), window_ms, n, now)
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::verification::SendPolicy;
    use crate::domain::{
        ApplicationId, Channel, Locale, ManualClock, NumberKey, PhoneNumber, Status, Verification,
        VerificationId,
    };
    use crate::store::{
        FailureWindows, Failures, FlagStore, MemoryStore, NewVerification, SendBudget,
        VerificationStore,
    };

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

    /// A new verification for `key`, opened at `now`, with no cooldown.
    fn opening(key: &NumberKey, now: Timestamp) -> Opening<'_> {
        let id = VerificationId::generate(&key.tag);
        Opening {
            new: NewVerification {
                digest: "digest".to_owned(),
                sealed: "sealed".to_owned(),
                verification: Verification {
                    id,
                    application: ApplicationId::default(),
                    to: PhoneNumber::parse("+14155550100").unwrap(),
                    channel: Channel::Sms,
                    locale: Locale::default(),
                    status: Status::Pending,
                    created_at: now,
                    expires_at: now.plus(Duration::from_secs(600)),
                    attempts: 0,
                    max_attempts: 5,
                    sends: 1,
                    last_sent_at: now,
                    deliveries: Vec::new(),
                    fallbacks: Vec::new(),
                },
            },
            key,
            policy: SendPolicy {
                cooldown_ms: 0,
                max_sends: 100,
            },
            budget: SendBudget {
                max: 100,
                window_ms: 600_000,
            },
        }
    }

    const NO_FEED: (Duration, &[(&str, &str, u64)]) = (Duration::from_secs(60), &[]);

    /// The decisions of a start the gate refused; empty for one it let through.
    async fn decisions(
        limiter: &Limiter,
        gate: Gate<'_>,
        hits: &[(&str, &str, Limit)],
        now: Timestamp,
    ) -> Vec<Decision> {
        let key = gate.number;
        match limiter
            .start(gate, hits, opening(key, now), NO_FEED, now)
            .await
            .unwrap()
        {
            LimitedStart::Refused { decisions, .. } => decisions,
            LimitedStart::Started { outcome, .. } => {
                assert!(!matches!(outcome, StartOutcome::NumberLimited { .. }));
                Vec::new()
            }
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
        let now = clock.now();
        // Let through: nothing to decide against.
        assert!(decisions(&limiter, open, &order, now).await.is_empty());
        assert_eq!(
            decisions(&limiter, open, &order, now).await,
            [
                Decision::Allowed { count: 2 },
                Decision::Limited {
                    retry_after_ms: 10_000
                }
            ]
        );
        // The refused request stopped before the global counter.
        assert_eq!(
            limiter.hit("global", "all", loose).await.unwrap(),
            Decision::Allowed { count: 2 }
        );
    }

    #[tokio::test]
    async fn a_locked_or_paused_gate_counts_none_of_its_hits_and_starts_nothing() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let store = Store::Memory(MemoryStore::new());
        let limiter = Limiter::new(store.clone(), clock.clone());
        let limit = Limit::new(5, Duration::from_secs(10));
        let order = [("ip", "a", limit)];
        let number = number();
        let now = clock.now();
        // No wrong codes yet: a gate that locks at none locks already.
        let LimitedStart::Refused {
            admission,
            decisions,
        } = limiter
            .start(
                gate(&number, 0, None),
                &order,
                opening(&number, now),
                NO_FEED,
                now,
            )
            .await
            .unwrap()
        else {
            panic!("a locked number was started");
        };
        assert_eq!(admission.failures, Failures::default());
        assert!(decisions.is_empty() && admission.counts.is_empty());
        store.raise_flag("paused", 60_000).await.unwrap();
        let paused = limiter
            .start(
                gate(&number, 3, Some("paused")),
                &order,
                opening(&number, now),
                NO_FEED,
                now,
            )
            .await
            .unwrap();
        assert!(
            matches!(&paused, LimitedStart::Refused { admission, decisions } if admission.blocked && decisions.is_empty()),
            "{paused:?}"
        );
        // Neither start counted against the address, and neither opened one.
        assert_eq!(
            limiter.hit("ip", "a", limit).await.unwrap(),
            Decision::Allowed { count: 1 }
        );
        assert_eq!(
            store
                .latest(&PhoneNumber::parse("+14155550100").unwrap(), &number, now)
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_created_verification_feeds_its_counters_and_weighs_the_previous_window() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let store = Store::Memory(MemoryStore::new());
        let limiter = Limiter::new(store.clone(), clock.clone());
        let window = Duration::from_secs(100);
        // Four in the window before; now a quarter into the next one.
        limiter.add("started", "+1", window, 4).await.unwrap();
        clock.advance(Duration::from_secs(100 + 25));
        let now = clock.now();
        let number = number();
        let feed: &[(&str, &str, u64)] = &[("started", "+1", 1), ("approved", "+1", 0)];
        let start = || {
            limiter.start(
                gate(&number, 3, None),
                &[],
                opening(&number, now),
                (window, feed),
                now,
            )
        };
        let started = start().await.unwrap();
        let LimitedStart::Started {
            outcome: StartOutcome::Created(_),
            weights,
        } = started
        else {
            panic!("not created: {started:?}");
        };
        // 1 now, and three quarters of the previous window's 4.
        assert_eq!(weights.unwrap(), [1.0 + 4.0 * 0.75, 0.0]);
        // A re-send is not a new verification: it feeds nothing.
        let again = start().await.unwrap();
        assert!(
            matches!(&again, LimitedStart::Started { outcome: StartOutcome::Resend { .. }, weights: Ok(w) } if w.is_empty()),
            "{again:?}"
        );
    }
}
