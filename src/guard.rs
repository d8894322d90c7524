//! The abuse defences in front of sending and checking codes (SECURITY.md
//! explains each): geo permissions and number types, rate limits per client
//! IP, API key, country and in all, the SMS-pumping detector, and the
//! per-number lockouts that bound brute force. Counters live in the store, so
//! every instance sees the same limits. A number's own counters (its send
//! budget, its wrong codes) are counted by the store's start and check
//! themselves, atomically with what they count; the guard reads them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::AbuseSettings;
use crate::domain::phone::LineKind;
use crate::domain::{Channel, NumberKey, PhoneNumber, Timestamp};
use crate::limits::{Decision, Limiter};
use crate::store::{
    FailureWindows, FlagStore, SendBudget, Store, StoreError, VerificationStore, window_of,
};

const ONE_DAY: Duration = Duration::from_secs(86_400);

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

#[derive(Debug, Clone)]
pub struct Guard {
    limiter: Limiter,
    store: Store,
    settings: AbuseSettings,
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

fn block_key(prefix: &str) -> String {
    format!("pumping-block:{prefix}")
}

impl Guard {
    pub fn new(limiter: Limiter, store: Store, settings: AbuseSettings) -> Self {
        Self {
            limiter,
            store,
            settings,
            approvals: Arc::default(),
        }
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
                .add("approved", prefix, self.bucket(), *n)
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

    /// Everything that must hold before a start sends a code, but the
    /// number's own send budget, which the store's start counts (so that a
    /// start refused by the resend cooldown does not spend it).
    pub async fn admit_start(
        &self,
        number: &PhoneNumber,
        key: &NumberKey,
        channel: Channel,
        who: &Requester,
        now: Timestamp,
    ) -> Result<Result<(), Refusal>, StoreError> {
        if let Err(r) = self.check_number(number, channel) {
            return Ok(Err(r));
        }
        let s = &self.settings;
        let windows = self.failure_windows();
        let failures = self.store.failures(key, windows, now).await?;
        let locked_until = |window_ms: u64| window_of("", window_ms, now).1;
        // When both hold, the later end is when a start may succeed again.
        let lock = [
            (failures.lockout >= s.lockout_failed_checks).then(|| locked_until(windows.lockout_ms)),
            (failures.day >= s.max_failed_checks_per_day).then(|| locked_until(windows.day_ms)),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(until) = lock {
            return Ok(Err(Refusal::Limited {
                code: "number_locked",
                message: "Too many wrong codes for this number; it is locked for a while."
                    .to_owned(),
                retry_after_ms: now.millis_until(until).max(1),
            }));
        }
        let prefix = prefix_of(number);
        if !self.is_safe(number) && self.store.flag_raised(&block_key(&prefix)).await? {
            return Ok(Err(Refusal::Limited {
                code: "destination_blocked",
                message: format!(
                    "Sends to {prefix} are paused: too few of them are being verified (suspected SMS pumping)."
                ),
                retry_after_ms: u64::try_from(s.pumping_cooloff.as_millis()).unwrap_or(u64::MAX),
            }));
        }
        let checks = [
            (
                "country",
                prefix.as_str(),
                s.per_country,
                "country_budget_exhausted",
                "The hourly budget for this country is spent; try again later.",
            ),
            (
                "global",
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
        for (subject, scope, limit, code, message) in by_requester {
            if let Some(subject) = subject
                && let Err(r) = limited(
                    code,
                    message,
                    self.limiter.hit(scope, subject, limit).await?,
                )
            {
                return Ok(Err(r));
            }
        }
        for (scope, subject, limit, code, message) in checks {
            if let Err(r) = limited(
                code,
                message,
                self.limiter.hit(scope, subject, limit).await?,
            ) {
                return Ok(Err(r));
            }
        }
        Ok(Ok(()))
    }

    /// Bookkeeping after a new verification was opened: feeds the pumping
    /// detector, which may pause the number's prefix for the next starts.
    pub async fn opened(&self, number: &PhoneNumber) -> Result<(), StoreError> {
        if self.is_safe(number) {
            return Ok(());
        }
        let prefix = prefix_of(number);
        self.limiter
            .add("started", &prefix, self.bucket(), 1)
            .await?;
        let (started, approved) = tokio::join!(
            self.estimate("started", &prefix),
            self.estimate("approved", &prefix)
        );
        let (started, approved) = (started?, approved?);
        let s = &self.settings;
        if started >= s.pumping_min_volume as f64 && approved < s.pumping_min_conversion * started {
            let cooloff = u64::try_from(s.pumping_cooloff.as_millis()).unwrap_or(u64::MAX);
            self.store.raise_flag(&block_key(&prefix), cooloff).await?;
            metrics::counter!("plivo2fa_pumping_blocks_total", "prefix" => prefix.clone())
                .increment(1);
            tracing::warn!(
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

    async fn estimate(&self, what: &str, prefix: &str) -> Result<f64, StoreError> {
        let window = self.bucket();
        let (current, previous, elapsed) = self
            .limiter
            .current_and_previous(what, prefix, window)
            .await?;
        let weight = 1.0 - elapsed;
        Ok(current as f64 + previous as f64 * weight)
    }
}
