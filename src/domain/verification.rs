//! A verification and its life: pending until approved, canceled, expired,
//! exhausted by wrong guesses, or failed at delivery. Transitions are pure
//! functions of the current state and `now`; the in-memory store applies them
//! directly and the Redis store's Lua scripts mirror them (one contract test
//! suite holds both to the same behaviour).

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

use super::keyring::TAG_HEX_LEN;
use super::phone::PhoneNumber;
use super::time::Timestamp;

pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
const ID_PREFIX: &str = "VE";
const ID_HEX_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Voice,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }
}

impl FromStr for Channel {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "sms" => Ok(Channel::Sms),
            "voice" => Ok(Channel::Voice),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Canceled,
    Expired,
    MaxAttemptsReached,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Canceled => "canceled",
            Status::Expired => "expired",
            Status::MaxAttemptsReached => "max_attempts_reached",
            Status::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        self != Status::Pending
    }
}

impl FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "canceled" => Status::Canceled,
            "expired" => Status::Expired,
            "max_attempts_reached" => Status::MaxAttemptsReached,
            "failed" => Status::Failed,
            _ => return Err(()),
        })
    }
}

/// `VE` and 32 lowercase hex digits; the first four hex digits are the number's
/// hash tag, so a verification's keys can be found from its id alone.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct VerificationId(String);

impl VerificationId {
    pub fn generate(tag: &str) -> Self {
        let mut random = [0u8; ID_HEX_LEN / 2];
        OsRng.fill_bytes(&mut random);
        let hex = hex::encode(random);
        Self(format!(
            "{ID_PREFIX}{tag}{}",
            &hex[..ID_HEX_LEN - tag.len()]
        ))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix(ID_PREFIX)?;
        (hex.len() == ID_HEX_LEN && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash tag shared by every key of this verification.
    pub fn tag(&self) -> &str {
        &self.0[ID_PREFIX.len()..ID_PREFIX.len() + TAG_HEX_LEN]
    }
}

impl fmt::Display for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The opaque reference in a voice call's answer URL: `CR`, the number's hash
/// tag, and random hex. Unguessable, and it never carries the code.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CallRef(String);

const CALL_REF_PREFIX: &str = "CR";

impl CallRef {
    pub fn generate(tag: &str) -> Self {
        let mut random = [0u8; ID_HEX_LEN / 2];
        OsRng.fill_bytes(&mut random);
        let hex = hex::encode(random);
        Self(format!(
            "{CALL_REF_PREFIX}{tag}{}",
            &hex[..ID_HEX_LEN - tag.len()]
        ))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix(CALL_REF_PREFIX)?;
        (hex.len() == ID_HEX_LEN && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn tag(&self) -> &str {
        &self.0[CALL_REF_PREFIX.len()..CALL_REF_PREFIX.len() + TAG_HEX_LEN]
    }
}

impl fmt::Debug for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only a prefix: the full reference opens the call's answer XML.
        write!(
            f,
            "CallRef({}…)",
            &self.0[..CALL_REF_PREFIX.len() + TAG_HEX_LEN]
        )
    }
}

/// A BCP 47 language tag of the `ll` or `ll-RR` form, normalised to `ll-RR` case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Locale(String);

pub const DEFAULT_LOCALE: &str = "en-US";

impl Locale {
    pub fn parse(s: &str) -> Option<Self> {
        let (lang, region) = match s.split_once('-') {
            Some((l, r)) => (l, Some(r)),
            None => (s, None),
        };
        let lang_ok =
            (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_alphabetic());
        let region_ok = region.is_none_or(|r| {
            (r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()))
                || (r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit()))
        });
        if !lang_ok || !region_ok {
            return None;
        }
        let mut out = lang.to_ascii_lowercase();
        if let Some(r) = region {
            out.push('-');
            out.push_str(&r.to_ascii_uppercase());
        }
        Some(Self(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The locale most people in `region` (ISO 3166, `"DE"`) are addressed
    /// in, from CLDR's likely subtags; `None` for regions not listed here.
    pub fn for_region(region: &str) -> Option<Self> {
        let language = REGION_LANGUAGES
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(region))
            .map(|(_, l)| *l)?;
        Self::parse(&format!("{language}-{region}"))
    }

    /// The closest of `available` (exact, then same language, then `en-US`,
    /// then the first offered).
    pub fn best_match<'a>(&self, available: &[&'a str]) -> &'a str {
        let lang = self.0.split('-').next().unwrap_or_default();
        available
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&self.0))
            .or_else(|| {
                available.iter().find(|a| {
                    a.split('-')
                        .next()
                        .is_some_and(|l| l.eq_ignore_ascii_case(lang))
                })
            })
            .or_else(|| available.iter().find(|a| **a == DEFAULT_LOCALE))
            .or_else(|| available.first())
            .copied()
            .unwrap_or(DEFAULT_LOCALE)
    }
}

