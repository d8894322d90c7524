//! The verification use cases (start, check, get, cancel), written once over
//! the store, the keyring and the deliverer. Routes parse input into domain
//! types and call these; nothing here knows about HTTP.

use std::sync::Arc;
use std::time::Duration;

use crate::delivery::{AppHash, Deliverer, Dispatch};
use crate::domain::code::CodeLength;
use crate::domain::verification::{CheckResult, ResendRefusal, SendPolicy};
use crate::domain::{
    CallRef, Channel, Clock, Delivery, DeliveryStatus, Keyring, Locale, OtpCode, PhoneNumber,
    Status, Timestamp, Verification, VerificationId,
};
use crate::events::{EventKind, Events};
use crate::guard::{Guard, Refusal, Requester};
use crate::plivo::PlivoError;
use crate::plivo::client::MIN_MESSAGE_EXPIRY_SECS;
use crate::store::{CallStore, JobStore, NonceStore};
use crate::store::{
    CheckOutcome, CheckTarget, DeliveryUpdate, FallbackClaim, Finish, FinishOutcome,
    NewVerification, StartOutcome, Store, StoreError, VerificationStore,
};

/// The knobs of a verification, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub code_length: CodeLength,
    pub lifetime: Duration,
    pub max_attempts: u32,
    pub send: SendPolicy,
    /// SMS→voice fallback on a failure receipt, or after this long without a
    /// delivered one; `None`: off.
    pub fallback_after: Option<Duration>,
    /// Whether the missing receipt alone makes the call. Off in PHLO mode
    /// unless `PHLO_RECEIPTS` says the PHLO sends receipts: otherwise no
    /// receipt ever comes and everyone would be called.
    pub fallback_without_receipt: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a code was sent too recently")]
    Cooldown { retry_after_ms: u64 },
    #[error("this verification has had all the sends it may have")]
    SendLimit { retry_after_ms: u64 },
    #[error("Plivo could not deliver the code: {0}")]
    Delivery(#[source] PlivoError),
    /// A re-send so close to the end of the code's life that the SMS could
    /// arrive after it (Plivo's shortest `message_expiry` is 5 s).
    #[error("the code expires too soon to be sent again")]
    Expiring { retry_after_ms: u64 },
    #[error("refused: {}", .0.code())]
    Refused(Refusal),
}

/// Whether start made a new verification or re-sent the open one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    New,
    Existing,
}

/// Job name prefixes (the store's schedule is shared by every instance).
pub const FALLBACK_JOB: &str = "fallback:";
pub const EXPIRE_JOB: &str = "expire:";

#[derive(Debug, Clone)]
pub struct Verifier {
    store: Store,
    keyring: Arc<Keyring>,
    deliverer: Deliverer,
    clock: Arc<dyn Clock>,
    policy: Policy,
    events: Events,
    guard: Guard,
}

