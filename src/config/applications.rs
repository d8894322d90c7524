//! Applications in configuration. The top-level settings make the
//! application `default` (when the top level has `API_KEYS`, or in the
//! sandbox); each `[applications.<id>]` table of the `--config` file makes
//! another, overriding any of [`APPLICATION_KEYS`] and inheriting the rest
//! from the top level, `API_KEYS` excepted: every application has keys of its
//! own, and a key belongs to one application only.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::abuse;
use crate::apps::{self, Channels, Policy};
use crate::delivery::WhatsAppSender;
use crate::domain::verification::SendPolicy;
use crate::domain::{ApplicationId, CodeLength, FallbackChannels, Locale, PhoneNumber, TotpDigits};
use crate::events::WebhookSettings;

use super::vars::{ConfigError, Problems, Vars, err, split_list};
use super::{DEFAULT_BRAND_NAME, SERVER_KEYS, SMS_TEXT_PREFIX, sms};

/// The keys an application's table may set (besides `SMS_TEXT_<LOCALE>`).
pub const APPLICATION_KEYS: &[&str] = &[
    "API_KEYS",
    "BRAND_NAME",
    "OTP_LENGTH",
    "VERIFICATION_LIFETIME_MINUTES",
    "MAX_ATTEMPTS",
    "RESEND_COOLDOWN_SECS",
    "MAX_SENDS",
    "CHANNELS",
    "DEFAULT_LOCALE",
    "SMS_TEXT",
    "WEBOTP_DOMAIN",
    "FALLBACK",
    "FALLBACK_AFTER_SECS",
    "FALLBACK_CHANNELS",
    "PLIVO_WHATSAPP_FROM",
    "WHATSAPP_TEMPLATE",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "RATE_LIMIT_NUMBER",
    "RATE_LIMIT_IP",
    "RATE_LIMIT_API_KEY",
    "RATE_LIMIT_COUNTRY",
    "ALLOWED_COUNTRIES",
    "PUMPING_MIN_CONVERSION",
    "PUMPING_MIN_VOLUME",
    "PUMPING_WINDOW_MINUTES",
    "PUMPING_COOLOFF_MINUTES",
    "SAFE_NUMBERS",
    "LOCKOUT_AFTER_EXHAUSTED",
    "LOCKOUT_MINUTES",
    "MAX_FAILED_CHECKS_PER_DAY",
    "TOTP_DIGITS",
    "MAX_FACTORS_PER_IDENTITY",
];

const MIN_API_KEY_LEN: usize = 16;
const MAX_BRAND_LEN: usize = 40;
/// Shortest webhook signing key, in bytes after base64 decoding.
const MIN_WEBHOOK_KEY_BYTES: usize = 24;

/// Whether an application's table may set `key` (upper case).
pub fn is_application_key(key: &str) -> bool {
    APPLICATION_KEYS.contains(&key) || key.starts_with(SMS_TEXT_PREFIX)
}

/// One `[applications.<id>]` table: its id and its values, keys upper case.
#[derive(Debug, Clone)]
pub struct Table {
    pub id: ApplicationId,
    pub values: BTreeMap<String, String>,
}

/// What an application's settings depend on of the server's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context {
    pub sandbox: bool,
    /// PHLO mode: the PHLO writes the SMS.
    pub phlo: bool,
    /// Whether a missing receipt alone makes the fallback call.
    pub fallback_without_receipt: bool,
    /// Whether there is a number to call from.
    pub can_call: bool,
    /// Whether India's DLT registration is configured (one registered text).
    pub dlt: bool,
}

/// Every application: the default one from the top level, when it has keys
/// (or in the sandbox), then one per table.
pub(super) fn all(
    top: &BTreeMap<String, String>,
    tables: &[Table],
    ctx: &Context,
    live: bool,
    p: &mut Problems,
) -> Vec<apps::Settings> {
    let mut out = Vec::new();
    let top_vars = Vars::top(top);
    let default = application(ApplicationId::default(), &top_vars, ctx, p);
    if top_vars.own("API_KEYS").is_some() || ctx.sandbox {
        out.push(default);
    } else if live && tables.is_empty() {
        p.push(err(
            "API_KEYS",
            "is required outside sandbox mode (comma-separated bearer keys)",
        ));
    }
    let names: Vec<String> = tables
        .iter()
        .map(|t| format!("[applications.{}] ", t.id))
        .collect();
    for (table, name) in tables.iter().zip(&names) {
        if check_table(table, name, p) {
            let vars = Vars::table(&table.values, top, name);
            out.push(application(table.id.clone(), &vars, ctx, p));
        }
    }
    one_application_per_key(&out, p);
    out
}

