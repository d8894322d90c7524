//! What Plivo posts to this server, as typed forms: a message's status, a
//! call's answer request, the GetDigits action, a call's hangup, and the 2FA
//! PHLO's receipts. This module owns Plivo's field names (PascalCase, as
//! Plivo sends them) and its rules about their values: `"000"` (or `"0"`)
//! means no error, the hangup causes 4000 and 4010 are a normal end, a number
//! comes without its `+`. Past [`from_pairs`] nothing reads a callback field
//! by its name.
//!
//! Liberal in what it accepts: every field is optional (a route checks what
//! it needs), unknown fields are ignored, an empty value counts as absent,
//! and numbers that do not parse are absent rather than fatal. Plivo's
//! documents: the message status callback
//! (<https://www.plivo.com/docs/messaging/api/message/message-status-callbacks>),
//! the parameters of a voice XML request and a hangup
//! (<https://www.plivo.com/docs/voice/xml/request/>), and the hangup causes
//! (<https://www.plivo.com/docs/voice/troubleshooting/hangup-causes>).

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::domain::{CallOutcome, Channel, Delivery, DeliveryStatus, PhoneNumber, Timestamp};

/// Error codes Plivo sends when there is no error (the Message object says
/// `000` "for successful delivery"; some receipts say `0`).
pub const NO_ERROR_CODES: [&str; 2] = ["000", "0"];

/// Hangup cause codes of a call that ended as it should: 4000 "Normal
/// Hangup" and 4010 "End Of XML Instructions" (Plivo's hangup causes).
pub const NORMAL_HANGUP_CAUSES: [&str; 2] = ["4000", "4010"];

/// What a call's status is taken to be when Plivo's hangup does not say.
pub const DEFAULT_HANGUP_STATUS: &str = "completed";

/// The `Type` of a WhatsApp message's status callback.
pub const WHATSAPP_TYPE: &str = "whatsapp";

/// The one GetDigits answer that replays the code.
pub const REPLAY_DIGITS: &str = "1";

/// Reads a typed form from a callback's parameters (form fields for POST,
/// query pairs for GET). The first of repeated fields counts and empty
/// values count as absent, as Plivo's empty fields mean "not given".
pub fn from_pairs<T: DeserializeOwned>(
    pairs: &[(String, String)],
) -> Result<T, serde_urlencoded::de::Error> {
    let mut seen: Vec<&str> = Vec::with_capacity(pairs.len());
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if value.is_empty() || seen.contains(&key.as_str()) {
            continue;
        }
        seen.push(key);
        form.append_pair(key, value);
    }
    serde_urlencoded::from_str(&form.finish())
}

/// An error code as this server records it: `None` for Plivo's no-error codes.
pub fn error_code(raw: Option<&str>) -> Option<String> {
    raw.filter(|c| !NO_ERROR_CODES.contains(c))
        .map(str::to_owned)
}

/// A number in a callback (`To`, `From`): Plivo omits the `+` of E.164.
pub fn number(raw: &str) -> Option<PhoneNumber> {
    if raw.starts_with('+') {
        PhoneNumber::parse(raw).ok()
    } else {
        PhoneNumber::parse(&format!("+{raw}")).ok()
    }
}

/// A message status callback, to the message's `url` (and the 2FA PHLO's
/// Send Message callback, which carries the same fields).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageStatus {
    #[serde(rename = "MessageUUID")]
    pub message_uuid: Option<String>,
    /// sms, mms or whatsapp (Plivo's status callbacks carry the `Type`
    /// of the message; one without it is taken for an SMS).
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    /// queued, sent, failed, delivered, undelivered, read (WhatsApp only), …
    pub status: Option<String>,
    /// Set for failed and undelivered messages ([`NO_ERROR_CODES`] otherwise).
    pub error_code: Option<String>,
    pub to: Option<String>,
    pub from: Option<String>,
    /// Orders the callbacks of one message.
    pub sequence: Option<String>,
}

