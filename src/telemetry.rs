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

/// The log filter `RUST_LOG` describes (`None`: unset, [`DEFAULT_FILTER`]);
/// an error names what it cannot read. Start-up refuses a bad one (see
/// `config`) rather than log at a level nobody asked for.
pub fn parse_filter(raw: Option<&str>) -> Result<EnvFilter, String> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(EnvFilter::new(DEFAULT_FILTER)),
        Some(raw) => EnvFilter::builder().parse(raw).map_err(|e| {
            format!("{raw:?} is not a log filter such as info or info,plivo_2fa=debug ({e})")
        }),
    }
}

pub fn init() {
    let raw = std::env::var(crate::config::LOG_FILTER_KEY).ok();
    // A bad filter is reported with the other settings; until then, the default.
    let filter = parse_filter(raw.as_deref()).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
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
        describe();
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

pub const STARTED: &str = "plivo2fa_verifications_started_total";
pub const CHECKS: &str = "plivo2fa_checks_total";
pub const DELIVERIES: &str = "plivo2fa_deliveries_total";
pub const FALLBACKS: &str = "plivo2fa_fallbacks_total";
pub const PLIVO_DURATION: &str = "plivo2fa_plivo_request_duration_seconds";
pub const PLIVO_ERRORS: &str = "plivo2fa_plivo_errors_total";
pub const SIGNATURE_FAILURES: &str = "plivo2fa_signature_failures_total";
pub const BLOCKS: &str = "plivo2fa_blocks_total";
pub const PUMPING_BLOCKS: &str = "plivo2fa_pumping_blocks_total";
pub const CONVERSION: &str = "plivo2fa_conversion_ratio";
pub const HTTP_DURATION: &str = "plivo2fa_http_request_duration_seconds";
pub const STORE_DURATION: &str = "plivo2fa_store_operation_duration_seconds";
pub const JOBS_QUEUED: &str = "plivo2fa_jobs_queued";
pub const WEBHOOK_BACKLOG: &str = "plivo2fa_webhook_backlog";
pub const BUILD_INFO: &str = "plivo2fa_build_info";

/// Every family's `# HELP` text (its `# TYPE` the exporter writes itself).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(STARTED, "Verifications opened, by channel and application.");
    describe_counter!(
        CHECKS,
        "Codes checked, by outcome (approved, wrong, exhausted, expired, not_pending, not_found) and application."
    );
    describe_counter!(
        DELIVERIES,
        "Delivery reports recorded, by channel, status, Plivo error code and application."
    );
    describe_counter!(
        FALLBACKS,
        "Voice calls placed because an SMS was not delivered, by application."
    );
    describe_histogram!(
        PLIVO_DURATION,
        Unit::Seconds,
        "Requests to Plivo's APIs, by endpoint and outcome (2xx, an HTTP status, or timeout, unreachable, not_sent, interrupted, invalid)."
    );
    describe_counter!(
        PLIVO_ERRORS,
        "Requests to Plivo that failed, by endpoint and outcome."
    );
    describe_counter!(SIGNATURE_FAILURES, "Plivo callbacks refused, by reason.");
    describe_counter!(
        BLOCKS,
        "Starts refused by an abuse rule, by reason and application."
    );
    describe_counter!(
        PUMPING_BLOCKS,
        "Sends to a country prefix paused by the SMS pumping detector, by prefix and application."
    );
    describe_gauge!(
        CONVERSION,
        "Approved verifications over started ones, in this process."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Requests this server answered, by route pattern, method and status."
    );
    describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "Store operations (Redis or memory), by operation, whatever their outcome."
    );
    describe_gauge!(
        JOBS_QUEUED,
        "Jobs scheduled (fallbacks, expiries, webhook events), due or not, as of the last scrape."
    );
    describe_gauge!(
        WEBHOOK_BACKLOG,
        "Webhook events not yet delivered (waiting or being retried), as of the last scrape."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the server's version in its label.");
}

/// The outcomes of a check, as [`CHECKS`] labels them.
pub const CHECK_OUTCOMES: [&str; 6] = [
    "approved",
    "wrong",
    "exhausted",
    "expired",
    "not_pending",
    "not_found",
];

/// The reasons an abuse rule refuses a start, as [`BLOCKS`] labels them.
pub const BLOCK_REASONS: [&str; 10] = [
    "country_not_allowed",
    "number_type_not_allowed",
    "sms_not_supported",
    "number_locked",
    "destination_blocked",
    "ip_rate_limited",
    "api_key_rate_limited",
    "country_budget_exhausted",
    "global_budget_exhausted",
    "number_rate_limited",
];

/// The reasons a Plivo callback is refused, as [`SIGNATURE_FAILURES`] labels them.
pub const SIGNATURE_REASONS: [&str; 4] = [
    "invalid_signature",
    "replayed_request",
    "invalid_request",
    "store_unavailable",
];

/// Plivo's endpoints, as [`PLIVO_ERRORS`] labels them.
pub const PLIVO_ENDPOINTS: [&str; 3] = ["message", "call", "phlo"];
/// The failed outcomes of a Plivo request that start at zero: Plivo refusing
/// the credentials (what `PlivoCredentialsRefused` alerts on) and every
/// failure that is not an HTTP status.
pub const PLIVO_ERROR_STATUSES: [&str; 6] = [
    "401",
    "timeout",
    "unreachable",
    "not_sent",
    "interrupted",
    "invalid",
];