/// Whether a table is one an application can be made of: not `default`'s,
/// and holding only application keys (each other key is named).
fn check_table(table: &Table, name: &str, p: &mut Problems) -> bool {
    if table.id.is_default() {
        p.push(err(
            name.trim_end(),
            "default is the application of the top-level settings: set them at the top level",
        ));
        return false;
    }
    for key in table.values.keys() {
        if SERVER_KEYS.contains(&key.as_str()) {
            p.push(err(
                &format!("{name}{key}"),
                "is a server-wide setting: set it at the top level, not in an application's table",
            ));
        } else if !is_application_key(key) {
            p.push(err(&format!("{name}{key}"), "is not a setting"));
        }
    }
    true
}

/// No key may open two applications' verifications.
fn one_application_per_key(apps: &[apps::Settings], p: &mut Problems) {
    let owner = |a: &apps::Settings| {
        if a.id.is_default() {
            "the top level".to_owned()
        } else {
            format!("[applications.{}]", a.id)
        }
    };
    for (i, a) in apps.iter().enumerate() {
        for b in &apps[i + 1..] {
            let shared = a.api_keys.iter().any(|k| {
                b.api_keys
                    .iter()
                    .any(|l| k.expose_secret() == l.expose_secret())
            });
            if shared {
                p.push(err(
                    "API_KEYS",
                    format!(
                        "a key of {} is also a key of {}: every key belongs to one application",
                        owner(b),
                        owner(a)
                    ),
                ));
            }
        }
    }
}

/// One application's settings, from its values.
fn application(id: ApplicationId, v: &Vars<'_>, ctx: &Context, p: &mut Problems) -> apps::Settings {
    let api_keys = api_keys(v, p);
    let code_length = v.parse(p, "OTP_LENGTH", CodeLength::default(), |raw| {
        raw.parse::<u8>()
            .ok()
            .and_then(CodeLength::new)
            .ok_or_else(|| "must be between 4 and 10".to_owned())
    });
    let lifetime = v.minutes(p, "VERIFICATION_LIFETIME_MINUTES", 10, 1..=60);
    let max_attempts = v.int(p, "MAX_ATTEMPTS", Policy::default().max_attempts, 1..=20);
    let brand = v.parse(p, "BRAND_NAME", DEFAULT_BRAND_NAME.to_owned(), |raw| {
        if raw.chars().count() > MAX_BRAND_LEN || raw.chars().any(char::is_control) {
            Err(format!(
                "must be at most {MAX_BRAND_LEN} characters, without control characters"
            ))
        } else {
            Ok(raw.to_owned())
        }
    });
    let whatsapp = whatsapp(v, p);
    let channels = v.parse(p, "CHANNELS", Channels::default(), Channels::parse);
    if whatsapp.is_none()
        && v.get("CHANNELS").is_some()
        && channels.allows(crate::domain::Channel::WhatsApp)
    {
        p.push(v.error(
            "CHANNELS",
            "names whatsapp, which needs PLIVO_WHATSAPP_FROM and WHATSAPP_TEMPLATE",
        ));
    }
    let channels = if whatsapp.is_some() {
        channels
    } else {
        channels.without_whatsapp()
    };
    let fallback_channels = v.parse(
        p,
        "FALLBACK_CHANNELS",
        FallbackChannels::default(),
        FallbackChannels::parse,
    );
    // No number to call from (a Powerpack sends the SMS), or a channel this
    // application does not send on: not a step of its fallback.
    let fallback_channels = fallback_channels.only(|c| match c {
        crate::domain::Channel::Voice => ctx.can_call && channels.allows(c),
        _ => channels.allows(c),
    });
    let fallback = v
        .bool(p, "FALLBACK", true)
        .then(|| Duration::from_secs(v.int(p, "FALLBACK_AFTER_SECS", 45, 1..=3_600)));
    let policy = Policy {
        code_length,
        lifetime,
        max_attempts,
        send: SendPolicy {
            cooldown_ms: 1_000 * v.int(p, "RESEND_COOLDOWN_SECS", 30, 0..=3_600),
            max_sends: v.int(p, "MAX_SENDS", 5, 1..=20),
        },
        fallback_after: fallback.filter(|_| fallback_channels.is_some()),
        fallback_channels: fallback_channels.unwrap_or_default(),
        fallback_without_receipt: ctx.fallback_without_receipt,
    };
    let (wording, webotp_domain) =
        sms::wording(v, p, ctx.phlo, ctx.dlt, &brand, code_length, lifetime);
    apps::Settings {
        id,
        api_keys,
        brand,
        policy,
        channels,
        default_locale: v.parse(p, "DEFAULT_LOCALE", Locale::default(), |raw| {
            Locale::parse(raw).ok_or_else(|| format!("{raw:?} is not a language tag such as en-US"))
        }),
        wording,
        abuse: abuse_settings(v, p, max_attempts),
        webhook: webhook(v, p),
        webotp_domain,
        totp_digits: v.parse(p, "TOTP_DIGITS", TotpDigits::default(), |raw| {
            raw.parse::<u8>()
                .ok()
                .and_then(TotpDigits::new)
                .ok_or_else(|| "must be 6, 7 or 8".to_owned())
        }),
        max_factors_per_identity: v.int(p, "MAX_FACTORS_PER_IDENTITY", 5, 1..=100),
        whatsapp,
    }
}