/// Region → the language CLDR's likely subtags give it (`und-XX`), for the
/// regions callers are most often in. Anything else is spoken to in en-US.
const REGION_LANGUAGES: &[(&str, &str)] = &[
    ("US", "en"),
    ("CA", "en"),
    ("GB", "en"),
    ("IE", "en"),
    ("AU", "en"),
    ("NZ", "en"),
    ("SG", "en"),
    ("ZA", "en"),
    ("NG", "en"),
    ("KE", "en"),
    ("PH", "en"),
    ("IN", "hi"),
    ("FR", "fr"),
    ("BE", "nl"),
    ("LU", "fr"),
    ("MC", "fr"),
    ("SN", "fr"),
    ("CI", "fr"),
    ("DE", "de"),
    ("AT", "de"),
    ("CH", "de"),
    ("LI", "de"),
    ("ES", "es"),
    ("MX", "es"),
    ("AR", "es"),
    ("CO", "es"),
    ("CL", "es"),
    ("PE", "es"),
    ("VE", "es"),
    ("EC", "es"),
    ("GT", "es"),
    ("CU", "es"),
    ("BO", "es"),
    ("DO", "es"),
    ("HN", "es"),
    ("PY", "es"),
    ("SV", "es"),
    ("NI", "es"),
    ("CR", "es"),
    ("PA", "es"),
    ("UY", "es"),
    ("PR", "es"),
    ("IT", "it"),
    ("SM", "it"),
    ("BR", "pt"),
    ("PT", "pt"),
    ("AO", "pt"),
    ("MZ", "pt"),
    ("NL", "nl"),
    ("DK", "da"),
    ("SE", "sv"),
    ("NO", "nb"),
    ("FI", "fi"),
    ("PL", "pl"),
    ("JP", "ja"),
];

impl Default for Locale {
    fn default() -> Self {
        Self(DEFAULT_LOCALE.to_owned())
    }
}

/// One attempt to deliver the code, as Plivo reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: Channel,
    /// Plivo's message_uuid, request_uuid or phlo_run_id.
    pub provider_id: String,
    /// Plivo's own status word (queued, sent, delivered, …).
    pub status: String,
    pub error_code: Option<String>,
    /// Milliseconds since the epoch; shown as RFC 3339.
    pub updated_at: i64,
    /// For calls: how the call ended, from Plivo's hangup callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallOutcome>,
    /// Plivo's `Sequence` on status callbacks: orders reports of equal rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// When this delivery was first recorded (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
}

/// The status of a delivery whose send had no clear outcome (Plivo timed
/// out, or its 2xx answer could not be read): the code may have left. It
/// ranks below every status Plivo reports, so any receipt moves it forward.
pub const UNKNOWN_STATUS: &str = "unknown";

/// How the provider id of a delivery whose Plivo id is not known starts: a
/// send with an unknown outcome, or a 2xx answer that named no id. Plivo's
/// ids are UUIDs, so no Plivo id starts like this.
pub const LOCAL_ID_PREFIX: &str = "local-";

