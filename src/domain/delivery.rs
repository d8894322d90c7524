//! One attempt to deliver a code, as Plivo reported it, and where it stands. The words are Plivo's message and
//! call states, which the API shows as Plivo reported them; the order they
//! rank in is this server's, so a late or repeated callback never moves a
//! delivery backwards: unknown < queued < sent < in progress < any final word.

use std::fmt;

use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::verification::Channel;

/// The status of a delivery whose send had no clear outcome (Plivo timed
/// out, or its 2xx answer could not be read): the code may have left. It
/// ranks below every status Plivo reports, so any receipt moves it forward.
pub const UNKNOWN_STATUS: &str = "unknown";

/// A delivery's status. Plivo may add words: one this server does not list
/// is kept as it came ([`DeliveryStatus::Unlisted`], shown as reported) and
/// ranks lowest, so the first word it knows moves the delivery on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// The send's outcome is unknown ([`UNKNOWN_STATUS`]).
    Unknown,
    Queued,
    /// A call placed, not yet ringing.
    Initiated,
    Sent,
    Ringing,
    InProgress,
    Answered,
    Delivered,
    /// WhatsApp: the message was read.
    Read,
    Undelivered,
    Failed,
    Rejected,
    /// A call that ended (answered or not: its outcome says).
    Completed,
    Busy,
    NoAnswer,
    Canceled,
    Timeout,
    /// A word this server does not know, as Plivo wrote it.
    Unlisted(Box<str>),
}

/// Every listed status, for parsing and for metric labels.
const LISTED: [DeliveryStatus; 17] = [
    DeliveryStatus::Unknown,
    DeliveryStatus::Queued,
    DeliveryStatus::Initiated,
    DeliveryStatus::Sent,
    DeliveryStatus::Ringing,
    DeliveryStatus::InProgress,
    DeliveryStatus::Answered,
    DeliveryStatus::Delivered,
    DeliveryStatus::Read,
    DeliveryStatus::Undelivered,
    DeliveryStatus::Failed,
    DeliveryStatus::Rejected,
    DeliveryStatus::Completed,
    DeliveryStatus::Busy,
    DeliveryStatus::NoAnswer,
    DeliveryStatus::Canceled,
    DeliveryStatus::Timeout,
];

/// The metric label of a status this server does not list (labels come
/// from a closed set: each distinct value would be a series kept forever).
pub const UNLISTED_LABEL: &str = "other";

impl DeliveryStatus {
    /// The status a word names; a word not listed is kept as it is.
    pub fn parse(word: &str) -> Self {
        LISTED
            .iter()
            .find(|s| s.as_str() == word)
            .cloned()
            .unwrap_or_else(|| DeliveryStatus::Unlisted(word.into()))
    }

    /// The word, as Plivo writes it.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::Unlisted(word) => word,
            listed => listed.label(),
        }
    }

    /// Where the status stands: a report replaces a recorded one only when
    /// it ranks higher (or equal, with a later `Sequence`).
    pub fn rank(&self) -> u8 {
        match self {
            DeliveryStatus::Unknown | DeliveryStatus::Unlisted(_) => 0,
            DeliveryStatus::Queued | DeliveryStatus::Initiated => 1,
            DeliveryStatus::Sent | DeliveryStatus::Ringing => 2,
            DeliveryStatus::InProgress | DeliveryStatus::Answered => 3,
            DeliveryStatus::Delivered
            | DeliveryStatus::Undelivered
            | DeliveryStatus::Failed
            | DeliveryStatus::Rejected
            | DeliveryStatus::Completed
            | DeliveryStatus::Busy
            | DeliveryStatus::NoAnswer
            | DeliveryStatus::Canceled
            | DeliveryStatus::Timeout => 4,
            // WhatsApp's read receipt comes after its delivered one, and a
            // failure reported after it (another of the user's devices)
            // does not undo that the user saw the code.
            DeliveryStatus::Read => 5,
        }
    }

    /// The status as a metric label: its word, or [`UNLISTED_LABEL`].
    pub fn label(&self) -> &'static str {
        match self {
            DeliveryStatus::Unlisted(_) => UNLISTED_LABEL,
            DeliveryStatus::Unknown => UNKNOWN_STATUS,
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Initiated => "initiated",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Ringing => "ringing",
            DeliveryStatus::InProgress => "in-progress",
            DeliveryStatus::Answered => "answered",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Undelivered => "undelivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Rejected => "rejected",
            DeliveryStatus::Completed => "completed",
            DeliveryStatus::Busy => "busy",
            DeliveryStatus::NoAnswer => "no-answer",
            DeliveryStatus::Canceled => "canceled",
            DeliveryStatus::Timeout => "timeout",
        }
    }

    /// A message that arrived: delivered, or (WhatsApp) read. What stops
    /// the fallback.
    pub fn arrived(&self) -> bool {
        matches!(self, DeliveryStatus::Delivered | DeliveryStatus::Read)
    }

    /// A message that will not arrive: what moves the fallback on.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            DeliveryStatus::Undelivered | DeliveryStatus::Failed | DeliveryStatus::Rejected
        )
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DeliveryStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeliveryStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::parse(&word))
    }
}

