//! Test numbers: in sandbox mode, sending to one of these makes the simulator
//! fail on purpose, so fallback and error paths can be tried by hand and by
//! tests. All are valid US numbers in the 555-01xx range reserved for fiction.

/// Plivo's API answers 500 to any request for this number.
pub const API_ERROR_500: &str = "+12025550150";

/// A call to this number is answered and the callee presses 1 at every prompt.
pub const CALL_PRESSES_ONE: &str = "+12025550151";
/// A call to this number is never answered (CallStatus no-answer).
pub const CALL_NO_ANSWER: &str = "+12025550152";

/// An SMS to this number is reported undelivered (ErrorCode 30, spam
/// detected); like [`SMS_FAILED`] it has no WhatsApp either, so a WhatsApp
/// start on it goes down the whole fallback chain.
pub const SMS_UNDELIVERED: &str = "+12025550153";
/// An SMS to this number is reported failed (ErrorCode 300, failed to dispatch).
pub const SMS_FAILED: &str = "+12025550154";
/// An SMS to this number never gets a delivery receipt.
pub const SMS_NO_RECEIPT: &str = "+12025550155";

/// A number with no WhatsApp: a WhatsApp message to it is reported failed
/// with [`NOT_ON_WHATSAPP_ERROR`]; SMS and calls reach it as usual.
pub const NOT_ON_WHATSAPP: &str = "+12025550156";
/// The error code of a WhatsApp message to a number without WhatsApp.
/// Plivo's WhatsApp error codes page
/// (<https://www.plivo.com/docs/privatebeta/whatsapp/api/troubleshooting/error-codes/>)
/// names no code for it that we could find: this is 50, "Invalid
/// Destination Number", the closest code Plivo documents.
pub const NOT_ON_WHATSAPP_ERROR: &str = "50";

/// The one number of the sandbox's Powerpack: messages sent with a
/// `powerpack_uuid` come from it.
pub const POWERPACK_NUMBER: &str = "+14155550198";

/// Every test number with what it does, for the README and the demo page.
pub const ALL: &[(&str, &str)] = &[
    (
        SMS_UNDELIVERED,
        "an SMS is reported undelivered (ErrorCode 30); no WhatsApp either",
    ),
    (
        SMS_FAILED,
        "an SMS is reported failed (ErrorCode 300); no WhatsApp either",
    ),
    (
        SMS_NO_RECEIPT,
        "an SMS (or a WhatsApp message) never gets a delivery receipt",
    ),
    (
        NOT_ON_WHATSAPP,
        "has no WhatsApp: a WhatsApp message is reported failed (ErrorCode 50); SMS and calls arrive",
    ),
    (
        API_ERROR_500,
        "Plivo's API answers 500 Internal Server Error",
    ),
    (
        CALL_PRESSES_ONE,
        "a call is answered and the callee presses 1 at every prompt",
    ),
    (CALL_NO_ANSWER, "a call is not answered (no-answer)"),
];

#[cfg(test)]
mod tests {
    use crate::domain::PhoneNumber;

    #[test]
    fn every_test_number_is_a_valid_e164_number() {
        for (n, _) in super::ALL {
            assert!(PhoneNumber::parse(n).is_ok(), "{n}");
        }
    }
}