impl MessageStatus {
    /// The receipt as a delivery report, of a WhatsApp message when its
    /// `Type` says so and else of an SMS; `None` without the message's id or
    /// status, which a report cannot do without.
    pub fn delivery(&self, now: Timestamp) -> Option<Delivery> {
        let (uuid, status) = (self.message_uuid.as_deref()?, self.status.as_deref()?);
        let channel = match self.kind.as_deref() {
            Some(kind) if kind.eq_ignore_ascii_case(WHATSAPP_TYPE) => Channel::WhatsApp,
            _ => Channel::Sms,
        };
        Some(Delivery {
            channel,
            provider_id: uuid.to_owned(),
            status: DeliveryStatus::parse(&status.to_ascii_lowercase()),
            error_code: error_code(self.error_code.as_deref()),
            updated_at: now.as_millis(),
            call: None,
            sequence: self.sequence.as_deref().and_then(|s| s.parse().ok()),
            created_at: Some(now.as_millis()),
        })
    }

    /// The recipient (the PHLO's receipts name the number, not the verification).
    pub fn recipient(&self) -> Option<PhoneNumber> {
        number(self.to.as_deref()?)
    }
}

/// The request Plivo makes to a call's `answer_url`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallAnswer {
    #[serde(rename = "CallUUID")]
    pub call_uuid: Option<String>,
    pub to: Option<String>,
    pub from: Option<String>,
    /// in-progress (answered) or ringing.
    pub call_status: Option<String>,
}

impl CallAnswer {
    /// The called number.
    pub fn callee(&self) -> Option<PhoneNumber> {
        number(self.to.as_deref()?)
    }
}

/// The request Plivo makes to a GetDigits `action` once the caller pressed
/// keys (or the prompt timed out).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DigitsPressed {
    pub digits: Option<String>,
    pub to: Option<String>,
}

impl DigitsPressed {
    /// Whether the caller asked to hear the code again.
    pub fn wants_replay(&self) -> bool {
        self.digits.as_deref() == Some(REPLAY_DIGITS)
    }

    /// The called number.
    pub fn callee(&self) -> Option<PhoneNumber> {
        number(self.to.as_deref()?)
    }
}

/// How a call ended, as Plivo's hangup requests describe it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HangupDetails {
    /// completed, busy, failed, timeout, no-answer, canceled.
    pub call_status: Option<String>,
    pub hangup_cause: Option<String>,
    pub hangup_cause_name: Option<String>,
    pub hangup_cause_code: Option<String>,
    /// Seconds.
    pub duration: Option<String>,
    pub answer_time: Option<String>,
}

impl HangupDetails {
    /// The call's outcome: answered when it has an answer time or lasted.
    pub fn outcome(&self) -> CallOutcome {
        let duration = self.duration.as_deref().and_then(|d| d.parse::<u32>().ok());
        CallOutcome {
            answered: self.answer_time.is_some() || duration.is_some_and(|d| d > 0),
            hangup_cause_code: self.hangup_cause_code.clone(),
            hangup_cause_name: self
                .hangup_cause_name
                .clone()
                .or_else(|| self.hangup_cause.clone()),
            duration,
        }
    }

    /// The call as a voice delivery with Plivo's id `provider_id`: a normal
    /// end ([`NORMAL_HANGUP_CAUSES`]) carries no error code.
    pub fn delivery(&self, provider_id: &str, now: Timestamp) -> Delivery {
        let outcome = self.outcome();
        Delivery {
            channel: Channel::Voice,
            provider_id: provider_id.to_owned(),
            status: DeliveryStatus::parse(
                self.call_status.as_deref().unwrap_or(DEFAULT_HANGUP_STATUS),
            ),
            error_code: outcome
                .hangup_cause_code
                .clone()
                .filter(|c| !NORMAL_HANGUP_CAUSES.contains(&c.as_str())),
            updated_at: now.as_millis(),
            call: Some(outcome),
            sequence: None,
            created_at: Some(now.as_millis()),
        }
    }
}

/// The request Plivo makes to a call's `hangup_url`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallHangup {
    #[serde(rename = "RequestUUID")]
    pub request_uuid: Option<String>,
    #[serde(rename = "ALegRequestUUID")]
    pub a_leg_request_uuid: Option<String>,
    #[serde(rename = "CallUUID")]
    pub call_uuid: Option<String>,
    pub to: Option<String>,
    #[serde(flatten)]
    pub details: HangupDetails,
}

impl CallHangup {
    /// The call as a voice delivery, by the id the Call API answered with
    /// (`RequestUUID`, else `ALegRequestUUID`, else `CallUUID`); `None`
    /// when the hangup names none.
    pub fn delivery(&self, now: Timestamp) -> Option<Delivery> {
        let id = self
            .request_uuid
            .as_deref()
            .or(self.a_leg_request_uuid.as_deref())
            .or(self.call_uuid.as_deref())?;
        Some(self.details.delivery(id, now))
    }
}

