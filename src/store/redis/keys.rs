//! The names of the Redis keys (prefix `p2fa` by default). Every key of one
//! number carries its hash tag `{tag}`, so a script touching a verification,
//! its number's pointer and its number's counters stays in one Cluster slot.
//!
//! - `p2fa:{tag}:num:<number hash>` → id of the number's latest verification
//! - `p2fa:{tag}:v:<id>` → hash: the verification
//! - `p2fa:{tag}:rl:<counter>:<number hash>:<window>` → a number's counters
//! - `p2fa:{tag}:call:<call reference>` → the call's verification id
//! - `p2fa:{tag}:f:<factor id>` → hash: an authenticator factor (no expiry)
//! - `p2fa:{tag}:rl:factor-failed:<identity hash>:<window>` → an identity's
//!   wrong authenticator codes in the day
//! - `p2fa:rl:{<name>:<window>}` → the other rate-limit and detector counters
//! - `p2fa:{jobs}` → the job schedule (a sorted set)
//! - `p2fa:blob:<name>` → events waiting for the webhook, and flags
//! - `p2fa:nonce:<sha256 of the nonce>` → a signed callback's nonce
//! - `p2fa:{tag}:nonce:<sha256 of the nonce>` → a signed answer request's
//!   nonce, in its call's slot (taken by the same script that resolves the call)

use std::fmt::Write as _;

use crate::domain::{CallRef, NumberKey, Timestamp, VerificationId};
use crate::store::{FAILED_COUNTER, FailureWindows, LOCKOUT_COUNTER, window_index};

#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(super) fn record_prefix(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:v:", self.prefix)
    }

    pub(super) fn record_key(&self, id: &VerificationId) -> String {
        format!("{}{}", self.record_prefix(id.tag()), id.as_str())
    }

    pub(super) fn call_key(&self, call: &CallRef) -> String {
        format!("{}:{{{}}}:call:{}", self.prefix, call.tag(), call.as_str())
    }

    pub(super) fn jobs_key(&self) -> String {
        format!("{}:{{jobs}}", self.prefix)
    }

    pub(super) fn blob_key(&self, key: &str) -> String {
        format!("{}:blob:{key}", self.prefix)
    }

    pub(super) fn nonce_key(&self, nonce: &str) -> String {
        format!("{}:nonce:{}", self.prefix, nonce_digest(nonce))
    }

    /// A signed answer request's nonce, in its call's slot.
    pub(super) fn call_nonce_key(&self, call: &CallRef, nonce: &str) -> String {
        format!(
            "{}:{{{}}}:nonce:{}",
            self.prefix,
            call.tag(),
            nonce_digest(nonce)
        )
    }

    /// What a number's counters are named after (`…:{tag}:rl:`), in its
    /// hash tag's slot so the scripts that count them stay in one slot.
    pub(super) fn counter_prefix(&self, tag: &str) -> String {
        format!("{}:{{{tag}}}:rl:", self.prefix)
    }

    /// One of a number's counters for its window at `now` (as prelude.lua's `count` names it).
    pub(super) fn number_counter(
        &self,
        key: &NumberKey,
        counter: &str,
        window_ms: u64,
        now: Timestamp,
    ) -> String {
        // `counter_prefix`, then the counter, the hash and `window_of`'s
        // index appended to it (a start names several of these).
        let mut name = self.counter_prefix(&key.tag);
        let index = window_index(window_ms, now);
        let _ = write!(name, "{counter}:{}:{index}", key.hash);
        name
    }

    /// A number's wrong codes in the lockout window and in the day at `now`.
    pub(super) fn failure_counters(
        &self,
        key: &NumberKey,
        windows: FailureWindows,
        now: Timestamp,
    ) -> [String; 2] {
        [
            self.number_counter(key, LOCKOUT_COUNTER, windows.lockout_ms.max(1), now),
            self.number_counter(key, FAILED_COUNTER, windows.day_ms.max(1), now),
        ]
    }

    pub(super) fn pointer_key(&self, key: &NumberKey) -> String {
        format!("{}:{{{}}}:num:{}", self.prefix, key.tag, key.hash)
    }

    /// A rate-limit or detector counter's key for `name`'s window at `now`.
    pub(super) fn counter(&self, name: &str, window_ms: u64, now: Timestamp) -> String {
        // `window_of`'s key, inside the hash tag, in one string.
        let index = window_index(window_ms, now);
        format!("{}:rl:{{{name}:{index}}}", self.prefix)
    }
}

/// Hashed: a nonce is caller-chosen text of any length.
fn nonce_digest(nonce: &str) -> String {
    use sha2::Digest;
    crate::domain::lower_hex(&sha2::Sha256::digest(nonce.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::window_of;

    #[test]
    fn counter_keys_are_their_window_of_names_with_the_prefix_and_tag() {
        let keys = Keys::new("p2fa");
        let number = NumberKey {
            hash: "ab12".into(),
            tag: "x9".into(),
        };
        for (window_ms, now) in [
            (60_000, 0),
            (60_000, 59_999),
            (60_000, 1_764_633_600_123),
            (1, 7),
        ] {
            let now = Timestamp::from_millis(now);
            // What prelude.lua's `count` names from `counter_prefix`.
            let name = format!("{}number:{}", keys.counter_prefix(&number.tag), number.hash);
            assert_eq!(
                keys.number_counter(&number, "number", window_ms, now),
                window_of(&name, window_ms, now).0
            );
            assert_eq!(
                keys.counter("ip:10.0.0.1", window_ms, now),
                format!("p2fa:rl:{{{}}}", window_of("ip:10.0.0.1", window_ms, now).0)
            );
        }
    }
}