/// Longest WhatsApp template name (Meta's limit).
const MAX_TEMPLATE_NAME_LEN: usize = 512;

/// Whether both of two settings that go together are set: neither is
/// `false` quietly, one alone names the other as required (with `what` it is).
fn both_or_neither(
    v: &Vars<'_>,
    p: &mut Problems,
    (a, what_a): (&str, &str),
    (b, what_b): (&str, &str),
) -> bool {
    match (v.get(a), v.get(b)) {
        (Some(_), Some(_)) => true,
        (None, None) => false,
        (None, Some(_)) => {
            p.push(v.error(a, format!("is required when {b} is set ({what_a})")));
            false
        }
        (Some(_), None) => {
            p.push(v.error(b, format!("is required when {a} is set ({what_b})")));
            false
        }
    }
}

/// `PLIVO_WHATSAPP_FROM` and `WHATSAPP_TEMPLATE`, both or neither.
fn whatsapp(v: &Vars<'_>, p: &mut Problems) -> Option<WhatsAppSender> {
    if !both_or_neither(
        v,
        p,
        ("PLIVO_WHATSAPP_FROM", "the WhatsApp Business number, E.164"),
        (
            "WHATSAPP_TEMPLATE",
            "the name of an approved authentication template",
        ),
    ) {
        return None;
    }
    let from = v.parse(p, "PLIVO_WHATSAPP_FROM", None, |raw| {
        PhoneNumber::parse(raw)
            .map(|n| Some(n.as_e164().to_owned()))
            .map_err(|e| format!("must be the WhatsApp Business number in E.164: {e}"))
    })?;
    let template = v.parse(p, "WHATSAPP_TEMPLATE", None, |raw| {
        let fits = !raw.is_empty()
            && raw.len() <= MAX_TEMPLATE_NAME_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if fits {
            Ok(Some(raw.to_owned()))
        } else {
            Err(format!(
                "must be a template name: lowercase letters, digits and _, at most {MAX_TEMPLATE_NAME_LEN}"
            ))
        }
    })?;
    Some(WhatsAppSender { from, template })
}

/// The application's own keys (a table inherits none from the top level).
fn api_keys(v: &Vars<'_>, p: &mut Problems) -> Vec<SecretString> {
    let Some(list) = v.own("API_KEYS") else {
        if v.is_table() {
            p.push(err(
                &v.in_table("API_KEYS"),
                "is required: every application needs keys of its own (comma-separated bearer keys)",
            ));
        }
        // The top level without keys: the sandbox generates one, and live
        // mode without any application says so once, in `all`.
        return Vec::new();
    };
    let keys: Vec<&str> = split_list(list).collect();
    let bad = |reason: String| ConfigError {
        var: v.in_table("API_KEYS"),
        reason,
    };
    if keys.iter().any(|k| k.len() < MIN_API_KEY_LEN) {
        p.push(bad(format!(
            "every key must be at least {MIN_API_KEY_LEN} characters"
        )));
    } else if keys
        .iter()
        .any(|k| !k.bytes().all(|b| b.is_ascii_graphic()))
    {
        p.push(bad("keys must be printable ASCII without spaces".to_owned()));
    }
    keys.into_iter()
        .map(|k| SecretString::from(k.to_owned()))
        .collect()
}

