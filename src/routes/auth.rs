//! Bearer API keys for app backends. Keys are held as SHA-256 digests and every
//! configured key is compared in constant time, so neither a key's content nor
//! which key matched leaks through timing. Keys are only read from the
//! `Authorization` header, never from a query string.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;

#[derive(Clone)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} key(s))", self.digests.len())
    }
}

impl ApiKeys {
    pub fn new(keys: &[SecretString]) -> Self {
        Self {
            digests: keys
                .iter()
                .map(|k| Sha256::digest(k.expose_secret().as_bytes()).into())
                .collect(),
        }
    }

    /// The index of the matching key (for metrics and limits), in constant time over all keys.
    pub fn verify(&self, presented: &str) -> Option<usize> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (i, known) in self.digests.iter().enumerate() {
            if bool::from(known.ct_eq(&digest)) {
                found = Some(i);
            }
        }
        found
    }
}

/// An authenticated app backend: extracting it checks the bearer key.
#[derive(Debug, Clone, Copy)]
pub struct ApiClient {
    pub key_index: usize,
}

const MISSING: &str = "Send your API key as: Authorization: Bearer <key>.";

impl FromRequest for ApiClient {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

/// Query parameters that look like a credential: refused outright, so a key
/// pasted into a URL (and so into proxy logs and browser history) never works.
const KEY_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "authorization",
];

fn authenticate(req: &HttpRequest) -> Result<ApiClient, ApiError> {
    let in_url = url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, _)| KEY_PARAMS.contains(&k.to_ascii_lowercase().as_str()));
    if in_url {
        return Err(ApiError::bad_request(
            "api_key_in_url",
            "API keys are never accepted in a URL; send Authorization: Bearer <key>, and rotate a key that was put in a URL.",
        ));
    }
    let Some(header) = req.headers().get(AUTHORIZATION) else {
        return Err(ApiError::Unauthorized {
            code: "missing_api_key",
            message: MISSING,
        });
    };
    let presented = header
        .to_str()
        .ok()
        .and_then(|h| {
            let (scheme, key) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::Unauthorized {
            code: "missing_api_key",
            message: MISSING,
        })?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Unauthorized {
            code: "invalid_api_key",
            message: "This API key is not valid.",
        })?;
    state
        .api_keys
        .verify(presented)
        .map(|key_index| ApiClient { key_index })
        .ok_or(ApiError::Unauthorized {
            code: "invalid_api_key",
            message: "This API key is not valid.",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_key_verifies_and_its_index_is_reported() {
        let keys = ApiKeys::new(&[
            SecretString::from("first-key-0123456789"),
            SecretString::from("second-key-0123456789"),
        ]);
        assert_eq!(keys.verify("second-key-0123456789"), Some(1));
        assert_eq!(keys.verify("second-key-012345678"), None);
        assert_eq!(keys.verify(""), None);
    }
}
