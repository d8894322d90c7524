//! The callback body parser on hostile bytes, and its output fed to the V3
//! string to sign, as the callback handlers do.
//!
//! Never panics, and
//! * `parse_form` returns at most `MAX_FORM_PARAMS` pairs, and `None` exactly
//!   when the body has more pairs than that;
//! * every decoded key and value appears in the POST string to sign, which
//!   ends in `.` + nonce;
//! * re-encoding the pairs and parsing them again gives the same pairs.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use plivo_2fa::plivo::signature::{MAX_FORM_PARAMS, Method, parse_form, v3_string_to_sign};

const URL: &str = "https://2fa.example.test/v1/plivo/answer?ref=CRabcd&attempt=1";
const NONCE: &str = "05429567804466091622";

#[derive(Debug, Arbitrary)]
enum Body {
    Raw(Vec<u8>),
    /// One chunk many times over, to reach the pair limit quickly.
    Repeated {
        unit: Vec<u8>,
        times: u16,
    },
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Raw(bytes) => bytes.clone(),
            Body::Repeated { unit, times } => unit.repeat(usize::from(*times % 1024)),
        }
    }
}

fuzz_target!(|body: Body| {
    let body = body.bytes();
    // Pairs are the non-empty `&`-separated segments.
    let pairs_in_body = body.split(|b| *b == b'&').filter(|s| !s.is_empty()).count();
    let Some(params) = parse_form(&body) else {
        assert!(
            pairs_in_body > MAX_FORM_PARAMS,
            "a body of {pairs_in_body} pairs was refused"
        );
        return;
    };
    assert!(params.len() <= MAX_FORM_PARAMS);
    assert_eq!(params.len(), pairs_in_body);

    let post = v3_string_to_sign(Method::Post, URL, &params, NONCE)
        .expect("a fixed valid URL is accepted");
    assert!(post.ends_with(&format!(".{NONCE}")));
    for (key, value) in &params {
        assert!(post.contains(key.as_str()) && post.contains(value.as_str()));
    }
    let get =
        v3_string_to_sign(Method::Get, URL, &params, NONCE).expect("a fixed valid URL is accepted");
    assert!(get.ends_with(&format!(".{NONCE}")));

    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    assert_eq!(
        parse_form(encoded.as_bytes()).as_ref(),
        Some(&params),
        "re-encoded pairs parse differently"
    );
});
