//! How codes are sent, for the whole server (the PHLO or the APIs, the
//! sender or Powerpack, India's DLT registration), and the words of each
//! application's SMS (built-in, `SMS_TEXT`, `SMS_TEXT_<LOCALE>`, checked
//! here against one SMS, and `WEBOTP_DOMAIN`).

use std::time::Duration;

use crate::delivery::sms::CustomText;
use crate::delivery::{SmsSender, SmsWording};
use crate::domain::{CodeLength, Locale};
use crate::plivo::client::DltFields;

use super::vars::{Problems, Vars, err};
use super::{SANDBOX_FROM_NUMBER, SMS_TEXT_PREFIX};

/// India's DLT template categories, as Plivo takes them.
pub const DLT_TEMPLATE_CATEGORIES: &[&str] = &[
    "service_implicit",
    "service_explicit",
    "transactional",
    "promotional",
];

/// Longest DNS name (RFC 1035: 253 characters written out, labels of 63).
const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// The server-wide sending settings.
#[derive(Debug)]
pub(super) struct Sending {
    pub phlo_id: Option<String>,
    /// The 2FA PHLO's Send Message node posts its receipts to this server.
    pub phlo_receipts: bool,
    /// The caller ID of calls (and the sender, unless a Powerpack sends SMS);
    /// `None` only with a Powerpack, and then there are no calls.
    pub from_number: Option<String>,
    pub sender: SmsSender,
    pub dlt: Option<DltFields>,
}

fn phlo_owns(what: &str) -> String {
    format!("does not apply in PHLO mode (PLIVO_PHLO_ID): the PHLO's Send Message node {what}")
}

pub(super) fn sending(v: &Vars<'_>, p: &mut Problems, sandbox: bool, live: bool) -> Sending {
    let powerpack = v.parse(p, "PLIVO_POWERPACK_UUID", None, |raw| {
        if is_uuid(raw) {
            Ok(Some(raw.to_ascii_lowercase()))
        } else {
            Err(
                "must be the Powerpack's UUID, as in the Plivo console (8-4-4-4-12 hex digits)"
                    .to_owned(),
            )
        }
    });
    let from_number = match v.get("PLIVO_FROM_NUMBER") {
        Some(_) => v.parse(p, "PLIVO_FROM_NUMBER", None, |n| {
            let e164 = n.strip_prefix('+').is_some_and(|d| {
                (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
            });
            let sender_id =
                (3..=11).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric());
            if e164 || sender_id {
                Ok(Some(n.to_owned()))
            } else {
                Err(
                    "must be an E.164 number such as +14155550100, or an alphanumeric sender ID"
                        .to_owned(),
                )
            }
        }),
        None if sandbox => Some(SANDBOX_FROM_NUMBER.to_owned()),
        // A Powerpack sends the SMS; only calls need a number of their own.
        // (A malformed UUID is reported on its own, not also as a missing number.)
        None if v.get("PLIVO_POWERPACK_UUID").is_some() && v.get("PLIVO_PHLO_ID").is_none() => None,
        None => {
            if live {
                p.push(err(
                    "PLIVO_FROM_NUMBER",
                    "is required when Plivo credentials are set (with PLIVO_POWERPACK_UUID, only for voice calls)",
                ));
            }
            None
        }
    };
    let phlo_id = v.parse(p, "PLIVO_PHLO_ID", None, |raw| {
        if raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            Ok(Some(raw.to_owned()))
        } else {
            Err("must be the PHLO's id (letters, digits and dashes)".to_owned())
        }
    });
    let phlo_receipts = v.bool(p, "PHLO_RECEIPTS", false);
    if v.get("PHLO_RECEIPTS").is_some() && phlo_id.is_none() {
        p.push(err("PHLO_RECEIPTS", "only applies with PLIVO_PHLO_ID"));
    }
    let phlo = phlo_id.is_some();
    let sender = match (powerpack, &from_number) {
        (Some(_), _) if phlo => {
            p.push(err("PLIVO_POWERPACK_UUID", phlo_owns("chooses the sender")));
            SmsSender::Number(String::new())
        }
        (Some(uuid), _) => SmsSender::Powerpack(uuid),
        (None, Some(n)) => SmsSender::Number(n.clone()),
        // Already reported: the malformed UUID, or the missing number.
        (None, None) if v.get("PLIVO_POWERPACK_UUID").is_some() || live => {
            SmsSender::Number(String::new())
        }
        (None, None) => {
            p.push(err(
                "PLIVO_FROM_NUMBER",
                "is required without PLIVO_POWERPACK_UUID",
            ));
            SmsSender::Number(String::new())
        }
    };
    let dlt = dlt(v, p, phlo);
    Sending {
        phlo_id,
        phlo_receipts,
        from_number,
        sender,
        dlt,
    }
}

