//! Starting a verification: the abuse rules, a new code (or the open
//! verification's own, re-sent), and its first delivery.

use std::sync::Arc;

use crate::abuse::{Refusal, Requester};
use crate::apps::App;
use crate::delivery::AppHash;
use crate::domain::verification::ResendRefusal;
use crate::domain::{
    Channel, Clock, Keyring, Locale, OtpCode, PhoneNumber, Status, Timestamp, Verification,
    VerificationId,
};
use crate::events::{EventKind, Outbox};
use crate::plivo::PlivoError;
use crate::plivo::client::MIN_MESSAGE_EXPIRY_SECS;
use crate::store::{
    Finish, NewVerification, Opening, Owner, StartOutcome, Store, StoreError, VerificationStore,
};

use super::{Dispatcher, EXPIRE_JOB, announce_for, schedule};

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

/// What a start asks for, parsed.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub to: PhoneNumber,
    pub channel: Channel,
    pub locale: Locale,
    /// The Android app's SMS Retriever hash, for the SMS's own line.
    pub app_hash: Option<AppHash>,
}

/// Opens a verification and sends its code, or re-sends the open one's code.
#[derive(Debug, Clone)]
pub struct StartVerification {
    store: Store,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    dispatcher: Dispatcher,
    outbox: Outbox,
}

impl StartVerification {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        dispatcher: Dispatcher,
        outbox: Outbox,
    ) -> Self {
        Self {
            store,
            keyring,
            clock,
            dispatcher,
            outbox,
        }
    }

    #[tracing::instrument(skip_all, fields(application = %app.id, to = %request.to, channel = request.channel.as_str(), verification.id = tracing::field::Empty))]
    pub async fn run(
        &self,
        app: &App,
        request: StartRequest,
        who: &Requester,
    ) -> Result<(Started, Verification), StartError> {
        let StartRequest {
            to,
            channel,
            locale,
            app_hash,
        } = request;
        // The rules without counters first: a refused start makes no code.
        if let Err(refusal) = app.guard.check_number(&to, channel) {
            return Err(refused(app, refusal));
        }
        let now = self.clock.now();
        let key = self.keyring.app_number_key(&app.id, &to);
        let id = VerificationId::generate(&key.tag);
        let code = OtpCode::generate(app.policy.code_length);
        let new = NewVerification {
            digest: self.keyring.primary_digest(&code),
            sealed: self.keyring.seal(&code, id.as_str()),
            verification: Verification {
                id,
                application: app.id.clone(),
                to,
                channel,
                locale,
                status: Status::Pending,
                created_at: now,
                expires_at: now.plus(app.policy.lifetime),
                attempts: 0,
                max_attempts: app.policy.max_attempts,
                sends: 1,
                last_sent_at: now,
                deliveries: Vec::new(),
                fallbacks: Vec::new(),
            },
        };
        let opening = Opening {
            new,
            key: &key,
            policy: app.policy.send,
            budget: app.guard.send_budget(),
        };
        let outcome = match app.guard.start(who, opening, now).await? {
            Ok(outcome) => outcome,
            Err(refusal) => return Err(refused(app, refusal)),
        };
        let app_hash = app_hash.as_ref();
        match outcome {
            StartOutcome::Created(v) => self.opened(app, v, &code, app_hash, now).await,
            StartOutcome::Resend {
                verification,
                sealed,
            } => {
                self.resend(app, &verification, &sealed, channel, app_hash, now)
                    .await
            }
            StartOutcome::NumberLimited { retry_after_ms } => Err(refused(
                app,
                Refusal::Limited {
                    code: "number_rate_limited",
                    message: "Too many codes sent to this number; try again later.".to_owned(),
                    retry_after_ms,
                },
            )),
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

    /// A new verification (the pumping detector has counted it): counted and sent.
    async fn opened(
        &self,
        app: &App,
        v: Verification,
        code: &OtpCode,
        app_hash: Option<&AppHash>,
        now: Timestamp,
    ) -> Result<(Started, Verification), StartError> {
        tracing::Span::current().record("verification.id", tracing::field::display(&v.id));
        tracing::info!(verification.id = %v.id, "verification opened");
        metrics::counter!(
            "plivo2fa_verifications_started_total",
            "channel" => v.channel.as_str(),
            "application" => app.id.to_string()
        )
        .increment(1);
        crate::telemetry::conversion(1, 0);
        match self
            .dispatcher
            .deliver(app, &v, code, v.channel, app_hash, now)
            .await
        {
            Ok(v) => {
                if app.webhook.is_some() {
                    schedule(&self.store, format!("{EXPIRE_JOB}{}", v.id), v.expires_at).await;
                }
                Ok((Started::New, v))
            }
            Err(e) => {
                // Nothing half-done: a verification whose first code never
                // left is closed as failed, and a new start begins afresh.
                if let Some((Ok(()), failed)) = self
                    .store
                    .finish(&v.id, Owner::App(&app.id), Finish::Fail, now)
                    .await?
                {
                    announce_for(&self.outbox, app, EventKind::Failed, &failed).await;
                }
                Err(StartError::Delivery(e))
            }
        }
    }

    /// The open verification's code, sent again (a failed re-send leaves it
    /// pending: the code the user may already hold stays good).
    async fn resend(
        &self,
        app: &App,
        verification: &Verification,
        sealed: &str,
        channel: Channel,
        app_hash: Option<&AppHash>,
        now: Timestamp,
    ) -> Result<(Started, Verification), StartError> {
        let code = self
            .keyring
            .open(sealed, verification.id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("sealed code of {}: {e}", verification.id)))?;
        tracing::Span::current()
            .record("verification.id", tracing::field::display(&verification.id));
        tracing::info!(verification.id = %verification.id, "re-sending the open verification's code");
        let left_ms = now.millis_until(verification.expires_at);
        if channel == Channel::Sms && left_ms < MIN_MESSAGE_EXPIRY_SECS * 1000 {
            return Err(StartError::Expiring {
                retry_after_ms: left_ms,
            });
        }
        let v = self
            .dispatcher
            .deliver(app, verification, &code, channel, app_hash, now)
            .await
            .map_err(StartError::Delivery)?;
        Ok((Started::Existing, v))
    }
}

/// A start refused by an abuse rule: logged and counted.
fn refused(app: &App, refusal: Refusal) -> StartError {
    tracing::info!(refusal = refusal.code(), "start refused");
    metrics::counter!(
        "plivo2fa_blocks_total",
        "reason" => refusal.code(),
        "application" => app.id.to_string()
    )
    .increment(1);
    StartError::Refused(refusal)
}
