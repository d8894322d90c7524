//! Logging: `tracing` with levels from `RUST_LOG` (default `info`), JSON lines
//! when stderr is not a terminal and human-readable lines when it is.

use std::io::IsTerminal;

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
