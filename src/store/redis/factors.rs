//! Authenticator factors in Redis: one hash per factor,
//! `p2fa:{tag}:f:<id>`, with no expiry (a factor lasts until deleted). Its
//! TOTP secret and its profile (identity, friendly name) are sealed with the
//! keyring, each bound to the factor's id; its identity's wrong codes of the
//! day count under the same `{tag}`, so an attempt is one script in one slot,
//! and so does its index of live factors (`p2fa:{tag}:fi:<identity hash>`, a
//! sorted set of factor ids by when each enrolment is abandoned, `inf` once
//! verified), which bounds how many factors one identity may have.

use redis::Value;

use crate::domain::factor::UNVERIFIED_FACTOR_TTL;
use serde::{Deserialize, Serialize};

use super::RedisStore;
use super::scripts::Invocation;
use crate::domain::{
    ApplicationId, Factor, FactorId, FactorStage, FactorStatus, FriendlyName, Identity, Timestamp,
    TotpDigits,
};
use crate::store::{
    AttemptOutcome, FactorAttempt, FactorCreated, FactorLimits, FactorStore, Owner, StoreError,
    StoredFactor,
};

/// The fields `factor` reads and factor_delete.lua returns, in this order.
const FACTOR_FIELDS: [&str; 7] = [
    "app",
    "status",
    "created_at",
    "digits",
    "secret",
    "profile",
    "last_step",
];

/// What a factor says about its user, sealed as one JSON text.
#[derive(Serialize, Deserialize)]
struct Profile {
    identity: Identity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    friendly_name: Option<FriendlyName>,
}

fn owner_arg(owner: Owner<'_>) -> &str {
    match owner {
        Owner::App(app) => app.as_str(),
        Owner::Any => "",
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("factor {what}"))
}

impl RedisStore {
    fn factor_key(&self, id: &FactorId) -> String {
        format!("{}:{{{}}}:f:{}", self.keys.prefix(), id.tag(), id.as_str())
    }

    /// What an identity's index of its factors is named after: the
    /// identity's hash follows (the factor's tag is its identity's).
    fn factor_index_prefix(&self, id: &FactorId) -> String {
        format!("{}:{{{}}}:fi:", self.keys.prefix(), id.tag())
    }

    /// A factor from its FACTOR_FIELDS; `None` when the record is missing
    /// or its seals are no longer opened by any configured secret.
    fn parse_factor(
        &self,
        id: &FactorId,
        fields: &[Value],
    ) -> Result<Option<StoredFactor>, StoreError> {
        let text = |i: usize| -> Option<String> {
            match fields.get(i) {
                Some(Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
                _ => None,
            }
        };
        let (Some(app), Some(status)) = (text(0), text(1)) else {
            return Ok(None);
        };
        let application = ApplicationId::parse(&app).ok_or_else(|| corrupt("application"))?;
        let status: FactorStatus = status.parse().map_err(|()| corrupt("status"))?;
        let created_at = text(2)
            .and_then(|t| t.parse().ok())
            .map(Timestamp::from_millis)
            .ok_or_else(|| corrupt("created_at"))?;
        let digits = text(3)
            .and_then(|d| d.parse().ok())
            .and_then(TotpDigits::new)
            .ok_or_else(|| corrupt("digits"))?;
        let sealed_secret = text(4).ok_or_else(|| corrupt("secret"))?;
        // Sealed by a secret no longer configured: the factor cannot be used
        // or shown any more, and reads as gone.
        if !self.keyring.knows_seal(&sealed_secret) {
            return Ok(None);
        }
        let profile = text(5).ok_or_else(|| corrupt("profile"))?;
        let profile = self
            .keyring
            .open_factor_profile(&profile, id.as_str())
            .map_err(|e| StoreError::Corrupt(format!("factor profile: {e}")))?;
        let profile: Profile = serde_json::from_str(&profile).map_err(|_| corrupt("profile"))?;
        let last_step = text(6).and_then(|s| s.parse().ok());
        Ok(Some(StoredFactor {
            factor: Factor {
                id: id.clone(),
                application,
                identity: profile.identity,
                friendly_name: profile.friendly_name,
                status,
                digits,
                created_at,
            },
            sealed_secret,
            last_step,
        }))
    }
}

impl FactorStore for RedisStore {
    async fn create_factor(
        &self,
        stored: StoredFactor,
        identity_hash: &str,
        max_per_identity: u32,
    ) -> Result<FactorCreated, StoreError> {
        let f = &stored.factor;
        let profile = serde_json::to_string(&Profile {
            identity: f.identity.clone(),
            friendly_name: f.friendly_name.clone(),
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let lifetime = match f.status {
            FactorStatus::Unverified => UNVERIFIED_FACTOR_TTL.as_millis().to_string(),
            FactorStatus::Verified => String::new(),
        };
        let mut invocation = Invocation::new(&self.scripts.factor_create);
        invocation
            .key(self.factor_key(&f.id))
            .key(format!(
                "{}{identity_hash}",
                self.factor_index_prefix(&f.id)
            ))
            .arg(f.id.as_str())
            .arg(f.created_at.as_millis())
            .arg(max_per_identity)
            .arg(lifetime)
            .arg("app")
            .arg(f.application.as_str())
            .arg("status")
            .arg(f.status.as_str())
            .arg("created_at")
            .arg(f.created_at.as_millis())
            .arg("digits")
            .arg(f.digits.get())
            .arg("secret")
            .arg(&stored.sealed_secret)
            .arg("profile")
            .arg(self.keyring.seal_factor_profile(&profile, f.id.as_str()))
            .arg("ih")
            .arg(identity_hash)
            .arg("fails")
            .arg(0);
        match self.run(invocation).await? {
            Value::Int(1) => Ok(FactorCreated::Created),
            Value::Int(0) => Ok(FactorCreated::IdentityFull),
            other => Err(StoreError::Corrupt(format!("factor create said {other:?}"))),
        }
    }

    async fn factor(
        &self,
        id: &FactorId,
        owner: Owner<'_>,
    ) -> Result<Option<StoredFactor>, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.factor_key(id)).arg(&FACTOR_FIELDS);
        let fields: Vec<Value> = self.query(&cmd).await?;
        // Another application's factor reads exactly as a missing one.
        Ok(self
            .parse_factor(id, &fields)?
            .filter(|s| owner.sees(&s.factor.application)))
    }

