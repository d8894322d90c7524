//! Applications at run time: what each one sends and allows (its brand, code
//! policy, channels, default locale, SMS wording, abuse defences, webhook),
//! and the registry that finds an application by id or by one of its API
//! keys. Configuration fills in each application's [`Settings`]; start-up
//! turns them into [`App`]s; routes, use cases and jobs take the `App` they
//! act for, and nothing reaches through one for another's parts.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::abuse::{self, SendGuard};
use crate::delivery::{SmsWording, WhatsAppSender};
use crate::domain::code::CodeLength;
use crate::domain::verification::{DEFAULT_MAX_ATTEMPTS, SendPolicy};
use crate::domain::{ApplicationId, Channel, FallbackChannels, Locale, TotpDigits};
use crate::events::{Webhook, WebhookSettings};

/// What an application's codes are like and how often they may be sent.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub code_length: CodeLength,
    pub lifetime: Duration,
    pub max_attempts: u32,
    pub send: SendPolicy,
    /// The automatic fallback on a failure receipt, or after this long
    /// without a delivered (or read) one; `None`: off.
    pub fallback_after: Option<Duration>,
    /// The order it goes in (`FALLBACK_CHANNELS`), without the channels this
    /// application or server cannot send on.
    pub fallback_channels: FallbackChannels,
    /// Whether the missing receipt alone makes the call. Off in PHLO mode
    /// unless `PHLO_RECEIPTS` says the PHLO sends receipts: otherwise no
    /// receipt ever comes and everyone would be called.
    pub fallback_without_receipt: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            code_length: CodeLength::default(),
            lifetime: Duration::from_secs(10 * 60),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            send: SendPolicy {
                cooldown_ms: 30_000,
                max_sends: 5,
            },
            fallback_after: Some(Duration::from_secs(45)),
            fallback_channels: FallbackChannels::default(),
            fallback_without_receipt: true,
        }
    }
}

/// The channels an application sends codes on (`CHANNELS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    sms: bool,
    voice: bool,
    whatsapp: bool,
}

impl Default for Channels {
    /// Every channel (WhatsApp only once its sender and template are set).
    fn default() -> Self {
        Self {
            sms: true,
            voice: true,
            whatsapp: true,
        }
    }
}

impl Channels {
    /// A comma-separated list such as `sms,voice`; at least one channel.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut channels = Self {
            sms: false,
            voice: false,
            whatsapp: false,
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.parse::<Channel>() {
                Ok(Channel::Sms) => channels.sms = true,
                Ok(Channel::Voice) => channels.voice = true,
                Ok(Channel::WhatsApp) => channels.whatsapp = true,
                Err(()) => {
                    return Err(format!(
                        "{name:?} is not a channel (sms, voice or whatsapp)"
                    ));
                }
            }
        }
        if channels.sms || channels.voice || channels.whatsapp {
            Ok(channels)
        } else {
            Err("must name at least one channel: sms, voice, whatsapp".to_owned())
        }
    }

    pub fn allows(self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => self.sms,
            Channel::Voice => self.voice,
            Channel::WhatsApp => self.whatsapp,
        }
    }

    /// These channels, WhatsApp left out (no sender or template for it).
    pub fn without_whatsapp(self) -> Self {
        Self {
            whatsapp: false,
            ..self
        }
    }
}

/// One application's settings, as configuration reads them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub id: ApplicationId,
    /// Its API keys; empty only for the sandbox's default application, which
    /// gets a generated one.
    pub api_keys: Vec<SecretString>,
    pub brand: String,
    pub policy: Policy,
    pub channels: Channels,
    /// The locale of a start that names none.
    pub default_locale: Locale,
    pub wording: SmsWording,
    pub abuse: abuse::Settings,
    pub webhook: Option<WebhookSettings>,
    /// The host a phone's browser fills codes in for (WebOTP).
    pub webotp_domain: Option<String>,
    /// How many digits its new authenticator factors' codes have (`TOTP_DIGITS`).
    pub totp_digits: TotpDigits,
    /// How many live authenticator factors one identity may have
    /// (`MAX_FACTORS_PER_IDENTITY`).
    pub max_factors_per_identity: u32,
    /// Its WhatsApp sender and template; `None`: no WhatsApp.
    pub whatsapp: Option<WhatsAppSender>,
}

/// One application, ready to serve.
#[derive(Debug)]
pub struct App {
    pub id: ApplicationId,
    pub brand: String,
    pub policy: Policy,
    pub channels: Channels,
    pub default_locale: Locale,
    pub wording: SmsWording,
    pub guard: SendGuard,
    /// Where its events go; `None`: it has no webhook.
    pub webhook: Option<Arc<Webhook>>,
    pub webotp_domain: Option<String>,
    pub totp_digits: TotpDigits,
    pub max_factors_per_identity: u32,
    pub whatsapp: Option<WhatsAppSender>,
}

/// The metric label of an application this server does not serve (a record
/// kept from before its table was removed): labels come from a closed set.
pub const UNKNOWN_APP_LABEL: &str = "other";

