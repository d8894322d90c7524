//! Plivo signature verification on hostile input: random URLs, methods, form
//! parameters, nonces, auth tokens and signature headers.
//!
//! Never panics, and holds these properties:
//! * a signature made by `sign_v3`/`sign_v2` verifies, alone or among junk;
//! * flipping any byte of the nonce makes that signature fail;
//! * the V3 string to sign ends in `.` + nonce and does not depend on the
//!   order of the form parameters;
//! * an empty nonce, a URL that is not http(s) and a header with no
//!   well-formed signature are refused with their own errors.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use plivo_2fa::plivo::signature::{
    Method, SignatureError, sign_v2, sign_v3, v3_string_to_sign, verify_v2, verify_v3,
};

#[derive(Debug, Arbitrary)]
enum Url {
    /// Anything at all.
    Raw(String),
    /// An absolute URL assembled from random parts, so most inputs get past
    /// the URL check and into the string to sign.
    Parts {
        scheme: Scheme,
        host: String,
        port: Option<u16>,
        path: String,
        query: Option<String>,
        fragment: Option<String>,
    },
}

#[derive(Debug, Arbitrary)]
enum Scheme {
    Http,
    Https,
    Upper,
    Other(String),
}

impl Url {
    fn render(&self) -> String {
        match self {
            Url::Raw(raw) => raw.clone(),
            Url::Parts {
                scheme,
                host,
                port,
                path,
                query,
                fragment,
            } => {
                let mut url = match scheme {
                    Scheme::Http => "http".to_owned(),
                    Scheme::Https => "https".to_owned(),
                    Scheme::Upper => "HTTPS".to_owned(),
                    Scheme::Other(s) => s.clone(),
                };
                url.push_str("://");
                url.push_str(host);
                if let Some(port) = port {
                    url.push_str(&format!(":{port}"));
                }
                if !path.starts_with('/') && !path.is_empty() {
                    url.push('/');
                }
                url.push_str(path);
                if let Some(query) = query {
                    url.push('?');
                    url.push_str(query);
                }
                if let Some(fragment) = fragment {
                    url.push('#');
                    url.push_str(fragment);
                }
                url
            }
        }
    }
}

