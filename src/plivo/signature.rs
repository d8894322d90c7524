//! Plivo request signatures: building the exact strings Plivo signs, signing
//! them (so tests can make real signatures) and verifying the `X-Plivo-Signature-*`
//! headers of incoming callbacks.
//!
//! Pure functions only: no HTTP framework, no I/O, no clock. The caller hands
//! in the public URL Plivo called, the method, the decoded form parameters,
//! the nonce header and the signature header.
//!
//! The canonical strings follow Plivo's SDKs (plivo-python's `signature_v3` is
//! the reference, and the known-answer vectors in
//! `tests/conformance/plivo-signature-vectors.json` come from its test suite):
//!
//! * the base URL is `scheme://netloc/path` taken verbatim from the URL string:
//!   the port stays exactly as written (`:443` is *not* dropped), the host
//!   keeps its case, the path keeps its percent-escapes and gets no trailing
//!   `/` added; only the scheme is lower-cased. Query and fragment are cut off.
//! * V3 `GET`: `base` + `?` + the URL's query pairs and `params`, decoded and
//!   sorted by key then value, joined as `k=v&k=v`; no `?` when there are no
//!   pairs at all.
//! * V3 `POST`: `base` + `?` + (the URL's sorted query `k=v&…` + `.`, if there is
//!   a query) + `params` sorted by key then value and concatenated as `kv` with
//!   no separators. With no params the string is just `base` (+ `?query`).
//! * V3 then appends `.` + nonce; V2 appends the nonce directly and ignores the
//!   query and the params.
//!
//! MACs are HMAC-SHA256 keyed by the auth token, sent as standard padded base64.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// V3 signature made with the (sub)account's auth token.
pub const V3_HEADER: &str = "X-Plivo-Signature-V3";
/// V3 signature made with the main account's auth token (sent for subaccounts).
pub const MA_V3_HEADER: &str = "X-Plivo-Signature-Ma-V3";
/// Nonce that is part of the V3 string to sign.
pub const V3_NONCE_HEADER: &str = "X-Plivo-Signature-V3-Nonce";
/// V2 signature made with the (sub)account's auth token.
pub const V2_HEADER: &str = "X-Plivo-Signature-V2";
/// V2 signature made with the main account's auth token (sent for subaccounts).
pub const MA_V2_HEADER: &str = "X-Plivo-Signature-Ma-V2";
/// Nonce that is part of the V2 string to sign.
pub const V2_NONCE_HEADER: &str = "X-Plivo-Signature-V2-Nonce";

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 output.
const MAC_LEN: usize = 32;
/// Length of a 32-byte MAC in padded standard base64.
const ENCODED_MAC_LEN: usize = 44;

/// The HTTP method Plivo used for the callback; V3 signs GET and POST differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// Parses `GET` or `POST`, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<Method> {
        if s.eq_ignore_ascii_case("GET") {
            Some(Method::Get)
        } else if s.eq_ignore_ascii_case("POST") {
            Some(Method::Post)
        } else {
            None
        }
    }
}

/// Why a request's signature was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    MissingHeader,
    #[error("the signature nonce header is missing or empty")]
    MissingNonce,
    #[error("the signature header holds no well-formed signature")]
    Malformed,
    #[error("no signature matches any configured auth token")]
    Mismatch,
    #[error("the callback URL is not an absolute http(s) URL")]
    InvalidUrl,
}

/// The pieces of a callback URL that Plivo's signatures use, borrowed verbatim
/// from the URL string.
struct UrlParts<'a> {
    scheme: &'static str,
    netloc: &'a str,
    path: &'a str,
    query: &'a str,
}