    async fn attempt_factor(
        &self,
        id: &FactorId,
        owner: Owner<'_>,
        stage: FactorStage,
        attempt: FactorAttempt,
        limits: FactorLimits,
        now: Timestamp,
    ) -> Result<AttemptOutcome, StoreError> {
        let mut invocation = Invocation::new(&self.scripts.factor_attempt);
        invocation
            .key(self.factor_key(id))
            .arg(owner_arg(owner))
            .arg(match stage {
                FactorStage::Verify => "verify",
                FactorStage::Check => "check",
            })
            .arg(match attempt {
                FactorAttempt::Step(step) => step.to_string(),
                FactorAttempt::Wrong => String::new(),
            })
            .arg(now.as_millis())
            .arg(limits.max_attempts.max(1))
            .arg(limits.lock_ms.max(1))
            .arg(self.keys.counter_prefix(id.tag()))
            .arg(limits.day_ms.max(1))
            .arg(limits.max_per_day)
            .arg(self.factor_index_prefix(id))
            .arg(id.as_str());
        let reply = super::Reply::new(self.run(invocation).await?, &self.keyring)?;
        let number = |i: usize| -> Result<u64, StoreError> {
            reply.text(i)?.parse().map_err(|_| corrupt("reply"))
        };
        Ok(match reply.text(0)?.as_str() {
            "approved" => AttemptOutcome::Approved,
            "wrong" => AttemptOutcome::Wrong {
                attempts_remaining: u32::try_from(number(1)?).unwrap_or(0),
            },
            "locked" => AttemptOutcome::Locked {
                retry_after_ms: number(1)?,
            },
            "ceiling" => AttemptOutcome::DailyCeiling {
                retry_after_ms: number(1)?,
            },
            "wrong_stage" => {
                AttemptOutcome::WrongStage(reply.text(1)?.parse().map_err(|()| corrupt("status"))?)
            }
            "not_found" => AttemptOutcome::NotFound,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "factor attempt said {other:?}"
                )));
            }
        })
    }

    async fn delete_factor(
        &self,
        id: &FactorId,
        owner: Owner<'_>,
        now: Timestamp,
    ) -> Result<Option<Factor>, StoreError> {
        let mut invocation = Invocation::new(&self.scripts.factor_delete);
        invocation
            .key(self.factor_key(id))
            .arg(owner_arg(owner))
            .arg(now.as_millis())
            .arg(self.factor_index_prefix(id))
            .arg(id.as_str());
        match self.run(invocation).await? {
            Value::Array(fields) if fields.is_empty() => Ok(None),
            Value::Array(fields) => Ok(self.parse_factor(id, &fields)?.map(|s| s.factor)),
            other => Err(StoreError::Corrupt(format!("factor delete said {other:?}"))),
        }
    }
}
