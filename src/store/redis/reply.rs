//! Reading the scripts' replies: an outcome word, texts, and the record's
//! view (the FIELDS of prelude.lua, in their order), whose number the
//! keyring opens.

use redis::Value;
use serde::Serialize;

use super::super::{StoreError, parse_channel};
use crate::domain::{
    ApplicationId, Channel, Delivery, Keyring, Locale, PhoneNumber, Status, Timestamp,
    Verification, VerificationId,
};

#[derive(Serialize)]
pub(super) struct StoredDelivery<'a> {
    #[serde(flatten)]
    pub(super) delivery: &'a Delivery,
    pub(super) rank: u8,
}

/// A script's reply: an outcome word, then strings and a nested view (whose
/// number the keyring opens).
pub(super) struct Reply<'k>(Vec<Value>, &'k Keyring);

impl<'k> Reply<'k> {
    pub(super) fn new(v: Value, keyring: &'k Keyring) -> Result<Self, StoreError> {
        match v {
            Value::Array(items) if !items.is_empty() => Ok(Self(items, keyring)),
            other => Err(StoreError::Corrupt(format!("unexpected reply {other:?}"))),
        }
    }

    pub(super) fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.0.get(i) {
            Some(Value::BulkString(b)) => String::from_utf8(b.clone())
                .map_err(|_| StoreError::Corrupt("non-UTF-8 reply".into())),
            Some(Value::SimpleString(s)) => Ok(s.clone()),
            Some(Value::Int(n)) => Ok(n.to_string()),
            other => Err(StoreError::Corrupt(format!("expected text, got {other:?}"))),
        }
    }

    pub(super) fn verification(
        &self,
        i: usize,
        id: &VerificationId,
    ) -> Result<Verification, StoreError> {
        match self.0.get(i) {
            Some(Value::Array(fields)) => parse_view(self.1, id, fields),
            other => Err(StoreError::Corrupt(format!(
                "expected a view, got {other:?}"
            ))),
        }
    }
}

fn field(fields: &[Value], i: usize, name: &str) -> Result<String, StoreError> {
    match fields.get(i) {
        Some(Value::BulkString(b)) => String::from_utf8(b.clone())
            .map_err(|_| StoreError::Corrupt(format!("{name} is not UTF-8"))),
        _ => Err(StoreError::Corrupt(format!("{name} is missing"))),
    }
}

fn number<T: std::str::FromStr>(fields: &[Value], i: usize, name: &str) -> Result<T, StoreError> {
    field(fields, i, name)?
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("{name} is not a number")))
}

/// The FIELDS view of prelude.lua, in its order.
pub(super) const VIEW_FIELDS: [&str; 13] = [
    "to",
    "channel",
    "locale",
    "status",
    "created_at",
    "expires_at",
    "attempts",
    "max_attempts",
    "sends",
    "last_sent_at",
    "deliveries",
    "fallback",
    "app",
];

/// The longest E.164 number, `+` and 15 digits: a sealed number is far longer.
pub(super) const MAX_PLAIN_NUMBER: usize = 16;

/// A record's `to`: sealed, or in plain E.164 in a record written before numbers were sealed.
fn stored_number(
    keyring: &Keyring,
    id: &VerificationId,
    to: String,
) -> Result<PhoneNumber, StoreError> {
    let plain = to.len() <= MAX_PLAIN_NUMBER
        && to
            .strip_prefix('+')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if plain {
        return Ok(PhoneNumber::from_trusted_e164(to));
    }
    keyring
        .open_number(&to, id.as_str())
        .map_err(|e| StoreError::Corrupt(format!("number of {id}: {e}")))
}

/// Reads the FIELDS view of prelude.lua, in its order.
pub(super) fn parse_view(
    keyring: &Keyring,
    id: &VerificationId,
    f: &[Value],
) -> Result<Verification, StoreError> {
    let status = field(f, 3, "status")?;
    let deliveries: Vec<Delivery> = serde_json::from_str(&field(f, 10, "deliveries")?)
        .map_err(|e| StoreError::Corrupt(format!("deliveries: {e}")))?;
    Ok(Verification {
        id: id.clone(),
        to: stored_number(keyring, id, field(f, 0, "to")?)?,
        channel: parse_channel(&field(f, 1, "channel")?)?,
        locale: Locale::parse(&field(f, 2, "locale")?).unwrap_or_default(),
        status: status
            .parse::<Status>()
            .map_err(|()| StoreError::Corrupt(format!("unknown status {status:?}")))?,
        created_at: Timestamp::from_millis(number(f, 4, "created_at")?),
        expires_at: Timestamp::from_millis(number(f, 5, "expires_at")?),
        attempts: number(f, 6, "attempts")?,
        max_attempts: number(f, 7, "max_attempts")?,
        sends: number(f, 8, "sends")?,
        last_sent_at: Timestamp::from_millis(number(f, 9, "last_sent_at")?),
        deliveries,
        fallbacks: fallbacks(f.get(11)),
        // Written by a version without applications, or by the default: the default's.
        application: match f.get(12) {
            Some(Value::BulkString(b)) => std::str::from_utf8(b)
                .ok()
                .and_then(ApplicationId::parse)
                .ok_or_else(|| StoreError::Corrupt("app is not an application id".into()))?,
            _ => ApplicationId::default(),
        },
    })
}

/// The `fallback` field: the channels the fallback sent on ("sms,voice");
/// `0` or none is none yet, and `1`, from versions with only the SMS→voice
/// fallback, is the call. A word this version does not know is left out.
fn fallbacks(field: Option<&Value>) -> Vec<Channel> {
    let Some(Value::BulkString(b)) = field else {
        return Vec::new();
    };
    match b.as_slice() {
        b"1" => vec![Channel::Voice],
        raw => String::from_utf8_lossy(raw)
            .split(',')
            .filter_map(|c| c.parse().ok())
            .collect(),
    }
}

pub(super) fn parse_id(s: &str) -> Result<VerificationId, StoreError> {
    VerificationId::parse(s).ok_or_else(|| StoreError::Corrupt("malformed id".into()))
}
