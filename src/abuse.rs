//! The abuse defences in front of sending codes (SECURITY.md explains each):
//! geo permissions and number types, rate limits per client IP, API key,
//! country and in all, the SMS-pumping detector, and the per-number lockouts
//! that bound brute force. Each application has its own [`SendGuard`], with
//! its own settings and its own counters. Counters live in the store, so
//! every instance sees the same limits. A number's own counters (its send
//! budget, its wrong codes) are counted by the store's start and check
//! themselves, atomically with what they count; the guard reads them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::phone::LineKind;
use crate::domain::{ApplicationId, Channel, PhoneNumber, Timestamp};
use crate::limits::{Decision, Limit, LimitedStart, Limiter};
use crate::store::{
    Admission, FailureWindows, Failures, FlagStore, Gate, Opening, SendBudget, StartOutcome, Store,
    StoreError, window_of,
};

const ONE_DAY: Duration = Duration::from_secs(86_400);

/// Countries allowed by default: markets with low SMS-pumping risk where
/// Plivo delivers directly. Widen with ALLOWED_COUNTRIES (`*` allows all).
pub const DEFAULT_ALLOWED_COUNTRIES: &str =
    "US,CA,GB,IE,FR,DE,ES,IT,PT,NL,BE,LU,AT,CH,DK,SE,NO,FI,PL,AU,NZ,JP,SG,IN,BR,MX";

/// An application's abuse defences (see SECURITY.md); the defaults are the
/// documented ones.
#[derive(Debug, Clone)]
pub struct Settings {
    pub per_number: Limit,
    pub per_ip: Limit,
    pub per_api_key: Limit,
    pub per_country: Limit,
    pub global: Limit,
    /// ISO regions allowed; `None`: all.
    pub allowed_countries: Option<Vec<String>>,
    pub pumping_min_conversion: f64,
    pub pumping_min_volume: u64,
    pub pumping_window: Duration,
    pub pumping_cooloff: Duration,
    /// E.164 numbers that bypass the pumping detector and the geo rules.
    pub safe_numbers: Vec<String>,
    /// Exhausted verifications' worth of wrong codes (`LOCKOUT_AFTER_EXHAUSTED`)…
    pub lockout_after_exhausted: u64,
    /// …that is, this many wrong codes (`LOCKOUT_AFTER_EXHAUSTED` × `MAX_ATTEMPTS`)
    /// within one `lockout` window lock the number's starts for the rest of it,
    /// whatever ended the verifications they were typed into.
    pub lockout_failed_checks: u64,
    pub lockout: Duration,
    pub max_failed_checks_per_day: u64,
}

impl Default for Settings {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let lockout_after_exhausted = 3;
        Self {
            per_number: Limit::new(5, minutes(10)),
            per_ip: Limit::new(60, minutes(1)),
            per_api_key: Limit::new(600, minutes(1)),
            per_country: Limit::new(1_000, minutes(60)),
            global: Limit::new(10_000, minutes(60)),
            allowed_countries: Some(
                DEFAULT_ALLOWED_COUNTRIES
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
            ),
            pumping_min_conversion: 0.2,
            pumping_min_volume: 50,
            pumping_window: minutes(60),
            pumping_cooloff: minutes(60),
            safe_numbers: Vec::new(),
            lockout_after_exhausted,
            lockout_failed_checks: lockout_after_exhausted
                * u64::from(crate::domain::verification::DEFAULT_MAX_ATTEMPTS),
            lockout: minutes(60),
            max_failed_checks_per_day: 100,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Who asks for a start, as far as limits care.
#[derive(Debug, Clone, Copy, Default)]
pub struct Requester {
    pub ip: Option<IpAddr>,
    /// The index of the API key that authenticated (none for the demo page).
    pub api_key: Option<usize>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 403: never allowed for this number.
    Forbidden { code: &'static str, message: String },
    /// 429: not now; retry after this long.
    Limited {
        code: &'static str,
        message: String,
        retry_after_ms: u64,
    },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Forbidden { code, .. } | Refusal::Limited { code, .. } => code,
        }
    }
}

fn forbidden(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Forbidden {
        code,
        message: message.into(),
    }
}

fn limited(code: &'static str, message: &str, decision: Decision) -> Result<(), Refusal> {
    match decision {
        Decision::Allowed { .. } => Ok(()),
        Decision::Limited { retry_after_ms } => Err(Refusal::Limited {
            code,
            message: message.to_owned(),
            retry_after_ms,
        }),
    }
}

/// A rate limit a start is counted against: its scope, its subject, the
/// limit, and the refusal's code and message.
type CountedRule<'a> = (
    std::borrow::Cow<'static, str>,
    &'a str,
    Limit,
    &'static str,
    &'static str,
);