impl Delivery {
    /// A provider id for a send Plivo named no id for: unique, so several
    /// such sends stay several deliveries.
    pub fn local_id() -> String {
        let mut random = [0u8; 8];
        OsRng.fill_bytes(&mut random);
        format!("{LOCAL_ID_PREFIX}{}", hex::encode(random))
    }

    /// Whether the provider id is Plivo's (not a [`Delivery::local_id`]).
    pub fn has_provider_id(&self) -> bool {
        !self.provider_id.starts_with(LOCAL_ID_PREFIX)
    }

    /// Whether this report, whose provider id matches no recorded delivery,
    /// belongs to `old`: a delivery of the same channel recorded without
    /// Plivo's id. Its first receipt tells which message it was; the report
    /// then replaces it, id and all, so later receipts match as usual.
    pub fn adopts(&self, old: &Delivery) -> bool {
        !old.has_provider_id() && self.has_provider_id() && old.channel == self.channel
    }

    /// Whether this report should replace `old` (same provider id): a later
    /// status by rank, or the same rank with a higher `Sequence`. Duplicates
    /// and out-of-order reports never move a delivery backwards.
    pub fn supersedes(&self, old: &Delivery) -> bool {
        let (new_rank, old_rank) = (delivery_rank(&self.status), delivery_rank(&old.status));
        new_rank > old_rank
            || (new_rank == old_rank
                && self.status != old.status
                && matches!((self.sequence, old.sequence), (Some(n), Some(o)) if n > o))
    }
}

/// Why an automatic voice fallback was not placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackSkip {
    NotPending,
    /// A fallback (or a voice delivery) already happened.
    AlreadyCalled,
    /// The SMS arrived.
    Delivered,
    SendLimit,
}

/// How a voice call ended, as Plivo's hangup callback reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallOutcome {
    pub answered: bool,
    pub hangup_cause_code: Option<String>,
    pub hangup_cause_name: Option<String>,
    /// Seconds.
    pub duration: Option<u32>,
}

/// Orders delivery statuses so a late or repeated callback never moves a
/// delivery backwards: queued < sent < (ringing) < in-progress < any final word.
pub fn delivery_rank(status: &str) -> u8 {
    match status {
        UNKNOWN_STATUS => 0,
        "queued" | "initiated" => 1,
        "sent" | "ringing" => 2,
        "in-progress" | "answered" => 3,
        "delivered" | "undelivered" | "failed" | "rejected" | "completed" | "busy"
        | "no-answer" | "canceled" | "timeout" | "read" => 4,
        _ => 0,
    }
}

/// Every delivery status word [`delivery_rank`] knows (Plivo's message and call states).
const KNOWN_STATUSES: [&str; 16] = [
    "queued",
    "initiated",
    "sent",
    "ringing",
    "in-progress",
    "answered",
    "delivered",
    "undelivered",
    "failed",
    "rejected",
    "completed",
    "busy",
    "no-answer",
    "canceled",
    "timeout",
    "read",
];

/// A delivery status as a metric label: a word this server knows, or `other`
/// (a callback's status is free text, and every label value is a series).
pub fn status_label(status: &str) -> &'static str {
    KNOWN_STATUSES
        .iter()
        .find(|s| **s == status)
        .copied()
        .unwrap_or("other")
}

/// A verification as the API shows it. Holds no code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub id: VerificationId,
    pub to: PhoneNumber,
    pub channel: Channel,
    pub locale: Locale,
    pub status: Status,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub attempts: u32,
    pub max_attempts: u32,
    pub sends: u32,
    pub last_sent_at: Timestamp,
    pub deliveries: Vec<Delivery>,
    /// Whether the automatic SMS→voice fallback has been used.
    pub fallback_used: bool,
}

/// What a check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    Approved,
    /// Wrong code; the verification stays pending.
    Wrong,
    /// Wrong code, and it was the last attempt allowed.
    Exhausted,
    /// The verification had already expired; nothing was counted.
    Expired,
    /// The verification is not pending (its final status is unchanged).
    NotPending(Status),
}

