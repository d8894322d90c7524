//! Getting a code to a person: the SMS wording per locale, the Message fields
//! (sender or Powerpack, expiry, India's DLT), and the choice between a PHLO
//! run and Plivo's Message and Call APIs.

use url::Url;

use crate::domain::{CallRef, Channel, Delivery, DeliveryStatus, OtpCode, Timestamp, Verification};
use crate::plivo::client::{
    Accepted, CallRequest, DltFields, LOG_NOTHING, MAX_MESSAGE_EXPIRY_SECS,
    MIN_MESSAGE_EXPIRY_SECS, MessageRequest, PhloRunRequest, REDACTED,
};
use crate::plivo::whatsapp::{self, WhatsAppMessageRequest};
use crate::plivo::{PlivoClient, PlivoError, paths};

pub use sms::{AppHash, SmsWording};

pub mod sms;

/// How a code goes out on one send.
#[derive(Debug, Clone, Copy)]
pub enum Dispatch<'a> {
    /// An SMS, ending with this app's SMS Retriever hash when the start gave one.
    Sms(Option<&'a AppHash>),
    /// A call whose answer URL carries this reference (Call API only).
    Voice(Option<&'a CallRef>),
    /// A WhatsApp authentication template from this sender (the Message
    /// API, in PHLO mode too: the 2FA PHLO sends SMS and calls only).
    WhatsApp(&'a WhatsAppSender),
}

impl Dispatch<'_> {
    pub fn channel(self) -> Channel {
        match self {
            Dispatch::Sms(_) => Channel::Sms,
            Dispatch::Voice(_) => Channel::Voice,
            Dispatch::WhatsApp(_) => Channel::WhatsApp,
        }
    }
}

/// An application's WhatsApp sender (`PLIVO_WHATSAPP_FROM`, E.164) and
/// approved authentication template (`WHATSAPP_TEMPLATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppSender {
    pub from: String,
    pub template: String,
}

/// Call settings, from configuration.
#[derive(Debug, Clone)]
pub struct CallSettings {
    /// Plivo's `machine_detection`: "hangup" (default), "true", or none.
    pub machine_detection: Option<String>,
    /// Seconds before Plivo ends the call.
    pub time_limit: u32,
}

/// Who an SMS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsSender {
    /// One number or alphanumeric sender ID (`src`).
    Number(String),
    /// A Plivo Powerpack number pool (`powerpack_uuid`, and no `src`).
    Powerpack(String),
}

/// The country calling code India's DLT rules apply to.
pub const DLT_CALLING_CODE: &str = "+91";

/// How codes leave this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Plivo's Message and Call APIs.
    Api,
    /// The 2FA PHLO with this id (`mode` sms or call).
    Phlo(String),
}

/// How this server sends codes, for every application alike (the wording is
/// each application's own): from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub route: Route,
    /// The caller ID of calls (and the PHLO's `from`); `None`: no voice.
    pub voice_from: Option<String>,
    pub sender: SmsSender,
    /// India's DLT registration, sent on every SMS to a +91 number.
    pub dlt: Option<DltFields>,
    pub call: CallSettings,
}

#[derive(Debug, Clone)]
pub struct Deliverer {
    client: PlivoClient,
    public_base: Url,
    settings: Settings,
}

impl Deliverer {
    pub fn new(client: PlivoClient, public_base: Url, settings: Settings) -> Self {
        Self {
            client,
            public_base,
            settings,
        }
    }

    /// Whether voice codes go through the Call API (and so need a call reference).
    pub fn calls_need_reference(&self) -> bool {
        self.settings.route == Route::Api
    }

    /// Whether codes can be sent by voice (a caller ID is configured).
    pub fn voice_available(&self) -> bool {
        self.settings.voice_from.is_some()
    }

    /// Whether the SMS text is this server's (false in PHLO mode, where the
    /// PHLO writes it, so autofill lines cannot be added).
    pub fn writes_sms_text(&self) -> bool {
        self.settings.route == Route::Api
    }