/// The counter of every start, whichever application made it (`RATE_LIMIT_GLOBAL`).
const GLOBAL_SCOPE: &str = "global";

/// What stands between a request and a code being sent, for one application.
#[derive(Debug, Clone)]
pub struct SendGuard {
    /// Names this application's counters and flags (the default
    /// application's names are those of a server without applications).
    app: ApplicationId,
    limiter: Limiter,
    store: Store,
    settings: Settings,
    /// Approvals per prefix not yet written to the store: the detector is
    /// statistical, so approvals are batched off the check's hot path and
    /// flushed by the job worker.
    approvals: Arc<Mutex<HashMap<String, u64>>>,
}

/// The pumping detector's prefix of a number: `+` and its country code.
fn prefix_of(number: &PhoneNumber) -> String {
    number
        .country_code()
        .map_or_else(|| "+?".to_owned(), |cc| format!("+{cc}"))
}

impl SendGuard {
    pub fn new(app: ApplicationId, limiter: Limiter, store: Store, settings: Settings) -> Self {
        Self {
            app,
            limiter,
            store,
            settings,
            approvals: Arc::default(),
        }
    }

    /// A counter's scope as this application names it: `ip`, or `ip:shop`.
    fn scope(&self, scope: &'static str) -> std::borrow::Cow<'static, str> {
        if self.app.is_default() {
            scope.into()
        } else {
            format!("{scope}:{}", self.app).into()
        }
    }

    /// The flag that pauses sends to a prefix (the pumping detector's).
    fn block_flag(&self, prefix: &str) -> String {
        format!("pumping-block:{}{prefix}", self.app_part())
    }

    fn app_part(&self) -> String {
        if self.app.is_default() {
            String::new()
        } else {
            format!("{}:", self.app)
        }
    }

    /// The application's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Writes the batched approvals to the store (the job worker calls this).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let batch: Vec<(String, u64)> = {
            let mut approvals = self
                .approvals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            approvals.drain().collect()
        };
        for (i, (prefix, n)) in batch.iter().enumerate() {
            if let Err(e) = self
                .limiter
                .add(&self.scope("approved"), prefix, self.bucket(), *n)
                .await
            {
                // Put back what was not written, for the next flush.
                let mut approvals = self
                    .approvals
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for (p, n) in &batch[i..] {
                    *approvals.entry(p.clone()).or_default() += n;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn is_safe(&self, number: &PhoneNumber) -> bool {
        self.settings
            .safe_numbers
            .iter()
            .any(|n| n == number.as_e164())
    }

    /// Rules that need no counters: where the number is and what kind of line.
    pub fn check_number(&self, number: &PhoneNumber, channel: Channel) -> Result<(), Refusal> {
        if self.is_safe(number) {
            return Ok(());
        }
        if let Some(allowed) = &self.settings.allowed_countries {
            let region = number.region();
            if !region
                .as_ref()
                .is_some_and(|r| allowed.iter().any(|a| a == r))
            {
                return Err(forbidden(
                    "country_not_allowed",
                    format!(
                        "Verifications to {} are not allowed on this server.",
                        region.as_deref().unwrap_or("this numbering plan")
                    ),
                ));
            }
        }
        match (number.line_kind(), channel) {
            (LineKind::PremiumRate | LineKind::SharedCost, _) => Err(forbidden(
                "number_type_not_allowed",
                "Premium-rate and shared-cost numbers cannot be verified.",
            )),
            (LineKind::Unknown | LineKind::Other, _) => Err(forbidden(
                "number_type_not_allowed",
                "This kind of number cannot be verified.",
            )),
            (LineKind::FixedLine | LineKind::TollFree, Channel::Sms) => Err(forbidden(
                "sms_not_supported",
                "This number cannot receive SMS; use \"channel\": \"voice\" to get the code by a call.",
            )),
            _ => Ok(()),
        }
    }

    /// The number's send budget, which the store's start counts.
    pub fn send_budget(&self) -> SendBudget {
        let limit = self.settings.per_number;
        SendBudget {
            max: limit.max,
            window_ms: millis(limit.window),
        }
    }

    /// The windows a wrong code counts in against its number, which the
    /// store's check counts.
    pub fn failure_windows(&self) -> FailureWindows {
        FailureWindows {
            lockout_ms: millis(self.settings.lockout),
            day_ms: millis(ONE_DAY),
        }
    }

    /// Starts through every rule with counters that must hold before a code
    /// is sent to the opening's number, whose kind and place
    /// [`SendGuard::check_number`] has passed (its lock, its destination's
    /// pause, the rate limits), then the store's start of
    /// `opening`, which counts the number's own send budget (so a start
    /// refused by the resend cooldown does not spend it). A created
    /// verification feeds the pumping detector, which may pause the
    /// number's prefix for the next starts. One round trip where the store
    /// can.
    pub async fn start(
        &self,
        who: &Requester,
        opening: Opening<'_>,
        now: Timestamp,
    ) -> Result<Result<StartOutcome, Refusal>, StoreError> {
        let number = &opening.new.verification.to;
        let s = &self.settings;
        let windows = self.failure_windows();
        let prefix = prefix_of(number);
        // The global budget is the server's (its one Plivo account's), counted
        // across every application; the country budget is the application's.
        let checks = [
            (
                self.scope("country"),
                prefix.as_str(),
                s.per_country,
                "country_budget_exhausted",
                "The hourly budget for this country is spent; try again later.",
            ),
            (
                GLOBAL_SCOPE.into(),
                "all",
                s.global,
                "global_budget_exhausted",
                "This server's send budget is spent; try again later.",
            ),
        ];
        let ip = who.ip.map(|ip| ip.to_string());
        let api_key = who.api_key.map(|k| k.to_string());
        let by_requester = [
            (
                ip.as_deref(),
                "ip",
                s.per_ip,
                "ip_rate_limited",
                "Too many requests from this address; try again later.",
            ),
            (
                api_key.as_deref(),
                "api-key",
                s.per_api_key,
                "api_key_rate_limited",
                "Too many requests with this API key; try again later.",
            ),
        ];
        // Counted in this order, and a refused one stops the counting.
        let counted: Vec<CountedRule<'_>> = by_requester
            .into_iter()
            .filter_map(|(subject, scope, limit, code, message)| {
                Some((self.scope(scope), subject?, limit, code, message))
            })
            .chain(checks)
            .collect();
        let hits: Vec<(&str, &str, Limit)> = counted
            .iter()
            .map(|(scope, subject, limit, _, _)| (scope.as_ref(), *subject, *limit))
            .collect();
        // Safe numbers are neither paused nor counted by the detector.
        let safe = self.is_safe(number);
        let flag = (!safe).then(|| self.block_flag(&prefix));
        let gate = Gate {
            number: opening.key,
            windows,
            lock_at: Failures {
                lockout: s.lockout_failed_checks,
                day: s.max_failed_checks_per_day,
            },
            flag: flag.as_deref(),
            hits: &[],
        };
        let (started_scope, approved_scope) = (self.scope("started"), self.scope("approved"));
        let detector = [
            (&*started_scope, &*prefix, 1),
            (&*approved_scope, &*prefix, 0),
        ];
        let feed: &[(&str, &str, u64)] = if safe { &[] } else { &detector };
        match self
            .limiter
            .start(gate, &hits, opening, (self.bucket(), feed), now)
            .await?
        {
            LimitedStart::Refused {
                admission,
                decisions,
            } => Ok(Err(self.refusal(
                &gate, &admission, &decisions, &counted, &prefix, now,
            )?)),
            LimitedStart::Started { outcome, weights } => {
                if matches!(outcome, StartOutcome::Created(_))
                    && !safe
                    && let Err(e) = self.weigh_detector(&prefix, weights).await
                {
                    tracing::warn!(error = %e, "pumping detector could not count a start");
                }
                Ok(Ok(outcome))
            }
        }
    }

    /// Why the gate refused, judged in its order: the number's lock, its
    /// destination's pause, then the first counter past its limit.
    fn refusal(
        &self,
        gate: &Gate<'_>,
        admission: &Admission,
        decisions: &[Decision],
        counted: &[CountedRule<'_>],
        prefix: &str,
        now: Timestamp,
    ) -> Result<Refusal, StoreError> {
        let s = &self.settings;
        let windows = gate.windows;
        if gate.locks(admission.failures) {
            let locked_until = |window_ms: u64| window_of("", window_ms, now).1;
            // When both hold, the later end is when a start may succeed again.
            let until = [
                (admission.failures.lockout >= gate.lock_at.lockout)
                    .then(|| locked_until(windows.lockout_ms)),
                (admission.failures.day >= gate.lock_at.day).then(|| locked_until(windows.day_ms)),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now);
            return Ok(Refusal::Limited {
                code: "number_locked",
                message: "Too many wrong codes for this number; it is locked for a while."
                    .to_owned(),
                retry_after_ms: now.millis_until(until).max(1),
            });
        }
        if admission.blocked {
            return Ok(Refusal::Limited {
                code: "destination_blocked",
                message: format!(
                    "Sends to {prefix} are paused: too few of them are being verified (suspected SMS pumping)."
                ),
                retry_after_ms: u64::try_from(s.pumping_cooloff.as_millis()).unwrap_or(u64::MAX),
            });
        }
        for ((_, _, _, code, message), decision) in counted.iter().zip(decisions) {
            if let Err(r) = limited(code, message, *decision) {
                return Ok(r);
            }
        }
        Err(StoreError::Corrupt(format!(
            "the start's gate refused without a reason: {admission:?}"
        )))
    }

    /// The pumping detector, fed by a new verification: pauses the prefix
    /// when too few of its recent starts were approved.
    async fn weigh_detector(
        &self,
        prefix: &str,
        weights: Result<Vec<f64>, StoreError>,
    ) -> Result<(), StoreError> {
        let weights = weights?;
        let [started, approved] = weights[..] else {
            return Err(StoreError::Corrupt(format!(
                "the pumping detector's counters read as {weights:?}"
            )));
        };
        let s = &self.settings;
        if started >= s.pumping_min_volume as f64 && approved < s.pumping_min_conversion * started {
            let cooloff = u64::try_from(s.pumping_cooloff.as_millis()).unwrap_or(u64::MAX);
            self.store
                .raise_flag(&self.block_flag(prefix), cooloff)
                .await?;
            metrics::counter!(
                "plivo2fa_pumping_blocks_total",
                "prefix" => prefix.to_owned(),
                "application" => self.app.to_string()
            )
            .increment(1);
            tracing::warn!(
                application = %self.app,
                prefix = %prefix,
                started = started as u64,
                approved = approved as u64,
                cooloff_minutes = s.pumping_cooloff.as_secs() / 60,
                "suspected SMS pumping: sends to this prefix paused"
            );
        }
        Ok(())
    }

    /// Bookkeeping after an approval: feeds the pumping detector. (Wrong
    /// codes are counted against their number by the store's check itself.)
    pub fn approved(&self, number: &PhoneNumber) {
        if self.is_safe(number) {
            return;
        }
        let mut approvals = self
            .approvals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *approvals.entry(prefix_of(number)).or_default() += 1;
    }

    /// The detector counts in two fixed windows of the configured length and
    /// weighs the previous one by how much of it still falls inside a window
    /// ending now: a sliding window without a sorted set per prefix.
    fn bucket(&self) -> Duration {
        self.settings.pumping_window
    }
}