impl<'a> UrlParts<'a> {
    /// Splits `scheme://netloc/path?query#fragment` the way Python's `urlparse`
    /// does, without normalising anything: the SDKs sign `netloc` as written, so
    /// `https://host:443/x` and `https://host/x` sign differently.
    fn split(url: &'a str) -> Result<Self, SignatureError> {
        if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(SignatureError::InvalidUrl);
        }
        let (scheme, rest) = url.split_once("://").ok_or(SignatureError::InvalidUrl)?;
        let scheme = if scheme.eq_ignore_ascii_case("https") {
            "https"
        } else if scheme.eq_ignore_ascii_case("http") {
            "http"
        } else {
            return Err(SignatureError::InvalidUrl);
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (netloc, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        if netloc.is_empty() {
            return Err(SignatureError::InvalidUrl);
        }
        Ok(Self {
            scheme,
            netloc,
            path,
            query,
        })
    }

    fn base_len(&self) -> usize {
        self.scheme.len() + "://".len() + self.netloc.len() + self.path.len()
    }

    fn push_base(&self, out: &mut String) {
        out.push_str(self.scheme);
        out.push_str("://");
        out.push_str(self.netloc);
        out.push_str(self.path);
    }

    /// The query's pairs, percent- and `+`-decoded, sorted by key then value.
    fn sorted_query_pairs(&self) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
        let mut pairs: Vec<_> = url::form_urlencoded::parse(self.query.as_bytes()).collect();
        pairs.sort_unstable();
        pairs
    }
}

/// Appends `k=v&k=v…` (no escaping: Plivo signs the decoded values).
fn push_query_pairs<K: AsRef<str>, V: AsRef<str>>(out: &mut String, pairs: &[(K, V)]) {
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key.as_ref());
        out.push('=');
        out.push_str(value.as_ref());
    }
}

/// The exact V3 string that is HMAC'd, including the trailing `.` + nonce.
///
/// `params` are the decoded POST form parameters; for GET they are the query
/// parameters, merged with the URL's own query. When a key appears in the
/// URL's query, the URL's values win and `params` entries with that key are
/// ignored (plivo-python does `params.update(url_query)`), so passing both the
/// full request URL and its parsed query does not count the pairs twice.
pub fn v3_string_to_sign(
    method: Method,
    url: &str,
    params: &[(String, String)],
    nonce: &str,
) -> Result<String, SignatureError> {
    let parts = UrlParts::split(url)?;
    let params_len: usize = params.iter().map(|(k, v)| k.len() + v.len() + 1).sum();
    let mut out =
        String::with_capacity(parts.base_len() + parts.query.len() + params_len + nonce.len() + 3);
    parts.push_base(&mut out);

    let mut query = parts.sorted_query_pairs();
    match method {
        Method::Get => {
            let from_url = query.len();
            for (key, value) in params {
                let in_url = query[..from_url]
                    .binary_search_by(|(k, _)| k.as_ref().cmp(key.as_str()))
                    .is_ok();
                if !in_url {
                    query.push((Cow::Borrowed(key.as_str()), Cow::Borrowed(value.as_str())));
                }
            }
            if from_url < query.len() {
                query.sort_unstable();
            }
            if !query.is_empty() {
                out.push('?');
                push_query_pairs(&mut out, &query);
            }
        }
        Method::Post => {
            if params.is_empty() {
                // With no form params the SDKs sign the query like a GET: no `.`.
                if !query.is_empty() {
                    out.push('?');
                    push_query_pairs(&mut out, &query);
                }
            } else {
                out.push('?');
                if !query.is_empty() {
                    push_query_pairs(&mut out, &query);
                    out.push('.');
                }
                let mut sorted: Vec<&(String, String)> = params.iter().collect();
                sorted.sort_unstable();
                for (key, value) in sorted {
                    out.push_str(key);
                    out.push_str(value);
                }
            }
        }
    }

    out.push('.');
    out.push_str(nonce);
    Ok(out)
}

