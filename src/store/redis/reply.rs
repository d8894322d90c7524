//! Reading the scripts' replies: an outcome word, texts, and the record's
//! view (the FIELDS of prelude.lua, in their order), whose number the
//! keyring opens.

use redis::Value;
use serde::Serialize;

use super::super::{CallView, StoreError, parse_channel};
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

    /// The reply's item at `i`, as it came.
    pub(super) fn item(&self, i: usize) -> Result<&Value, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("a reply without its item {i}")))
    }

    /// The view at `i`. `to` is its number when the caller knows it: a
    /// record the script found by that number's pointer (and matched to its
    /// hash), or the one it was asked about for that verification. The
    /// sealed number is then not opened.
    pub(super) fn verification(
        &self,
        i: usize,
        id: &VerificationId,
        to: Option<&PhoneNumber>,
    ) -> Result<Verification, StoreError> {
        parse_fields(self.1, id, &self.view(i)?, to)
    }

    /// A call's resolution from `i` on, as prelude.lua's `resolve` returns
    /// it: id, sealed code ('' when none), status, expiry, locale and
    /// application ('' when the record has none).
    pub(super) fn call(&self, i: usize) -> Result<CallView, StoreError> {
        let id = parse_id(&self.text(i)?)?;
        let sealed = self.text(i + 1)?;
        let expires_at = self.text(i + 3)?;
        let locale = self.text(i + 4)?;
        let app = self.text(i + 5)?;
        Ok(CallView {
            id,
            application: application((!app.is_empty()).then_some(app.as_bytes()))?,
            locale: Locale::parse(&locale).unwrap_or_default(),
            status: status(&self.text(i + 2)?)?,
            expires_at: Timestamp::from_millis(
                expires_at
                    .parse()
                    .map_err(|_| StoreError::Corrupt("expires_at is not a number".into()))?,
            ),
            sealed: (!sealed.is_empty()).then_some(sealed),
        })
    }

    fn view(&self, i: usize) -> Result<Vec<Option<&[u8]>>, StoreError> {
        match self.0.get(i) {
            Some(Value::BulkString(packed)) => unpack_view(packed),
            other => Err(StoreError::Corrupt(format!(
                "expected a view, got {other:?}"
            ))),
        }
    }
}

/// A view's fields: their bytes, or `None` for a field the record lacks.
type Fields<'a> = [Option<&'a [u8]>];

/// Splits a view packed by prelude.lua's `packed`: every field of FIELDS in
/// turn, joined by NUL, with `\x01` for a field the record lacks.
fn unpack_view(packed: &[u8]) -> Result<Vec<Option<&[u8]>>, StoreError> {
    let fields: Vec<Option<&[u8]>> = packed
        .split(|b| *b == 0)
        .map(|f| (f != ABSENT).then_some(f))
        .collect();
    if fields.len() == VIEW_FIELDS.len() {
        Ok(fields)
    } else {
        Err(StoreError::Corrupt(format!(
            "a view of {} fields, not {}",
            fields.len(),
            VIEW_FIELDS.len()
        )))
    }
}

/// How prelude.lua's `packed` writes a field the record lacks.
const ABSENT: &[u8] = b"\x01";

fn text<'a>(fields: &Fields<'a>, i: usize, name: &str) -> Result<&'a str, StoreError> {
    match fields.get(i) {
        Some(Some(b)) => {
            std::str::from_utf8(b).map_err(|_| StoreError::Corrupt(format!("{name} is not UTF-8")))
        }
        _ => Err(StoreError::Corrupt(format!("{name} is missing"))),
    }
}

fn number<T: std::str::FromStr>(
    fields: &Fields<'_>,
    i: usize,
    name: &str,
) -> Result<T, StoreError> {
    text(fields, i, name)?
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("{name} is not a number")))
}

/// The FIELDS view of prelude.lua, in its order.
pub const VIEW_FIELDS: [&str; 13] = [
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
    to: &str,
) -> Result<PhoneNumber, StoreError> {
    let plain = to.len() <= MAX_PLAIN_NUMBER
        && to
            .strip_prefix('+')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if plain {
        return Ok(PhoneNumber::from_trusted_e164(to.to_owned()));
    }
    keyring
        .open_number(to, id.as_str())
        .map_err(|e| StoreError::Corrupt(format!("number of {id}: {e}")))
}

/// Reads the FIELDS view of prelude.lua as HMGET answers it, in its order.
pub(super) fn parse_view(
    keyring: &Keyring,
    id: &VerificationId,
    f: &[Value],
) -> Result<Verification, StoreError> {
    let fields: Vec<Option<&[u8]>> = f
        .iter()
        .map(|v| match v {
            Value::BulkString(b) => Some(b.as_slice()),
            _ => None,
        })
        .collect();
    parse_fields(keyring, id, &fields, None)
}

