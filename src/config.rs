//! Settings, read once at start-up from the environment and, optionally, a TOML
//! file given with `--config` (the same keys; the environment wins). Any bad or
//! missing value stops start-up with one line naming the variable.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use secrecy::{SecretSlice, SecretString};
use url::Url;

use crate::domain::code::CodeLength;
use crate::domain::keyring::MIN_SECRET_BYTES;
use crate::limits::Limit;
use crate::store::redis::{DEFAULT_KEY_PREFIX, RedisTarget};

/// Every key this server reads, for validating config files.
pub const KEYS: &[&str] = &[
    "LISTEN_ADDR",
    "PUBLIC_BASE_URL",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "REDIS_TIMEOUT_MS",
    "PLIVO_AUTH_ID",
    "PLIVO_AUTH_TOKEN",
    "PLIVO_FROM_NUMBER",
    "PLIVO_PHLO_ID",
    "PLIVO_API_BASE_URL",
    "PLIVO_PHLO_BASE_URL",
    "PLIVO_TIMEOUT_MS",
    "PLIVO_CONNECT_TIMEOUT_MS",
    "PLIVO_ACCEPT_V2",
    "API_KEYS",
    "OTP_SECRET",
    "OTP_LENGTH",
    "VERIFICATION_LIFETIME_MINUTES",
    "MAX_ATTEMPTS",
    "RESEND_COOLDOWN_SECS",
    "MAX_SENDS",
    "BRAND_NAME",
    "XML_TEMPLATES_DIR",
    "VOICE_MACHINE_DETECTION",
    "VOICE_TIME_LIMIT_SECS",
    "TRUSTED_PROXIES",
    "FALLBACK",
    "FALLBACK_AFTER_SECS",
    "SCHEDULER_POLL_MS",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "RATE_LIMIT_NUMBER",
    "RATE_LIMIT_IP",
    "RATE_LIMIT_API_KEY",
    "RATE_LIMIT_COUNTRY",
    "RATE_LIMIT_GLOBAL",
    "ALLOWED_COUNTRIES",
    "PUMPING_MIN_CONVERSION",
    "PUMPING_MIN_VOLUME",
    "PUMPING_WINDOW_MINUTES",
    "PUMPING_COOLOFF_MINUTES",
    "SAFE_NUMBERS",
    "LOCKOUT_AFTER_EXHAUSTED",
    "LOCKOUT_MINUTES",
    "MAX_FAILED_CHECKS_PER_DAY",
    "DEMO_PAGE",
    "PLIVO_POWERPACK_UUID",
    "PLIVO_DLT_ENTITY_ID",
    "PLIVO_DLT_TEMPLATE_ID",
    "PLIVO_DLT_TEMPLATE_CATEGORY",
    "SMS_TEXT",
    "WEBOTP_DOMAIN",
    "PHLO_RECEIPTS",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_IP",
];

/// `SMS_TEXT_<LOCALE>` (`SMS_TEXT_ES_ES`, `SMS_TEXT_PT`): keys with this
/// prefix are read besides [`KEYS`], from the environment and the TOML file.
pub const SMS_TEXT_PREFIX: &str = "SMS_TEXT_";

/// India's DLT template categories, as Plivo takes them.
pub const DLT_TEMPLATE_CATEGORIES: &[&str] = &[
    "service_implicit",
    "service_explicit",
    "transactional",
    "promotional",
];

/// Whether a configuration file may hold `key` (upper case).
pub fn is_known_key(key: &str) -> bool {
    KEYS.contains(&key) || key.starts_with(SMS_TEXT_PREFIX)
}

/// Countries allowed by default: markets with low SMS-pumping risk where
/// Plivo delivers directly. Widen with ALLOWED_COUNTRIES (`*` allows all).
pub const DEFAULT_ALLOWED_COUNTRIES: &str =
    "US,CA,GB,IE,FR,DE,ES,IT,PT,NL,BE,LU,AT,CH,DK,SE,NO,FI,PL,AU,NZ,JP,SG,IN,BR,MX";

/// The abuse defences, from configuration (see SECURITY.md).
#[derive(Debug, Clone)]
pub struct AbuseSettings {
    pub per_number: Limit,
    pub per_ip: Limit,
    pub per_api_key: Limit,
    pub per_country: Limit,
    pub global: Limit,
    /// ISO regions allowed; `None`: all.
    pub allowed_countries: Option<Vec<String>>,
    pub pumping_min_conversion: f64,
    pub pumping_min_volume: u64,
    pub pumping_window: Duration,
    pub pumping_cooloff: Duration,
    /// E.164 numbers that bypass the pumping detector and the geo rules.
    pub safe_numbers: Vec<String>,
    /// Exhausted verifications' worth of wrong codes (`LOCKOUT_AFTER_EXHAUSTED`)…
    pub lockout_after_exhausted: u64,
    /// …that is, this many wrong codes (`LOCKOUT_AFTER_EXHAUSTED` × `MAX_ATTEMPTS`)
    /// within one `lockout` window lock the number's starts for the rest of it,
    /// whatever ended the verifications they were typed into.
    pub lockout_failed_checks: u64,
    pub lockout: Duration,
    pub max_failed_checks_per_day: u64,
}

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_PLIVO_API_BASE_URL: &str = "https://api.plivo.com";
pub const DEFAULT_PLIVO_PHLO_BASE_URL: &str = "https://phlorunner.plivo.com";
/// The sender the sandbox uses when none is configured.
pub const SANDBOX_FROM_NUMBER: &str = "+14155550199";
const MIN_API_KEY_LEN: usize = 16;
pub const DEFAULT_BRAND_NAME: &str = "plivo-2fa";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