    pub fn public_url(&self, path: &str) -> String {
        let base = self.public_base.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// Sends `code` for `verification`; returns the delivery to record. A send
    /// whose outcome is unknown (a timeout, an unreadable 2xx) is a delivery
    /// with status [`DeliveryStatus::Unknown`], not an error: Plivo may have sent it.
    /// Errors are definite, and their text holds no code, number or secret.
    #[tracing::instrument(skip_all, fields(verification.id = %verification.id, channel = dispatch.channel().as_str()))]
    pub async fn send(
        &self,
        verification: &Verification,
        code: &OtpCode,
        dispatch: Dispatch<'_>,
        wording: &SmsWording,
        now: Timestamp,
    ) -> Result<Delivery, PlivoError> {
        let channel = dispatch.channel();
        let result = self
            .request(verification, code, dispatch, wording, now)
            .await;
        let (provider_id, status) = match result {
            Ok(accepted) => {
                tracing::info!("code handed to Plivo");
                let id = accepted.provider_id.unwrap_or_else(Delivery::local_id);
                (id, DeliveryStatus::Queued)
            }
            Err(e) => {
                let to = verification.to.as_e164();
                let masked = verification.to.masked();
                let e = e.redact(&[
                    (to, &masked),
                    (to.trim_start_matches('+'), &masked),
                    (code.expose(), REDACTED),
                ]);
                if !e.is_ambiguous() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "Plivo may or may not have the code: delivery unknown");
                (Delivery::local_id(), DeliveryStatus::Unknown)
            }
        };
        Ok(Delivery {
            channel,
            provider_id,
            status,
            error_code: None,
            updated_at: now.as_millis(),
            call: None,
            sequence: None,
            created_at: Some(now.as_millis()),
        })
    }

    async fn request(
        &self,
        verification: &Verification,
        code: &OtpCode,
        dispatch: Dispatch<'_>,
        wording: &SmsWording,
        now: Timestamp,
    ) -> Result<Accepted, PlivoError> {
        let to = verification.to.as_e164().to_owned();
        let voice_from = || {
            self.settings
                .voice_from
                .clone()
                .ok_or_else(|| PlivoError::NotSent("no PLIVO_FROM_NUMBER to call from".into()))
        };
        match (&self.settings.route, dispatch) {
            (_, Dispatch::WhatsApp(sender)) => {
                let request = WhatsAppMessageRequest::authentication(
                    &sender.from,
                    &to,
                    &self.public_url(&paths::message_status(&verification.id)),
                    &sender.template,
                    whatsapp::template_language(&verification.locale),
                    code.expose(),
                );
                self.client.send_whatsapp(&request).await
            }
            (Route::Phlo(phlo_id), _) => {
                let request = PhloRunRequest {
                    from: voice_from()?,
                    to,
                    mode: match dispatch.channel() {
                        Channel::Voice => "call",
                        Channel::Sms | Channel::WhatsApp => "sms",
                    }
                    .to_owned(),
                    otp: code.expose().to_owned(),
                };
                self.client.run_phlo(phlo_id, &request).await
            }
            (Route::Api, Dispatch::Sms(app_hash)) => {
                let left_secs = now.millis_until(verification.expires_at) / 1000;
                if left_secs < MIN_MESSAGE_EXPIRY_SECS {
                    // Plivo could deliver it after the code stopped working.
                    return Err(PlivoError::NotSent(
                        "the code expires too soon to be sent by SMS".into(),
                    ));
                }
                let dlt = self
                    .settings
                    .dlt
                    .clone()
                    .filter(|_| to.starts_with(DLT_CALLING_CODE));
                let (src, powerpack_uuid) = match &self.settings.sender {
                    SmsSender::Number(n) => (Some(n.clone()), None),
                    SmsSender::Powerpack(p) => (None, Some(p.clone())),
                };
                let text = wording.render(
                    &verification.locale,
                    code,
                    verification.minutes_left(now),
                    app_hash,
                    dlt.is_some(),
                );
                let request = MessageRequest {
                    src,
                    powerpack_uuid,
                    dst: to,
                    text,
                    url: self.public_url(&paths::message_status(&verification.id)),
                    method: "POST".to_owned(),
                    log: LOG_NOTHING.to_owned(),
                    message_expiry: left_secs.min(MAX_MESSAGE_EXPIRY_SECS),
                    dlt,
                };
                self.client.send_message(&request).await
            }
            (Route::Api, Dispatch::Voice(call_ref)) => {
                let call_ref = call_ref
                    .ok_or_else(|| PlivoError::NotSent("a call needs a call reference".into()))?;
                let request = CallRequest {
                    from: voice_from()?,
                    to,
                    answer_url: self.public_url(&paths::voice_answer(call_ref)),
                    answer_method: "POST".to_owned(),
                    hangup_url: self.public_url(&paths::voice_hangup(call_ref)),
                    hangup_method: "POST".to_owned(),
                    machine_detection: self.settings.call.machine_detection.clone(),
                    time_limit: self.settings.call.time_limit,
                };
                self.client.make_call(&request).await
            }
        }
    }
}