/// One attempt to deliver the code, as Plivo reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: Channel,
    /// Plivo's message_uuid, request_uuid or phlo_run_id.
    pub provider_id: String,
    /// Plivo's own status word (queued, sent, delivered, …).
    pub status: DeliveryStatus,
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
        format!("{LOCAL_ID_PREFIX}{}", super::lower_hex(&random))
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
        let (new_rank, old_rank) = (self.status.rank(), old.status.rank());
        new_rank > old_rank
            || (new_rank == old_rank
                && self.status != old.status
                && matches!((self.sequence, old.sequence), (Some(n), Some(o)) if n > o))
    }
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

impl From<&str> for DeliveryStatus {
    fn from(word: &str) -> Self {
        Self::parse(word)
    }
}

impl PartialEq<&str> for DeliveryStatus {
    fn eq(&self, word: &&str) -> bool {
        self.as_str() == *word
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_word_parses_back_to_itself_and_others_are_kept_as_written() {
        for s in &LISTED {
            assert_eq!(&DeliveryStatus::parse(s.as_str()), s);
            assert_eq!(s.label(), s.as_str());
        }
        let odd = DeliveryStatus::parse("Accepted by carrier");
        assert_eq!(odd.as_str(), "Accepted by carrier");
        assert_eq!(odd.rank(), 0);
        assert_eq!(odd.label(), UNLISTED_LABEL);
    }

    #[test]
    fn statuses_rank_unknown_then_queued_sent_in_progress_then_final() {
        let rank = |w: &str| DeliveryStatus::parse(w).rank();
        assert_eq!(rank(UNKNOWN_STATUS), 0);
        assert!(rank("queued") < rank("sent"));
        assert!(rank("sent") < rank("in-progress"));
        assert!(rank("ringing") < rank("answered"));
        for end in [
            "delivered",
            "undelivered",
            "failed",
            "completed",
            "no-answer",
            "read",
        ] {
            assert!(rank("in-progress") < rank(end), "{end}");
        }
    }

    #[test]
    fn read_ranks_above_delivered_and_any_failure() {
        let rank = |w: &str| DeliveryStatus::parse(w).rank();
        for before in ["queued", "sent", "delivered", "undelivered", "failed"] {
            assert!(rank(before) < rank("read"), "{before}");
        }
    }

    #[test]
    fn a_status_is_stored_and_shown_as_its_word() {
        let json = serde_json::to_string(&DeliveryStatus::NoAnswer).unwrap();
        assert_eq!(json, "\"no-answer\"");
        let back: DeliveryStatus = serde_json::from_str("\"undelivered\"").unwrap();
        assert!(back.is_failure());
        let odd: DeliveryStatus = serde_json::from_str("\"x-new\"").unwrap();
        assert_eq!(odd, DeliveryStatus::Unlisted("x-new".into()));
    }

    #[test]
    fn a_status_label_is_a_known_word_or_other() {
        let status_label = |w: &str| DeliveryStatus::parse(w).label();
        assert_eq!(status_label("delivered"), "delivered");
        assert_eq!(status_label("no-answer"), "no-answer");
        for free_text in ["", "Delivered", "delivered ", "x".repeat(300).as_str()] {
            assert_eq!(status_label(free_text), "other", "{free_text:?}");
        }
        for known in LISTED.iter().filter(|s| **s != DeliveryStatus::Unknown) {
            assert!(known.rank() > 0, "{known} has a rank");
        }
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
}
