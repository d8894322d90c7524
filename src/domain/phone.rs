//! Phone numbers, parsed at the boundary and normalised to E.164 by the
//! `phonenumber` crate (libphonenumber's metadata). A `PhoneNumber` prints
//! masked, so logging one never leaks the full number.

use std::fmt;
use std::sync::OnceLock;

use phonenumber::Mode;
use phonenumber::Type as PhoneNumberType;
use phonenumber::metadata::{DATABASE, Metadata};

/// E.164 allows at most 15 digits after the `+`.
const MAX_DIGITS: usize = 15;
/// The shortest national numbers in use (a few small countries) give 7 digits in all.
const MIN_DIGITS: usize = 7;
/// Country calling codes are one to three digits (ITU-T E.164).
const MAX_CALLING_CODE_DIGITS: usize = 3;
/// libphonenumber's region for non-geographic calling codes (+800, +882…).
const NON_GEOGRAPHIC_REGION: &str = "001";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("phone numbers must be in E.164 format, such as +14155550100")]
    NotE164,
    #[error("this is not a valid phone number in any numbering plan")]
    Invalid,
}

/// What libphonenumber knows about the kind of line behind a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Mobile,
    FixedLine,
    /// Fixed line or mobile: some plans (the US, Canada…) cannot tell them apart.
    FixedLineOrMobile,
    PremiumRate,
    /// Shared-cost lines: the caller pays part, a pumping favourite.
    SharedCost,
    TollFree,
    Voip,
    Other,
    Unknown,
}

/// A valid phone number in E.164 form (`+` and up to 15 digits).
#[derive(Clone)]
pub struct PhoneNumber {
    e164: String,
    /// What libphonenumber said when the number was parsed (absent for numbers
    /// read back from the store, computed on demand then).
    meta: Option<Meta>,
}

#[derive(Debug, Clone)]
struct Meta {
    country_code: u16,
    kind: LineKind,
    /// Only the country allow-list asks, so it is worked out when first asked
    /// (one more number-type evaluation, which a check by number never needs).
    region: OnceLock<Option<String>>,
}

impl PartialEq for PhoneNumber {
    fn eq(&self, other: &Self) -> bool {
        self.e164 == other.e164
    }
}

impl Eq for PhoneNumber {}

impl std::hash::Hash for PhoneNumber {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.e164.hash(state);
    }
}

fn kind_of(number_type: PhoneNumberType) -> LineKind {
    match number_type {
        PhoneNumberType::Mobile => LineKind::Mobile,
        PhoneNumberType::FixedLine => LineKind::FixedLine,
        PhoneNumberType::FixedLineOrMobile => LineKind::FixedLineOrMobile,
        PhoneNumberType::PremiumRate => LineKind::PremiumRate,
        PhoneNumberType::TollFree => LineKind::TollFree,
        PhoneNumberType::Voip => LineKind::Voip,
        PhoneNumberType::Unknown => LineKind::Unknown,
        PhoneNumberType::SharedCost => LineKind::SharedCost,
        _ => LineKind::Other,
    }
}

fn meta_of(parsed: &phonenumber::PhoneNumber, number_type: PhoneNumberType) -> Meta {
    Meta {
        country_code: parsed.code().value(),
        kind: kind_of(number_type),
        region: OnceLock::new(),
    }
}

// The `phonenumber` crate reads a number's type and region from its national
// number *without* leading zeros (`NationalNumber::value`), while its validity
// check, like libphonenumber, reads the national significant number *with*
// them. The few plans whose numbers keep a leading zero internationally
// (Italy's fixed lines, +39 02…, +39 06…; Côte d'Ivoire, …) therefore parse as
// valid but of Unknown type and of no region. For those numbers, type and
// region are read here over the number with its zeros, in libphonenumber's
// order (`getNumberTypeHelper`, `getRegionCodeForNumberFromRegionList`).

