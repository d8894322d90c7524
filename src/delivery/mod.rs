//! Getting a code to a person: the SMS wording per locale, and the choice
//! between a PHLO run and Plivo's Message and Call APIs.

use url::Url;

use crate::domain::{Channel, Delivery, OtpCode, Timestamp, Verification};
use crate::plivo::client::{MessageRequest, PhloRunRequest};
use crate::plivo::{PlivoClient, PlivoError};

pub mod sms;

/// The callback path Plivo posts message status to (followed by the verification id).
pub const MESSAGE_STATUS_PATH: &str = "/plivo/message-status/";

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
}

impl Deliverer {
    pub fn new(
        client: PlivoClient,
        route: Route,
        from: String,
        public_base: Url,
        brand: String,
        lifetime_minutes: u64,
    ) -> Self {
        Self {
            client,
            route,
            from,
            public_base,
            brand,
            lifetime_minutes,
        }
    }

    pub fn public_url(&self, path: &str) -> String {
        let base = self.public_base.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// Sends `code` for `verification` on `channel`; returns the delivery to record.
    #[tracing::instrument(skip_all, fields(verification.id = %verification.id, channel = channel.as_str()))]
    pub async fn send(
        &self,
        verification: &Verification,
        code: &OtpCode,
        channel: Channel,
        now: Timestamp,
    ) -> Result<Delivery, PlivoError> {
        let to = verification.to.as_e164().to_owned();
        let provider_id = match (&self.route, channel) {
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
            (Route::Api, Channel::Sms) => {
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
                };
                self.client.send_message(&request).await?
            }
            (Route::Api, Channel::Voice) => {
                return Err(PlivoError::InvalidResponse(
                    "voice delivery through the Call API is not available yet".into(),
                ));
            }
        };
        tracing::info!("code handed to Plivo");
        Ok(Delivery {
            channel,
            provider_id,
            status: "queued".to_owned(),
            error_code: None,
            updated_at: now.as_millis(),
        })
    }
}
