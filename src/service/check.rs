//! Checking a typed code against an application's verification.

use std::sync::Arc;

use crate::apps::App;
use crate::domain::verification::CheckResult;
use crate::domain::{Clock, Keyring, OtpCode, PhoneNumber, PhoneNumberError, VerificationId};
use crate::events::{EventKind, Outbox};
use crate::store::{CheckOutcome, CheckTarget, Owner, Store, StoreError, VerificationStore};

use super::announce_for;

/// Which verification a typed code is for.
#[derive(Debug, Clone)]
pub enum CheckBy {
    /// The open (or latest) verification of a number, as the client wrote it.
    Number(String),
    Id(VerificationId),
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The number is not a valid one (or not in E.164 form).
    #[error(transparent)]
    Number(#[from] PhoneNumberError),
}

#[derive(Debug, Clone)]
pub struct CheckCode {
    store: Store,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    outbox: Outbox,
}

impl CheckCode {
    pub fn new(store: Store, keyring: Arc<Keyring>, clock: Arc<dyn Clock>, outbox: Outbox) -> Self {
        Self {
            store,
            keyring,
            clock,
            outbox,
        }
    }

    /// Checks a typed code. `None` when `app` has no such verification.
    ///
    /// A number as this server stores numbers ([`PhoneNumber::as_stored`])
    /// is looked up as written, before any parse: every stored number was
    /// validated when its verification started, and such a number parses
    /// to itself, so what it finds is what the parse's number would find.
    /// Only a number that finds nothing (or meets a store error) is parsed,
    /// so an invalid one is told apart from one with nothing pending,
    /// exactly as when every number was parsed first; and one whose parse
    /// writes it otherwise is looked up again as the parse wrote it.
    #[tracing::instrument(skip_all, fields(application = %app.id, verification.id = tracing::field::Empty))]
    pub async fn run(
        &self,
        app: &App,
        target: CheckBy,
        code: &OtpCode,
    ) -> Result<CheckOutcome, CheckError> {
        let now = self.clock.now();
        let digests = self.keyring.digests(code);
        let windows = app.guard.failure_windows();
        let owner = Owner::App(&app.id);
        let by_number = async |number: &PhoneNumber| {
            let key = self.keyring.app_number_key(&app.id, number);
            let target = CheckTarget::Number { number, key: &key };
            self.store
                .check(target, owner, &digests, windows, now)
                .await
        };
        let result = match &target {
            CheckBy::Number(written) => match PhoneNumber::as_stored(written) {
                None => by_number(&PhoneNumber::parse(written)?).await?,
                Some(as_stored) => match by_number(&as_stored).await {
                    Ok(Some(found)) => Some(found),
                    Ok(None) => {
                        let parsed = PhoneNumber::parse(written)?;
                        if parsed == as_stored {
                            None
                        } else {
                            by_number(&parsed).await?
                        }
                    }
                    Err(e) => {
                        PhoneNumber::parse(written)?;
                        return Err(e.into());
                    }
                },
            },
            CheckBy::Id(id) => {
                self.store
                    .check(CheckTarget::Id(id), owner, &digests, windows, now)
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
        metrics::counter!(
            "plivo2fa_checks_total",
            "outcome" => label,
            "application" => app.id.to_string()
        )
        .increment(1);
        if label == "approved" {
            crate::telemetry::conversion(0, 1);
        }
        if let Some((outcome, v)) = &result {
            tracing::Span::current().record("verification.id", tracing::field::display(&v.id));
            tracing::info!(outcome = ?outcome, "code checked");
            if *outcome == CheckResult::Approved {
                app.guard.approved(&v.to);
                announce_for(&self.outbox, app, EventKind::Approved, v).await;
            }
        }
        Ok(result)
    }
}