/// Whether `pattern`, one of the metadata's, matches at the start of `text`:
/// what the crate's `Descriptor::is_match` asks of its regex (a match that
/// starts at 0), answered from expressions compiled here, anchored, once per
/// pattern. The crate's own go through one process-wide `Mutex` around an
/// LRU map keyed by the pattern's text, so each match hashed and compared
/// the whole pattern (up to 2 KB for a US line) twice under that lock, and
/// its `find` also ran the reverse search for where the match began. Under
/// live starts a number's kind took 4.5% of the server's samples that way.
fn matches_at_start(pattern: &'static str, text: &str, crates: impl FnOnce() -> bool) -> bool {
    type Compiled = std::collections::HashMap<usize, Option<regex::Regex>>;
    static COMPILED: OnceLock<std::sync::RwLock<Compiled>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(Default::default);
    // The metadata is static: a pattern's address names it.
    let key = pattern.as_ptr() as usize;
    let answer = |re: &Option<regex::Regex>| re.as_ref().map(|re| re.is_match(text));
    let known = compiled
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
        .map(answer);
    let found = known.unwrap_or_else(|| {
        let mut table = compiled
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let re = table.entry(key).or_insert_with(|| {
            // As the crate builds it (whitespace in the metadata's patterns
            // is layout), anchored at the start.
            regex::RegexBuilder::new(&format!("^(?:{pattern})"))
                .ignore_whitespace(true)
                .build()
                .ok()
        });
        answer(re)
    });
    // A pattern that would not compile here (the metadata has none) is the
    // crate's to match.
    found.unwrap_or_else(crates)
}

/// `Descriptor::is_match`: the possible lengths, then the pattern.
fn descriptor_matches(desc: &'static phonenumber::metadata::Descriptor, national: &str) -> bool {
    let lengths = desc.possible_length();
    let possible =
        u16::try_from(national.len()).is_ok_and(|n| lengths.is_empty() || lengths.contains(&n));
    possible
        && matches_at_start(desc.national_number().as_str(), national, || {
            desc.is_match(national)
        })
}

/// libphonenumber's type of `national` (with its leading zeros) under `meta`.
fn kind_with_zeros(meta: &'static Metadata, national: &str) -> LineKind {
    let d = meta.descriptors();
    let matches = |desc: Option<&'static phonenumber::metadata::Descriptor>| {
        desc.is_some_and(|desc| descriptor_matches(desc, national))
    };
    if !descriptor_matches(d.general(), national) {
        return LineKind::Unknown;
    }
    if matches(d.premium_rate()) {
        return LineKind::PremiumRate;
    }
    if matches(d.toll_free()) {
        return LineKind::TollFree;
    }
    if matches(d.shared_cost()) {
        return LineKind::SharedCost;
    }
    if matches(d.voip()) {
        return LineKind::Voip;
    }
    if matches(d.personal_number())
        || matches(d.pager())
        || matches(d.uan())
        || matches(d.voicemail())
    {
        return LineKind::Other;
    }
    if matches(d.fixed_line()) {
        let same_pattern = d.fixed_line().map(|f| f.national_number().as_str())
            == d.mobile().map(|m| m.national_number().as_str());
        return if same_pattern || matches(d.mobile()) {
            LineKind::FixedLineOrMobile
        } else {
            LineKind::FixedLine
        };
    }
    if matches(d.mobile()) {
        return LineKind::Mobile;
    }
    LineKind::Unknown
}

/// The region whose plan `national` (with its leading zeros) belongs to, that
/// region's metadata and, when finding the plan took it (a calling code of
/// several plans, one without leading digits), the number's line kind there.
fn plan_with_zeros(
    country_code: u16,
    national: &str,
) -> Option<(&'static str, &'static Metadata, Option<LineKind>)> {
    let regions = DATABASE.region(&country_code)?;
    if let [only] = regions.as_slice() {
        return DATABASE.by_id(*only).map(|meta| (*only, meta, None));
    }
    regions.into_iter().find_map(|region| {
        let meta = DATABASE.by_id(region)?;
        match meta.leading_digits() {
            Some(leading) => {
                let at_start = || leading.find(national).is_some_and(|m| m.start() == 0);
                matches_at_start(leading.as_str(), national, at_start)
                    .then_some((region, meta, None))
            }
            None => {
                let kind = kind_with_zeros(meta, national);
                (kind != LineKind::Unknown).then_some((region, meta, Some(kind)))
            }
        }
    })
}

