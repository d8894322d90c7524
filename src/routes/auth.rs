//! Bearer API keys for app backends: each key belongs to one application,
//! and the request acts for it. Keys are held as SHA-256 digests and every
//! configured key is compared in constant time (see [`crate::apps::ApiKeys`]).
//! Keys are only read from the `Authorization` header, never from a query
//! string.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use super::error::ApiError;
use crate::apps::App;

/// An authenticated app backend: extracting it checks the bearer key, which
/// names the application it acts for.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub app: Arc<App>,
    /// The key's index among its application's keys (for the per-key limit).
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
        .apps
        .authenticate(presented)
        .map(|(app, key_index)| ApiClient { app, key_index })
        .ok_or(ApiError::Unauthorized {
            code: "invalid_api_key",
            message: "This API key is not valid.",
        })
}
