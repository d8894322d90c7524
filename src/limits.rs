//! Rate limits kept in the store (Redis in production), so one limit holds
//! across every instance. Fixed windows: a subject may make `max` hits per
//! `window`; the hit that passes the limit is told when the window ends.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Clock, Timestamp};
use crate::store::{CounterStore, Store, StoreError, window_of};

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

    /// Decides without counting (for blocks that other events trip).
    pub async fn peek(
        &self,
        scope: &str,
        subject: &str,
        limit: Limit,
    ) -> Result<Decision, StoreError> {
        let now = self.clock.now();
        let name = Self::name(scope, subject);
        let count = self.store.count(&name, limit.window_ms(), now).await?;
        Ok(Self::decide(count, limit, &name, now))
    }

    /// This window's count, the previous window's, and how far into this
    /// window `now` is (0 to 1).
    pub async fn current_and_previous(
        &self,
        scope: &str,
        subject: &str,
        window: Duration,
    ) -> Result<(u64, u64, f64), StoreError> {
        let now = self.clock.now();
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let name = Self::name(scope, subject);
        let before =
            Timestamp::from_millis(now.as_millis() - i64::try_from(window_ms).unwrap_or(i64::MAX));
        let (current, previous) = tokio::join!(
            self.store.count(&name, window_ms, now),
            self.store.count(&name, window_ms, before),
        );
        let (_, end) = window_of(&name, window_ms, now);
        let left = now.millis_until(end) as f64 / window_ms as f64;
        Ok((current?, previous?, 1.0 - left))
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
    use crate::domain::ManualClock;
    use crate::store::MemoryStore;

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
        assert!(limiter.peek("t", "a", limit).await.unwrap().is_allowed());
    }
}