/// The statuses each channel's deliveries report, as the deliveries metric
/// labels them (without an error code), which start at zero: what the
/// dashboard's "deliveries by status" and the fallback rate read.
const DELIVERY_STATUSES: [(crate::domain::Channel, &[crate::domain::DeliveryStatus]); 3] = {
    use crate::domain::{Channel, DeliveryStatus as S};
    [
        (
            Channel::Sms,
            &[
                S::Queued,
                S::Sent,
                S::Delivered,
                S::Undelivered,
                S::Failed,
                S::Rejected,
            ],
        ),
        (
            Channel::Voice,
            &[
                S::Initiated,
                S::Ringing,
                S::InProgress,
                S::Completed,
                S::Busy,
                S::NoAnswer,
                S::Failed,
            ],
        ),
        (
            Channel::WhatsApp,
            &[
                S::Queued,
                S::Sent,
                S::Delivered,
                S::Read,
                S::Undelivered,
                S::Failed,
            ],
        ),
    ]
};

/// Puts every counter at zero for its known label values, so a query or an
/// alert sees 0 before the first event rather than no data. `applications`
/// are the configured applications' labels.
pub fn start_at_zero<'a>(applications: impl IntoIterator<Item = &'a str>) {
    use crate::domain::Channel;
    for endpoint in PLIVO_ENDPOINTS {
        for status in PLIVO_ERROR_STATUSES {
            metrics::counter!(PLIVO_ERRORS, "endpoint" => endpoint, "status" => status)
                .increment(0);
        }
    }
    for reason in SIGNATURE_REASONS {
        metrics::counter!(SIGNATURE_FAILURES, "reason" => reason).increment(0);
    }
    for app in applications {
        let app = app.to_owned();
        for channel in Channel::ALL {
            metrics::counter!(STARTED, "channel" => channel.as_str(), "application" => app.clone())
                .increment(0);
        }
        for outcome in CHECK_OUTCOMES {
            metrics::counter!(CHECKS, "outcome" => outcome, "application" => app.clone())
                .increment(0);
        }
        for reason in BLOCK_REASONS {
            metrics::counter!(BLOCKS, "reason" => reason, "application" => app.clone())
                .increment(0);
        }
        for channel in [Channel::Sms, Channel::Voice] {
            metrics::counter!(FALLBACKS, "channel" => channel.as_str(), "application" => app.clone())
                .increment(0);
        }
        for (channel, statuses) in DELIVERY_STATUSES {
            for status in statuses {
                metrics::counter!(
                    DELIVERIES,
                    "channel" => channel.as_str(),
                    "status" => status.label(),
                    "error_code" => "",
                    "application" => app.clone()
                )
                .increment(0);
            }
        }
    }
    metrics::gauge!(JOBS_QUEUED).set(0.0);
    metrics::gauge!(WEBHOOK_BACKLOG).set(0.0);
}

/// Clock ticks per second in `/proc/<pid>/stat`: Linux's `USER_HZ`, 100 on
/// every architecture it exports to user space (Prometheus's own procfs
/// library takes it as the same constant).
#[cfg(target_os = "linux")]
const USER_HZ: f64 = 100.0;
/// Bytes in a page, for `/proc/self/statm` (4 KiB on the usual Linux targets).
#[cfg(target_os = "linux")]
const PAGE_BYTES: f64 = 4096.0;

/// The process metrics Prometheus's client libraries export under the same
/// names (CPU seconds, resident memory, open and allowed file descriptors,
/// start time), read from `/proc/self` at each scrape and written as text
/// with their HELP and TYPE lines; empty where `/proc` is not there.
pub fn process_metrics() -> String {
    let mut out = String::new();
    #[cfg(target_os = "linux")]
    {
        use std::fmt::Write;
        let mut family = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        if let Some((cpu, start_ticks)) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            family(
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                cpu,
            );
            if let Some(boot) = boot_time() {
                family(
                    "process_start_time_seconds",
                    "gauge",
                    "Start time of the process since unix epoch in seconds.",
                    boot + start_ticks / USER_HZ,
                );
            }
        }
        if let Some(pages) = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        {
            family(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                pages * PAGE_BYTES,
            );
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            family(
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                fds.count() as f64,
            );
        }
        if let Ok((soft, _)) = rlimit::Resource::NOFILE.get() {
            family(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                soft as f64,
            );
        }
    }
    out
}

/// CPU seconds (user and system) and the start time in ticks after boot,
/// from `/proc/self/stat`: fields 14, 15 and 22, counted after the command
/// name's closing parenthesis (the name itself may hold spaces).
#[cfg(target_os = "linux")]
fn parse_stat(stat: &str) -> Option<(f64, f64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields from the third (state) on.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(((field(14)? + field(15)?) / USER_HZ, field(22)?))
}

/// When the machine booted, in seconds since the epoch (`btime` in `/proc/stat`).
#[cfg(target_os = "linux")]
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Counts a verification outcome towards the conversion ratio (approved / started).
pub fn conversion(started: u64, approved: u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STARTED: AtomicU64 = AtomicU64::new(0);
    static APPROVED: AtomicU64 = AtomicU64::new(0);
    let s = STARTED.fetch_add(started, Ordering::Relaxed) + started;
    let a = APPROVED.fetch_add(approved, Ordering::Relaxed) + approved;
    if s > 0 {
        metrics::gauge!(CONVERSION).set(a as f64 / s as f64);
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

    #[cfg(target_os = "linux")]
    #[test]
    fn the_stat_line_is_read_after_the_command_name_whatever_it_holds() {
        // A command name with a space and a parenthesis, as `man 5 proc` warns.
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 123456 0 0";
        assert_eq!(parse_stat(stat), Some((3.8, 123_456.0)));
        assert_eq!(parse_stat("garbage"), None);
    }

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