/// The 2FA PHLO's Initiate Call node's hangup callback.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PhloCallStatus {
    #[serde(rename = "RequestUUID")]
    pub request_uuid: Option<String>,
    #[serde(rename = "CallUUID")]
    pub call_uuid: Option<String>,
    pub to: Option<String>,
    #[serde(flatten)]
    pub details: HangupDetails,
}

impl PhloCallStatus {
    /// The call as a voice delivery, by `RequestUUID` else `CallUUID`.
    pub fn delivery(&self, now: Timestamp) -> Option<Delivery> {
        let id = self.request_uuid.as_deref().or(self.call_uuid.as_deref())?;
        Some(self.details.delivery(id, now))
    }

    /// The called number.
    pub fn callee(&self) -> Option<PhoneNumber> {
        number(self.to.as_deref()?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_message_status_reads_plivos_documented_fields_and_ignores_the_rest() {
        // The fields of Plivo's message status callback, as its docs list them.
        let form: MessageStatus = from_pairs(&pairs(&[
            ("MessageUUID", "db3ce55a-7f1d-11e1-8ea7-1231380bc196"),
            ("To", "14155550100"),
            ("From", "14155550199"),
            ("Type", "sms"),
            ("Status", "Delivered"),
            ("Units", "1"),
            ("TotalRate", "0.0050"),
            ("TotalAmount", "0.0050"),
            ("MCC", "310"),
            ("MNC", "260"),
            ("ErrorCode", "000"),
            ("ParentMessageUUID", "db3ce55a-7f1d-11e1-8ea7-1231380bc196"),
            ("PartInfo", "1 of 1"),
            ("Sequence", "3"),
            ("MessageTime", "2026-11-25 19:45:12.123456"),
            ("PowerpackUUID", ""),
        ]))
        .unwrap();
        let d = form.delivery(NOW).unwrap();
        assert_eq!(d.provider_id, "db3ce55a-7f1d-11e1-8ea7-1231380bc196");
        assert_eq!(d.status, "delivered", "Plivo's word, lower-cased");
        assert_eq!(d.error_code, None, "000 is no error");
        assert_eq!(d.sequence, Some(3));
        assert_eq!(d.channel, Channel::Sms);
        assert_eq!(form.recipient().unwrap().as_e164(), "+14155550100");
    }

    #[test]
    fn a_whatsapp_status_reads_as_a_whatsapp_delivery_with_its_read_status() {
        // Plivo's documented WhatsApp callback: the SMS fields, Type
        // whatsapp, `read` among the statuses, and the Conversation fields.
        let form: MessageStatus = from_pairs(&pairs(&[
            ("MessageUUID", "0936ec98-7c4c-11e4-9bd8-22000afa12b9"),
            ("To", "34600111222"),
            ("From", "14155550197"),
            ("Type", "whatsapp"),
            ("Status", "read"),
            ("ErrorCode", "000"),
            ("Sequence", "4"),
            ("ConversationID", "c0ffee"),
            ("ConversationOrigin", "authentication"),
            ("ConversationExpirationTimestamp", "1700086400"),
        ]))
        .unwrap();
        let d = form.delivery(NOW).unwrap();
        assert_eq!(d.channel, Channel::WhatsApp);
        assert_eq!(d.status, DeliveryStatus::Read);
        assert_eq!(d.sequence, Some(4));
        assert_eq!(d.error_code, None);
    }

    #[test]
    fn a_receipt_without_its_id_or_status_is_no_delivery_and_odd_values_are_absent() {
        let none: MessageStatus = from_pairs(&pairs(&[("Status", "sent")])).unwrap();
        assert!(none.delivery(NOW).is_none());
        let empty: MessageStatus =
            from_pairs(&pairs(&[("MessageUUID", "m"), ("Status", "")])).unwrap();
        assert!(empty.delivery(NOW).is_none(), "an empty value is absent");
        let odd: MessageStatus = from_pairs(&pairs(&[
            ("MessageUUID", "m"),
            ("Status", "undelivered"),
            ("ErrorCode", "30"),
            ("Sequence", "first"),
            ("MessageUUID", "second"),
        ]))
        .unwrap();
        let d = odd.delivery(NOW).unwrap();
        assert_eq!(d.provider_id, "m", "the first of repeated fields counts");
        assert_eq!(d.error_code.as_deref(), Some("30"));
        assert_eq!(
            d.sequence, None,
            "a Sequence that is not a number is absent"
        );
    }

    #[test]
    fn no_error_codes_are_000_and_0() {
        assert_eq!(error_code(Some("000")), None);
        assert_eq!(error_code(Some("0")), None);
        assert_eq!(error_code(None), None);
        assert_eq!(error_code(Some("300")).as_deref(), Some("300"));
    }

    #[test]
    fn a_hangup_is_a_voice_delivery_by_its_request_uuid_and_a_normal_end_has_no_error() {
        // The parameters of Plivo's hangup request.
        let base = [
            ("CallUUID", "call-1"),
            ("From", "14155550199"),
            ("To", "14155550100"),
            ("Direction", "outbound"),
            ("ALegUUID", "call-1"),
            ("ALegRequestUUID", "req-a"),
            ("RequestUUID", "req-1"),
            ("CallStatus", "completed"),
            ("Event", "Hangup"),
            ("HangupCause", "End Of XML Instructions"),
            ("HangupCauseCode", "4010"),
            ("HangupSource", "Answer XML"),
            ("Duration", "12"),
            ("BillDuration", "12"),
            ("AnswerTime", "2026-11-25 19:45:12"),
        ];
        let form: CallHangup = from_pairs(&pairs(&base)).unwrap();
        let d = form.delivery(NOW).unwrap();
        assert_eq!(
            (d.provider_id.as_str(), d.status.as_str()),
            ("req-1", "completed")
        );
        assert_eq!(d.error_code, None, "4010 is a normal end");
        let call = d.call.unwrap();
        assert!(call.answered);
        assert_eq!(call.duration, Some(12));
        assert_eq!(
            call.hangup_cause_name.as_deref(),
            Some("End Of XML Instructions"),
            "HangupCause stands in for HangupCauseName"
        );

        let no_answer: CallHangup = from_pairs(&pairs(&[
            ("ALegRequestUUID", "req-a"),
            ("CallUUID", "call-1"),
            ("CallStatus", "no-answer"),
            ("HangupCauseName", "No Answer"),
            ("HangupCauseCode", "3020"),
            ("Duration", "0"),
            ("AnswerTime", ""),
        ]))
        .unwrap();
        let d = no_answer.delivery(NOW).unwrap();
        assert_eq!(d.provider_id, "req-a", "ALegRequestUUID before CallUUID");
        assert_eq!(d.error_code.as_deref(), Some("3020"));
        assert!(!d.call.unwrap().answered);

        let unnamed: CallHangup = from_pairs(&pairs(&[("CallStatus", "busy")])).unwrap();
        assert!(unnamed.delivery(NOW).is_none());
        let bare: CallHangup = from_pairs(&pairs(&[("CallUUID", "c")])).unwrap();
        assert_eq!(bare.delivery(NOW).unwrap().status, DEFAULT_HANGUP_STATUS);
    }

    #[test]
    fn the_phlos_call_status_names_its_call_by_request_or_call_uuid() {
        let form: PhloCallStatus = from_pairs(&pairs(&[
            ("CallUUID", "call-2"),
            ("To", "14155550100"),
            ("CallStatus", "completed"),
            ("HangupCauseName", "Normal Hangup"),
            ("HangupCauseCode", "4000"),
            ("Duration", "12"),
            ("Event", "Hangup"),
        ]))
        .unwrap();
        let d = form.delivery(NOW).unwrap();
        assert_eq!(d.provider_id, "call-2");
        assert_eq!(d.error_code, None);
        assert_eq!(form.callee().unwrap().as_e164(), "+14155550100");
    }

    #[test]
    fn only_the_digit_one_replays_the_code() {
        let form = |digits: &str| -> DigitsPressed {
            from_pairs(&pairs(&[("Digits", digits), ("To", "14155550100")])).unwrap()
        };
        assert!(form("1").wants_replay());
        for other in ["", "2", "11", "#"] {
            assert!(!form(other).wants_replay(), "{other:?}");
        }
    }

    #[test]
    fn callback_numbers_come_with_or_without_the_plus() {
        assert_eq!(number("14155550100").unwrap().as_e164(), "+14155550100");
        assert_eq!(number("+14155550100").unwrap().as_e164(), "+14155550100");
        assert!(number("not a number").is_none());
        let answer: CallAnswer = from_pairs(&pairs(&[("To", "4930901820")])).unwrap();
        assert_eq!(answer.callee().unwrap().as_e164(), "+4930901820");
    }
}