fn abuse_settings(v: &Vars<'_>, p: &mut Problems, max_attempts: u32) -> abuse::Settings {
    let d = abuse::Settings::default();
    let lockout_after_exhausted = v.int(
        p,
        "LOCKOUT_AFTER_EXHAUSTED",
        d.lockout_after_exhausted,
        1..=100,
    );
    abuse::Settings {
        per_number: v.limit(p, "RATE_LIMIT_NUMBER", d.per_number),
        per_ip: v.limit(p, "RATE_LIMIT_IP", d.per_ip),
        per_api_key: v.limit(p, "RATE_LIMIT_API_KEY", d.per_api_key),
        per_country: v.limit(p, "RATE_LIMIT_COUNTRY", d.per_country),
        global: v.limit(p, "RATE_LIMIT_GLOBAL", d.global),
        allowed_countries: v.parse(p, "ALLOWED_COUNTRIES", d.allowed_countries, |raw| {
            if raw == "*" {
                return Ok(None);
            }
            split_list(raw)
                .map(|c| {
                    let c = c.to_ascii_uppercase();
                    if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
                        Ok(c)
                    } else {
                        Err(format!("{c:?} is not an ISO 3166 country code such as US"))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }),
        pumping_min_conversion: v.parse(
            p,
            "PUMPING_MIN_CONVERSION",
            d.pumping_min_conversion,
            |raw| {
                raw.parse::<f64>()
                    .ok()
                    .filter(|f| (0.0..=1.0).contains(f))
                    .ok_or_else(|| "must be a fraction between 0 and 1".to_owned())
            },
        ),
        pumping_min_volume: v.int(p, "PUMPING_MIN_VOLUME", d.pumping_min_volume, 1..=1_000_000),
        pumping_window: v.minutes(p, "PUMPING_WINDOW_MINUTES", 60, 10..=1_440),
        pumping_cooloff: v.minutes(p, "PUMPING_COOLOFF_MINUTES", 60, 1..=1_440),
        safe_numbers: v.parse(p, "SAFE_NUMBERS", Vec::new(), |list| {
            split_list(list)
                .map(|n| {
                    PhoneNumber::parse(n)
                        .map(|num| num.as_e164().to_owned())
                        .map_err(|e| format!("{n:?}: {e}"))
                })
                .collect()
        }),
        lockout_after_exhausted,
        lockout_failed_checks: lockout_after_exhausted * u64::from(max_attempts),
        lockout: v.minutes(p, "LOCKOUT_MINUTES", 60, 1..=1_440),
        max_failed_checks_per_day: v.int(
            p,
            "MAX_FAILED_CHECKS_PER_DAY",
            d.max_failed_checks_per_day,
            5..=100_000,
        ),
    }
}

/// `WEBHOOK_URL` and `WEBHOOK_SECRET`, both or neither.
fn webhook(v: &Vars<'_>, p: &mut Problems) -> Option<WebhookSettings> {
    if !both_or_neither(
        v,
        p,
        ("WEBHOOK_URL", "where the events go"),
        ("WEBHOOK_SECRET", "whsec_ and base64, at least 24 bytes"),
    ) {
        return None;
    }
    let url = v.base_url(p, "WEBHOOK_URL")?;
    let key = v.parse(p, "WEBHOOK_SECRET", None, |secret| {
        use base64::Engine;
        let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| "must be base64, optionally prefixed whsec_".to_owned())?;
        if key.len() < MIN_WEBHOOK_KEY_BYTES {
            return Err(format!(
                "must decode to at least {MIN_WEBHOOK_KEY_BYTES} bytes"
            ));
        }
        Ok(Some(key))
    })?;
    Some(WebhookSettings {
        url,
        key: key.into(),
    })
}
