//! The gate in front of every Plivo-facing route: an extractor that proves a
//! request came from Plivo before any handler reads it. It rebuilds the URL
//! Plivo signed from `PUBLIC_BASE_URL` plus the request's path and query (so a
//! request that reached 127.0.0.1 through an ngrok tunnel still validates),
//! checks `X-Plivo-Signature-V3` (or `-Ma-V3`) against every configured auth
//! token, and refuses a nonce seen in the last ten minutes. A failure is a 403
//! that changed nothing.
//!
//! V2 signs only the URL and the nonce, not the parameters, so whoever holds
//! one V2-signed request can make up its `Status` or `Digits`. Plivo signs every
//! callback with V3 as well, so a V2-only request is refused, unless
//! `PLIVO_ACCEPT_V2=true`, and even then only on the receipt routes
//! ([`SignedRequest`]): the routes that read a code out take [`SignedV3Request`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderMap};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::AppState;
use crate::domain::Clock;
use crate::plivo::callback;
use crate::plivo::signature::{
    self, MA_V2_HEADER, MA_V3_HEADER, Method, SignatureError, V2_HEADER, V2_NONCE_HEADER,
    V3_HEADER, V3_NONCE_HEADER,
};
use crate::store::{NonceStore, Store, StoreError};
use crate::telemetry::LogThrottle;

/// How long a nonce is remembered at least: a captured callback cannot be
/// replayed within it. It is stretched to the verification lifetime when that
/// is longer, so a captured answer request never reads out a still-pending code.
pub const NONCE_TTL_MS: u64 = 10 * 60 * 1000;
/// Largest callback body read.
pub const MAX_CALLBACK_BODY: usize = 64 * 1024;
/// At most one "Plivo callback refused" line per this period.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(1);
static REFUSED_LOG: LogThrottle = LogThrottle::new(REFUSED_LOG_EVERY);

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("the request is not signed by Plivo: {0}")]
    BadSignature(SignatureError),
    #[error("this signed request was already received")]
    Replayed,
    #[error(
        "only V3 signatures (X-Plivo-Signature-V3) are accepted here; Plivo sends one with every callback"
    )]
    V2Refused,
    #[error("the callback body could not be read")]
    BadBody,
    #[error(transparent)]
    Store(StoreError),
}

impl ResponseError for CallbackError {
    fn status_code(&self) -> StatusCode {
        match self {
            CallbackError::BadSignature(_) | CallbackError::Replayed | CallbackError::V2Refused => {
                StatusCode::FORBIDDEN
            }
            CallbackError::BadBody => StatusCode::BAD_REQUEST,
            CallbackError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            CallbackError::BadSignature(_) | CallbackError::V2Refused => "invalid_signature",
            CallbackError::Replayed => "replayed_request",
            CallbackError::BadBody => "invalid_request",
            CallbackError::Store(_) => "store_unavailable",
        };
        // Anyone can send forged callbacks as fast as they like: every one is
        // counted in the metric, but the log line passes once a second.
        if let Some(held_back) = REFUSED_LOG.admit() {
            tracing::warn!(error = %self, held_back, "Plivo callback refused");
        }
        metrics::counter!("plivo2fa_signature_failures_total", "reason" => code).increment(1);
        HttpResponse::build(self.status_code())
            .json(json!({"error": {"code": code, "message": format!("{self}.")}}))
    }
}

/// Remembers the nonces of signed callbacks, so each is taken once: for
/// [`NONCE_TTL_MS`], or the longest code lifetime of any application when
/// that is longer (a captured answer request never reads out a code still
/// pending).
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    nonces: Store,
    clock: Arc<dyn Clock>,
    ttl_ms: u64,
}