/// Base64 V3 signature of a request, as Plivo would send it in [`V3_HEADER`].
pub fn sign_v3(
    token: &[u8],
    method: Method,
    url: &str,
    params: &[(String, String)],
    nonce: &str,
) -> Result<String, SignatureError> {
    let message = v3_string_to_sign(method, url, params, nonce)?;
    let mut mac = keyed_mac(token)?;
    mac.update(message.as_bytes());
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// Base64 V2 signature of a request, as Plivo would send it in [`V2_HEADER`].
/// V2 signs only `scheme://netloc/path` + nonce: query and params are not covered.
pub fn sign_v2(token: &[u8], url: &str, nonce: &str) -> Result<String, SignatureError> {
    let parts = UrlParts::split(url)?;
    let mut mac = keyed_mac(token)?;
    update_v2(&mut mac, &parts, nonce);
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// Checks a V3 signature header (e.g. [`V3_HEADER`]) against every configured
/// auth token.
///
/// `header_value` may hold several comma-separated signatures (whitespace
/// around them is ignored). Any (signature, token) pair that matches passes.
/// Signatures that are not base64 of 32 bytes are skipped; if none is
/// well-formed the result is [`SignatureError::Malformed`], if none matches it
/// is [`SignatureError::Mismatch`]. MACs are compared in constant time.
pub fn verify_v3(
    tokens: &[&[u8]],
    method: Method,
    url: &str,
    params: &[(String, String)],
    nonce: &str,
    header_value: &str,
) -> Result<(), SignatureError> {
    check_inputs(nonce, header_value)?;
    let message = v3_string_to_sign(method, url, params, nonce)?;
    verify_with(tokens, header_value, |mac| mac.update(message.as_bytes()))
}

/// Checks a V2 signature header (e.g. [`V2_HEADER`]); same header and token
/// rules as [`verify_v3`].
pub fn verify_v2(
    tokens: &[&[u8]],
    url: &str,
    nonce: &str,
    header_value: &str,
) -> Result<(), SignatureError> {
    check_inputs(nonce, header_value)?;
    let parts = UrlParts::split(url)?;
    verify_with(tokens, header_value, |mac| update_v2(mac, &parts, nonce))
}

fn keyed_mac(token: &[u8]) -> Result<HmacSha256, SignatureError> {
    // HMAC accepts keys of any length, so this error cannot happen.
    HmacSha256::new_from_slice(token).map_err(|_| SignatureError::Malformed)
}

fn update_v2(mac: &mut HmacSha256, parts: &UrlParts<'_>, nonce: &str) {
    mac.update(parts.scheme.as_bytes());
    mac.update(b"://");
    mac.update(parts.netloc.as_bytes());
    mac.update(parts.path.as_bytes());
    mac.update(nonce.as_bytes());
}

/// Rejects what no token could verify before any hashing is done.
fn check_inputs(nonce: &str, header_value: &str) -> Result<(), SignatureError> {
    if nonce.is_empty() {
        return Err(SignatureError::MissingNonce);
    }
    if decoded_signatures(header_value).next().is_none() {
        return Err(SignatureError::Malformed);
    }
    Ok(())
}

/// The header's well-formed signatures, decoded; malformed ones are skipped.
fn decoded_signatures(header_value: &str) -> impl Iterator<Item = [u8; MAC_LEN]> + '_ {
    header_value.split(',').filter_map(|candidate| {
        let candidate = candidate.trim();
        if candidate.len() != ENCODED_MAC_LEN {
            return None;
        }
        let mut decoded = [0u8; MAC_LEN];
        match STANDARD.decode_slice(candidate, &mut decoded) {
            Ok(MAC_LEN) => Some(decoded),
            _ => None,
        }
    })
}

/// MACs the message once per token (`feed` writes it into the HMAC) and
/// compares it with every signature in the header.
fn verify_with(
    tokens: &[&[u8]],
    header_value: &str,
    feed: impl Fn(&mut HmacSha256),
) -> Result<(), SignatureError> {
    for token in tokens {
        let mut mac = keyed_mac(token)?;
        feed(&mut mac);
        let expected = mac.finalize().into_bytes();
        for candidate in decoded_signatures(header_value) {
            if bool::from(expected.as_slice().ct_eq(&candidate)) {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// Most parameters read from one callback body; Plivo sends a few dozen.
pub const MAX_FORM_PARAMS: usize = 256;

/// Decodes an `application/x-www-form-urlencoded` callback body into the
/// parameter list the signature covers. `None` for a body with more than
/// [`MAX_FORM_PARAMS`] pairs.
pub fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    for pair in url::form_urlencoded::parse(body) {
        if params.len() == MAX_FORM_PARAMS {
            return None;
        }
        params.push((pair.0.into_owned(), pair.1.into_owned()));
    }
    Some(params)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../tests/conformance/plivo-signature-vectors.json");

    struct V3Case {
        name: String,
        method: Method,
        url: String,
        params: Vec<(String, String)>,
        nonce: String,
        token: String,
        signature: String,
        string_to_sign: Option<String>,
        valid: bool,
    }

    struct V2Case {
        name: String,
        url: String,
        nonce: String,
        token: String,
        signature: String,
        valid: bool,
    }

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).expect("vectors file is valid JSON")
    }

    fn text(v: &Value, field: &str) -> String {
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {field} is a string"))
            .to_owned()
    }

    fn v3_cases() -> Vec<V3Case> {
        let all = vectors();
        let cases: Vec<V3Case> = all["v3"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| V3Case {
                name: text(v, "name"),
                method: Method::parse(&text(v, "method")).unwrap(),
                url: text(v, "url"),
                params: v["params"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default(),
                nonce: text(v, "nonce"),
                token: text(v, "auth_token"),
                signature: text(v, "signature"),
                string_to_sign: v["string_to_sign"].as_str().map(str::to_owned),
                valid: v["valid"].as_bool().unwrap_or(true),
            })
            .collect();
        assert!(!cases.is_empty());
        cases
    }

    fn v2_cases() -> Vec<V2Case> {
        let all = vectors();
        let cases: Vec<V2Case> = all["v2"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| V2Case {
                name: text(v, "name"),
                url: text(v, "url"),
                nonce: text(v, "nonce"),
                token: text(v, "auth_token"),
                signature: text(v, "signature"),
                valid: v["valid"].as_bool().unwrap_or(true),
            })
            .collect();
        assert!(!cases.is_empty());
        cases
    }

    impl V3Case {
        fn verify(&self) -> Result<(), SignatureError> {
            verify_v3(
                &[self.token.as_bytes()],
                self.method,
                &self.url,
                &self.params,
                &self.nonce,
                &self.signature,
            )
        }
    }

    impl V2Case {
        fn verify(&self) -> Result<(), SignatureError> {
            verify_v2(
                &[self.token.as_bytes()],
                &self.url,
                &self.nonce,
                &self.signature,
            )
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Index where the URL's netloc ends (start of path, query or end).
    fn netloc_end(url: &str) -> usize {
        let start = url.find("://").unwrap() + 3;
        url[start..]
            .find(['/', '?'])
            .map_or(url.len(), |i| start + i)
    }

    /// Index where the URL's path ends (start of query or end).
    fn path_end(url: &str) -> usize {
        url.find('?').unwrap_or(url.len())
    }

    fn with_port(url: &str) -> String {
        let at = netloc_end(url);
        format!("{}:8443{}", &url[..at], &url[at..])
    }

    fn with_other_host(url: &str) -> String {
        url.replacen("://", "://evil.", 1)
    }

    fn with_other_path(url: &str) -> String {
        let at = path_end(url);
        format!("{}x{}", &url[..at], &url[at..])
    }

    fn with_other_scheme(url: &str) -> String {
        if let Some(rest) = url.strip_prefix("https://") {
            format!("http://{rest}")
        } else {
            url.replacen("http://", "https://", 1)
        }
    }

    // --- known-answer vectors ---

    #[test]
    fn every_v3_vector_verifies_exactly_when_marked_valid() {
        for case in v3_cases() {
            let result = case.verify();
            if case.valid {
                assert_eq!(result, Ok(()), "{}", case.name);
            } else {
                assert_eq!(result, Err(SignatureError::Mismatch), "{}", case.name);
            }
        }
    }

    #[test]
    fn every_v3_vector_signs_to_its_signature() {
        for case in v3_cases().into_iter().filter(|c| c.valid) {
            let signature = sign_v3(
                case.token.as_bytes(),
                case.method,
                &case.url,
                &case.params,
                &case.nonce,
            )
            .unwrap();
            assert_eq!(signature, case.signature, "{}", case.name);
        }
    }

    #[test]
    fn v3_string_to_sign_matches_every_vector_that_gives_one() {
        let mut checked = 0;
        for case in v3_cases() {
            if let Some(expected) = &case.string_to_sign {
                let actual =
                    v3_string_to_sign(case.method, &case.url, &case.params, &case.nonce).unwrap();
                assert_eq!(&actual, expected, "{}", case.name);
                checked += 1;
            }
        }
        assert!(checked > 0);
    }

    #[test]
    fn every_v2_vector_verifies_exactly_when_marked_valid() {
        for case in v2_cases() {
            let result = case.verify();
            if case.valid {
                assert_eq!(result, Ok(()), "{}", case.name);
                let signature = sign_v2(case.token.as_bytes(), &case.url, &case.nonce).unwrap();
                assert_eq!(signature, case.signature, "{}", case.name);
            } else {
                assert_eq!(result, Err(SignatureError::Mismatch), "{}", case.name);
            }
        }
    }

    // --- every single change to a valid vector breaks it ---

    #[test]
    fn any_single_change_to_a_valid_v3_vector_makes_it_fail() {
        for case in v3_cases().into_iter().filter(|c| c.valid) {
            let mut mutations: Vec<(&str, V3Case)> = Vec::new();
            let mutate = |f: &dyn Fn(&mut V3Case)| {
                let mut changed = V3Case {
                    name: case.name.clone(),
                    method: case.method,
                    url: case.url.clone(),
                    params: case.params.clone(),
                    nonce: case.nonce.clone(),
                    token: case.token.clone(),
                    signature: case.signature.clone(),
                    string_to_sign: None,
                    valid: true,
                };
                f(&mut changed);
                changed
            };
            mutations.push(("scheme", mutate(&|c| c.url = with_other_scheme(&c.url))));
            mutations.push(("host", mutate(&|c| c.url = with_other_host(&c.url))));
            mutations.push(("port", mutate(&|c| c.url = with_port(&c.url))));
            mutations.push(("path", mutate(&|c| c.url = with_other_path(&c.url))));
            mutations.push(("param key", mutate(&|c| c.params[0].0.push('x'))));
            mutations.push(("param value", mutate(&|c| c.params[0].1.push('x'))));
            mutations.push((
                "added param",
                mutate(&|c| c.params.push(("Extra".into(), "1".into()))),
            ));
            mutations.push((
                "dropped param",
                mutate(&|c| {
                    c.params.remove(0);
                }),
            ));
            mutations.push(("nonce", mutate(&|c| c.nonce.push('0'))));
            mutations.push(("token", mutate(&|c| c.token.push('x'))));
            mutations.push((
                "method",
                mutate(&|c| {
                    c.method = match c.method {
                        Method::Get => Method::Post,
                        Method::Post => Method::Get,
                    }
                }),
            ));
            for (what, changed) in mutations {
                assert_eq!(
                    changed.verify(),
                    Err(SignatureError::Mismatch),
                    "{} still verifies after changing the {what}",
                    case.name
                );
            }
        }
    }

    #[test]
    fn any_single_change_to_a_valid_v2_vector_makes_it_fail() {
        for case in v2_cases().into_iter().filter(|c| c.valid) {
            let token = case.token.as_bytes();
            let changed_token = format!("{}x", case.token);
            let attempts = [
                (
                    "scheme",
                    verify_v2(
                        &[token],
                        &with_other_scheme(&case.url),
                        &case.nonce,
                        &case.signature,
                    ),
                ),
                (
                    "host",
                    verify_v2(
                        &[token],
                        &with_other_host(&case.url),
                        &case.nonce,
                        &case.signature,
                    ),
                ),
                (
                    "port",
                    verify_v2(
                        &[token],
                        &with_port(&case.url),
                        &case.nonce,
                        &case.signature,
                    ),
                ),
                (
                    "path",
                    verify_v2(
                        &[token],
                        &format!("{}/x", case.url),
                        &case.nonce,
                        &case.signature,
                    ),
                ),
                (
                    "nonce",
                    verify_v2(
                        &[token],
                        &case.url,
                        &format!("{}0", case.nonce),
                        &case.signature,
                    ),
                ),
                (
                    "token",
                    verify_v2(
                        &[changed_token.as_bytes()],
                        &case.url,
                        &case.nonce,
                        &case.signature,
                    ),
                ),
            ];
            for (what, result) in attempts {
                assert_eq!(
                    result,
                    Err(SignatureError::Mismatch),
                    "{} still verifies after changing the {what}",
                    case.name
                );
            }
        }
    }

    // --- the signature header ---

    const TOKEN: &[u8] = b"my_auth_token";
    const URL: &str = "https://example.com/answer";
    const NONCE: &str = "05429567804466091622";
    /// Signature of `answer_params()` POSTed to `URL` with `TOKEN` and `NONCE`
    /// (the `post-answer-no-query` vector).
    const ANSWER_SIGNATURE: &str = "Q24G1Sd7vPdQdE4PWWulNE+O0aUT/ZsGTudLVRNE9Ik=";
    /// Well-formed (base64 of 32 bytes) but matches nothing.
    const OTHER_SIGNATURE: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn answer_params() -> Vec<(String, String)> {
        params(&[
            ("From", "14155551234"),
            ("To", "14155556789"),
            ("CallUUID", "abc-123"),
        ])
    }

    fn verify_answer(tokens: &[&[u8]], header: &str) -> Result<(), SignatureError> {
        verify_v3(tokens, Method::Post, URL, &answer_params(), NONCE, header)
    }

    #[test]
    fn verify_v3_accepts_the_answer_signature_used_by_the_header_tests() {
        assert_eq!(verify_answer(&[TOKEN], ANSWER_SIGNATURE), Ok(()));
    }

    #[test]
    fn an_empty_header_is_malformed() {
        assert_eq!(verify_answer(&[TOKEN], ""), Err(SignatureError::Malformed));
        assert_eq!(
            verify_answer(&[TOKEN], "  "),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_answer(&[TOKEN], " , ,"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_v2(&[TOKEN], URL, NONCE, ""),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn an_empty_nonce_is_reported_as_missing() {
        let result = verify_v3(
            &[TOKEN],
            Method::Post,
            URL,
            &answer_params(),
            "",
            ANSWER_SIGNATURE,
        );
        assert_eq!(result, Err(SignatureError::MissingNonce));
        assert_eq!(
            verify_v2(&[TOKEN], URL, "", ANSWER_SIGNATURE),
            Err(SignatureError::MissingNonce)
        );
    }

    #[test]
    fn a_header_that_is_not_base64_is_malformed() {
        assert_eq!(
            verify_answer(&[TOKEN], "not a signature"),
            Err(SignatureError::Malformed)
        );
        let with_bad_char = ANSWER_SIGNATURE.replacen('Q', "!", 1);
        assert_eq!(
            verify_answer(&[TOKEN], &with_bad_char),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn a_truncated_signature_is_malformed() {
        let truncated = &ANSWER_SIGNATURE[..ANSWER_SIGNATURE.len() - 1];
        assert_eq!(
            verify_answer(&[TOKEN], truncated),
            Err(SignatureError::Malformed)
        );
        let unpadded = ANSWER_SIGNATURE.trim_end_matches('=');
        assert_eq!(
            verify_answer(&[TOKEN], unpadded),
            Err(SignatureError::Malformed)
        );
        // Valid base64, but of 31 bytes.
        let short = STANDARD.encode([0u8; 31]);
        assert_eq!(
            verify_answer(&[TOKEN], &short),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn a_well_formed_wrong_signature_is_a_mismatch() {
        assert_eq!(
            verify_answer(&[TOKEN], OTHER_SIGNATURE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn several_signatures_pass_when_one_matches() {
        let header = format!("{OTHER_SIGNATURE},{ANSWER_SIGNATURE}");
        assert_eq!(verify_answer(&[TOKEN], &header), Ok(()));
        let header = format!("{ANSWER_SIGNATURE},{OTHER_SIGNATURE}");
        assert_eq!(verify_answer(&[TOKEN], &header), Ok(()));
    }

    #[test]
    fn malformed_signatures_next_to_a_matching_one_are_skipped() {
        let header = format!("garbage,,{ANSWER_SIGNATURE}");
        assert_eq!(verify_answer(&[TOKEN], &header), Ok(()));
    }

    #[test]
    fn several_signatures_fail_when_none_matches() {
        let header = format!("garbage,{OTHER_SIGNATURE}");
        assert_eq!(
            verify_answer(&[TOKEN], &header),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn whitespace_around_commas_is_tolerated() {
        let header = format!("  {OTHER_SIGNATURE} ,\t{ANSWER_SIGNATURE}  ");
        assert_eq!(verify_answer(&[TOKEN], &header), Ok(()));
    }

    #[test]
    fn several_tokens_pass_when_the_second_matches() {
        assert_eq!(
            verify_answer(&[b"old_token", TOKEN], ANSWER_SIGNATURE),
            Ok(())
        );
    }

    #[test]
    fn several_tokens_fail_when_none_matches() {
        assert_eq!(
            verify_answer(&[b"old_token", b"new_token"], ANSWER_SIGNATURE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn no_configured_token_is_a_mismatch() {
        assert_eq!(
            verify_answer(&[], ANSWER_SIGNATURE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_main_account_signature_of_a_subaccount_callback_verifies_with_the_main_token() {
        let main_token: &[u8] = b"main_account_token";
        let ma_signature = sign_v3(main_token, Method::Post, URL, &answer_params(), NONCE).unwrap();
        let header = format!("{ANSWER_SIGNATURE},{ma_signature}");
        assert_eq!(verify_answer(&[main_token], &header), Ok(()));
    }

    // --- round trips ---

    #[test]
    fn sign_v3_output_round_trips_through_verify_v3() {
        let cases = [
            (Method::Post, URL, answer_params()),
            (Method::Post, "https://example.com/a?x=1", answer_params()),
            (Method::Post, "http://localhost:8080/hook", Vec::new()),
            (Method::Get, "https://example.com/a?x=1&y=%20z", Vec::new()),
            (Method::Get, URL, answer_params()),
        ];
        for (method, url, params) in cases {
            let signature = sign_v3(TOKEN, method, url, &params, NONCE).unwrap();
            assert_eq!(
                verify_v3(&[TOKEN], method, url, &params, NONCE, &signature),
                Ok(()),
                "{method:?} {url}"
            );
        }
    }

    #[test]
    fn sign_v2_output_round_trips_through_verify_v2() {
        let signature = sign_v2(TOKEN, URL, NONCE).unwrap();
        assert_eq!(verify_v2(&[TOKEN], URL, NONCE, &signature), Ok(()));
    }

    #[test]
    fn v2_ignores_the_query_string_like_the_sdks() {
        let signature = sign_v2(TOKEN, URL, NONCE).unwrap();
        let with_query = format!("{URL}?CallUUID=abc");
        assert_eq!(verify_v2(&[TOKEN], &with_query, NONCE, &signature), Ok(()));
    }

    #[test]
    fn tokens_longer_than_the_hmac_block_size_work() {
        let long_token = [7u8; 100];
        let signature = sign_v2(&long_token, URL, NONCE).unwrap();
        assert_eq!(verify_v2(&[&long_token], URL, NONCE, &signature), Ok(()));
    }

    // --- the string to sign, edge cases (checked against plivo-python's algorithm) ---

    fn string_to_sign(method: Method, url: &str, pairs: &[(&str, &str)]) -> String {
        v3_string_to_sign(method, url, &params(pairs), "n").unwrap()
    }

    #[test]
    fn a_post_with_no_params_and_no_query_signs_the_bare_url() {
        assert_eq!(
            string_to_sign(Method::Post, "https://example.com/answer", &[]),
            "https://example.com/answer.n"
        );
    }

    #[test]
    fn a_post_with_a_query_but_no_params_signs_the_sorted_query_without_a_dot() {
        assert_eq!(
            string_to_sign(Method::Post, "https://example.com/answer?b=2&a=1", &[]),
            "https://example.com/answer?a=1&b=2.n"
        );
    }

    #[test]
    fn a_post_with_params_but_no_query_concatenates_them_after_a_question_mark() {
        assert_eq!(
            string_to_sign(
                Method::Post,
                "https://example.com/a",
                &[("b", "2"), ("a", "1")]
            ),
            "https://example.com/a?a1b2.n"
        );
    }

    #[test]
    fn a_post_with_a_query_and_params_separates_them_with_a_dot() {
        assert_eq!(
            string_to_sign(Method::Post, "https://example.com/a?z=9", &[("b", "2")]),
            "https://example.com/a?z=9.b2.n"
        );
    }

    #[test]
    fn repeated_post_params_are_sorted_by_value() {
        assert_eq!(
            string_to_sign(
                Method::Post,
                "https://example.com/a",
                &[("b", "2"), ("a", "2"), ("a", "1")]
            ),
            "https://example.com/a?a1a2b2.n"
        );
    }

    #[test]
    fn a_get_with_no_params_at_all_signs_the_bare_url() {
        assert_eq!(
            string_to_sign(Method::Get, "https://example.com/answer", &[]),
            "https://example.com/answer.n"
        );
    }

    #[test]
    fn a_get_merges_params_into_the_sorted_query() {
        assert_eq!(
            string_to_sign(Method::Get, "https://example.com/a?c=3&a=1", &[("b", "2")]),
            "https://example.com/a?a=1&b=2&c=3.n"
        );
    }

    #[test]
    fn a_get_does_not_count_params_that_repeat_the_url_query_twice() {
        assert_eq!(
            string_to_sign(
                Method::Get,
                "https://example.com/a?From=1&To=2",
                &[("From", "1"), ("To", "2")]
            ),
            "https://example.com/a?From=1&To=2.n"
        );
    }

    #[test]
    fn a_get_query_key_overrides_a_param_with_the_same_key() {
        assert_eq!(
            string_to_sign(
                Method::Get,
                "https://example.com/a?k=url",
                &[("k", "param")]
            ),
            "https://example.com/a?k=url.n"
        );
    }

    #[test]
    fn repeated_query_keys_are_kept_and_sorted_by_value() {
        assert_eq!(
            string_to_sign(Method::Get, "https://example.com/a?k=2&k=1&j=", &[]),
            "https://example.com/a?j=&k=1&k=2.n"
        );
    }

    #[test]
    fn query_pairs_are_percent_decoded_and_plus_becomes_a_space() {
        assert_eq!(
            string_to_sign(
                Method::Get,
                "https://example.com/a?q=a%20b&p=x+y&to=%2B1415",
                &[]
            ),
            "https://example.com/a?p=x y&q=a b&to=+1415.n"
        );
    }

    #[test]
    fn post_param_values_are_signed_verbatim() {
        assert_eq!(
            string_to_sign(Method::Post, "https://example.com/a", &[("From", "+1 415")]),
            "https://example.com/a?From+1 415.n"
        );
    }

    #[test]
    fn a_default_port_is_kept_as_written() {
        assert_eq!(
            string_to_sign(Method::Post, "https://example.com:443/a", &[]),
            "https://example.com:443/a.n"
        );
        let with_port = sign_v2(TOKEN, "https://example.com:443/a", NONCE).unwrap();
        let without_port = sign_v2(TOKEN, "https://example.com/a", NONCE).unwrap();
        assert_ne!(with_port, without_port);
    }

    #[test]
    fn an_empty_path_gets_no_trailing_slash() {
        assert_eq!(
            string_to_sign(Method::Post, "https://example.com", &[]),
            "https://example.com.n"
        );
        assert_eq!(
            string_to_sign(Method::Get, "https://example.com?a=1", &[]),
            "https://example.com?a=1.n"
        );
    }

    #[test]
    fn the_path_keeps_its_escapes_and_trailing_slash() {
        assert_eq!(
            string_to_sign(Method::Post, "https://example.com/a%20b/?x=1", &[]),
            "https://example.com/a%20b/?x=1.n"
        );
    }

    #[test]
    fn the_scheme_is_lowercased_but_the_host_is_kept_as_written() {
        assert_eq!(
            string_to_sign(Method::Post, "HTTPS://Example.COM/A", &[]),
            "https://Example.COM/A.n"
        );
    }

    #[test]
    fn a_fragment_is_not_signed() {
        assert_eq!(
            string_to_sign(Method::Get, "https://example.com/a?x=1#frag", &[]),
            "https://example.com/a?x=1.n"
        );
    }

    #[test]
    fn urls_that_are_not_absolute_http_urls_are_rejected() {
        for url in [
            "",
            "example.com/answer",
            "/answer",
            "ftp://example.com/a",
            "https:///a",
            "https://",
            "https://exa mple.com/a",
            "https://example.com/a\n",
        ] {
            assert_eq!(
                v3_string_to_sign(Method::Post, url, &[], "n"),
                Err(SignatureError::InvalidUrl),
                "{url:?}"
            );
            assert_eq!(
                verify_v2(&[TOKEN], url, NONCE, ANSWER_SIGNATURE),
                Err(SignatureError::InvalidUrl),
                "{url:?}"
            );
        }
    }

    #[test]
    fn method_parse_ignores_case_and_rejects_other_methods() {
        assert_eq!(Method::parse("GET"), Some(Method::Get));
        assert_eq!(Method::parse("get"), Some(Method::Get));
        assert_eq!(Method::parse("POST"), Some(Method::Post));
        assert_eq!(Method::parse("Post"), Some(Method::Post));
        assert_eq!(Method::parse("PUT"), None);
        assert_eq!(Method::parse(""), None);
        assert_eq!(Method::parse(" GET"), None);
    }
}
