//! Where a delivery of the code stands. The words are Plivo's message and
//! call states, which the API shows as Plivo reported them; the order they
//! rank in is this server's, so a late or repeated callback never moves a
//! delivery backwards: unknown < queued < sent < in progress < any final word.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
            | DeliveryStatus::Read
            | DeliveryStatus::Undelivered
            | DeliveryStatus::Failed
            | DeliveryStatus::Rejected
            | DeliveryStatus::Completed
            | DeliveryStatus::Busy
            | DeliveryStatus::NoAnswer
            | DeliveryStatus::Canceled
            | DeliveryStatus::Timeout => 4,
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

    /// A message that will not arrive: what falls back to a call.
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
    fn a_status_is_stored_and_shown_as_its_word() {
        let json = serde_json::to_string(&DeliveryStatus::NoAnswer).unwrap();
        assert_eq!(json, "\"no-answer\"");
        let back: DeliveryStatus = serde_json::from_str("\"undelivered\"").unwrap();
        assert!(back.is_failure());
        let odd: DeliveryStatus = serde_json::from_str("\"x-new\"").unwrap();
        assert_eq!(odd, DeliveryStatus::Unlisted("x-new".into()));
    }
}