impl Verifier {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        deliverer: Deliverer,
        clock: Arc<dyn Clock>,
        policy: Policy,
        events: Events,
        guard: Guard,
    ) -> Self {
        Self {
            store,
            keyring,
            deliverer,
            clock,
            policy,
            events,
            guard,
        }
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Schedules a job, logging rather than failing: a lost job costs a
    /// fallback or an event, never the verification itself.
    async fn schedule(&self, job: String, due: Timestamp) {
        if let Err(e) = self.store.schedule(&job, due).await {
            tracing::error!(error = %e, "could not schedule a job");
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Opens a verification and sends its code, or re-sends the open one's code.
    pub async fn start(
        &self,
        to: PhoneNumber,
        channel: Channel,
        locale: Locale,
        who: &Requester,
    ) -> Result<(Started, Verification), StartError> {
        self.start_with(to, channel, locale, None, who).await
    }

    /// [`Verifier::start`], with the app's SMS Retriever hash for the SMS.
    #[tracing::instrument(skip_all, fields(to = %to, channel = channel.as_str(), verification.id = tracing::field::Empty))]
    pub async fn start_with(
        &self,
        to: PhoneNumber,
        channel: Channel,
        locale: Locale,
        app_hash: Option<AppHash>,
        who: &Requester,
    ) -> Result<(Started, Verification), StartError> {
        let app_hash = app_hash.as_ref();
        let now = self.clock.now();
        let key = self.keyring.number_key(&to);
        if let Err(refusal) = self.guard.admit_start(&to, &key, channel, who, now).await? {
            return Err(refused(refusal));
        }
        let id = VerificationId::generate(&key.tag);
        tracing::Span::current().record("verification.id", tracing::field::display(&id));
        let code = OtpCode::generate(self.policy.code_length);
        let new = NewVerification {
            digest: self.keyring.primary_digest(&code),
            sealed: self.keyring.seal(&code, id.as_str()),
            verification: Verification {
                id,
                to,
                channel,
                locale,
                status: Status::Pending,
                created_at: now,
                expires_at: now.plus(self.policy.lifetime),
                attempts: 0,
                max_attempts: self.policy.max_attempts,
                sends: 1,
                last_sent_at: now,
                deliveries: Vec::new(),
                fallback_used: false,
            },
        };
        let budget = self.guard.send_budget();
        match self
            .store
            .start(new, &key, self.policy.send, budget, now)
            .await?
        {
            StartOutcome::Created(v) => {
                tracing::info!(verification.id = %v.id, "verification opened");
                metrics::counter!("plivo2fa_verifications_started_total", "channel" => channel.as_str()).increment(1);
                crate::telemetry::conversion(1, 0);
                if let Err(e) = self.guard.opened(&v.to).await {
                    tracing::warn!(error = %e, "pumping detector could not count a start");
                }
                match self.deliver(&v, &code, channel, app_hash, now).await {
                    Ok(v) => {
                        if self.events.enabled() {
                            self.schedule(format!("{EXPIRE_JOB}{}", v.id), v.expires_at)
                                .await;
                        }
                        Ok((Started::New, v))
                    }
                    Err(e) => {
                        // Nothing half-done: a verification whose first code never
                        // left is closed as failed, and a new start begins afresh.
                        if let Some((Ok(()), failed)) =
                            self.store.finish(&v.id, Finish::Fail, now).await?
                        {
                            self.events.emit(EventKind::Failed, &failed).await;
                        }
                        Err(StartError::Delivery(e))
                    }
                }
            }
            StartOutcome::Resend {
                verification,
                sealed,
            } => {
                let code = self
                    .keyring
                    .open(&sealed, verification.id.as_str())
                    .map_err(|e| {
                        StoreError::Corrupt(format!("sealed code of {}: {e}", verification.id))
                    })?;
                tracing::info!(verification.id = %verification.id, "re-sending the open verification's code");
                let left_ms = now.millis_until(verification.expires_at);
                if channel == Channel::Sms && left_ms < MIN_MESSAGE_EXPIRY_SECS * 1000 {
                    return Err(StartError::Expiring {
                        retry_after_ms: left_ms,
                    });
                }
                // A failed re-send leaves the verification pending: the code the
                // user may already hold stays good.
                let v = self
                    .deliver(&verification, &code, channel, app_hash, now)
                    .await
                    .map_err(StartError::Delivery)?;
                Ok((Started::Existing, v))
            }
            StartOutcome::NumberLimited { retry_after_ms } => Err(refused(Refusal::Limited {
                code: "number_rate_limited",
                message: "Too many codes sent to this number; try again later.".to_owned(),
                retry_after_ms,
            })),
            StartOutcome::Refused {
                verification,
                refusal,
            } => Err(match refusal {
                ResendRefusal::Cooldown(ms) => StartError::Cooldown { retry_after_ms: ms },
                ResendRefusal::SendLimit => StartError::SendLimit {
                    retry_after_ms: now.millis_until(verification.expires_at),
                },
            }),
        }
    }

    async fn deliver(
        &self,
        v: &Verification,
        code: &OtpCode,
        channel: Channel,
        app_hash: Option<&AppHash>,
        now: Timestamp,
    ) -> Result<Verification, PlivoError> {
        let call_ref;
        let dispatch = match channel {
            Channel::Sms => Dispatch::Sms(app_hash),
            Channel::Voice if self.deliverer.calls_need_reference() => {
                call_ref = CallRef::generate(v.id.tag());
                self.store
                    .register_call(&call_ref, &v.id, v.expires_at, now)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "could not register the call reference");
                        PlivoError::NotSent("the call could not be prepared".into())
                    })?;
                Dispatch::Voice(Some(&call_ref))
            }
            Channel::Voice => Dispatch::Voice(None),
        };
        let delivery = self.deliverer.send(v, code, dispatch, now).await?;
        count_delivery(&delivery);
        if let (Channel::Sms, Some(after), true) = (
            channel,
            self.policy.fallback_after,
            self.policy.fallback_without_receipt,
        ) {
            self.schedule(format!("{FALLBACK_JOB}{}", v.id), now.plus(after))
                .await;
        }
        match self
            .store
            .record_delivery(&v.id, delivery.clone(), now)
            .await
        {
            Ok(DeliveryUpdate::Applied(v) | DeliveryUpdate::Stale(v)) => Ok(v),
            Ok(DeliveryUpdate::NotFound) => Ok(v.clone()),
            Err(e) => {
                // The code did leave; losing the delivery record only costs detail.
                tracing::warn!(verification.id = %v.id, error = %e, "could not record the delivery");
                let mut v = v.clone();
                v.deliveries.push(delivery);
                Ok(v)
            }
        }
    }

    /// Checks a typed code. `None` when there is no verification to check.
    #[tracing::instrument(skip_all, fields(verification.id = tracing::field::Empty))]
    pub async fn check(&self, target: CheckBy, code: &OtpCode) -> Result<CheckOutcome, StoreError> {
        let now = self.clock.now();
        let digests = self.keyring.digests(code);
        let windows = self.guard.failure_windows();
        let result = match &target {
            CheckBy::Number(number) => {
                let key = self.keyring.number_key(number);
                let target = CheckTarget::Number { number, key: &key };
                self.store.check(target, &digests, windows, now).await?
            }
            CheckBy::Id(id) => {
                self.store
                    .check(CheckTarget::Id(id), &digests, windows, now)
                    .await?
            }
        };
        let label = match &result {
            None => "not_found",
            Some((CheckResult::Approved, _)) => "approved",
            Some((CheckResult::Wrong, _)) => "wrong",
            Some((CheckResult::Exhausted, _)) => "exhausted",
            Some((CheckResult::Expired, _)) => "expired",
            Some((CheckResult::NotPending(_), _)) => "not_pending",
        };
        metrics::counter!("plivo2fa_checks_total", "outcome" => label).increment(1);
        if label == "approved" {
            crate::telemetry::conversion(0, 1);
        }
        if let Some((outcome, v)) = &result {
            tracing::Span::current().record("verification.id", tracing::field::display(&v.id));
            tracing::info!(outcome = ?outcome, "code checked");
            if *outcome == CheckResult::Approved {
                self.guard.approved(&v.to);
                self.events.emit(EventKind::Approved, v).await;
            }
        }
        Ok(result)
    }

    pub async fn get(&self, id: &VerificationId) -> Result<Option<Verification>, StoreError> {
        let now = self.clock.now();
        Ok(self.store.get(id, now).await?.map(|mut v| {
            v.status = v.status_at(now);
            v
        }))
    }

    pub async fn cancel(&self, id: &VerificationId) -> Result<FinishOutcome, StoreError> {
        let now = self.clock.now();
        let outcome = self.store.finish(id, Finish::Cancel, now).await?;
        if let Some((Ok(()), v)) = &outcome {
            self.events.emit(EventKind::Canceled, v).await;
        }
        Ok(outcome)
    }

    /// The expiry job: settles a verification whose lifetime is over.
    pub async fn expire(&self, id: &VerificationId) -> Result<(), StoreError> {
        let now = self.clock.now();
        match self.store.finish(id, Finish::Expire, now).await? {
            // This job is the one place that announces expiry, whichever path
            // (a late check, a fallback claim…) happened to settle it first.
            Some((Ok(()) | Err(Status::Expired), v)) => {
                self.events.emit(EventKind::Expired, &v).await
            }
            // Another instance's clock may trail: look again in a second.
            Some((Err(Status::Pending), v)) => {
                let due = v.expires_at.max(now.plus(Duration::from_secs(1)));
                self.schedule(format!("{EXPIRE_JOB}{id}"), due).await;
            }
            _ => {}
        }
        Ok(())
    }

    /// The automatic SMS→voice fallback: places one call with the same code,
    /// unless the SMS arrived, a call was already made, the verification ended,
    /// or it has had all its sends. Safe to run any number of times, on any
    /// number of instances: the claim is atomic.
    #[tracing::instrument(skip_all, fields(verification.id = %id))]
    pub async fn fallback(&self, id: &VerificationId) -> Result<(), StoreError> {
        let now = self.clock.now();
        let claim = self
            .store
            .claim_fallback(id, self.policy.send.max_sends, now)
            .await?;
        let (verification, sealed) = match claim {
            FallbackClaim::Claimed {
                verification,
                sealed,
            } => (verification, sealed),
            FallbackClaim::Skipped(skip) => {
                tracing::debug!(?skip, "no fallback");
                return Ok(());
            }
            FallbackClaim::NotFound => return Ok(()),
        };
        let code = self
            .keyring
            .open(&sealed, verification.id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("sealed code of {id}: {e}")))?;
        tracing::info!("SMS not delivered: falling back to a voice call");
        metrics::counter!("plivo2fa_fallbacks_total").increment(1);
        match self
            .deliver(&verification, &code, Channel::Voice, None, now)
            .await
        {
            Ok(v) => self.events.emit(EventKind::DeliveryUpdated, &v).await,
            Err(e) => tracing::warn!(error = %e, "the fallback call could not be placed"),
        }
        Ok(())
    }

    /// Records an SMS status callback. `false` when the verification is unknown.
    #[tracing::instrument(skip_all, fields(verification.id = %id))]
    pub async fn record_sms_status(
        &self,
        id: &VerificationId,
        delivery: Delivery,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let failed = delivery.status.is_failure();
        let delivered = delivery.status == DeliveryStatus::Delivered;
        match self.apply_delivery(id, delivery, now).await? {
            DeliveryUpdate::NotFound => return Ok(false),
            DeliveryUpdate::Stale(_) => return Ok(true),
            DeliveryUpdate::Applied(_) => {}
        }
        if failed && self.policy.fallback_after.is_some() {
            self.fallback(id).await?;
            self.complete(format!("{FALLBACK_JOB}{id}")).await;
        } else if delivered {
            self.complete(format!("{FALLBACK_JOB}{id}")).await;
        }
        Ok(true)
    }

    /// Records a receipt from the PHLO (which knows the number, not the
    /// verification): it goes on the number's latest verification.
    pub async fn record_phlo_status(
        &self,
        to: &PhoneNumber,
        delivery: Delivery,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let key = self.keyring.number_key(to);
        let Some(v) = self.store.latest(to, &key, now).await? else {
            return Ok(false);
        };
        match delivery.channel {
            Channel::Sms => self.record_sms_status(&v.id, delivery).await,
            Channel::Voice => {
                self.apply_delivery(&v.id, delivery, now).await?;
                Ok(true)
            }
        }
    }

    /// Counts a delivery report, records it, and tells the app backend when
    /// it changed the delivery (what every receipt and call callback does).
    async fn apply_delivery(
        &self,
        id: &VerificationId,
        delivery: Delivery,
        now: Timestamp,
    ) -> Result<DeliveryUpdate, StoreError> {
        count_delivery(&delivery);
        let update = self.store.record_delivery(id, delivery, now).await?;
        if let DeliveryUpdate::Applied(v) = &update {
            self.events.emit(EventKind::DeliveryUpdated, v).await;
        }
        Ok(update)
    }

    async fn complete(&self, job: String) {
        if let Err(e) = self.store.complete_job(&job).await {
            tracing::warn!(error = %e, "could not remove a finished job");
        }
    }
}

