//! Graceful shutdown, counted by the server itself.
//!
//! actix-server's own graceful stop races with its accept thread: when the
//! accept thread hangs up first, a worker can take the closed connection
//! channel for "nothing left to do" and exit with requests still in flight
//! (seen on a busy 2-core machine as a reset connection on a request that had
//! already written to Redis). So the server does not rely on it. Every
//! request holds an [`InFlight`] token until its response body has been sent;
//! on SIGTERM/SIGINT the server stops accepting, marks itself draining
//! (`/readyz` turns 503 and every response says `Connection: close`), waits
//! for the count to reach zero, and only then stops the workers.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use tokio::sync::Notify;

/// Requests in flight, and whether the server is shutting down.
#[derive(Debug, Default)]
pub struct Drain {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Drain {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Counts a request until the token is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Marks the server draining and waits until no request is in flight or
    /// `limit` has passed. Returns how many requests were still running.
    pub async fn drained(&self, limit: Duration) -> usize {
        self.draining.store(true, Ordering::SeqCst);
        let wait = async {
            loop {
                // Register before reading the count, so a token dropped in
                // between still wakes this task.
                let notified = self.idle.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        self.in_flight()
    }
}

/// One request in flight; dropping it counts the request as done.
#[derive(Debug)]
pub struct InFlight(Arc<Drain>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A response body that keeps its request counted until the body is dropped,
/// which actix does once the last byte has been handed to the connection (or,
/// for a body already in memory, when it is taken to be written).
#[derive(Debug)]
pub struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub fn new(body: B, in_flight: InFlight) -> Self {
        Self {
            body,
            _in_flight: in_flight,
        }
    }
}

impl<B: MessageBody + Unpin> MessageBody for Tracked<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }

    /// A body already in memory is written in the same turn that takes it,
    /// so the request stops counting here and the body keeps actix's fast
    /// path (no box, head and body in one write).
    fn try_into_bytes(self) -> Result<Bytes, Self> {
        let Self { body, _in_flight } = self;
        body.try_into_bytes()
            .map_err(|body| Self { body, _in_flight })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draining_waits_for_the_last_token_and_reports_none_left() {
        let drain = Drain::new();
        let token = drain.enter();
        assert!(!drain.is_draining());
        let waiter = {
            let drain = Arc::clone(&drain);
            tokio::spawn(async move { drain.drained(Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        assert!(drain.is_draining());
        assert!(!waiter.is_finished(), "a request is still in flight");
        drop(token);
        assert_eq!(waiter.await.unwrap(), 0);
    }

    #[tokio::test]
    async fn draining_gives_up_after_the_limit_and_says_how_many_are_left() {
        let drain = Drain::new();
        let _stuck = drain.enter();
        assert_eq!(drain.drained(Duration::from_millis(20)).await, 1);
    }
}