/// Reads the FIELDS view of prelude.lua, in its order; its `to` is
/// `known_number` when the caller knows it.
fn parse_fields(
    keyring: &Keyring,
    id: &VerificationId,
    f: &Fields<'_>,
    known_number: Option<&PhoneNumber>,
) -> Result<Verification, StoreError> {
    let deliveries: Vec<Delivery> = serde_json::from_str(text(f, 10, "deliveries")?)
        .map_err(|e| StoreError::Corrupt(format!("deliveries: {e}")))?;
    Ok(Verification {
        id: id.clone(),
        to: match known_number {
            Some(known) => known.clone(),
            None => stored_number(keyring, id, text(f, 0, "to")?)?,
        },
        channel: parse_channel(text(f, 1, "channel")?)?,
        locale: Locale::parse(text(f, 2, "locale")?).unwrap_or_default(),
        status: status(text(f, 3, "status")?)?,
        created_at: Timestamp::from_millis(number(f, 4, "created_at")?),
        expires_at: Timestamp::from_millis(number(f, 5, "expires_at")?),
        attempts: number(f, 6, "attempts")?,
        max_attempts: number(f, 7, "max_attempts")?,
        sends: number(f, 8, "sends")?,
        last_sent_at: Timestamp::from_millis(number(f, 9, "last_sent_at")?),
        deliveries,
        fallbacks: fallbacks(f.get(11).copied().flatten()),
        application: application(f.get(12).copied().flatten())?,
    })
}

fn status(text: &str) -> Result<Status, StoreError> {
    text.parse::<Status>()
        .map_err(|()| StoreError::Corrupt(format!("unknown status {text:?}")))
}

/// A record's `app`; one written by a version without applications, or by
/// the default, has none: the default's.
fn application(field: Option<&[u8]>) -> Result<ApplicationId, StoreError> {
    match field {
        Some(b) => std::str::from_utf8(b)
            .ok()
            .and_then(ApplicationId::parse)
            .ok_or_else(|| StoreError::Corrupt("app is not an application id".into())),
        None => Ok(ApplicationId::default()),
    }
}

/// The `fallback` field: the channels the fallback sent on ("sms,voice");
/// `0` or none is none yet, and `1`, from versions with only the SMS→voice
/// fallback, is the call. A word this version does not know is left out.
fn fallbacks(field: Option<&[u8]>) -> Vec<Channel> {
    let Some(b) = field else {
        return Vec::new();
    };
    match b {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A view packed as prelude.lua's `packed` packs one.
    fn pack(fields: &[Option<&str>]) -> Vec<u8> {
        fields
            .iter()
            .map(|f| f.unwrap_or("\u{1}"))
            .collect::<Vec<_>>()
            .join("\0")
            .into_bytes()
    }

    fn view(app: Option<&'static str>) -> Vec<Option<&'static str>> {
        vec![
            Some("+14155550100"),
            Some("sms"),
            Some("en-US"),
            Some("pending"),
            Some("1700000000000"),
            Some("1700000600000"),
            Some("2"),
            Some("5"),
            Some("1"),
            Some("1700000000000"),
            Some(
                r#"[{"channel":"sms","provider_id":"","status":"queued","error_code":null,"updated_at":1700000000001}]"#,
            ),
            // An empty field is present, not absent.
            Some(""),
            app,
        ]
    }

    #[test]
    fn a_packed_view_unpacks_to_its_fields_absent_ones_included() {
        let fields = view(Some("shop"));
        let packed = pack(&fields);
        let unpacked = unpack_view(&packed).unwrap();
        let want: Vec<Option<&[u8]>> = fields.iter().map(|f| f.map(str::as_bytes)).collect();
        assert_eq!(unpacked, want);
    }

    #[test]
    fn a_packed_view_reads_as_the_same_view_as_hmget_answers_it() {
        let keyring = Keyring::new(&[secrecy::SecretSlice::from(vec![7u8; 32])]);
        let id = VerificationId::parse("VE0123456789abcdef0123456789abcdef").unwrap();
        let fields = view(None);
        let as_hmget: Vec<Value> = fields
            .iter()
            .map(|f| f.map_or(Value::Nil, |s| Value::BulkString(s.as_bytes().to_vec())))
            .collect();
        let from_pack = parse_fields(&keyring, &id, &unpack_view(&pack(&fields)).unwrap(), None);
        let from_hmget = parse_view(&keyring, &id, &as_hmget);
        assert_eq!(format!("{from_pack:?}"), format!("{from_hmget:?}"));
        let v = from_pack.unwrap();
        assert_eq!(v.attempts, 2);
        assert_eq!(v.deliveries.len(), 1);
        assert_eq!(v.application, ApplicationId::default());
    }

    #[test]
    fn a_packed_view_of_too_few_or_too_many_fields_is_corrupt() {
        let good = pack(&view(None));
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            good[..good.iter().rposition(|b| *b == 0).unwrap()].to_vec(),
            [good.as_slice(), b"\0"].concat(),
            [good.as_slice(), b"\0\x01"].concat(),
        ];
        for case in cases {
            assert!(
                matches!(unpack_view(&case), Err(StoreError::Corrupt(_))),
                "{:?}",
                String::from_utf8_lossy(&case)
            );
        }
    }
}
