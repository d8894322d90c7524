//! Test numbers: in sandbox mode, sending to one of these makes the simulator
//! fail on purpose, so fallback and error paths can be tried by hand and by
//! tests. All are valid US numbers in the 555-01xx range reserved for fiction.

/// Plivo's API answers 500 to any request for this number.
pub const API_ERROR_500: &str = "+12025550150";

/// A call to this number is answered and the callee presses 1 at every prompt.
pub const CALL_PRESSES_ONE: &str = "+12025550151";
/// A call to this number is never answered (CallStatus no-answer).
pub const CALL_NO_ANSWER: &str = "+12025550152";

/// An SMS to this number is reported undelivered (ErrorCode 30, spam detected).
pub const SMS_UNDELIVERED: &str = "+12025550153";
/// An SMS to this number is reported failed (ErrorCode 300, failed to dispatch).
pub const SMS_FAILED: &str = "+12025550154";
/// An SMS to this number never gets a delivery receipt.
pub const SMS_NO_RECEIPT: &str = "+12025550155";

/// The one number of the sandbox's Powerpack: messages sent with a
/// `powerpack_uuid` come from it.
pub const POWERPACK_NUMBER: &str = "+14155550198";

/// Every test number with what it does, for the README and the demo page.
pub const ALL: &[(&str, &str)] = &[
    (
        SMS_UNDELIVERED,
        "an SMS is reported undelivered (ErrorCode 30)",
    ),
    (SMS_FAILED, "an SMS is reported failed (ErrorCode 300)"),
    (SMS_NO_RECEIPT, "an SMS never gets a delivery receipt"),
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