/// Why a re-send was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendRefusal {
    /// Too soon after the last send; retry after this many milliseconds.
    Cooldown(u64),
    /// The verification has had all the sends it may have.
    SendLimit,
}

/// Limits on sending codes for one verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPolicy {
    pub cooldown_ms: u64,
    pub max_sends: u32,
}

impl Verification {
    /// The status a reader should see at `now`: a pending verification past its
    /// expiry is expired even before anything wrote that down.
    pub fn status_at(&self, now: Timestamp) -> Status {
        if self.status == Status::Pending && now >= self.expires_at {
            Status::Expired
        } else {
            self.status
        }
    }

    pub fn attempts_remaining(&self) -> u32 {
        self.max_attempts.saturating_sub(self.attempts)
    }

    /// Settles an expired pending verification; returns whether it is still pending.
    fn settle(&mut self, now: Timestamp) -> bool {
        self.status = self.status_at(now);
        self.status == Status::Pending
    }

    /// Applies one check of a typed code, `matched` being whether its digest
    /// equals the stored one.
    pub fn check(&mut self, matched: bool, now: Timestamp) -> CheckResult {
        let was = self.status;
        if !self.settle(now) {
            return if was == Status::Pending {
                CheckResult::Expired
            } else {
                CheckResult::NotPending(self.status)
            };
        }
        if matched {
            self.status = Status::Approved;
            return CheckResult::Approved;
        }
        // Saturating: a record read back with a corrupt count must exhaust, not overflow.
        self.attempts = self.attempts.saturating_add(1).min(self.max_attempts);
        if self.attempts >= self.max_attempts {
            self.status = Status::MaxAttemptsReached;
            CheckResult::Exhausted
        } else {
            CheckResult::Wrong
        }
    }

    /// Cancels a pending verification; `Err` carries the final status it already had.
    pub fn cancel(&mut self, now: Timestamp) -> Result<(), Status> {
        if !self.settle(now) {
            return Err(self.status);
        }
        self.status = Status::Canceled;
        Ok(())
    }

    /// Marks a pending verification failed (its only delivery could not be made).
    pub fn fail(&mut self, now: Timestamp) -> bool {
        if !self.settle(now) {
            return false;
        }
        self.status = Status::Failed;
        true
    }

    /// Whether the open verification may send its code again.
    pub fn may_resend(&self, policy: SendPolicy, now: Timestamp) -> Result<(), ResendRefusal> {
        let ready_at = self
            .last_sent_at
            .plus(std::time::Duration::from_millis(policy.cooldown_ms));
        if now < ready_at {
            return Err(ResendRefusal::Cooldown(now.millis_until(ready_at)));
        }
        if self.sends >= policy.max_sends {
            return Err(ResendRefusal::SendLimit);
        }
        Ok(())
    }

    /// Whether the open verification may send its code again, and counts the send if so.
    pub fn resend(
        &mut self,
        channel: Channel,
        policy: SendPolicy,
        now: Timestamp,
    ) -> Result<(), ResendRefusal> {
        self.may_resend(policy, now)?;
        self.sends += 1;
        self.last_sent_at = now;
        self.channel = channel;
        Ok(())
    }

    /// Claims the one automatic voice fallback, counting it as a send.
    pub fn claim_fallback(&mut self, max_sends: u32, now: Timestamp) -> Result<(), FallbackSkip> {
        if !self.settle(now) {
            return Err(FallbackSkip::NotPending);
        }
        if self.fallback_used || self.deliveries.iter().any(|d| d.channel == Channel::Voice) {
            return Err(FallbackSkip::AlreadyCalled);
        }
        if self
            .deliveries
            .iter()
            .any(|d| d.channel == Channel::Sms && d.status == "delivered")
        {
            return Err(FallbackSkip::Delivered);
        }
        if self.sends >= max_sends {
            return Err(FallbackSkip::SendLimit);
        }
        self.fallback_used = true;
        self.sends += 1;
        self.last_sent_at = now;
        Ok(())
    }

