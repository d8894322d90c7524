//! Settings, read once at start-up from the environment and, optionally, a TOML
//! file given with `--config` (the same keys; the environment wins over the
//! file's top level). The file's `[applications.<id>]` tables declare more
//! applications (see [`applications`]). Every bad or missing value is named,
//! one line each, and start-up stops only once all of them are known.
//!
//! Configuration fills in the settings types their consumers own
//! ([`apps::Settings`], [`abuse::Settings`](crate::abuse::Settings),
//! [`delivery::Settings`], [`WebhookSettings`](crate::events::WebhookSettings)…);
//! only `main` and `startup` use this module.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use secrecy::{SecretSlice, SecretString};
use url::Url;

use crate::apps;
use crate::delivery::{self, CallSettings, Route};
use crate::domain::keyring::MIN_SECRET_BYTES;
use crate::store::redis::{DEFAULT_KEY_PREFIX, RedisTarget};

pub use applications::{APPLICATION_KEYS, Table};
pub use vars::{ConfigError, ConfigErrors};
use vars::{Problems, Vars, err, split_list};

mod applications;
mod file;
mod sms;
mod vars;

/// The keys that configure the whole server; an application's table may not
/// hold them.
pub const SERVER_KEYS: &[&str] = &[
    "LISTEN_ADDR",
    "METRICS_ADDR",
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
    "PLIVO_POWERPACK_UUID",
    "PLIVO_DLT_ENTITY_ID",
    "PLIVO_DLT_TEMPLATE_ID",
    "PLIVO_DLT_TEMPLATE_CATEGORY",
    "PHLO_RECEIPTS",
    "OTP_SECRET",
    "XML_TEMPLATES_DIR",
    "VOICE_MACHINE_DETECTION",
    "VOICE_TIME_LIMIT_SECS",
    "TRUSTED_PROXIES",
    "SCHEDULER_POLL_MS",
    // One ceiling for the one Plivo account, counted across every application.
    "RATE_LIMIT_GLOBAL",
    "DEMO_PAGE",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_IP",
    "PLIVO_CHECK_CREDENTIALS",
];

/// The voice templates' directory, replacing the built-in ones.
pub const TEMPLATES_DIR_KEY: &str = "XML_TEMPLATES_DIR";

/// Read from the environment only (the log filter is set before any file is read).
pub const LOG_FILTER_KEY: &str = "RUST_LOG";

/// What start-up does with Plivo's answer to its credentials check (an
/// account read, `PLIVO_CHECK_CREDENTIALS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialCheck {
    /// Do not ask Plivo.
    Off,
    /// Ask, and log a refusal as an error; the server starts all the same.
    Warn,
    /// Ask, and refuse to start when Plivo refuses the credentials.
    Strict,
}

/// `SMS_TEXT_<LOCALE>` (`SMS_TEXT_ES_ES`, `SMS_TEXT_PT`): keys with this
/// prefix are read besides the listed ones, from the environment and the
/// TOML file (its top level and its applications' tables).
pub const SMS_TEXT_PREFIX: &str = "SMS_TEXT_";

/// Whether the top level of a configuration may hold `key` (upper case).
pub fn is_known_key(key: &str) -> bool {
    SERVER_KEYS.contains(&key) || applications::is_application_key(key)
}

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_PLIVO_API_BASE_URL: &str = "https://api.plivo.com";
pub const DEFAULT_PLIVO_PHLO_BASE_URL: &str = "https://phlorunner.plivo.com";
/// The sender the sandbox uses when none is configured.
pub const SANDBOX_FROM_NUMBER: &str = "+14155550199";
pub const DEFAULT_BRAND_NAME: &str = "plivo-2fa";

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
    /// Where `/metrics` is served instead of on `listen_addr`; `None`: there.
    pub metrics_addr: Option<SocketAddr>,
    /// `None`: `http://{the bound address}`.
    pub public_base_url: Option<Url>,
    /// `None`: the embedded in-memory store.
    pub redis: Option<RedisTarget>,
    pub redis_key_prefix: String,
    pub redis_timeout: Duration,
    pub plivo: PlivoMode,
    pub plivo_api_base_url: Url,
    pub plivo_phlo_base_url: Url,
    pub plivo_timeout: Duration,
    pub plivo_connect_timeout: Duration,
    /// Accept V2-only signatures on receipt callbacks (they leave the
    /// parameters unsigned); never on the routes that read a code out.
    pub plivo_accept_v2: bool,
    /// How codes leave (route, senders, DLT, calls), for every application.
    pub delivery: delivery::Settings,
    /// Empty in sandbox mode means: random per process.
    pub otp_secrets: Vec<SecretSlice<u8>>,
    /// `XML_TEMPLATES_DIR`; `None`: the templates built into the binary.
    pub templates_dir: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How often each instance looks for due jobs (fallbacks, events).
    pub scheduler_poll: Duration,
    /// Serve the demo page at `/` and its endpoints under `/demo/` (as the
    /// default application).
    pub demo_page: bool,
    /// Connections held at once; `None`: sized from the file-descriptor limit.
    pub max_connections: Option<u64>,
    /// Connections one client address holds at once; `None`: sized likewise.
    pub max_connections_per_ip: Option<u64>,
    /// Whether start-up asks Plivo about the credentials (live mode only).
    pub plivo_check: CredentialCheck,
    /// Every application: the default one (the top-level settings) first
    /// when there is one, then the tables' in the order of their ids.
    pub applications: Vec<apps::Settings>,
}

