//! What a voice call reads out, found by the call's opaque reference.

use std::sync::Arc;

use crate::domain::{ApplicationId, CallRef, Clock, Keyring, Locale, OtpCode, Status, Timestamp};
use crate::store::{CallStore, Nonce, ResolvedCall, Store, StoreError};

/// What a call should say.
#[derive(Debug)]
pub enum Spoken {
    /// Read this code out, in this locale, for this application; it expires
    /// at `expires_at`.
    Code {
        code: OtpCode,
        locale: Locale,
        application: ApplicationId,
        expires_at: Timestamp,
    },
    /// The reference is unknown (`None`), or its verification, in this
    /// locale and of this application, is no longer pending.
    Gone(Option<(Locale, ApplicationId)>),
}

#[derive(Debug, Clone)]
pub struct VoiceCall {
    store: Store,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
}

impl VoiceCall {
    pub fn new(store: Store, keyring: Arc<Keyring>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            keyring,
            clock,
        }
    }

    /// The code a call should read out, while its verification is pending.
    pub async fn code(&self, call: &CallRef) -> Result<Spoken, StoreError> {
        let now = self.clock.now();
        let resolved = self.store.resolve_call(call, now).await?;
        self.spoken(resolved, now)
    }

    /// [`VoiceCall::code`] for a signed request whose nonce is still to be
    /// taken: takes it in the same store call (one round trip), and reads
    /// nothing out for a replay.
    pub async fn code_once(
        &self,
        call: &CallRef,
        nonce: &str,
        nonce_ttl_ms: u64,
    ) -> Result<Nonce<Spoken>, StoreError> {
        let now = self.clock.now();
        match self
            .store
            .answer_call(call, nonce, nonce_ttl_ms, now)
            .await?
        {
            Nonce::First(resolved) => self.spoken(resolved, now).map(Nonce::First),
            Nonce::Replayed => Ok(Nonce::Replayed),
        }
    }

    fn spoken(&self, resolved: ResolvedCall, now: Timestamp) -> Result<Spoken, StoreError> {
        let Some(v) = resolved else {
            return Ok(Spoken::Gone(None));
        };
        let (Status::Pending, Some(sealed)) = (v.status_at(now), v.sealed) else {
            return Ok(Spoken::Gone(Some((v.locale, v.application))));
        };
        let code = self
            .keyring
            .open(&sealed, v.id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("sealed code of {}: {e}", v.id)))?;
        Ok(Spoken::Code {
            code,
            locale: v.locale,
            application: v.application,
            expires_at: v.expires_at,
        })
    }

    /// The locale and application of a call's verification, while its
    /// reference is known.
    pub async fn locale(
        &self,
        call: &CallRef,
    ) -> Result<Option<(Locale, ApplicationId)>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .store
            .resolve_call(call, now)
            .await?
            .map(|v| (v.locale, v.application)))
    }
}
