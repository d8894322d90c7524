//! Phone number parsing on hostile input.
//!
//! Never panics, and whatever `PhoneNumber::parse` accepts
//! * is `+` then 7 to 15 ASCII digits, the first not `0`;
//! * parses back to itself from its E.164 form;
//! * never shows the full number through `masked()`, `Display` or `Debug`;
//! * answers `region()`, `country_code()` and `line_kind()` without panicking.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use plivo_2fa::domain::PhoneNumber;

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any string.
    Raw(String),
    /// `+` and digits (each byte taken modulo 10), so that most inputs reach
    /// libphonenumber's validation instead of stopping at the E.164 shape check.
    Digits(Vec<u8>),
}

fuzz_target!(|input: Input| {
    let text = match input {
        Input::Raw(raw) => raw,
        Input::Digits(bytes) => std::iter::once('+')
            .chain(bytes.iter().map(|b| char::from(b'0' + b % 10)))
            .collect(),
    };
    let Ok(number) = PhoneNumber::parse(&text) else {
        return;
    };
    let e164 = number.as_e164();
    let digits = e164.strip_prefix('+').expect("E.164 starts with +");
    assert!(
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0'),
        "{text:?} was accepted as {e164:?}"
    );
    assert_eq!(
        PhoneNumber::parse(e164).as_ref(),
        Ok(&number),
        "{e164:?} does not parse back to itself"
    );

    let masked = number.masked();
    for shown in [masked.clone(), number.to_string(), format!("{number:?}")] {
        assert!(
            !shown.contains(digits),
            "{shown:?} shows the whole of {e164:?}"
        );
    }
    let hidden = masked.len() - masked.replace("***", "").len();
    assert!(hidden > 0, "{masked:?} hides nothing");
    let visible_digits = masked.bytes().filter(u8::is_ascii_digit).count();
    assert!(
        visible_digits < digits.len(),
        "{masked:?} shows every digit of {e164:?}"
    );

    let _ = number.region();
    let _ = number.country_code();
    let _ = number.line_kind();
});