fn err(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        reason: reason.into(),
    }
}

/// Real Plivo, or the built-in simulator.
#[derive(Debug, Clone)]
pub enum PlivoMode {
    Live {
        auth_id: String,
        /// The first signs nothing (Plivo signs); all are accepted on callbacks.
        auth_tokens: Vec<SecretString>,
    },
    Sandbox,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    /// `None`: `http://{the bound address}`.
    pub public_base_url: Option<Url>,
    /// `None`: the embedded in-memory store.
    pub redis: Option<RedisTarget>,
    pub redis_key_prefix: String,
    pub redis_timeout: Duration,
    pub plivo: PlivoMode,
    /// The caller ID of calls (and the sender, unless a Powerpack sends SMS);
    /// `None` only with a Powerpack, and then there are no calls.
    pub from_number: Option<String>,
    pub phlo_id: Option<String>,
    /// The 2FA PHLO's Send Message node posts its receipts to this server.
    pub phlo_receipts: bool,
    /// Sender, wording and DLT fields of every SMS.
    pub sms: crate::delivery::SmsSettings,
    pub plivo_api_base_url: Url,
    pub plivo_phlo_base_url: Url,
    pub plivo_timeout: Duration,
    pub plivo_connect_timeout: Duration,
    /// Accept V2-only signatures on receipt callbacks (they leave the
    /// parameters unsigned); never on the routes that read a code out.
    pub plivo_accept_v2: bool,
    /// Empty in sandbox mode means: generate one at start-up.
    pub api_keys: Vec<SecretString>,
    /// Empty in sandbox mode means: random per process.
    pub otp_secrets: Vec<SecretSlice<u8>>,
    pub code_length: CodeLength,
    pub lifetime: Duration,
    pub max_attempts: u32,
    pub resend_cooldown: Duration,
    pub max_sends: u32,
    pub brand_name: String,
    pub templates_dir: PathBuf,
    /// Plivo's `machine_detection` for code calls; `None` turns it off.
    pub machine_detection: Option<String>,
    pub voice_time_limit_secs: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// After how long without a delivered receipt an SMS falls back to a call; `None`: never.
    pub fallback_after: Option<Duration>,
    /// How often each instance looks for due jobs (fallbacks, events).
    pub scheduler_poll: Duration,
    /// Where signed events go, with the key that signs them.
    pub webhook: Option<(Url, SecretSlice<u8>)>,
    pub abuse: AbuseSettings,
    /// Serve the demo page at `/` and its endpoints under `/demo/`.
    pub demo_page: bool,
    /// The host a phone's browser fills codes in for (WebOTP): the demo page
    /// asks `navigator.credentials.get({otp})` when it is set. Added with the
    /// demo page's WebOTP (issue 15); the SMS's `@domain #code` line reads the
    /// same setting (issue 11).
    pub webotp_domain: Option<String>,
    /// Connections held at once; `None`: sized from the file-descriptor limit.
    pub max_connections: Option<u64>,
    /// Connections one client address holds at once; `None`: sized likewise.
    pub max_connections_per_ip: Option<u64>,
}

impl Settings {
    pub fn is_sandbox(&self) -> bool {
        matches!(self.plivo, PlivoMode::Sandbox)
    }