/// One comma-separated entry of a signature header.
#[derive(Debug, Arbitrary)]
enum HeaderPart {
    /// The real V3 signature under the token at this index (modulo the count).
    RealV3(u8),
    /// The real V2 signature under the token at this index.
    RealV2(u8),
    /// Well-formed base64 of 32 random bytes.
    Random([u8; 32]),
    Junk(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    post: bool,
    method_text: String,
    url: Url,
    params: Vec<(String, String)>,
    nonce: String,
    tokens: Vec<Vec<u8>>,
    header: Vec<HeaderPart>,
    separator: Separator,
    /// Which nonce byte to flip, and how.
    flip_at: usize,
    flip_mask: u8,
}

#[derive(Debug, Arbitrary)]
enum Separator {
    Comma,
    CommaSpace,
    Spaces,
    Other(String),
}

impl Separator {
    fn as_str(&self) -> &str {
        match self {
            Separator::Comma => ",",
            Separator::CommaSpace => ", ",
            Separator::Spaces => " , ",
            Separator::Other(s) => s,
        }
    }
}

/// 32 bytes as Plivo sends a MAC: standard padded base64.
fn base64_of(bytes: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The nonce with one byte changed, if the result is still a non-empty string.
fn flipped(nonce: &str, at: usize, mask: u8) -> Option<String> {
    if nonce.is_empty() {
        return None;
    }
    let mut bytes = nonce.as_bytes().to_vec();
    let at = at % bytes.len();
    // Stay within ASCII for ASCII bytes so most flips give valid UTF-8.
    let mask = if bytes[at].is_ascii() {
        mask % 0x7f + 1
    } else {
        mask.max(1)
    };
    bytes[at] ^= mask;
    String::from_utf8(bytes).ok()
}

fuzz_target!(|input: Input| {
    let method = if input.post {
        Method::Post
    } else {
        Method::Get
    };
    let _ = Method::parse(&input.method_text);
    let url = input.url.render();
    let tokens: Vec<&[u8]> = input.tokens.iter().map(Vec::as_slice).collect();

    let to_sign = v3_string_to_sign(method, &url, &input.params, &input.nonce);
    let v2_ok = sign_v2(b"token", &url, &input.nonce).is_ok();
    match &to_sign {
        Ok(s) => {
            assert!(
                v2_ok,
                "V3 and V2 disagree on whether {url:?} is a valid URL"
            );
            assert!(
                s.starts_with("http://") || s.starts_with("https://"),
                "{s:?}"
            );
            assert!(s.ends_with(&format!(".{}", input.nonce)), "{s:?}");
            let mut reversed = input.params.clone();
            reversed.reverse();
            let again = v3_string_to_sign(method, &url, &reversed, &input.nonce);
            assert_eq!(
                again.as_ref(),
                Ok(s),
                "param order changed the string to sign"
            );
        }
        Err(e) => {
            assert_eq!(*e, SignatureError::InvalidUrl);
            assert!(!v2_ok);
        }
    }

    // The header as the fuzzer built it: verification must not panic, and
    // its error must be the documented one for the input.
    let header = input
        .header
        .iter()
        .map(|part| match part {
            HeaderPart::RealV3(i) | HeaderPart::RealV2(i) if tokens.is_empty() => {
                let _ = i;
                String::new()
            }
            HeaderPart::RealV3(i) => {
                let token = tokens[usize::from(*i) % tokens.len()];
                sign_v3(token, method, &url, &input.params, &input.nonce).unwrap_or_default()
            }
            HeaderPart::RealV2(i) => {
                let token = tokens[usize::from(*i) % tokens.len()];
                sign_v2(token, &url, &input.nonce).unwrap_or_default()
            }
            HeaderPart::Random(bytes) => base64_of(bytes),
            HeaderPart::Junk(junk) => junk.clone(),
        })
        .collect::<Vec<_>>()
        .join(input.separator.as_str());
    let v3 = verify_v3(&tokens, method, &url, &input.params, &input.nonce, &header);
    let v2 = verify_v2(&tokens, &url, &input.nonce, &header);
    for result in [&v3, &v2] {
        if input.nonce.is_empty() {
            assert_eq!(*result, Err(SignatureError::MissingNonce));
        }
        if result.is_ok() {
            assert!(!tokens.is_empty(), "a signature verified with no token");
        }
    }
    if !input.nonce.is_empty() && to_sign.is_err() {
        assert!(
            matches!(
                v3,
                Err(SignatureError::InvalidUrl | SignatureError::Malformed)
            ),
            "{v3:?}"
        );
    }

    // Real signatures verify, alone and among junk, and fail with a changed nonce.
    if input.nonce.is_empty() || to_sign.is_err() || tokens.is_empty() {
        return;
    }
    let token = tokens[input.flip_at % tokens.len()];
    let v3_signature = sign_v3(token, method, &url, &input.params, &input.nonce)
        .expect("the URL was accepted above");
    let v2_signature = sign_v2(token, &url, &input.nonce).expect("the URL was accepted above");
    assert_eq!(
        verify_v3(
            &tokens,
            method,
            &url,
            &input.params,
            &input.nonce,
            &v3_signature
        ),
        Ok(())
    );
    assert_eq!(
        verify_v2(&tokens, &url, &input.nonce, &v2_signature),
        Ok(())
    );
    let among_junk = format!("{header},{v3_signature}, {header}");
    assert_eq!(
        verify_v3(
            &tokens,
            method,
            &url,
            &input.params,
            &input.nonce,
            &among_junk
        ),
        Ok(()),
        "a valid signature next to junk must still verify"
    );

    if let Some(other_nonce) = flipped(&input.nonce, input.flip_at, input.flip_mask) {
        assert_eq!(
            verify_v3(
                &[token],
                method,
                &url,
                &input.params,
                &other_nonce,
                &v3_signature
            ),
            Err(SignatureError::Mismatch),
            "a V3 signature verified under a changed nonce"
        );
        assert_eq!(
            verify_v2(&[token], &url, &other_nonce, &v2_signature),
            Err(SignatureError::Mismatch),
            "a V2 signature verified under a changed nonce"
        );
    }
});
