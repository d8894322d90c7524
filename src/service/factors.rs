//! Authenticator-app factors (TOTP): enrol one for an identity, prove it
//! with a first code, check codes at sign-in, read and delete it. The secret
//! is shown once, at enrolment; after that it exists only sealed in the
//! store and, for the length of one comparison, in memory.

use std::sync::Arc;
use std::time::Duration;

use crate::apps::App;
use crate::domain::code::CodeError;
use crate::domain::totp::step_at;
use crate::domain::{
    Clock, Factor, FactorId, FactorStage, FactorStatus, FriendlyName, Identity, Keyring, OtpCode,
    TotpSecret,
};
use crate::events::{EventKind, Outbox};
use crate::store::{
    AttemptOutcome, FactorAttempt, FactorCreated, FactorLimits, FactorStore, Owner, Store,
    StoreError, StoredFactor,
};

/// An identity's wrong codes are counted in UTC days.
const DAY: Duration = Duration::from_secs(86_400);
/// The metric label of authenticator factors' channel.
const CHANNEL: &str = "totp";

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such factor in the application (or one no configured secret opens).
    #[error("no such factor")]
    NotFound,
    /// The typed code is not one this factor could have made; nothing counted.
    #[error("the code is malformed: {0}")]
    InvalidCode(CodeError),
    /// The identity has as many factors as it may (`MAX_FACTORS_PER_IDENTITY`);
    /// nothing was enrolled.
    #[error("the identity has {max} factors, as many as it may")]
    IdentityFull { max: u32 },
}

/// What a typed code did.
#[derive(Debug, Clone)]
pub enum CodeAnswer {
    /// Right: the factor is verified (it just became so at the verify stage).
    Approved(Factor),
    /// Wrong, or a code already used; so many more before the lock.
    Wrong {
        factor: Factor,
        attempts_remaining: u32,
    },
    /// Too many wrong in a row: no code is compared until the lock ends.
    Locked { retry_after_ms: u64 },
    /// The identity's wrong codes reached the day's ceiling.
    DailyCeiling { retry_after_ms: u64 },
    /// The factor's status does not take codes at this stage.
    WrongStage(Factor),
}

#[derive(Debug, Clone)]
pub struct Factors {
    store: Store,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    outbox: Outbox,
}

impl Factors {
    pub fn new(store: Store, keyring: Arc<Keyring>, clock: Arc<dyn Clock>, outbox: Outbox) -> Self {
        Self {
            store,
            keyring,
            clock,
            outbox,
        }
    }

    /// Enrols a new, unverified factor for `identity` in `app`: the factor
    /// and the secret to show the user once.
    #[tracing::instrument(skip_all, fields(application = %app.id, factor.id = tracing::field::Empty))]
    pub async fn enrol(
        &self,
        app: &App,
        identity: Identity,
        friendly_name: Option<FriendlyName>,
    ) -> Result<(Factor, TotpSecret), FactorError> {
        let key = self.keyring.identity_key(&app.id, identity.as_str());
        let id = FactorId::generate(&key.tag);
        tracing::Span::current().record("factor.id", tracing::field::display(&id));
        let secret = TotpSecret::generate();
        let factor = Factor {
            id,
            application: app.id.clone(),
            identity,
            friendly_name,
            status: FactorStatus::Unverified,
            digits: app.totp_digits,
            created_at: self.clock.now(),
        };
        let stored = StoredFactor {
            sealed_secret: self.keyring.seal_totp_secret(&secret, factor.id.as_str()),
            factor: factor.clone(),
            last_step: None,
        };
        let max = app.max_factors_per_identity;
        match self.store.create_factor(stored, &key.hash, max).await? {
            FactorCreated::Created => {}
            FactorCreated::IdentityFull => {
                count_factor(app, "refused");
                return Err(FactorError::IdentityFull { max });
            }
        }
        count_factor(app, "enrolled");
        tracing::info!("factor enrolled");
        Ok((factor, secret))
    }

