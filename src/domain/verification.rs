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

use super::application::ApplicationId;
use super::delivery::Delivery;
#[cfg(test)]
use super::delivery::DeliveryStatus;
pub use super::fallback::{FallbackChannels, FallbackTrigger};
use super::keyring::TAG_HEX_LEN;
use super::locale::Locale;
use super::phone::PhoneNumber;
use super::time::Timestamp;

pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
const ID_HEX_LEN: usize = 32;

/// How a code goes out: a text message, a voice call, or a WhatsApp
/// authentication template message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Voice,
    /// A WhatsApp authentication template message.
    #[serde(rename = "whatsapp")]
    WhatsApp,
}

impl Channel {
    /// Every channel, for metrics that start at zero for each.
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Voice, Channel::WhatsApp];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::WhatsApp => "whatsapp",
        }
    }

    /// Whether the channel sends a message (whose receipts say whether it
    /// arrived), rather than placing a call.
    pub fn is_message(self) -> bool {
        self != Channel::Voice
    }
}

impl FromStr for Channel {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "sms" => Ok(Channel::Sms),
            "voice" => Ok(Channel::Voice),
            "whatsapp" => Ok(Channel::WhatsApp),
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

    /// The status a reader should see at `now` of a verification that
    /// expires at `expires_at`: a pending one past its expiry is expired even
    /// before anything wrote that down.
    pub fn at(self, expires_at: Timestamp, now: Timestamp) -> Status {
        if self == Status::Pending && now >= expires_at {
            Status::Expired
        } else {
            self
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

tagged_id!(
    /// `VE` and 32 lowercase hex digits; the first four hex digits are the number's
    /// hash tag, so a verification's keys can be found from its id alone.
    #[derive(Clone, PartialEq, Eq, Hash, Serialize)]
    #[serde(transparent)]
    VerificationId,
    "VE",
    "The hash tag shared by every key of this verification."
);

/// The opaque reference in a voice call's answer URL: `CR`, the number's hash
/// tag, and random hex. Unguessable, and it never carries the code.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CallRef(String);

const CALL_REF_PREFIX: &str = "CR";

impl CallRef {
    pub fn generate(tag: &str) -> Self {
        let mut random = [0u8; ID_HEX_LEN / 2];
        OsRng.fill_bytes(&mut random);
        let hex = super::lower_hex(&random);
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

/// Why an automatic fallback was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackSkip {
    NotPending,
    /// The chain has no next step, or that step was taken already (by an
    /// earlier fallback, or by a send on its channel).
    AlreadyUsed,
    /// A message arrived (`delivered` or `read`).
    Delivered,
    SendLimit,
}

/// A verification as the API shows it. Holds no code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub id: VerificationId,
    /// The application it was started for: only that application's key sees it.
    pub application: ApplicationId,
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
    /// The channels the automatic fallback has sent on, in order.
    pub fallbacks: Vec<Channel>,
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
        self.status.at(self.expires_at, now)
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

    /// Claims the next step of the automatic fallback along `channels`
    /// (see [`FallbackChannels::next`]), counting it as a send: the channel
    /// to send the same code on. Each step is taken once, none after a
    /// message arrived, none past `max_sends`.
    pub fn claim_fallback(
        &mut self,
        channels: FallbackChannels,
        trigger: FallbackTrigger,
        max_sends: u32,
        now: Timestamp,
    ) -> Result<Channel, FallbackSkip> {
        if !self.settle(now) {
            return Err(FallbackSkip::NotPending);
        }
        let next = channels
            .next(self.channel, trigger, &self.fallbacks)
            .ok_or(FallbackSkip::AlreadyUsed)?;
        if self.fallbacks.contains(&next) || self.deliveries.iter().any(|d| d.channel == next) {
            return Err(FallbackSkip::AlreadyUsed);
        }
        if self
            .deliveries
            .iter()
            .any(|d| d.channel.is_message() && d.status.arrived())
        {
            return Err(FallbackSkip::Delivered);
        }
        if self.sends >= max_sends {
            return Err(FallbackSkip::SendLimit);
        }
        self.fallbacks.push(next);
        self.sends += 1;
        self.last_sent_at = now;
        Ok(next)
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

    fn pending() -> Verification {
        Verification {
            id: VerificationId::generate("abcd"),
            application: ApplicationId::default(),
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
            fallbacks: vec![],
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
            status: DeliveryStatus::parse(status),
            error_code: None,
            updated_at: 0,
            call: None,
            sequence,
            created_at: None,
        }
    }

    const TIMER: FallbackTrigger = FallbackTrigger::NoReceipt;

    #[test]
    fn the_fallback_is_claimed_once_and_not_after_delivery_or_at_the_send_limit() {
        let chain = FallbackChannels::default();
        let mut v = pending();
        assert_eq!(v.claim_fallback(chain, TIMER, 5, T0), Ok(Channel::Voice));
        assert_eq!(v.sends, 2);
        assert_eq!(
            v.claim_fallback(chain, TIMER, 5, T0),
            Err(FallbackSkip::AlreadyUsed)
        );
        let mut w = pending();
        w.deliveries.push(sms("delivered", None));
        assert_eq!(
            w.claim_fallback(chain, TIMER, 5, T0),
            Err(FallbackSkip::Delivered)
        );
        let mut x = pending();
        x.sends = 5;
        assert_eq!(
            x.claim_fallback(chain, TIMER, 5, T0),
            Err(FallbackSkip::SendLimit)
        );
        let mut y = pending();
        assert_eq!(
            y.claim_fallback(chain, TIMER, 5, y.expires_at),
            Err(FallbackSkip::NotPending)
        );
    }

    #[test]
    fn a_whatsapp_verification_falls_back_to_sms_then_to_voice_each_once() {
        let chain = FallbackChannels::default();
        let failed = FallbackTrigger::Failed;
        let mut v = pending();
        v.channel = Channel::WhatsApp;
        assert_eq!(
            v.claim_fallback(chain, failed(Channel::WhatsApp), 5, T0),
            Ok(Channel::Sms)
        );
        // A late second failure report of the WhatsApp message moves nothing.
        assert_eq!(
            v.claim_fallback(chain, failed(Channel::WhatsApp), 5, T0),
            Err(FallbackSkip::AlreadyUsed)
        );
        assert_eq!(
            v.claim_fallback(chain, failed(Channel::Sms), 5, T0),
            Ok(Channel::Voice)
        );
        assert_eq!(v.fallbacks, vec![Channel::Sms, Channel::Voice]);
        assert_eq!(v.sends, 3);
        assert_eq!(
            v.claim_fallback(chain, TIMER, 5, T0),
            Err(FallbackSkip::AlreadyUsed)
        );
    }

    #[test]
    fn a_read_whatsapp_message_or_the_send_limit_ends_the_chain() {
        let chain = FallbackChannels::default();
        let mut v = pending();
        v.channel = Channel::WhatsApp;
        let mut read = sms("read", None);
        read.channel = Channel::WhatsApp;
        v.deliveries.push(read);
        assert_eq!(
            v.claim_fallback(chain, TIMER, 5, T0),
            Err(FallbackSkip::Delivered)
        );
        let mut w = pending();
        w.channel = Channel::WhatsApp;
        assert_eq!(w.claim_fallback(chain, TIMER, 2, T0), Ok(Channel::Sms));
        assert_eq!(
            w.claim_fallback(chain, TIMER, 2, T0),
            Err(FallbackSkip::SendLimit)
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
}