/// What a call should say.
#[derive(Debug)]
pub enum Spoken {
    /// Read this code out, in this locale; it expires at `expires_at`.
    Code {
        code: OtpCode,
        locale: Locale,
        expires_at: Timestamp,
    },
    /// The reference is unknown (`None`), or its verification, in this
    /// locale, is no longer pending.
    Gone(Option<Locale>),
}

impl Verifier {
    /// The code a call should read out, while its verification is pending.
    pub async fn voice_code(&self, call: &CallRef) -> Result<Spoken, StoreError> {
        let now = self.clock.now();
        let Some((v, sealed)) = self.store.resolve_call(call, now).await? else {
            return Ok(Spoken::Gone(None));
        };
        let (Status::Pending, Some(sealed)) = (v.status_at(now), sealed) else {
            return Ok(Spoken::Gone(Some(v.locale)));
        };
        let code = self
            .keyring
            .open(&sealed, v.id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("sealed code of {}: {e}", v.id)))?;
        Ok(Spoken::Code {
            code,
            locale: v.locale,
            expires_at: v.expires_at,
        })
    }

    /// The locale of a call's verification, while its reference is known.
    pub async fn call_locale(&self, call: &CallRef) -> Result<Option<Locale>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .store
            .resolve_call(call, now)
            .await?
            .map(|(v, _)| v.locale))
    }

    /// Records what Plivo said about a call on its verification's deliveries.
    /// `false` when the reference is unknown.
    pub async fn record_call(
        &self,
        call: &CallRef,
        delivery: Delivery,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let Some((v, _)) = self.store.resolve_call(call, now).await? else {
            return Ok(false);
        };
        self.apply_delivery(&v.id, delivery, now).await?;
        Ok(true)
    }

    /// Whether a signed callback's nonce is new (not a replay).
    pub async fn fresh_nonce(&self, nonce: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        self.store
            .remember_nonce(nonce, ttl_ms, self.clock.now())
            .await
    }

    pub fn brand(&self) -> &str {
        self.deliverer.brand()
    }

    /// Whether codes can go out by voice (a caller ID is configured).
    pub fn voice_available(&self) -> bool {
        self.deliverer.voice_available()
    }

    /// Whether this server writes the SMS text (not in PHLO mode).
    pub fn writes_sms_text(&self) -> bool {
        self.deliverer.writes_sms_text()
    }
}