impl ReplayGuard {
    pub fn new(nonces: Store, clock: Arc<dyn Clock>, longest_lifetime: Duration) -> Self {
        Self {
            nonces,
            clock,
            ttl_ms: NONCE_TTL_MS
                .max(u64::try_from(longest_lifetime.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// Whether `nonce` is new (not a replay); it is remembered from now on.
    pub async fn first_sight(&self, nonce: &str) -> Result<bool, StoreError> {
        self.nonces
            .remember_nonce(nonce, self.ttl_ms, self.clock.now())
            .await
    }

    /// How long a nonce is remembered, for a store call that takes one itself.
    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }
}

/// A request proven to come from Plivo, with its form (POST) or query (GET) parameters.
#[derive(Debug)]
pub struct SignedRequest {
    params: Vec<(String, String)>,
}

impl SignedRequest {
    /// The parameters as one of Plivo's callback forms (see
    /// [`crate::plivo::callback`]); every field of those is optional, so a
    /// form that does not parse reads as an empty one.
    pub fn form<T: DeserializeOwned + Default>(&self) -> T {
        callback::from_pairs(&self.params).unwrap_or_else(|e| {
            tracing::info!(error = %e, "a callback's parameters do not fit its form");
            T::default()
        })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Which signature a request carries.
enum OfferedSignature<'a> {
    V3 { signature: &'a str, nonce: &'a str },
    V2 { signature: &'a str, nonce: &'a str },
}

fn offered(headers: &HeaderMap) -> Result<OfferedSignature<'_>, SignatureError> {
    let v3 = header(headers, V3_HEADER).or_else(|| header(headers, MA_V3_HEADER));
    if let Some(signature) = v3 {
        let nonce = header(headers, V3_NONCE_HEADER).ok_or(SignatureError::MissingNonce)?;
        return Ok(OfferedSignature::V3 { signature, nonce });
    }
    let v2 = header(headers, V2_HEADER).or_else(|| header(headers, MA_V2_HEADER));
    if let Some(signature) = v2 {
        let nonce = header(headers, V2_NONCE_HEADER).ok_or(SignatureError::MissingNonce)?;
        return Ok(OfferedSignature::V2 { signature, nonce });
    }
    Err(SignatureError::MissingHeader)
}

/// A request proven to come from Plivo by a V3 signature, which covers its
/// parameters: what the routes that read a code out take.
#[derive(Debug)]
pub struct SignedV3Request(SignedRequest);

impl std::ops::Deref for SignedV3Request {
    type Target = SignedRequest;
    fn deref(&self) -> &SignedRequest {
        &self.0
    }
}

impl FromRequest for SignedRequest {
    type Error = CallbackError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, CallbackError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let accept_v2 = req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|state| state.accept_v2);
        Box::pin(verified(req.clone(), payload.take(), accept_v2))
    }
}

impl FromRequest for SignedV3Request {
    type Error = CallbackError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, CallbackError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let verified = verified(req.clone(), payload.take(), false);
        Box::pin(async move { verified.await.map(SignedV3Request) })
    }
}

/// A request proven to come from Plivo by a V3 signature whose nonce is not
/// yet taken: its handler takes it in the same store call as its own work
/// (the answer URL: [`crate::store::CallStore::answer_call`], one round
/// trip), and acts on nothing before that call says the nonce is new.
#[derive(Debug)]
pub struct UnclaimedV3Request {
    request: SignedRequest,
    nonce: String,
}

impl UnclaimedV3Request {
    /// The nonce to take.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
}

impl std::ops::Deref for UnclaimedV3Request {
    type Target = SignedRequest;
    fn deref(&self) -> &SignedRequest {
        &self.request
    }
}

impl FromRequest for UnclaimedV3Request {
    type Error = CallbackError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, CallbackError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move {
            let (request, nonce) = signature_checked(&req, payload, false).await?;
            Ok(UnclaimedV3Request { request, nonce })
        })
    }
}

/// Checks a request's signature and nonce, then reads its parameters.
async fn verified(
    req: HttpRequest,
    payload: Payload,
    accept_v2: bool,
) -> Result<SignedRequest, CallbackError> {
    let (request, nonce) = signature_checked(&req, payload, accept_v2).await?;
    let state = app_state(&req)?;
    if !state
        .replay
        .first_sight(&nonce)
        .await
        .map_err(CallbackError::Store)?
    {
        return Err(CallbackError::Replayed);
    }
    Ok(request)
}

fn app_state(req: &HttpRequest) -> Result<&web::Data<AppState>, CallbackError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or(CallbackError::BadSignature(SignatureError::Mismatch))
}

/// Checks a request's signature and reads its parameters; the nonce it was
/// signed with is still to be taken.
async fn signature_checked(
    req: &HttpRequest,
    mut payload: Payload,
    accept_v2: bool,
) -> Result<(SignedRequest, String), CallbackError> {
    let state = app_state(req)?;
    // Headers first: an unsigned request is refused before its body is read.
    if let OfferedSignature::V2 { .. } =
        offered(req.headers()).map_err(CallbackError::BadSignature)?
        && !accept_v2
    {
        return Err(CallbackError::V2Refused);
    }
    let method = Method::parse(req.method().as_str())
        .ok_or(CallbackError::BadSignature(SignatureError::Mismatch))?;
    let body = web::Bytes::from_request(req, &mut payload)
        .await
        .map_err(|_| CallbackError::BadBody)?;
    let params: Vec<(String, String)> = match method {
        Method::Get => Vec::new(),
        Method::Post => {
            let form = header(req.headers(), CONTENT_TYPE.as_str())
                .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
            if !form && !body.is_empty() {
                return Err(CallbackError::BadBody);
            }
            signature::parse_form(&body).ok_or(CallbackError::BadBody)?
        }
    };
    let url = state.signed_url(req.uri());
    let tokens: Vec<&[u8]> = state
        .plivo_tokens
        .iter()
        .map(|t| t.expose_secret().as_bytes())
        .collect();
    let nonce = match offered(req.headers()).map_err(CallbackError::BadSignature)? {
        OfferedSignature::V3 { signature, nonce } => {
            signature::verify_v3(&tokens, method, &url, &params, nonce, signature)
                .map_err(CallbackError::BadSignature)?;
            nonce
        }
        OfferedSignature::V2 { signature, nonce } => {
            signature::verify_v2(&tokens, &url, nonce, signature)
                .map_err(CallbackError::BadSignature)?;
            nonce
        }
    };
    let params = match method {
        Method::Get => url::Url::parse(&url)
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default(),
        Method::Post => params,
    };
    Ok((SignedRequest { params }, nonce.to_owned()))
}
