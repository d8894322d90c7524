//! The abuse defences in front of sending and checking codes (SECURITY.md
//! explains each): geo permissions and number types, rate limits per number,
//! client IP, API key, country and in all, the SMS-pumping detector, and the
//! per-number lockouts that bound brute force. Counters live in the store, so
//! every instance sees the same limits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::AbuseSettings;
use crate::domain::phone::LineKind;
use crate::domain::verification::CheckResult;
use crate::domain::{Channel, NumberKey, PhoneNumber};
use crate::limits::{Decision, Limit, Limiter};
use crate::store::{Store, StoreError, VerificationStore};

const ONE_DAY: Duration = Duration::from_secs(86_400);

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
                .record("approved", prefix, self.bucket(), *n)
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

    /// Everything that must hold before a start sends a code.
    pub async fn admit_start(
        &self,
        number: &PhoneNumber,
        key: &NumberKey,
        channel: Channel,
        who: &Requester,
    ) -> Result<Result<(), Refusal>, StoreError> {
        if let Err(r) = self.check_number(number, channel) {
            return Ok(Err(r));
        }
        let s = &self.settings;
        let lockout = Limit::new(s.lockout_after_exhausted.saturating_sub(1), s.lockout);
        let failures = Limit::new(s.max_failed_checks_per_day.saturating_sub(1), ONE_DAY);
        let (exhausted, failed) = tokio::join!(
            self.limiter.peek("exhausted", &key.hash, lockout),
            self.limiter.peek("failed", &key.hash, failures),
        );
        let locked = "Too many wrong codes for this number; it is locked for a while.";
        if let Err(r) = limited("number_locked", locked, exhausted?).and(limited(
            "number_locked",
            locked,
            failed?,
        )) {
            return Ok(Err(r));
        }
        let prefix = prefix_of(number);
        if !self.is_safe(number) && self.store.get_blob(&block_key(&prefix)).await?.is_some() {
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
                "number",
                key.hash.as_str(),
                s.per_number,
                "number_rate_limited",
                "Too many codes sent to this number; try again later.",
            ),
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
            .record("started", &prefix, self.bucket(), 1)
            .await?;
        let (started, approved) = tokio::join!(
            self.estimate("started", &prefix),
            self.estimate("approved", &prefix)
        );
        let (started, approved) = (started?, approved?);
        let s = &self.settings;
        if started >= s.pumping_min_volume as f64 && approved < s.pumping_min_conversion * started {
            let cooloff = u64::try_from(s.pumping_cooloff.as_millis()).unwrap_or(u64::MAX);
            self.store
                .put_blob(&block_key(&prefix), "1", cooloff)
                .await?;
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

    /// Bookkeeping after a check.
    pub async fn checked(
        &self,
        number: &PhoneNumber,
        key: &NumberKey,
        result: CheckResult,
    ) -> Result<(), StoreError> {
        match result {
            CheckResult::Approved if !self.is_safe(number) => {
                let mut approvals = self
                    .approvals
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *approvals.entry(prefix_of(number)).or_default() += 1;
            }
            CheckResult::Wrong => {
                self.limiter.record("failed", &key.hash, ONE_DAY, 1).await?;
            }
            CheckResult::Exhausted => {
                self.limiter.record("failed", &key.hash, ONE_DAY, 1).await?;
                self.limiter
                    .record("exhausted", &key.hash, self.settings.lockout, 1)
                    .await?;
            }
            _ => {}
        }
        Ok(())
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