/// The line kind of `national` (with its leading zeros) in the plan it
/// belongs to under `country_code`, and that plan's region.
fn kind_in_plan(country_code: u16, national: &str) -> (Option<&'static str>, LineKind) {
    plan_with_zeros(country_code, national).map_or(
        (None, LineKind::Unknown),
        |(region, meta, kind)| {
            (
                Some(region),
                kind.unwrap_or_else(|| kind_with_zeros(meta, national)),
            )
        },
    )
}

/// The line kind of a parsed number.
fn kind_of_parsed(parsed: &phonenumber::PhoneNumber) -> LineKind {
    if parsed.national().zeros() == 0 {
        return kind_of(parsed.number_type(&DATABASE));
    }
    let national = parsed.national().to_string();
    kind_in_plan(parsed.code().value(), &national).1
}

/// What a parse may read as a trunk prefix at the start of a national number
/// under one calling code's plans: libphonenumber strips the national prefix
/// only where it (or the plan's pattern for parsing it) is there.
#[derive(Debug, Default)]
struct TrunkPrefixes {
    literals: Vec<&'static str>,
    /// The plans' patterns for parsing a national prefix.
    sources: Vec<&'static str>,
    /// Those patterns as one expression, anchored at the start, compiled
    /// when the calling code is first asked about (`None`: it did not
    /// compile here, so a prefix is always assumed).
    pattern: OnceLock<Option<regex::Regex>>,
}

impl TrunkPrefixes {
    fn could_strip(&self, national: &str) -> bool {
        if self.literals.iter().any(|p| national.starts_with(p)) {
            return true;
        }
        if self.sources.is_empty() {
            return false;
        }
        let pattern = self.pattern.get_or_init(|| {
            let any: Vec<String> = self.sources.iter().map(|s| format!("(?:{s})")).collect();
            // With the options the crate compiles its own with, but ASCII
            // only: a national number here is ASCII digits, which `\d`
            // matches either way, and the expression stays small (one that
            // could match other text fails to compile, and then a prefix is
            // always assumed).
            regex::RegexBuilder::new(&format!("^(?:{})", any.join("|")))
                .ignore_whitespace(true)
                .unicode(false)
                .build()
                .ok()
        });
        pattern.as_ref().is_none_or(|re| re.is_match(national))
    }
}

/// Every calling code's [`TrunkPrefixes`], read once from the metadata.
/// Their patterns become expressions of this module's own: the crate's go
/// through one cache of 100 for every plan's, behind one lock.
fn trunk_prefixes() -> &'static std::collections::HashMap<u16, TrunkPrefixes> {
    static TABLE: OnceLock<std::collections::HashMap<u16, TrunkPrefixes>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = std::collections::HashMap::<u16, TrunkPrefixes>::new();
        for meta in DATABASE.iter() {
            let entry = table.entry(meta.country_code()).or_default();
            if let Some(prefix) = meta.national_prefix().filter(|p| !p.is_empty())
                && !entry.literals.contains(&prefix)
            {
                entry.literals.push(prefix);
            }
            if let Some(parsing) = meta.national_prefix_for_parsing()
                && !entry.sources.contains(&parsing.as_str())
            {
                entry.sources.push(parsing.as_str());
            }
        }
        table
    })
}