/// Longest error code kept as a metric label: Plivo's SMS error codes and
/// hangup cause codes have at most four digits.
const MAX_ERROR_CODE_LABEL: usize = 4;

/// Counts a delivery report in the deliveries metric. The labels come from
/// closed sets: a callback's words are free text, and each distinct label
/// value would be a series kept for the life of the process.
fn count_delivery(d: &Delivery) {
    let error_code = match d.error_code.as_deref() {
        None => String::new(),
        Some(c)
            if (1..=MAX_ERROR_CODE_LABEL).contains(&c.len())
                && c.bytes().all(|b| b.is_ascii_digit()) =>
        {
            c.to_owned()
        }
        Some(_) => "other".to_owned(),
    };
    metrics::counter!(
        "plivo2fa_deliveries_total",
        "channel" => d.channel.as_str(),
        "status" => d.status.label(),
        "error_code" => error_code
    )
    .increment(1);
}

/// A start refused by an abuse rule: logged and counted.
fn refused(refusal: Refusal) -> StartError {
    tracing::info!(refusal = refusal.code(), "start refused");
    metrics::counter!("plivo2fa_blocks_total", "reason" => refusal.code()).increment(1);
    StartError::Refused(refusal)
}

/// Which verification a typed code is for.
#[derive(Debug, Clone)]
pub enum CheckBy {
    Number(PhoneNumber),
    Id(VerificationId),
}