impl Settings {
    pub fn is_sandbox(&self) -> bool {
        matches!(self.plivo, PlivoMode::Sandbox)
    }

    /// The application of the top-level settings, when there is one.
    pub fn default_app(&self) -> Option<&apps::Settings> {
        self.applications.iter().find(|a| a.id.is_default())
    }

    /// Environment over an optional TOML file.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigErrors> {
        let mut env = BTreeMap::new();
        for key in SERVER_KEYS.iter().chain(APPLICATION_KEYS) {
            if let Ok(value) = std::env::var(key) {
                env.insert((*key).to_owned(), value);
            }
        }
        if let Ok(value) = std::env::var(LOG_FILTER_KEY) {
            env.insert(LOG_FILTER_KEY.to_owned(), value);
        }
        for (key, value) in std::env::vars_os() {
            if let (Some(key), Some(value)) = (key.to_str(), value.to_str())
                && key.starts_with(SMS_TEXT_PREFIX)
            {
                env.insert(key.to_owned(), value.to_owned());
            }
        }
        Self::from_file_under(config_file, env)
    }

    /// An optional TOML file with `over` (the environment, in [`Settings::load`];
    /// tests pass their own) over its top level.
    pub fn from_file_under(
        config_file: Option<&Path>,
        over: BTreeMap<String, String>,
    ) -> Result<Self, ConfigErrors> {
        let (mut top, tables) = match config_file {
            Some(path) => file::read(path)?,
            None => (BTreeMap::new(), Vec::new()),
        };
        top.extend(over);
        Self::from_sources(&top, &tables)
    }

    /// `XML_TEMPLATES_DIR` as the server would read it (the environment over
    /// the file's top level), without the other settings: for
    /// `check-templates`. `None`: the built-in templates.
    pub fn templates_dir(config_file: Option<&Path>) -> Result<Option<PathBuf>, ConfigErrors> {
        let mut top = match config_file {
            Some(path) => file::read(path)?.0,
            None => BTreeMap::new(),
        };
        if let Ok(value) = std::env::var(TEMPLATES_DIR_KEY) {
            top.insert(TEMPLATES_DIR_KEY.to_owned(), value);
        }
        Ok(Vars::top(&top).get(TEMPLATES_DIR_KEY).map(PathBuf::from))
    }

    /// Builds settings from a map of the documented keys (tests use this directly).
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigErrors> {
        Self::from_sources(vars, &[])
    }

    /// Builds settings from the top-level keys and the applications' tables.
    pub fn from_sources(
        top: &BTreeMap<String, String>,
        tables: &[Table],
    ) -> Result<Self, ConfigErrors> {
        let v = Vars::top(top);
        let mut p = Problems::default();
        if let Err(e) = crate::telemetry::parse_filter(v.get(LOG_FILTER_KEY)) {
            p.push(err(LOG_FILTER_KEY, &e));
        }
        let (listen_addr, public_base_url) = listen(&v, &mut p);
        let (redis, redis_key_prefix, redis_timeout) = redis(&v, &mut p);
        let plivo = plivo_mode(&v, &mut p);
        let sandbox = matches!(plivo, PlivoMode::Sandbox);
        let live = matches!(plivo, PlivoMode::Live { .. });
        if live && public_base_url.is_none() {
            p.push(err(
                "PUBLIC_BASE_URL",
                "is required with Plivo credentials: it is the URL Plivo calls back and signs (your https domain, or the ngrok URL)",
            ));
        }
        let sending = sms::sending(&v, &mut p, sandbox, live);
        let context = applications::Context {
            sandbox,
            phlo: sending.phlo_id.is_some(),
            fallback_without_receipt: sending.phlo_id.is_none() || sending.phlo_receipts,
            can_call: sending.from_number.is_some(),
            dlt: sending.dlt.is_some(),
        };
        let applications = applications::all(top, tables, &context, live, &mut p);
        let otp_secrets = otp_secrets(&v, &mut p, sandbox);
        let delivery = delivery::Settings {
            route: match &sending.phlo_id {
                Some(id) => Route::Phlo(id.clone()),
                None => Route::Api,
            },
            voice_from: sending.from_number,
            sender: sending.sender,
            dlt: sending.dlt,
            call: call_settings(&v, &mut p),
        };
        // On by default only in the sandbox: with real credentials a public page
        // that sends codes is a choice an operator makes, not a default.
        let demo_page = v.bool(&mut p, "DEMO_PAGE", sandbox);
        if demo_page && !applications.iter().any(|a| a.id.is_default()) {
            p.push(err(
                "DEMO_PAGE",
                "the demo page runs as the default application: set API_KEYS at the top level too",
            ));
        }
        let metrics_addr = v.parse(&mut p, "METRICS_ADDR", None, |raw| {
            socket_addr(raw).map(Some)
        });
        // (Port 0 picks a free port for each, so two of them never clash.)
        if metrics_addr.is_some_and(|m| m == listen_addr && m.port() != 0) {
            p.push(err(
                "METRICS_ADDR",
                "must differ from LISTEN_ADDR (leave it unset to serve /metrics there)",
            ));
        }
        let settings = Settings {
            listen_addr,
            metrics_addr,
            public_base_url,
            redis,
            redis_key_prefix,
            redis_timeout,
            plivo,
            plivo_api_base_url: base_url_or(
                &v,
                &mut p,
                "PLIVO_API_BASE_URL",
                DEFAULT_PLIVO_API_BASE_URL,
            ),
            plivo_phlo_base_url: base_url_or(
                &v,
                &mut p,
                "PLIVO_PHLO_BASE_URL",
                DEFAULT_PLIVO_PHLO_BASE_URL,
            ),
            plivo_timeout: v.millis(&mut p, "PLIVO_TIMEOUT_MS", 10_000, 100..=120_000),
            plivo_connect_timeout: v.millis(
                &mut p,
                "PLIVO_CONNECT_TIMEOUT_MS",
                3_000,
                100..=60_000,
            ),
            plivo_accept_v2: v.bool(&mut p, "PLIVO_ACCEPT_V2", false),
            plivo_check: v.parse(
                &mut p,
                "PLIVO_CHECK_CREDENTIALS",
                CredentialCheck::Warn,
                |raw| match raw {
                    "warn" => Ok(CredentialCheck::Warn),
                    "strict" => Ok(CredentialCheck::Strict),
                    "off" => Ok(CredentialCheck::Off),
                    _ => Err(format!("{raw:?} is not warn, strict or off")),
                },
            ),
            delivery,
            otp_secrets,
            templates_dir: v.get(TEMPLATES_DIR_KEY).map(PathBuf::from),
            trusted_proxies: trusted_proxies(&v, &mut p),
            scheduler_poll: v.millis(&mut p, "SCHEDULER_POLL_MS", 500, 10..=60_000),
            demo_page,
            max_connections: v
                .get("MAX_CONNECTIONS")
                .map(|_| v.int(&mut p, "MAX_CONNECTIONS", 0, 16..=1_000_000)),
            max_connections_per_ip: v
                .get("MAX_CONNECTIONS_PER_IP")
                .map(|_| v.int(&mut p, "MAX_CONNECTIONS_PER_IP", 0, 1..=1_000_000)),
            applications,
        };
        p.finish(settings)
    }
}