    /// Whole minutes left at `now`, rounded up and at least 1: what the SMS
    /// and the call say ("it expires in 3 minutes").
    pub fn minutes_left(&self, now: Timestamp) -> u32 {
        now.minutes_until(self.expires_at)
    }

    /// Whether a new start for this number should reuse this verification.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.status_at(now) == Status::Pending
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_000_000);
    const TEN_MIN: i64 = 600_000;

    #[test]
    fn a_status_label_is_a_known_word_or_other() {
        assert_eq!(status_label("delivered"), "delivered");
        assert_eq!(status_label("no-answer"), "no-answer");
        for free_text in ["", "Delivered", "delivered ", "x".repeat(300).as_str()] {
            assert_eq!(status_label(free_text), "other", "{free_text:?}");
        }
        for known in KNOWN_STATUSES {
            assert!(delivery_rank(known) > 0, "{known} has a rank");
        }
    }

    fn pending() -> Verification {
        Verification {
            id: VerificationId::generate("abcd"),
            to: PhoneNumber::parse("+14155550100").unwrap(),
            channel: Channel::Sms,
            locale: Locale::default(),
            status: Status::Pending,
            created_at: T0,
            expires_at: Timestamp::from_millis(T0.as_millis() + TEN_MIN),
            attempts: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            sends: 1,
            last_sent_at: T0,
            deliveries: vec![],
            fallback_used: false,
        }
    }

    #[test]
    fn the_right_code_approves_once() {
        let mut v = pending();
        assert_eq!(v.check(true, T0), CheckResult::Approved);
        assert_eq!(v.check(true, T0), CheckResult::NotPending(Status::Approved));
        assert_eq!(v.status, Status::Approved);
    }

    #[test]
    fn five_wrong_codes_exhaust_the_verification() {
        let mut v = pending();
        for left in (1..5).rev() {
            assert_eq!(v.check(false, T0), CheckResult::Wrong);
            assert_eq!(v.attempts_remaining(), left);
        }
        assert_eq!(v.check(false, T0), CheckResult::Exhausted);
        assert_eq!(v.status, Status::MaxAttemptsReached);
        assert_eq!(v.attempts_remaining(), 0);
        assert_eq!(
            v.check(true, T0),
            CheckResult::NotPending(Status::MaxAttemptsReached)
        );
    }

    #[test]
    fn a_wrong_code_on_a_record_with_a_saturated_attempt_count_exhausts_it_without_overflow() {
        let mut v = pending();
        v.attempts = u32::MAX;
        assert_eq!(v.check(false, T0), CheckResult::Exhausted);
        assert_eq!(v.status, Status::MaxAttemptsReached);
        assert_eq!(v.attempts_remaining(), 0);
    }

    #[test]
    fn a_check_after_expiry_counts_nothing_and_settles_as_expired() {
        let mut v = pending();
        let late = v.expires_at;
        assert_eq!(v.check(true, late), CheckResult::Expired);
        assert_eq!(v.status, Status::Expired);
        assert_eq!(v.attempts, 0);
    }

    #[test]
    fn cancel_only_moves_a_pending_verification() {
        let mut v = pending();
        assert_eq!(v.cancel(T0), Ok(()));
        assert_eq!(v.cancel(T0), Err(Status::Canceled));
        let mut w = pending();
        w.check(true, T0);
        assert_eq!(w.cancel(T0), Err(Status::Approved));
    }

    #[test]
    fn resends_wait_for_the_cooldown_and_stop_at_the_limit() {
        let policy = SendPolicy {
            cooldown_ms: 30_000,
            max_sends: 3,
        };
        let mut v = pending();
        let at = |ms: i64| Timestamp::from_millis(T0.as_millis() + ms);
        assert_eq!(
            v.resend(Channel::Sms, policy, at(10_000)),
            Err(ResendRefusal::Cooldown(20_000))
        );
        assert_eq!(v.resend(Channel::Voice, policy, at(30_000)), Ok(()));
        assert_eq!(v.channel, Channel::Voice);
        assert_eq!(v.resend(Channel::Sms, policy, at(60_000)), Ok(()));
        assert_eq!(
            v.resend(Channel::Sms, policy, at(90_000)),
            Err(ResendRefusal::SendLimit)
        );
    }

    fn sms(status: &str, sequence: Option<u64>) -> Delivery {
        Delivery {
            channel: Channel::Sms,
            provider_id: "m".into(),
            status: status.into(),
            error_code: None,
            updated_at: 0,
            call: None,
            sequence,
            created_at: None,
        }
    }

    #[test]
    fn deliveries_move_forward_by_rank_then_sequence_and_never_back() {
        assert!(sms("sent", None).supersedes(&sms("queued", None)));
        assert!(sms("delivered", Some(2)).supersedes(&sms("sent", Some(1))));
        assert!(!sms("sent", Some(3)).supersedes(&sms("delivered", Some(2))));
        assert!(!sms("delivered", Some(2)).supersedes(&sms("delivered", Some(2))));
        assert!(sms("undelivered", Some(3)).supersedes(&sms("delivered", Some(2))));
        assert!(!sms("undelivered", Some(1)).supersedes(&sms("delivered", Some(2))));
    }

    #[test]
    fn the_fallback_is_claimed_once_and_not_after_delivery_or_at_the_send_limit() {
        let mut v = pending();
        assert_eq!(v.claim_fallback(5, T0), Ok(()));
        assert_eq!(v.sends, 2);
        assert_eq!(v.claim_fallback(5, T0), Err(FallbackSkip::AlreadyCalled));
        let mut w = pending();
        w.deliveries.push(sms("delivered", None));
        assert_eq!(w.claim_fallback(5, T0), Err(FallbackSkip::Delivered));
        let mut x = pending();
        x.sends = 5;
        assert_eq!(x.claim_fallback(5, T0), Err(FallbackSkip::SendLimit));
        let mut y = pending();
        assert_eq!(
            y.claim_fallback(5, y.expires_at),
            Err(FallbackSkip::NotPending)
        );
    }

    #[test]
    fn ids_carry_the_tag_and_parse_back() {
        let id = VerificationId::generate("a1b2");
        assert_eq!(id.as_str().len(), 34);
        assert_eq!(id.tag(), "a1b2");
        assert_eq!(VerificationId::parse(id.as_str()), Some(id));
        assert!(VerificationId::parse("VE123").is_none());
        assert!(VerificationId::parse("VEZZZZ0000000000000000000000000000").is_none());
        assert!(VerificationId::parse("XX00000000000000000000000000000000").is_none());
    }

    #[test]
    fn call_refs_carry_the_tag_parse_back_and_debug_print_only_a_prefix() {
        let r = CallRef::generate("a1b2");
        assert_eq!(r.tag(), "a1b2");
        assert_eq!(CallRef::parse(r.as_str()), Some(r.clone()));
        assert!(!format!("{r:?}").contains(&r.as_str()[8..]));
        assert!(CallRef::parse("CR123").is_none());
        assert!(CallRef::parse(&r.as_str().to_uppercase()).is_none());
    }

    #[test]
    fn locales_fall_back_to_the_same_language_then_to_en_us() {
        let offered = ["en-US", "en-GB", "es-ES", "es-US", "fr-FR"];
        let pick = |s: &str| Locale::parse(s).unwrap().best_match(&offered);
        assert_eq!(pick("en-GB"), "en-GB");
        assert_eq!(pick("es-MX"), "es-ES");
        assert_eq!(pick("fr"), "fr-FR");
        assert_eq!(pick("ja-JP"), "en-US");
    }

    #[test]
    fn locales_normalise_case_and_refuse_junk() {
        assert_eq!(Locale::parse("EN-us").unwrap().as_str(), "en-US");
        assert_eq!(Locale::parse("es-419").unwrap().as_str(), "es-419");
        assert_eq!(Locale::parse("fr").unwrap().as_str(), "fr");
        for bad in ["", "e", "english", "en_US", "en-USA", "<b>", "en-"] {
            assert!(Locale::parse(bad).is_none(), "{bad}");
        }
    }
}