/// The bearer API keys of every application, held as SHA-256 digests.
#[derive(Clone)]
pub struct ApiKeys {
    /// Each key's digest, with the index of its application and its own
    /// index there (for the per-key limit).
    digests: Vec<([u8; 32], usize, usize)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} key(s))", self.digests.len())
    }
}

impl ApiKeys {
    /// The keys of each application, in the applications' order.
    pub fn new(per_app: &[Vec<SecretString>]) -> Self {
        let mut digests = Vec::new();
        for (app, keys) in per_app.iter().enumerate() {
            for (index, key) in keys.iter().enumerate() {
                digests.push((
                    Sha256::digest(key.expose_secret().as_bytes()).into(),
                    app,
                    index,
                ));
            }
        }
        Self { digests }
    }

    /// The application and key index of the matching key. Every configured
    /// key is compared, in constant time, so neither a key's content nor
    /// which key matched leaks through timing.
    pub fn verify(&self, presented: &str) -> Option<(usize, usize)> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (known, app, index) in &self.digests {
            if bool::from(known.ct_eq(&digest)) {
                found = Some((*app, *index));
            }
        }
        found
    }
}

/// Every application, and which API key belongs to which.
pub struct Apps {
    apps: Vec<Arc<App>>,
    keys: ApiKeys,
}

impl std::fmt::Debug for Apps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apps")
            .field(
                "apps",
                &self.apps.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            )
            .field("keys", &self.keys)
            .finish()
    }
}

impl Apps {
    /// Every application with its keys (configuration made sure no key is
    /// in two applications).
    pub fn new(apps: Vec<(App, Vec<SecretString>)>) -> Self {
        let (apps, keys): (Vec<_>, Vec<_>) = apps.into_iter().unzip();
        Self {
            apps: apps.into_iter().map(Arc::new).collect(),
            keys: ApiKeys::new(&keys),
        }
    }

    pub fn get(&self, id: &ApplicationId) -> Option<&Arc<App>> {
        self.apps.iter().find(|a| &a.id == id)
    }

    /// The application of the top-level settings, when there is one.
    pub fn default_app(&self) -> Option<&Arc<App>> {
        self.apps.iter().find(|a| a.id.is_default())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.apps.iter()
    }

    /// The application a presented key belongs to, with the key's index
    /// there (see [`ApiKeys::verify`]).
    pub fn authenticate(&self, presented: &str) -> Option<(Arc<App>, usize)> {
        let (app, key) = self.keys.verify(presented)?;
        self.apps.get(app).map(|a| (Arc::clone(a), key))
    }

    /// An application id as a metric label: configured ones only.
    pub fn label(&self, id: &ApplicationId) -> String {
        self.get(id)
            .map_or_else(|| UNKNOWN_APP_LABEL.to_owned(), |a| a.id.to_string())
    }

    /// The longest code lifetime of any application (a callback's nonce is
    /// remembered at least that long).
    pub fn longest_lifetime(&self) -> Duration {
        self.apps
            .iter()
            .map(|a| a.policy.lifetime)
            .max()
            .unwrap_or_default()
    }

    /// The brand a call hears when its verification is not known: the
    /// default application's, else the first one's.
    pub fn fallback_brand(&self) -> &str {
        self.default_app()
            .or_else(|| self.apps.first())
            .map_or("", |a| a.brand.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_key_verifies_and_its_index_is_reported() {
        let keys = ApiKeys::new(&[vec![
            SecretString::from("first-key-0123456789"),
            SecretString::from("second-key-0123456789"),
        ]]);
        assert_eq!(keys.verify("second-key-0123456789"), Some((0, 1)));
        assert_eq!(keys.verify("second-key-012345678"), None);
        assert_eq!(keys.verify(""), None);
    }

    #[test]
    fn a_key_names_its_own_application() {
        let keys = ApiKeys::new(&[
            vec![SecretString::from("shop-key-0123456789")],
            vec![
                SecretString::from("bank-key-0123456789"),
                SecretString::from("bank-key-9876543210"),
            ],
        ]);
        assert_eq!(keys.verify("shop-key-0123456789"), Some((0, 0)));
        assert_eq!(keys.verify("bank-key-9876543210"), Some((1, 1)));
    }

    #[test]
    fn channels_are_a_list_of_sms_voice_and_whatsapp() {
        let both = Channels::parse("sms, voice").unwrap_or_default();
        assert!(both.allows(Channel::Sms) && both.allows(Channel::Voice));
        assert!(!both.allows(Channel::WhatsApp));
        let sms = Channels::parse("sms").unwrap_or_default();
        assert!(sms.allows(Channel::Sms) && !sms.allows(Channel::Voice));
        let whatsapp = Channels::parse("whatsapp").unwrap_or_default();
        assert!(whatsapp.allows(Channel::WhatsApp) && !whatsapp.allows(Channel::Sms));
        assert!(
            !Channels::default()
                .without_whatsapp()
                .allows(Channel::WhatsApp)
        );
        assert!(Channels::parse("").is_err());
        assert!(Channels::parse("sms,fax").is_err());
    }
}