fn listen(v: &Vars<'_>, p: &mut Problems) -> (SocketAddr, Option<Url>) {
    let fallback = SocketAddr::from(([127, 0, 0, 1], 8080));
    let addr = v.parse(p, "LISTEN_ADDR", fallback, socket_addr);
    (addr, v.base_url(p, "PUBLIC_BASE_URL"))
}

/// An address to listen on, such as `127.0.0.1:8080`.
fn socket_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("{raw:?} is not an address such as {DEFAULT_LISTEN_ADDR}"))
}

fn redis(v: &Vars<'_>, p: &mut Problems) -> (Option<RedisTarget>, String, Duration) {
    let target = v.parse(p, "REDIS_URL", None, |raw| {
        RedisTarget::parse(raw).map(Some)
    });
    let prefix = v.parse(
        p,
        "REDIS_KEY_PREFIX",
        DEFAULT_KEY_PREFIX.to_owned(),
        |raw| {
            if raw.contains(['{', '}', ' ']) {
                Err("must not contain braces or spaces".to_owned())
            } else {
                Ok(raw.to_owned())
            }
        },
    );
    let timeout = v.millis(p, "REDIS_TIMEOUT_MS", 1_000, 10..=60_000);
    (target, prefix, timeout)
}

/// Live with both credentials, the sandbox with neither. With only one of
/// them the mode is unknown: the missing one is named, and the sandbox
/// stands in, so the settings only live mode needs are not named as well.
fn plivo_mode(v: &Vars<'_>, p: &mut Problems) -> PlivoMode {
    match (v.get("PLIVO_AUTH_ID"), v.get("PLIVO_AUTH_TOKEN")) {
        (None, None) => PlivoMode::Sandbox,
        (Some(_), None) => {
            p.push(err(
                "PLIVO_AUTH_TOKEN",
                "is required when PLIVO_AUTH_ID is set",
            ));
            PlivoMode::Sandbox
        }
        (None, Some(_)) => {
            p.push(err(
                "PLIVO_AUTH_ID",
                "is required when PLIVO_AUTH_TOKEN is set",
            ));
            PlivoMode::Sandbox
        }
        (Some(id), Some(tokens)) => {
            if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                p.push(err(
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
    }
}

fn base_url_or(v: &Vars<'_>, p: &mut Problems, key: &str, default: &str) -> Url {
    let default = Url::parse(default).unwrap_or_else(|_| unreachable!("a valid built-in URL"));
    v.base_url(p, key).unwrap_or(default)
}

fn otp_secrets(v: &Vars<'_>, p: &mut Problems, sandbox: bool) -> Vec<SecretSlice<u8>> {
    match v.get("OTP_SECRET") {
        Some(_) => v.parse(p, "OTP_SECRET", Vec::new(), |list| {
            split_list(list)
                .map(|s| {
                    let bytes = STANDARD
                        .decode(s)
                        .or_else(|_| URL_SAFE.decode(s))
                        .map_err(|_| "must be base64".to_owned())?;
                    if bytes.len() < MIN_SECRET_BYTES {
                        return Err(format!("must decode to at least {MIN_SECRET_BYTES} bytes (try: openssl rand -base64 32)"));
                    }
                    Ok(SecretSlice::from(bytes))
                })
                .collect()
        }),
        None if sandbox => Vec::new(),
        None => {
            p.push(err(
                "OTP_SECRET",
                "is required outside sandbox mode (at least 32 random bytes, base64)",
            ));
            Vec::new()
        }
    }
}

fn call_settings(v: &Vars<'_>, p: &mut Problems) -> CallSettings {
    let machine_detection = v.parse(
        p,
        "VOICE_MACHINE_DETECTION",
        Some("hangup".to_owned()),
        |raw| match raw {
            "hangup" => Ok(Some("hangup".to_owned())),
            "true" => Ok(Some("true".to_owned())),
            "false" | "off" => Ok(None),
            _ => Err("must be hangup, true or false".to_owned()),
        },
    );
    CallSettings {
        machine_detection,
        time_limit: v.int(p, "VOICE_TIME_LIMIT_SECS", 120, 30..=600),
    }
}

fn trusted_proxies(v: &Vars<'_>, p: &mut Problems) -> Vec<ipnet::IpNet> {
    v.parse(p, "TRUSTED_PROXIES", Vec::new(), |list| {
        split_list(list)
            .map(|net| {
                net.parse::<ipnet::IpNet>()
                    .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{net:?} is not an IP address or CIDR block"))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests;