/// India's DLT fields: both ids, and a known category.
fn dlt(v: &Vars<'_>, p: &mut Problems, phlo: bool) -> Option<DltFields> {
    let digits = |p: &mut Problems, var: &str| {
        v.parse(p, var, None, |raw| {
            if (1..=32).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
                Ok(Some(raw.to_owned()))
            } else {
                Err("must be the numeric id from your DLT registration".to_owned())
            }
        })
    };
    let entity = digits(p, "PLIVO_DLT_ENTITY_ID");
    let template = digits(p, "PLIVO_DLT_TEMPLATE_ID");
    let category = v.get("PLIVO_DLT_TEMPLATE_CATEGORY");
    match (entity, template) {
        (None, None) => {
            if category.is_some() {
                p.push(err(
                    "PLIVO_DLT_TEMPLATE_CATEGORY",
                    "needs PLIVO_DLT_ENTITY_ID and PLIVO_DLT_TEMPLATE_ID",
                ));
            }
            None
        }
        (Some(_), None) => {
            p.push(err(
                "PLIVO_DLT_TEMPLATE_ID",
                "is required when PLIVO_DLT_ENTITY_ID is set",
            ));
            None
        }
        (None, Some(_)) => {
            p.push(err(
                "PLIVO_DLT_ENTITY_ID",
                "is required when PLIVO_DLT_TEMPLATE_ID is set",
            ));
            None
        }
        (Some(dlt_entity_id), Some(dlt_template_id)) => {
            if phlo {
                p.push(err("PLIVO_DLT_ENTITY_ID", phlo_owns("sends the SMS")));
            }
            let category = category.unwrap_or(DLT_TEMPLATE_CATEGORIES[0]);
            if !DLT_TEMPLATE_CATEGORIES.contains(&category) {
                p.push(err(
                    "PLIVO_DLT_TEMPLATE_CATEGORY",
                    format!("must be one of {}", DLT_TEMPLATE_CATEGORIES.join(", ")),
                ));
            }
            Some(DltFields {
                dlt_entity_id,
                dlt_template_id,
                dlt_template_category: category.to_owned(),
            })
        }
    }
}

/// What one application's SMS says, and its WebOTP domain.
#[allow(clippy::too_many_arguments)]
pub(super) fn wording(
    v: &Vars<'_>,
    p: &mut Problems,
    phlo: bool,
    dlt: bool,
    brand: &str,
    code_length: CodeLength,
    lifetime: Duration,
) -> (SmsWording, Option<String>) {
    let mut custom = Vec::new();
    let texts = std::iter::once(("SMS_TEXT", v.get("SMS_TEXT"))).chain(
        v.with_prefix(SMS_TEXT_PREFIX)
            .into_iter()
            .map(|(k, t)| (k, Some(t))),
    );
    for (key, text) in texts {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            continue;
        };
        let locale = match key.strip_prefix(SMS_TEXT_PREFIX) {
            Some(suffix) => match Locale::parse(&suffix.replace('_', "-")) {
                Some(locale) => Some(locale),
                None => {
                    p.push(v.error(
                        key,
                        "is not SMS_TEXT_ followed by a locale such as ES_ES or PT",
                    ));
                    continue;
                }
            },
            None => None,
        };
        if phlo {
            p.push(v.error(key, phlo_owns("holds the wording")));
            continue;
        }
        custom.push(CustomText {
            var: v.name(key),
            locale,
            text: text.to_owned(),
        });
    }
    if dlt && v.own("SMS_TEXT").is_some() && v.is_table() {
        p.push(v.error(
            "SMS_TEXT",
            "a DLT template registers one text: with PLIVO_DLT_TEMPLATE_ID, set SMS_TEXT at the top level only",
        ));
    }
    let webotp = v.parse(p, "WEBOTP_DOMAIN", None, |raw| {
        if phlo {
            return Err(phlo_owns("writes the SMS"));
        }
        parse_webotp_domain(raw).map(Some)
    });
    let max_minutes = u32::try_from(lifetime.as_secs().div_ceil(60)).unwrap_or(u32::MAX);
    let wording = match SmsWording::new(
        brand,
        &custom,
        webotp.as_deref(),
        usize::from(code_length.get()),
        max_minutes,
    ) {
        Ok(w) => w,
        Err(e) => {
            p.push(err(&e.var, e.reason));
            // Only built-in texts stand in: start-up stops anyway.
            SmsWording::new(
                brand,
                &[],
                None,
                usize::from(code_length.get()),
                max_minutes,
            )
            .unwrap_or_else(|_| unreachable!("the built-in wording parses"))
        }
    };
    if dlt && !wording.has_default_text() {
        p.push(err(
            "SMS_TEXT",
            "is required with PLIVO_DLT_TEMPLATE_ID: set it to the registered template's exact wording (DLT refuses any other text)",
        ));
    }
    (wording, webotp)
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

/// A bare host name, as WebOTP's `@domain` line and the page's origin carry it.
pub(super) fn parse_webotp_domain(v: &str) -> Result<String, String> {
    let host = v.to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=MAX_LABEL_LEN).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.len() > MAX_HOST_LEN || !host.split('.').all(label_ok) {
        return Err(format!(
            "{v:?} is not a host name such as example.com (no scheme, port or path)"
        ));
    }
    Ok(host)
}