    /// `app`'s factor `id`; `None` when it has none such.
    pub async fn get(&self, app: &App, id: &FactorId) -> Result<Option<Factor>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .store
            .factor(id, Owner::App(&app.id))
            .await?
            .map(|s| s.factor)
            .filter(|f| !f.abandoned(now)))
    }

    /// Deletes `app`'s factor `id`; what it was, `None` when it had none such.
    #[tracing::instrument(skip_all, fields(application = %app.id, factor.id = %id))]
    pub async fn delete(&self, app: &App, id: &FactorId) -> Result<Option<Factor>, StoreError> {
        let now = self.clock.now();
        // An abandoned enrolment is removed all the same, but it was not there.
        let deleted = self
            .store
            .delete_factor(id, Owner::App(&app.id), now)
            .await?
            .filter(|f| !f.abandoned(now));
        if let Some(factor) = &deleted {
            count_factor(app, "deleted");
            tracing::info!("factor deleted");
            self.outbox
                .emit_factor(app.webhook.as_deref(), EventKind::FactorDeleted, factor)
                .await;
        }
        Ok(deleted)
    }

    /// Takes a typed code for `app`'s factor `id` at `stage` (RFC 6238: the
    /// current step or one either side, never a step already accepted).
    #[tracing::instrument(skip_all, fields(application = %app.id, factor.id = %id, stage = ?stage))]
    pub async fn code(
        &self,
        app: &App,
        id: &FactorId,
        stage: FactorStage,
        typed: &str,
    ) -> Result<CodeAnswer, FactorError> {
        let now = self.clock.now();
        let owner = Owner::App(&app.id);
        let stored = self
            .store
            .factor(id, owner)
            .await?
            .filter(|s| !s.factor.abandoned(now))
            .ok_or(FactorError::NotFound)?;
        let mut factor = stored.factor;
        let code =
            OtpCode::parse(typed, factor.digits.code_length()).map_err(FactorError::InvalidCode)?;
        let secret = self
            .keyring
            .open_totp_secret(&stored.sealed_secret, id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("factor secret: {e}")))?;
        let attempt = match secret.matching_step(&code, factor.digits, now, stored.last_step) {
            Some(step) => FactorAttempt::Step(step),
            None => FactorAttempt::Wrong,
        };
        drop(secret);
        let limits = FactorLimits {
            max_attempts: app.policy.max_attempts,
            lock_ms: millis(app.guard.settings().lockout),
            day_ms: millis(DAY),
            max_per_day: app.guard.settings().max_failed_checks_per_day,
        };
        let outcome = self
            .store
            .attempt_factor(id, owner, stage, attempt, limits, now)
            .await?;
        let label = match outcome {
            AttemptOutcome::Approved => "approved",
            AttemptOutcome::Wrong { .. } => "wrong",
            AttemptOutcome::Locked { .. } => "locked",
            AttemptOutcome::DailyCeiling { .. } => "daily_ceiling",
            AttemptOutcome::WrongStage(_) => "wrong_stage",
            AttemptOutcome::NotFound => "not_found",
        };
        metrics::counter!(
            "plivo2fa_factor_checks_total",
            "channel" => CHANNEL,
            "stage" => match stage {
                FactorStage::Verify => "verify",
                FactorStage::Check => "check",
            },
            "outcome" => label,
            "application" => app.id.to_string()
        )
        .increment(1);
        tracing::info!(
            outcome = label,
            step = step_at(now),
            "authenticator code taken"
        );
        Ok(match outcome {
            AttemptOutcome::Approved => {
                let was = factor.status;
                factor.status = FactorStatus::Verified;
                if was == FactorStatus::Unverified {
                    count_factor(app, "verified");
                    self.outbox
                        .emit_factor(app.webhook.as_deref(), EventKind::FactorVerified, &factor)
                        .await;
                }
                CodeAnswer::Approved(factor)
            }
            AttemptOutcome::Wrong { attempts_remaining } => CodeAnswer::Wrong {
                factor,
                attempts_remaining,
            },
            AttemptOutcome::Locked { retry_after_ms } => CodeAnswer::Locked { retry_after_ms },
            AttemptOutcome::DailyCeiling { retry_after_ms } => {
                CodeAnswer::DailyCeiling { retry_after_ms }
            }
            AttemptOutcome::WrongStage(status) => {
                factor.status = status;
                CodeAnswer::WrongStage(factor)
            }
            // Deleted between the read and the attempt.
            AttemptOutcome::NotFound => return Err(FactorError::NotFound),
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Counts a factor's enrolment, verification or deletion.
fn count_factor(app: &App, event: &'static str) {
    metrics::counter!(
        "plivo2fa_factors_total",
        "channel" => CHANNEL,
        "event" => event,
        "application" => app.id.to_string()
    )
    .increment(1);
}
