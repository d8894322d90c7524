//! Getting a code to a person: the SMS wording per locale, and the choice
//! between a PHLO run and Plivo's Message and Call APIs.

use url::Url;

use crate::domain::{CallRef, Channel, Delivery, OtpCode, Timestamp, Verification};
use crate::plivo::client::{CallRequest, MessageRequest, PhloRunRequest};
use crate::plivo::{PlivoClient, PlivoError};

pub mod sms;

/// The callback path Plivo posts message status to (followed by the verification id).
pub const MESSAGE_STATUS_PATH: &str = "/plivo/message-status/";
/// Plivo fetches a call's answer XML here (followed by the call reference).
pub const ANSWER_PATH: &str = "/plivo/voice/answer/";
/// The GetDigits action: "press 1 to hear it again" (followed by the call reference).
pub const AGAIN_PATH: &str = "/plivo/voice/again/";
/// Plivo posts a call's outcome here (followed by the call reference).
pub const HANGUP_PATH: &str = "/plivo/voice/hangup/";

/// How a code goes out on one send.
#[derive(Debug, Clone, Copy)]
pub enum Dispatch<'a> {
    Sms,
    /// A call whose answer URL carries this reference (Call API only).
    Voice(Option<&'a CallRef>),
}

impl Dispatch<'_> {
    pub fn channel(self) -> Channel {
        match self {
            Dispatch::Sms => Channel::Sms,
            Dispatch::Voice(_) => Channel::Voice,
        }
    }
}

/// Call settings, from configuration.
#[derive(Debug, Clone)]
pub struct CallSettings {
    /// Plivo's `machine_detection`: "hangup" (default), "true", or none.
    pub machine_detection: Option<String>,
    /// Seconds before Plivo ends the call.
    pub time_limit: u32,
}

/// How codes leave this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Plivo's Message and Call APIs.
    Api,
    /// The 2FA PHLO with this id (`mode` sms or call).
    Phlo(String),
}

#[derive(Debug, Clone)]
pub struct Deliverer {
    client: PlivoClient,
    route: Route,
    from: String,
    public_base: Url,
    brand: String,
    lifetime_minutes: u64,
    call: CallSettings,
}

impl Deliverer {
    pub fn new(
        client: PlivoClient,
        route: Route,
        from: String,
        public_base: Url,
        brand: String,
        lifetime_minutes: u64,
        call: CallSettings,
    ) -> Self {
        Self {
            client,
            route,
            from,
            public_base,
            brand,
            lifetime_minutes,
            call,
        }
    }

    /// Whether voice codes go through the Call API (and so need a call reference).
    pub fn calls_need_reference(&self) -> bool {
        self.route == Route::Api
    }

    pub fn brand(&self) -> &str {
        &self.brand
    }

    pub fn lifetime_minutes(&self) -> u64 {
        self.lifetime_minutes
    }

    pub fn public_url(&self, path: &str) -> String {
        let base = self.public_base.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// Sends `code` for `verification`; returns the delivery to record.
    #[tracing::instrument(skip_all, fields(verification.id = %verification.id, channel = dispatch.channel().as_str()))]
    pub async fn send(
        &self,
        verification: &Verification,
        code: &OtpCode,
        dispatch: Dispatch<'_>,
        now: Timestamp,
    ) -> Result<Delivery, PlivoError> {
        let channel = dispatch.channel();
        let to = verification.to.as_e164().to_owned();
        let provider_id = match (&self.route, dispatch) {
            (Route::Phlo(phlo_id), _) => {
                let request = PhloRunRequest {
                    from: self.from.clone(),
                    to,
                    mode: match channel {
                        Channel::Sms => "sms",
                        Channel::Voice => "call",
                    }
                    .to_owned(),
                    otp: code.expose().to_owned(),
                };
                self.client.run_phlo(phlo_id, &request).await?
            }
            (Route::Api, Dispatch::Sms) => {
                let request = MessageRequest {
                    src: self.from.clone(),
                    dst: to,
                    text: sms::text(
                        &verification.locale,
                        &self.brand,
                        code,
                        self.lifetime_minutes,
                    ),
                    url: self.public_url(&format!("{MESSAGE_STATUS_PATH}{}", verification.id)),
                    method: "POST".to_owned(),
                    log: false,
                };
                self.client.send_message(&request).await?
            }
            (Route::Api, Dispatch::Voice(call_ref)) => {
                let call_ref = call_ref.ok_or_else(|| {
                    PlivoError::InvalidResponse("a call needs a call reference".into())
                })?;
                let request = CallRequest {
                    from: self.from.clone(),
                    to,
                    answer_url: self.public_url(&format!("{ANSWER_PATH}{}", call_ref.as_str())),
                    answer_method: "POST".to_owned(),
                    hangup_url: self.public_url(&format!("{HANGUP_PATH}{}", call_ref.as_str())),
                    hangup_method: "POST".to_owned(),
                    machine_detection: self.call.machine_detection.clone(),
                    time_limit: self.call.time_limit,
                };
                self.client.make_call(&request).await?
            }
        };
        tracing::info!("code handed to Plivo");
        Ok(Delivery {
            channel,
            provider_id,
            status: "queued".to_owned(),
            error_code: None,
            updated_at: now.as_millis(),
            call: None,
            sequence: None,
            created_at: Some(now.as_millis()),
        })
    }
}