    /// Environment over an optional TOML file.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut vars = match config_file {
            Some(path) => read_toml(path)?,
            None => BTreeMap::new(),
        };
        for key in KEYS {
            if let Ok(value) = std::env::var(key) {
                vars.insert((*key).to_owned(), value);
            }
        }
        for (key, value) in std::env::vars_os() {
            if let (Some(key), Some(value)) = (key.to_str(), value.to_str())
                && key.starts_with(SMS_TEXT_PREFIX)
            {
                vars.insert(key.to_owned(), value.to_owned());
            }
        }
        Self::from_vars(&vars)
    }

    /// Builds settings from a map of the documented keys (tests use this directly).
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());

        let listen_addr = parse_addr(get("LISTEN_ADDR").unwrap_or(DEFAULT_LISTEN_ADDR))?;
        let public_base_url = get("PUBLIC_BASE_URL")
            .map(|v| parse_base_url("PUBLIC_BASE_URL", v))
            .transpose()?;

        let redis = get("REDIS_URL")
            .map(|v| RedisTarget::parse(v).map_err(|r| err("REDIS_URL", r)))
            .transpose()?;
        let redis_key_prefix = get("REDIS_KEY_PREFIX")
            .unwrap_or(DEFAULT_KEY_PREFIX)
            .to_owned();
        if redis_key_prefix.contains(['{', '}', ' ']) {
            return Err(err("REDIS_KEY_PREFIX", "must not contain braces or spaces"));
        }
        let redis_timeout = millis(get, "REDIS_TIMEOUT_MS", 1_000, 10..=60_000)?;

        let auth_id = get("PLIVO_AUTH_ID");
        let auth_token = get("PLIVO_AUTH_TOKEN");
        let plivo = match (auth_id, auth_token) {
            (None, None) => PlivoMode::Sandbox,
            (Some(_), None) => {
                return Err(err(
                    "PLIVO_AUTH_TOKEN",
                    "is required when PLIVO_AUTH_ID is set",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "PLIVO_AUTH_ID",
                    "is required when PLIVO_AUTH_TOKEN is set",
                ));
            }
            (Some(id), Some(tokens)) => {
                if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(err(
                        "PLIVO_AUTH_ID",
                        "must be letters and digits, as in the Plivo console",
                    ));
                }
                PlivoMode::Live {
                    auth_id: id.to_owned(),
                    auth_tokens: split_list(tokens)
                        .map(|t| SecretString::from(t.to_owned()))
                        .collect(),
                }
            }
        };
        let sandbox = matches!(plivo, PlivoMode::Sandbox);
        if !sandbox && public_base_url.is_none() {
            return Err(err(
                "PUBLIC_BASE_URL",
                "is required with Plivo credentials: it is the URL Plivo calls back and signs (your https domain, or the ngrok URL)",
            ));
        }

        let powerpack = get("PLIVO_POWERPACK_UUID")
            .map(|p| {
                if is_uuid(p) {
                    Ok(p.to_ascii_lowercase())
                } else {
                    Err(err(
                        "PLIVO_POWERPACK_UUID",
                        "must be the Powerpack's UUID, as in the Plivo console (8-4-4-4-12 hex digits)",
                    ))
                }
            })
            .transpose()?;
        let from_number = match get("PLIVO_FROM_NUMBER") {
            Some(n) => Some({
                let e164 = n.strip_prefix('+').is_some_and(|d| {
                    (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
                });
                let sender_id =
                    (3..=11).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric());
                if !e164 && !sender_id {
                    return Err(err(
                        "PLIVO_FROM_NUMBER",
                        "must be an E.164 number such as +14155550100, or an alphanumeric sender ID",
                    ));
                }
                n.to_owned()
            }),
            None if sandbox => Some(SANDBOX_FROM_NUMBER.to_owned()),
            // A Powerpack sends the SMS; only calls need a number of their own.
            None if powerpack.is_some() && get("PLIVO_PHLO_ID").is_none() => None,
            None => {
                return Err(err(
                    "PLIVO_FROM_NUMBER",
                    "is required when Plivo credentials are set (with PLIVO_POWERPACK_UUID, only for voice calls)",
                ));
            }
        };
        let phlo_id = get("PLIVO_PHLO_ID")
            .map(|p| {
                if p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    Ok(p.to_owned())
                } else {
                    Err(err(
                        "PLIVO_PHLO_ID",
                        "must be the PHLO's id (letters, digits and dashes)",
                    ))
                }
            })
            .transpose()?;
        let phlo_receipts = match get("PHLO_RECEIPTS") {
            None => false,
            Some(v) if phlo_id.is_none() => {
                parse_bool("PHLO_RECEIPTS", v)?;
                return Err(err("PHLO_RECEIPTS", "only applies with PLIVO_PHLO_ID"));
            }
            Some(v) => parse_bool("PHLO_RECEIPTS", v)?,
        };
        let plivo_api_base_url = parse_base_url(
            "PLIVO_API_BASE_URL",
            get("PLIVO_API_BASE_URL").unwrap_or(DEFAULT_PLIVO_API_BASE_URL),
        )?;
        let plivo_phlo_base_url = parse_base_url(
            "PLIVO_PHLO_BASE_URL",
            get("PLIVO_PHLO_BASE_URL").unwrap_or(DEFAULT_PLIVO_PHLO_BASE_URL),
        )?;
        let plivo_timeout = millis(get, "PLIVO_TIMEOUT_MS", 10_000, 100..=120_000)?;
        let plivo_connect_timeout = millis(get, "PLIVO_CONNECT_TIMEOUT_MS", 3_000, 100..=60_000)?;
        let plivo_accept_v2 =
            parse_bool("PLIVO_ACCEPT_V2", get("PLIVO_ACCEPT_V2").unwrap_or("false"))?;

        let api_keys: Vec<SecretString> = match get("API_KEYS") {
            Some(keys) => {
                let keys: Vec<&str> = split_list(keys).collect();
                if let Some(short) = keys.iter().find(|k| k.len() < MIN_API_KEY_LEN) {
                    let _ = short;
                    return Err(err(
                        "API_KEYS",
                        format!("every key must be at least {MIN_API_KEY_LEN} characters"),
                    ));
                }
                if keys
                    .iter()
                    .any(|k| !k.bytes().all(|b| b.is_ascii_graphic()))
                {
                    return Err(err(
                        "API_KEYS",
                        "keys must be printable ASCII without spaces",
                    ));
                }
                keys.into_iter()
                    .map(|k| SecretString::from(k.to_owned()))
                    .collect()
            }
            None if sandbox => Vec::new(),
            None => {
                return Err(err(
                    "API_KEYS",
                    "is required outside sandbox mode (comma-separated bearer keys)",
                ));
            }
        };

        let otp_secrets = match get("OTP_SECRET") {
            Some(list) => split_list(list)
                .map(|s| {
                    let bytes = STANDARD
                        .decode(s)
                        .or_else(|_| URL_SAFE.decode(s))
                        .map_err(|_| err("OTP_SECRET", "must be base64"))?;
                    if bytes.len() < MIN_SECRET_BYTES {
                        return Err(err("OTP_SECRET", format!("must decode to at least {MIN_SECRET_BYTES} bytes (try: openssl rand -base64 32)")));
                    }
                    Ok(SecretSlice::from(bytes))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None if sandbox => Vec::new(),
            None => return Err(err("OTP_SECRET", "is required outside sandbox mode (at least 32 random bytes, base64)")),
        };

        let code_length = CodeLength::new(int(get, "OTP_LENGTH", 6, 4..=10)?)
            .ok_or_else(|| err("OTP_LENGTH", "must be between 4 and 10"))?;
        let lifetime = Duration::from_secs(
            60 * u64::from(int::<u32>(
                get,
                "VERIFICATION_LIFETIME_MINUTES",
                10,
                1..=60,
            )?),
        );
        let max_attempts = int(get, "MAX_ATTEMPTS", 5, 1..=20)?;
        let resend_cooldown = Duration::from_secs(int(get, "RESEND_COOLDOWN_SECS", 30, 0..=3_600)?);
        let max_sends = int(get, "MAX_SENDS", 5, 1..=20)?;
        let brand_name = get("BRAND_NAME").unwrap_or(DEFAULT_BRAND_NAME).to_owned();
        if brand_name.chars().count() > 40 || brand_name.chars().any(char::is_control) {
            return Err(err(
                "BRAND_NAME",
                "must be at most 40 characters, without control characters",
            ));
        }
        let sms = sms_settings(
            vars,
            &get,
            powerpack,
            from_number.as_deref(),
            phlo_id.is_some(),
            code_length,
            lifetime,
        )?;
        let templates_dir = PathBuf::from(get("XML_TEMPLATES_DIR").unwrap_or("xml-templates"));
        let machine_detection = match get("VOICE_MACHINE_DETECTION").unwrap_or("hangup") {
            "hangup" => Some("hangup".to_owned()),
            "true" => Some("true".to_owned()),
            "false" | "off" => None,
            _ => {
                return Err(err(
                    "VOICE_MACHINE_DETECTION",
                    "must be hangup, true or false",
                ));
            }
        };
        let voice_time_limit_secs = int(get, "VOICE_TIME_LIMIT_SECS", 120, 30..=600)?;
        let fallback_on = parse_bool("FALLBACK", get("FALLBACK").unwrap_or("true"))?;
        let fallback_after = fallback_on
            .then(|| int::<u64>(get, "FALLBACK_AFTER_SECS", 45, 1..=3_600))
            .transpose()?
            .map(Duration::from_secs);
        let scheduler_poll = millis(get, "SCHEDULER_POLL_MS", 500, 10..=60_000)?;
        let webhook = match (get("WEBHOOK_URL"), get("WEBHOOK_SECRET")) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(err("WEBHOOK_URL", "is required when WEBHOOK_SECRET is set"));
            }
            (Some(_), None) => {
                return Err(err(
                    "WEBHOOK_SECRET",
                    "is required when WEBHOOK_URL is set (whsec_ and base64, at least 24 bytes)",
                ));
            }
            (Some(url), Some(secret)) => {
                let url = parse_base_url("WEBHOOK_URL", url)?;
                let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
                let key = STANDARD.decode(raw).map_err(|_| {
                    err(
                        "WEBHOOK_SECRET",
                        "must be base64, optionally prefixed whsec_",
                    )
                })?;
                if key.len() < 24 {
                    return Err(err("WEBHOOK_SECRET", "must decode to at least 24 bytes"));
                }
                Some((url, SecretSlice::from(key)))
            }
        };
        let lockout_after_exhausted = int(get, "LOCKOUT_AFTER_EXHAUSTED", 3, 1..=100)?;
        let abuse = AbuseSettings {
            per_number: limit(get, "RATE_LIMIT_NUMBER", "5/10m")?,
            per_ip: limit(get, "RATE_LIMIT_IP", "60/1m")?,
            per_api_key: limit(get, "RATE_LIMIT_API_KEY", "600/1m")?,
            per_country: limit(get, "RATE_LIMIT_COUNTRY", "1000/1h")?,
            global: limit(get, "RATE_LIMIT_GLOBAL", "10000/1h")?,
            allowed_countries: match get("ALLOWED_COUNTRIES").unwrap_or(DEFAULT_ALLOWED_COUNTRIES) {
                "*" => None,
                list => Some(
                    split_list(list)
                        .map(|c| {
                            let c = c.to_ascii_uppercase();
                            if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
                                Ok(c)
                            } else {
                                Err(err(
                                    "ALLOWED_COUNTRIES",
                                    format!("{c:?} is not an ISO 3166 country code such as US"),
                                ))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            },
            pumping_min_conversion: match get("PUMPING_MIN_CONVERSION") {
                None => 0.2,
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|f| (0.0..=1.0).contains(f))
                    .ok_or_else(|| {
                        err(
                            "PUMPING_MIN_CONVERSION",
                            "must be a fraction between 0 and 1",
                        )
                    })?,
            },
            pumping_min_volume: int(get, "PUMPING_MIN_VOLUME", 50, 1..=1_000_000)?,
            pumping_window: Duration::from_secs(
                60 * int::<u64>(get, "PUMPING_WINDOW_MINUTES", 60, 10..=1_440)?,
            ),
            pumping_cooloff: Duration::from_secs(
                60 * int::<u64>(get, "PUMPING_COOLOFF_MINUTES", 60, 1..=1_440)?,
            ),
            safe_numbers: get("SAFE_NUMBERS")
                .map(|list| {
                    split_list(list)
                        .map(|n| {
                            crate::domain::PhoneNumber::parse(n)
                                .map(|p| p.as_e164().to_owned())
                                .map_err(|e| err("SAFE_NUMBERS", format!("{n:?}: {e}")))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            lockout_after_exhausted,
            lockout_failed_checks: lockout_after_exhausted * u64::from(max_attempts),
            lockout: Duration::from_secs(60 * int::<u64>(get, "LOCKOUT_MINUTES", 60, 1..=1_440)?),
            max_failed_checks_per_day: int(get, "MAX_FAILED_CHECKS_PER_DAY", 100, 5..=100_000)?,
        };
        let trusted_proxies = get("TRUSTED_PROXIES")
            .map(|list| {
                split_list(list)
                    .map(|p| {
                        p.parse::<ipnet::IpNet>()
                            .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .map_err(|_| {
                                err(
                                    "TRUSTED_PROXIES",
                                    format!("{p:?} is not an IP address or CIDR block"),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        // On by default only in the sandbox: with real credentials a public page
        // that sends codes is a choice an operator makes, not a default.
        let demo_page = match get("DEMO_PAGE") {
            None => sandbox,
            Some(v) => parse_bool("DEMO_PAGE", v)?,
        };

        let webotp_domain = get("WEBOTP_DOMAIN").map(parse_webotp_domain).transpose()?;
        let max_connections = get("MAX_CONNECTIONS")
            .map(|_| int(get, "MAX_CONNECTIONS", 0, 16..=1_000_000))
            .transpose()?;
        let max_connections_per_ip = get("MAX_CONNECTIONS_PER_IP")
            .map(|_| int(get, "MAX_CONNECTIONS_PER_IP", 0, 1..=1_000_000))
            .transpose()?;

        Ok(Self {
            listen_addr,
            public_base_url,
            redis,
            redis_key_prefix,
            redis_timeout,
            plivo,
            from_number,
            phlo_id,
            phlo_receipts,
            sms,
            plivo_api_base_url,
            plivo_phlo_base_url,
            plivo_timeout,
            plivo_connect_timeout,
            plivo_accept_v2,
            api_keys,
            otp_secrets,
            code_length,
            lifetime,
            max_attempts,
            resend_cooldown,
            max_sends,
            brand_name,
            templates_dir,
            machine_detection,
            voice_time_limit_secs,
            trusted_proxies,
            fallback_after,
            scheduler_poll,
            webhook,
            abuse,
            demo_page,
            webotp_domain,
            max_connections,
            max_connections_per_ip,
        })
    }
}

/// The SMS sender, wording (built-in, `SMS_TEXT`, `SMS_TEXT_<LOCALE>`, checked
/// here against one SMS) and India's DLT fields.
#[allow(clippy::too_many_arguments)]
fn sms_settings<'a>(
    vars: &'a BTreeMap<String, String>,
    get: &impl Fn(&str) -> Option<&'a str>,
    powerpack: Option<String>,
    from_number: Option<&str>,
    phlo: bool,
    code_length: CodeLength,
    lifetime: Duration,
) -> Result<crate::delivery::SmsSettings, ConfigError> {
    use crate::delivery::sms::CustomText;
    use crate::delivery::{SmsSender, SmsWording};

    let phlo_owns = |var: &str, what: &str| {
        err(
            var,
            format!(
                "does not apply in PHLO mode (PLIVO_PHLO_ID): the PHLO's Send Message node {what}"
            ),
        )
    };
    let mut custom = Vec::new();
    for (key, value) in vars {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let locale = match key.strip_prefix(SMS_TEXT_PREFIX) {
            Some(suffix) => Some(
                crate::domain::Locale::parse(&suffix.replace('_', "-")).ok_or_else(|| {
                    err(
                        key,
                        "is not SMS_TEXT_ followed by a locale such as ES_ES or PT",
                    )
                })?,
            ),
            None if key == "SMS_TEXT" => None,
            None => continue,
        };
        if phlo {
            return Err(phlo_owns(key, "holds the wording"));
        }
        custom.push(CustomText {
            var: key.clone(),
            locale,
            text: value.to_owned(),
        });
    }
    let webotp = get("WEBOTP_DOMAIN")
        .map(|d| {
            if phlo {
                return Err(phlo_owns("WEBOTP_DOMAIN", "writes the SMS"));
            }
            parse_webotp_domain(d)
        })
        .transpose()?;
    let brand = get("BRAND_NAME").unwrap_or(DEFAULT_BRAND_NAME);
    let max_minutes = u32::try_from(lifetime.as_secs().div_ceil(60)).unwrap_or(u32::MAX);
    let wording = SmsWording::new(
        brand,
        &custom,
        webotp.as_deref(),
        usize::from(code_length.get()),
        max_minutes,
    )
    .map_err(|e| err(&e.var, e.reason))?;

    let sender = match (powerpack, from_number) {
        (Some(_), _) if phlo => {
            return Err(phlo_owns("PLIVO_POWERPACK_UUID", "chooses the sender"));
        }
        (Some(uuid), _) => SmsSender::Powerpack(uuid),
        (None, Some(n)) => SmsSender::Number(n.to_owned()),
        (None, None) => {
            return Err(err(
                "PLIVO_FROM_NUMBER",
                "is required without PLIVO_POWERPACK_UUID",
            ));
        }
    };

    let digits = |var: &str| {
        get(var)
            .map(|v| {
                if (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(v.to_owned())
                } else {
                    Err(err(
                        var,
                        "must be the numeric id from your DLT registration",
                    ))
                }
            })
            .transpose()
    };
    let entity = digits("PLIVO_DLT_ENTITY_ID")?;
    let template = digits("PLIVO_DLT_TEMPLATE_ID")?;
    let category = get("PLIVO_DLT_TEMPLATE_CATEGORY");
    let dlt = match (entity, template) {
        (None, None) => {
            if category.is_some() {
                return Err(err(
                    "PLIVO_DLT_TEMPLATE_CATEGORY",
                    "needs PLIVO_DLT_ENTITY_ID and PLIVO_DLT_TEMPLATE_ID",
                ));
            }
            None
        }
        (Some(_), None) => {
            return Err(err(
                "PLIVO_DLT_TEMPLATE_ID",
                "is required when PLIVO_DLT_ENTITY_ID is set",
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                "PLIVO_DLT_ENTITY_ID",
                "is required when PLIVO_DLT_TEMPLATE_ID is set",
            ));
        }
        (Some(dlt_entity_id), Some(dlt_template_id)) => {
            if phlo {
                return Err(phlo_owns("PLIVO_DLT_ENTITY_ID", "sends the SMS"));
            }
            if !wording.has_default_text() {
                return Err(err(
                    "SMS_TEXT",
                    "is required with PLIVO_DLT_TEMPLATE_ID: set it to the registered template's exact wording (DLT refuses any other text)",
                ));
            }
            let category = category.unwrap_or(DLT_TEMPLATE_CATEGORIES[0]);
            if !DLT_TEMPLATE_CATEGORIES.contains(&category) {
                return Err(err(
                    "PLIVO_DLT_TEMPLATE_CATEGORY",
                    format!("must be one of {}", DLT_TEMPLATE_CATEGORIES.join(", ")),
                ));
            }
            Some(crate::plivo::client::DltFields {
                dlt_entity_id,
                dlt_template_id,
                dlt_template_category: category.to_owned(),
            })
        }
    };
    Ok(crate::delivery::SmsSettings {
        sender,
        wording,
        dlt,
    })
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(v: &str) -> bool {
    let groups: Vec<&str> = v.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `N/WINDOW` with a window such as `30s`, `10m`, `1h` or `1d`.
fn limit<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &str,
    default: &str,
) -> Result<Limit, ConfigError> {
    let raw = get(var).unwrap_or(default);
    let bad = || {
        err(
            var,
            format!("{raw:?} is not a limit such as 5/10m (count/window: s, m, h or d)"),
        )
    };
    let (count, window) = raw.split_once('/').ok_or_else(bad)?;
    let count: u64 = count.trim().parse().map_err(|_| bad())?;
    let window = window.trim();
    let (n, unit) = window.split_at(window.len().saturating_sub(1));
    let n: u64 = if n.is_empty() {
        1
    } else {
        n.parse().map_err(|_| bad())?
    };
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    if count == 0 || secs == 0 || secs > 7 * 86_400 {
        return Err(bad());
    }
    Ok(Limit::new(count, Duration::from_secs(secs)))
}

/// Longest DNS name (RFC 1035: 253 characters written out, labels of 63).
const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// A bare host name, as WebOTP's `@domain` line and the page's origin carry it.
fn parse_webotp_domain(v: &str) -> Result<String, ConfigError> {
    let host = v.to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=MAX_LABEL_LEN).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.len() > MAX_HOST_LEN || !host.split('.').all(label_ok) {
        return Err(err(
            "WEBOTP_DOMAIN",
            format!("{v:?} is not a host name such as example.com (no scheme, port or path)"),
        ));
    }
    Ok(host)
}

fn parse_bool(var: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(err(var, format!("{v:?} is not true or false"))),
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

fn parse_addr(v: &str) -> Result<SocketAddr, ConfigError> {
    v.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            err(
                "LISTEN_ADDR",
                format!("{v:?} is not an address such as 127.0.0.1:8080"),
            )
        })
}

fn parse_base_url(var: &str, v: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(v).map_err(|e| err(var, format!("{v:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(err(var, "must be an http:// or https:// URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err(var, "must not have a query or fragment"));
    }
    Ok(url)
}

fn int<'a, T>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    let value: T = raw
        .parse()
        .map_err(|_| err(var, format!("{raw:?} is not a whole number")))?;
    if !range.contains(&value) {
        return Err(err(
            var,
            format!("must be between {} and {}", range.start(), range.end()),
        ));
    }
    Ok(value)
}

fn millis<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    int(get, var, default, range).map(Duration::from_millis)
}

fn read_toml(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err("--config", format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = text.parse().map_err(|e| {
        err(
            "--config",
            format!("{} is not valid TOML: {e}", path.display()),
        )
    })?;
    let mut vars = BTreeMap::new();
    for (key, value) in table {
        let upper = key.to_ascii_uppercase();
        if !is_known_key(&upper) {
            return Err(err(
                "--config",
                format!("unknown key {key:?} in {}", path.display()),
            ));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s.clone()),
                    _ => Err(err(&upper, "lists must hold strings")),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => {
                return Err(err(
                    &upper,
                    "must be a string, number, boolean or list of strings",
                ));
            }
        };
        vars.insert(upper, text);
    }
    Ok(vars)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn no_configuration_at_all_means_sandbox_with_memory_store() {
        let s = Settings::from_vars(&BTreeMap::new()).unwrap();
        assert!(s.is_sandbox());
        assert!(s.redis.is_none());
        assert_eq!(s.listen_addr.to_string(), DEFAULT_LISTEN_ADDR);
        assert_eq!(s.lifetime, Duration::from_secs(600));
        assert_eq!(s.code_length.get(), 6);
    }

    #[test]
    fn live_mode_names_each_missing_variable() {
        let base = [
            ("PLIVO_AUTH_ID", "MAXXXXXXXXXXXXXXXXXX"),
            ("PLIVO_AUTH_TOKEN", "tok"),
        ];
        let e = Settings::from_vars(&vars(&base)).unwrap_err();
        assert_eq!(e.var, "PUBLIC_BASE_URL");
        let mut v = vars(&base);
        v.insert("PUBLIC_BASE_URL".into(), "https://otp.example.com".into());
        assert_eq!(
            Settings::from_vars(&v).unwrap_err().var,
            "PLIVO_FROM_NUMBER"
        );
        v.insert("PLIVO_FROM_NUMBER".into(), "+14155550100".into());
        assert_eq!(Settings::from_vars(&v).unwrap_err().var, "API_KEYS");
        v.insert("API_KEYS".into(), "0123456789abcdef".into());
        assert_eq!(Settings::from_vars(&v).unwrap_err().var, "OTP_SECRET");
        v.insert("OTP_SECRET".into(), SECRET.into());
        assert!(!Settings::from_vars(&v).unwrap().is_sandbox());
    }

    #[test]
    fn bad_values_are_refused_with_their_variable_named() {
        for (k, v) in [
            ("OTP_SECRET", "c2hvcnQ="),
            ("OTP_SECRET", "***"),
            ("OTP_LENGTH", "3"),
            ("OTP_LENGTH", "six"),
            ("VERIFICATION_LIFETIME_MINUTES", "61"),
            ("VERIFICATION_LIFETIME_MINUTES", "0"),
            ("LISTEN_ADDR", "nowhere"),
            ("PUBLIC_BASE_URL", "ftp://x"),
            ("REDIS_URL", "http://localhost"),
            ("API_KEYS", "short"),
            ("REDIS_KEY_PREFIX", "a{b}"),
            ("PLIVO_ACCEPT_V2", "sometimes"),
            ("MAX_CONNECTIONS", "8"),
            ("MAX_CONNECTIONS_PER_IP", "0"),
        ] {
            let e = Settings::from_vars(&vars(&[(k, v)])).unwrap_err();
            assert_eq!(e.var, k, "{k}={v}");
            assert!(e.to_string().starts_with(k));
        }
    }

    #[test]
    fn the_demo_page_is_on_in_the_sandbox_and_off_with_plivo_credentials_unless_set() {
        assert!(Settings::from_vars(&BTreeMap::new()).unwrap().demo_page);
        assert!(
            !Settings::from_vars(&vars(&[("DEMO_PAGE", "false")]))
                .unwrap()
                .demo_page
        );
        let live = [
            ("PLIVO_AUTH_ID", "MAXXXXXXXXXXXXXXXXXX"),
            ("PLIVO_AUTH_TOKEN", "tok"),
            ("PLIVO_FROM_NUMBER", "+14155550100"),
            ("API_KEYS", "0123456789abcdef"),
            ("OTP_SECRET", SECRET),
            ("PUBLIC_BASE_URL", "https://otp.example.com"),
        ];
        assert!(!Settings::from_vars(&vars(&live)).unwrap().demo_page);
        let mut on = vars(&live);
        on.insert("DEMO_PAGE".into(), "true".into());
        assert!(Settings::from_vars(&on).unwrap().demo_page);
        let e = Settings::from_vars(&vars(&[("DEMO_PAGE", "maybe")])).unwrap_err();
        assert_eq!(e.var, "DEMO_PAGE");
    }

    #[test]
    fn webotp_domain_is_a_bare_host_name() {
        let s = Settings::from_vars(&vars(&[("WEBOTP_DOMAIN", "Otp.Example.com")])).unwrap();
        assert_eq!(s.webotp_domain.as_deref(), Some("otp.example.com"));
        assert!(
            Settings::from_vars(&BTreeMap::new())
                .unwrap()
                .webotp_domain
                .is_none()
        );
        for bad in [
            "https://example.com",
            "example.com:443",
            "example.com/otp",
            "-example.com",
            "exa mple.com",
            "example..com",
        ] {
            let e = Settings::from_vars(&vars(&[("WEBOTP_DOMAIN", bad)])).unwrap_err();
            assert_eq!(e.var, "WEBOTP_DOMAIN", "{bad}");
        }
    }

    #[test]
    fn several_redis_seeds_or_the_cluster_scheme_mean_a_cluster() {
        let s = Settings::from_vars(&vars(&[("REDIS_URL", "redis://a:1,redis://b:2")])).unwrap();
        assert!(matches!(s.redis, Some(RedisTarget::Cluster(ref n)) if n.len() == 2));
        let s = Settings::from_vars(&vars(&[("REDIS_URL", "redis+cluster://a:1,b:2")])).unwrap();
        assert_eq!(
            s.redis,
            Some(RedisTarget::Cluster(vec![
                "redis://a:1".into(),
                "redis://b:2".into()
            ]))
        );
        let s = Settings::from_vars(&vars(&[("REDIS_URL", "unix:///tmp/r.sock")])).unwrap();
        assert!(matches!(s.redis, Some(RedisTarget::Single(_))));
    }

    #[test]
    fn limits_read_as_count_per_window() {
        let get = |v: &'static str| move |_: &str| Some(v);
        assert_eq!(
            limit(get("5/10m"), "X", "").unwrap(),
            Limit::new(5, Duration::from_secs(600))
        );
        assert_eq!(
            limit(get("100/d"), "X", "").unwrap(),
            Limit::new(100, Duration::from_secs(86_400))
        );
        for bad in ["5", "0/1m", "5/10", "5/10x", "x/1m", "5/0s"] {
            assert_eq!(limit(get(bad), "X", "").unwrap_err().var, "X", "{bad}");
        }
    }

    #[test]
    fn a_toml_file_gives_the_same_keys_and_refuses_unknown_ones() {
        let dir = std::env::temp_dir().join(format!("p2fa-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, "listen_addr = \"127.0.0.1:9999\"\nOTP_LENGTH = 8\nAPI_KEYS = [\"0123456789abcdef\", \"fedcba9876543210\"]\n").unwrap();
        let v = read_toml(&good).unwrap();
        let s = Settings::from_vars(&v).unwrap();
        assert_eq!(s.listen_addr.port(), 9999);
        assert_eq!(s.code_length.get(), 8);
        assert_eq!(s.api_keys.len(), 2);
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "LISTEN_ADR = \"x\"\n").unwrap();
        assert_eq!(read_toml(&bad).unwrap_err().var, "--config");
    }

    #[test]
    fn sms_text_keys_for_any_locale_come_from_a_toml_file_and_are_checked() {
        let dir = std::env::temp_dir().join(format!("p2fa-sms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("sms.toml");
        std::fs::write(
            &good,
            "sms_text = \"{code} is your code\"\nSMS_TEXT_ES_ES = \"{code} es tu código\"\nWEBOTP_DOMAIN = \"Example.COM\"\n",
        )
        .unwrap();
        let v = read_toml(&good).unwrap();
        assert!(v.contains_key("SMS_TEXT_ES_ES"));
        let s = Settings::from_vars(&v).unwrap();
        let code = crate::domain::OtpCode::parse("123456", CodeLength::default()).unwrap();
        let es = crate::domain::Locale::parse("es-ES").unwrap();
        let text = s.sms.wording.render(&es, &code, 10, None, false);
        assert_eq!(text, "123456 es tu código\n@example.com #123456");
        let bad = dir.join("bad-sms.toml");
        std::fs::write(&bad, "SMS_TEXT_ES_ES = \"no code\"\n").unwrap();
        assert_eq!(
            Settings::from_vars(&read_toml(&bad).unwrap())
                .unwrap_err()
                .var,
            "SMS_TEXT_ES_ES"
        );
    }

    #[test]
    fn a_powerpack_makes_the_from_number_optional_and_dlt_needs_both_ids_and_sms_text() {
        let live = [
            ("PLIVO_AUTH_ID", "MAXXXXXXXXXXXXXXXXXX"),
            ("PLIVO_AUTH_TOKEN", "tok"),
            ("API_KEYS", "0123456789abcdef"),
            ("OTP_SECRET", SECRET),
            ("PUBLIC_BASE_URL", "https://otp.example.com"),
        ];
        let mut v = vars(&live);
        assert_eq!(
            Settings::from_vars(&v).unwrap_err().var,
            "PLIVO_FROM_NUMBER"
        );
        v.insert(
            "PLIVO_POWERPACK_UUID".into(),
            "D35F2E82-D387-427F-8DB7-4E1F8A5E8A8B".into(),
        );
        let s = Settings::from_vars(&v).unwrap();
        assert!(s.from_number.is_none());
        assert_eq!(
            s.sms.sender,
            crate::delivery::SmsSender::Powerpack("d35f2e82-d387-427f-8db7-4e1f8a5e8a8b".into())
        );
        v.insert("PLIVO_DLT_TEMPLATE_ID".into(), "1207161234567890123".into());
        assert_eq!(
            Settings::from_vars(&v).unwrap_err().var,
            "PLIVO_DLT_ENTITY_ID"
        );
        v.insert("PLIVO_DLT_ENTITY_ID".into(), "1201159543060917386".into());
        assert_eq!(Settings::from_vars(&v).unwrap_err().var, "SMS_TEXT");
        v.insert("SMS_TEXT".into(), "{code} is your code".into());
        let dlt = Settings::from_vars(&v).unwrap().sms.dlt.unwrap();
        assert_eq!(dlt.dlt_template_category, "service_implicit");
        v.insert("PLIVO_PHLO_ID".into(), "abc".into());
        assert!(
            Settings::from_vars(&v).is_err(),
            "a Powerpack does not apply to a PHLO"
        );
    }
}
