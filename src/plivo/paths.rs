//! The paths of this server that Plivo calls back: written once, here, and
//! used both to build the URLs handed to Plivo (a message's `url`, a call's
//! `answer_url` and `hangup_url`, the GetDigits `action`) and to register the
//! routes that answer them. Every path lives under [`SCOPE`]; the ones that
//! name a verification or a call end with its id or reference.
//!
//! `phlo/2fa.json` spells the PHLO's two callback URLs out
//! (`{{public_base_url}}/plivo/phlo/…`); a test holds it to these.

use crate::domain::{CallRef, VerificationId};

/// The scope every Plivo-facing route is registered under.
pub const SCOPE: &str = "/plivo";
/// A message's status callbacks (then `/{verification id}`).
pub const MESSAGE_STATUS: &str = "/message-status";
/// A call's answer XML (then `/{call reference}`).
pub const VOICE_ANSWER: &str = "/voice/answer";
/// The GetDigits action, "press 1 to hear it again" (then `/{call reference}?n=N`).
pub const VOICE_AGAIN: &str = "/voice/again";
/// A call's hangup (then `/{call reference}`).
pub const VOICE_HANGUP: &str = "/voice/hangup";
/// The 2FA PHLO's Send Message receipts.
pub const PHLO_MESSAGE_STATUS: &str = "/phlo/message-status";
/// The 2FA PHLO's Initiate Call hangup.
pub const PHLO_CALL_STATUS: &str = "/phlo/call-status";
/// The query parameter that counts the replays of a call's code.
pub const REPLAY_PARAM: &str = "n";

/// `/plivo/message-status/{id}`
pub fn message_status(id: &VerificationId) -> String {
    format!("{SCOPE}{MESSAGE_STATUS}/{id}")
}

/// `/plivo/voice/answer/{call}`
pub fn voice_answer(call: &CallRef) -> String {
    format!("{SCOPE}{VOICE_ANSWER}/{}", call.as_str())
}

/// `/plivo/voice/again/{call}?n={replay}`
pub fn voice_again(call: &CallRef, replay: u8) -> String {
    format!(
        "{SCOPE}{VOICE_AGAIN}/{}?{REPLAY_PARAM}={replay}",
        call.as_str()
    )
}

/// `/plivo/voice/hangup/{call}`
pub fn voice_hangup(call: &CallRef) -> String {
    format!("{SCOPE}{VOICE_HANGUP}/{}", call.as_str())
}

/// `/plivo/phlo/message-status` and `/plivo/phlo/call-status`.
pub fn phlo(path: &str) -> String {
    format!("{SCOPE}{path}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_name_their_verification_or_call() {
        let id = VerificationId::generate("a1b2");
        assert_eq!(message_status(&id), format!("/plivo/message-status/{id}"));
        let call = CallRef::generate("a1b2");
        let r = call.as_str();
        assert_eq!(voice_answer(&call), format!("/plivo/voice/answer/{r}"));
        assert_eq!(voice_again(&call, 2), format!("/plivo/voice/again/{r}?n=2"));
        assert_eq!(voice_hangup(&call), format!("/plivo/voice/hangup/{r}"));
    }

    #[test]
    fn the_shipped_phlo_calls_back_on_these_paths() {
        let phlo = include_str!("../../phlo/2fa.json");
        for path in [PHLO_MESSAGE_STATUS, PHLO_CALL_STATUS] {
            let url = format!("\"{{{{public_base_url}}}}{}\"", super::phlo(path));
            assert!(phlo.contains(&url), "phlo/2fa.json calls back on {url}");
        }
    }
}