/// `+` and 7 to 15 digits, the first not 0: E.164's form, the only one accepted.
fn in_e164_form(input: &str) -> bool {
    input.strip_prefix('+').is_some_and(|digits| {
        (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// The calling code and national number of an E.164 `input` that its parse
/// would write as it is: a calling code libphonenumber knows, and nothing at
/// the start of the national number that a parse could read as a trunk
/// prefix (and strip), under any plan of that calling code.
fn as_written(input: &str) -> Option<(u16, &str)> {
    let code = calling_code(input)?;
    let national = input.get(1 + code.to_string().len()..)?;
    let prefixes = trunk_prefixes().get(&code)?;
    (!prefixes.could_strip(national)).then_some((code, national))
}

fn region_of(e164: &str) -> Option<String> {
    let parsed = phonenumber::parse(None, e164).ok()?;
    if parsed.national().zeros() == 0 {
        return parsed.country().id().map(|id| id.as_ref().to_owned());
    }
    let national = parsed.national().to_string();
    plan_with_zeros(parsed.code().value(), &national).and_then(|(region, _, _)| geographic(region))
}

/// A region's name, unless it is libphonenumber's non-geographic one.
fn geographic(region: &str) -> Option<String> {
    (region != NON_GEOGRAPHIC_REGION).then(|| region.to_owned())
}

impl PhoneNumber {
    /// Parses untrusted input. Only E.164 is accepted (no spaces, dashes or
    /// national prefixes) so that two spellings of one number cannot open two
    /// verifications.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        if !in_e164_form(input) {
            return Err(PhoneNumberError::NotE164);
        }
        Self::parse_as_written(input).unwrap_or_else(|| Self::parse_in_full(input))
    }

    /// The parse of an E.164 `input` that no parse could rewrite (see
    /// [`PhoneNumber::as_stored`]): its calling code, plan and line kind read
    /// straight from the metadata, as the full parse reads them (and the
    /// region with them, which the allow-list asks), without the crate's
    /// parse (its extraction and national-prefix expressions). `None` for an
    /// input the full parse might rewrite. The full parse stays the
    /// reference: a test holds the two equal over every plan's example
    /// numbers and their neighbours.
    fn parse_as_written(input: &str) -> Option<Result<Self, PhoneNumberError>> {
        let (country_code, national) = as_written(input)?;
        let (region, kind) = kind_in_plan(country_code, national);
        Some(if kind == LineKind::Unknown {
            Err(PhoneNumberError::Invalid)
        } else {
            Ok(Self {
                e164: input.to_owned(),
                meta: Some(Meta {
                    country_code,
                    kind,
                    region: OnceLock::from(region.and_then(geographic)),
                }),
            })
        })
    }

    /// The crate's parse and number type, for an E.164 input a parse might
    /// rewrite (and the reference the shortcut above is tested against).
    fn parse_in_full(input: &str) -> Result<Self, PhoneNumberError> {
        let parsed = phonenumber::parse(None, input).map_err(|_| PhoneNumberError::Invalid)?;
        // Each number-type evaluation runs a dozen of the crate's cached regular
        // expressions, so it is done once: libphonenumber's is_valid is exactly
        // "the type is known", except that it reads the national number with its
        // leading zeros (Italy's fixed lines) where the type reads it without,
        // so only those numbers ask it separately.
        let meta = if parsed.national().zeros() == 0 {
            let number_type = parsed.number_type(&DATABASE);
            if number_type == PhoneNumberType::Unknown {
                return Err(PhoneNumberError::Invalid);
            }
            meta_of(&parsed, number_type)
        } else {
            if !phonenumber::is_valid(&parsed) {
                return Err(PhoneNumberError::Invalid);
            }
            Meta {
                country_code: parsed.code().value(),
                kind: kind_of_parsed(&parsed),
                region: OnceLock::new(),
            }
        };
        Ok(Self {
            e164: parsed.format().mode(Mode::E164).to_string(),
            meta: Some(meta),
        })
    }

    /// `input` as written, when it is in the form this server stores numbers
    /// in and its parse could not write it otherwise: E.164's form, a calling
    /// code libphonenumber knows, and nothing at the start of the national
    /// number that a parse could read as a trunk prefix (and strip), under
    /// any plan of that calling code. *Not validated*: only for finding a
    /// number stored before. Every stored number was validated by
    /// [`PhoneNumber::parse`], and such a number parses to itself, so what
    /// it finds is what its parse would have found; one that finds nothing
    /// must still be parsed to tell an invalid number from a valid one with
    /// nothing stored.
    pub fn as_stored(input: &str) -> Option<Self> {
        if !in_e164_form(input) {
            return None;
        }
        as_written(input).map(|_| Self {
            e164: input.to_owned(),
            meta: None,
        })
    }

    /// Rebuilds a number this server validated before (read back from its own store).
    pub fn from_trusted_e164(e164: String) -> Self {
        Self { e164, meta: None }
    }

    /// The full E.164 form. Only for Plivo requests and storage, never for logs.
    pub fn as_e164(&self) -> &str {
        &self.e164
    }

    /// The ISO 3166 region libphonenumber assigns (`"US"`, `"GB"`…), if any.
    pub fn region(&self) -> Option<String> {
        match &self.meta {
            Some(m) => m.region.get_or_init(|| region_of(&self.e164)).clone(),
            None => region_of(&self.e164),
        }
    }

    /// The country calling code (`1`, `44`…).
    pub fn country_code(&self) -> Option<u16> {
        match &self.meta {
            Some(m) => Some(m.country_code),
            // Every check reads a number back from the store and asks this (the
            // pumping detector counts by calling code): a prefix lookup, not a
            // full parse, which costs tens of microseconds of regular expressions.
            None => calling_code(&self.e164),
        }
    }

    pub fn line_kind(&self) -> LineKind {
        match &self.meta {
            Some(m) => m.kind,
            None => phonenumber::parse(None, &self.e164)
                .map_or(LineKind::Unknown, |p| kind_of_parsed(&p)),
        }
    }

    /// The number with its middle hidden: `+1415***0100`.
    pub fn masked(&self) -> String {
        let n = self.e164.len();
        let (head, tail) = if n >= 11 { (5, 4) } else { (3, 2) };
        format!("{}***{}", &self.e164[..head], &self.e164[n - tail..])
    }
}

/// How numbers are written in one region, from libphonenumber's metadata: what
/// a form needs to turn what a person types into E.164.
#[derive(Debug, Clone)]
pub struct NumberingPlan {
    /// The ISO 3166 region (`"GB"`).
    pub region: &'static str,
    /// The country calling code (`44`).
    pub calling_code: u16,
    /// The trunk prefix dialled before a national number (`0` in the UK), if
    /// the plan has one (Italy's leading 0 is part of the number, not a prefix).
    pub national_prefix: Option<&'static str>,
    /// libphonenumber's example mobile number for the region, when it parses
    /// here as a number of that region.
    pub example_mobile: Option<PhoneNumber>,
}

/// The numbering plan of `region` (an ISO 3166 code such as `"GB"`), if
/// libphonenumber knows the region.
pub fn numbering_plan(region: &str) -> Option<NumberingPlan> {
    let meta = DATABASE.by_id(region)?;
    let calling_code = meta.country_code();
    let example_mobile = meta
        .descriptors()
        .mobile()
        .and_then(|d| d.example())
        .and_then(|nsn| PhoneNumber::parse(&format!("+{calling_code}{nsn}")).ok())
        .filter(|n| n.region().as_deref() == Some(meta.id()));
    Some(NumberingPlan {
        region: meta.id(),
        calling_code,
        national_prefix: meta.national_prefix(),
        example_mobile,
    })
}

/// Every ISO 3166 region libphonenumber has a numbering plan for, sorted
/// (without the non-geographic plans, such as +800, that have no region).
pub fn regions() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = DATABASE
        .iter()
        .map(phonenumber::metadata::Metadata::id)
        .filter(|id| id.len() == 2 && id.bytes().all(|b| b.is_ascii_uppercase()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl PhoneNumber {
    /// The number as people in its country write it (`07400 123456`), for
    /// hints and examples; never for logs (it is the full number).
    pub fn national_format(&self) -> String {
        phonenumber::parse(None, &self.e164).map_or_else(
            |_| self.e164.clone(),
            |p| p.format().mode(Mode::National).to_string(),
        )
    }
}

/// Loads libphonenumber's metadata and compiles the patterns of one common
/// numbering plan, which the first parse in a process otherwise waits for
/// (about 200 ms). Start-up runs this on a thread of its own, so the server is
/// ready without waiting for it and its first request rarely does.
pub fn warm_up() {
    std::hint::black_box(PhoneNumber::parse("+14155550100").is_ok());
    // And the crate's parse, which the shortcut leaves the numbers a parse
    // could rewrite (here a trunk prefix): in the same plan, so that no
    // other plan's patterns are held for it (another plan's took 1.4 MiB).
    std::hint::black_box(PhoneNumber::parse("+114155550100").is_ok());
    std::hint::black_box(trunk_prefixes().len());
}

/// The calling code an E.164 number starts with, found as libphonenumber finds
/// it: the first one-, two- or three-digit prefix that is an assigned code
/// (the codes are prefix-free).
fn calling_code(e164: &str) -> Option<u16> {
    let digits = e164.strip_prefix('+')?;
    (1..=MAX_CALLING_CODE_DIGITS)
        .filter_map(|len| digits.get(..len)?.parse::<u16>().ok())
        .find(|code| DATABASE.by_code(code).is_some())
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_e164_number_parses_and_keeps_its_form() {
        let n = PhoneNumber::parse("+14155550100").unwrap();
        assert_eq!(n.as_e164(), "+14155550100");
        assert_eq!(n.region().as_deref(), Some("US"));
        assert_eq!(n.country_code(), Some(1));
    }

    #[test]
    fn numbers_not_in_e164_form_are_refused() {
        for bad in [
            "",
            "14155550100",
            "+1 415 555 0100",
            "+1-415-555-0100",
            "+",
            "+123",
            "+1234567890123456",
            "+04155550100",
            "+１４１５５５５０１００",
            "tel:+14155550100",
        ] {
            assert_eq!(
                PhoneNumber::parse(bad),
                Err(PhoneNumberError::NotE164),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_number_is_taken_as_stored_only_in_e164_form_without_a_trunk_prefix() {
        for stored in [
            "+14155550100",
            "+447400123456",
            "+390212345678",
            "+19999999999",
        ] {
            assert_eq!(
                PhoneNumber::as_stored(stored).map(|n| n.e164),
                Some(stored.to_owned()),
                "{stored}"
            );
        }
        for other in [
            "",
            "14155550100",
            "+1 415 555 0100",
            "+123",
            "+04155550100",
            "+1234567890123456",
            // Trunk prefixes a parse strips: the UK's 0, NANP's 1.
            "+4407400123456",
            "+114155550100",
        ] {
            assert!(PhoneNumber::as_stored(other).is_none(), "{other:?}");
        }
    }

    /// Every plan's example numbers of every kind, with their last digit
    /// changed, a digit more or less, and a trunk prefix written after the
    /// calling code (which the parse strips, so the stored form differs from
    /// the input).
    fn example_numbers_and_their_neighbours() -> Vec<String> {
        let mut inputs = Vec::new();
        for meta in DATABASE.iter() {
            let cc = meta.country_code();
            let d = meta.descriptors();
            let examples = [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            .filter_map(phonenumber::metadata::Descriptor::example);
            for example in examples {
                let mut nationals = vec![example.to_owned(), format!("{example}0")];
                let (head, _) = example.split_at(example.len() - 1);
                nationals.push(head.to_owned());
                nationals.extend((0..10).map(|d| format!("{head}{d}")));
                let prefixed: Vec<String> = [meta.national_prefix(), Some("0")]
                    .into_iter()
                    .flatten()
                    .flat_map(|p| nationals.iter().map(move |n| format!("{p}{n}")))
                    .collect();
                inputs.extend(
                    nationals
                        .iter()
                        .chain(&prefixed)
                        .map(|n| format!("+{cc}{n}")),
                );
            }
        }
        inputs
    }

    /// What lets a check by number look a number up as written: whatever a
    /// start's parse stored, when taken as stored, parses again to itself.
    #[test]
    fn a_parsed_numbers_e164_form_parses_to_itself() {
        let mut checked = 0;
        let mut rewritten = 0;
        for input in example_numbers_and_their_neighbours() {
            let Ok(n) = PhoneNumber::parse(&input) else {
                continue;
            };
            if PhoneNumber::as_stored(n.as_e164()).is_none() {
                // Parsed before it is looked up, as every number was.
                continue;
            }
            let again = PhoneNumber::parse(n.as_e164());
            assert_eq!(
                again.as_ref().map(PhoneNumber::as_e164),
                Ok(n.as_e164()),
                "{input} parsed as {}, which parses as {again:?}",
                n.as_e164()
            );
            checked += 1;
            if n.as_e164() != input {
                rewritten += 1;
            }
        }
        assert!(checked > 5_000, "only {checked} numbers parsed");
        assert!(rewritten > 0, "no input was rewritten by its parse");
    }

    /// The parse of a number no parse could rewrite, read straight from the
    /// metadata, is the crate's full parse: the same validity, E.164 form,
    /// calling code, line kind and region, over every plan's example numbers
    /// and their neighbours.
    #[test]
    fn a_number_parsed_as_written_is_what_the_full_parse_makes_of_it() {
        let (mut valid, mut invalid, mut in_full_only) = (0, 0, 0);
        for input in example_numbers_and_their_neighbours() {
            if !in_e164_form(&input) {
                continue;
            }
            let full = PhoneNumber::parse_in_full(&input);
            let Some(written) = PhoneNumber::parse_as_written(&input) else {
                in_full_only += 1;
                continue;
            };
            match (&written, &full) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.as_e164(), b.as_e164(), "{input}");
                    assert_eq!(a.country_code(), b.country_code(), "{input}");
                    assert_eq!(a.line_kind(), b.line_kind(), "{input}");
                    assert_eq!(a.region(), b.region(), "{input}");
                    valid += 1;
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a, b, "{input}");
                    invalid += 1;
                }
                _ => panic!(
                    "{input}: as written {:?}, in full {:?}",
                    written.as_ref().map(PhoneNumber::as_e164),
                    full.as_ref().map(PhoneNumber::as_e164)
                ),
            }
        }
        assert!(valid > 5_000, "only {valid} valid numbers compared");
        assert!(invalid > 1_000, "only {invalid} invalid numbers compared");
        assert!(in_full_only > 0, "every input was taken as written");
    }

    #[test]
    fn well_formed_but_impossible_numbers_are_refused() {
        assert_eq!(
            PhoneNumber::parse("+19995550100"),
            Err(PhoneNumberError::Invalid)
        );
    }

    #[test]
    fn validity_is_libphonenumbers_with_or_without_leading_zeros() {
        for input in [
            "+14155550100",
            "+19995550100",
            "+390612345678",
            "+39061234567",
            "+393123456789",
            "+447400123456",
            "+4407400123456",
            "+2250712345678",
            "+5511912345678",
            "+8613812345678",
            "+88213123456",
            "+80012345678",
        ] {
            let expected = phonenumber::parse(None, input)
                .map(|p| phonenumber::is_valid(&p))
                .unwrap_or(false);
            assert_eq!(PhoneNumber::parse(input).is_ok(), expected, "{input}");
        }
    }

    #[test]
    fn display_and_debug_mask_the_middle_digits() {
        let n = PhoneNumber::parse("+14155550100").unwrap();
        assert_eq!(n.to_string(), "+1415***0100");
        assert!(!format!("{n:?}").contains("4155550100"));
    }

    #[test]
    fn premium_rate_numbers_are_known_as_such() {
        let n = PhoneNumber::parse("+19005550100").unwrap();
        assert_eq!(n.line_kind(), LineKind::PremiumRate);
        let stored = PhoneNumber::from_trusted_e164("+19005550100".into());
        assert_eq!(stored.line_kind(), LineKind::PremiumRate);
        assert_eq!(stored, n);
    }

    #[test]
    fn a_stored_number_has_the_calling_code_a_parse_finds() {
        for e164 in [
            "+14155550100",
            "+12684601234",
            "+447400123456",
            "+33612345678",
            "+4915123456789",
            "+79123456789",
            "+8613812345678",
            "+971501234567",
            "+35312345678",
            "+2348031234567",
        ] {
            let parsed = PhoneNumber::parse(e164).unwrap();
            let stored = PhoneNumber::from_trusted_e164(e164.to_owned());
            assert_eq!(stored.country_code(), parsed.country_code(), "{e164}");
            assert!(stored.country_code().is_some(), "{e164}");
        }
        assert_eq!(
            PhoneNumber::from_trusted_e164("+9999".to_owned()).country_code(),
            None
        );
    }

    #[test]
    fn a_numbering_plan_gives_the_calling_code_trunk_prefix_and_a_valid_mobile_example() {
        let gb = numbering_plan("GB").unwrap();
        assert_eq!(gb.calling_code, 44);
        assert_eq!(gb.national_prefix, Some("0"));
        let example = gb.example_mobile.unwrap();
        assert_eq!(example.region().as_deref(), Some("GB"));
        assert_eq!(example.line_kind(), LineKind::Mobile);
        assert!(example.national_format().starts_with('0'));
        // Italy's leading 0 belongs to the number: no trunk prefix.
        assert_eq!(numbering_plan("IT").unwrap().national_prefix, None);
        let us = numbering_plan("US").unwrap();
        assert_eq!(us.calling_code, 1);
        assert_eq!(
            us.example_mobile.unwrap().region().as_deref(),
            Some("US"),
            "+1 examples of one region are not another's"
        );
        assert!(numbering_plan("ZZ").is_none());
    }

    #[test]
    fn regions_are_every_two_letter_plan_sorted() {
        let all = regions();
        assert!(all.len() > 200, "{}", all.len());
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        for r in ["US", "GB", "IN", "BR", "XK"] {
            assert!(all.contains(&r), "{r}");
        }
        assert!(!all.iter().any(|r| r.len() != 2));
    }

    #[test]
    fn italian_fixed_lines_are_fixed_lines_in_italy() {
        // Milan, Rome, Turin: the leading 0 is part of the number internationally.
        for e164 in ["+390212345678", "+390612345678", "+39011123456"] {
            for n in [
                PhoneNumber::parse(e164).unwrap(),
                PhoneNumber::from_trusted_e164(e164.to_owned()),
            ] {
                assert_eq!(n.line_kind(), LineKind::FixedLine, "{e164}");
                assert_eq!(n.region().as_deref(), Some("IT"), "{e164}");
                assert_eq!(n.country_code(), Some(39), "{e164}");
            }
        }
        let mobile = PhoneNumber::parse("+393123456789").unwrap();
        assert_eq!(mobile.line_kind(), LineKind::Mobile);
        assert_eq!(mobile.region().as_deref(), Some("IT"));
        // The Vatican shares +39 06 and keeps its own region.
        let vatican = PhoneNumber::parse("+390669812345").unwrap();
        assert_eq!(vatican.region().as_deref(), Some("VA"));
    }

    #[test]
    fn a_uk_mobile_is_known_as_mobile() {
        let n = PhoneNumber::parse("+447400123456").unwrap();
        assert_eq!(n.line_kind(), LineKind::Mobile);
        assert_eq!(n.region().as_deref(), Some("GB"));
    }
}
