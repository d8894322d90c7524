//! Logging: `tracing` with levels from `RUST_LOG` (default `info`), JSON lines
//! when stderr is not a terminal and human-readable lines when it is.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "info";
/// How often pending histogram samples are folded into their buckets.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(1);

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) keeps the first subscriber.
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    };
}

/// The process's Prometheus recorder, installed on first use.
pub fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&[
                0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
            .unwrap_or_else(|_| metrics_exporter_prometheus::PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Histogram samples wait in memory until upkeep folds them into the
        // buckets (`install` would run it; a bare recorder does not), so
        // without this the memory grows with every request between scrapes.
        let upkeep = handle.clone();
        if let Err(e) = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(METRICS_UPKEEP);
                    upkeep.run_upkeep();
                }
            })
        {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        // Another recorder may already be installed (tests): then ours only renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts a verification outcome towards the conversion ratio (approved / started).
pub fn conversion(started: u64, approved: u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STARTED: AtomicU64 = AtomicU64::new(0);
    static APPROVED: AtomicU64 = AtomicU64::new(0);
    let s = STARTED.fetch_add(started, Ordering::Relaxed) + started;
    let a = APPROVED.fetch_add(approved, Ordering::Relaxed) + approved;
    if s > 0 {
        metrics::gauge!("plivo2fa_conversion_ratio").set(a as f64 / s as f64);
    }
}

/// Lets a log line that a client can trigger at will through at most once per
/// period, and counts the lines it held back, so a flood of bad requests
/// cannot fill the disk with logs (the metrics still count every one).
#[derive(Debug)]
pub struct LogThrottle {
    every_ms: u64,
    /// Milliseconds since [`process_start`] before which lines are held back.
    next_ms: AtomicU64,
    held_back: AtomicU64,
}

fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

impl LogThrottle {
    pub const fn new(every: Duration) -> Self {
        Self {
            every_ms: every.as_millis() as u64,
            next_ms: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(n)`: write the line now, saying `n` were held back since the
    /// last one; `None`: hold this one back.
    pub fn admit(&self) -> Option<u64> {
        let now = u64::try_from(process_start().elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(self.every_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::Relaxed));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_line_passes_once_per_period_and_counts_the_rest() {
        let throttle = LogThrottle::new(Duration::from_secs(3600));
        assert_eq!(throttle.admit(), Some(0));
        for _ in 0..1000 {
            assert_eq!(throttle.admit(), None);
        }
        assert_eq!(throttle.held_back.load(Ordering::Relaxed), 1000);
        // Once the period is over, the next line says how many were held back.
        throttle.next_ms.store(0, Ordering::Relaxed);
        assert_eq!(throttle.admit(), Some(1000));
    }
}
