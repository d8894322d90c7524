//! The app API's errors: each maps to a status, a snake_case code and a fixed,
//! helpful sentence, in the shape `{"error": {"code": …, "message": …}}`. Causes
//! go to the logs, never to the client.

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::abuse::Refusal;
use crate::plivo::PlivoError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized {
        code: &'static str,
        message: &'static str,
    },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    /// With the methods the path does answer, for the `Allow` header.
    #[error("this method is not allowed here")]
    MethodNotAllowed { allow: &'static str },
    #[error("the request URL is longer than {limit} bytes")]
    UriTooLong { limit: usize },
    #[error("the request headers are larger than {limit} bytes or too many")]
    HeadersTooLarge { limit: usize },
    #[error("the request {part} did not arrive within {secs} seconds")]
    RequestTimeout { part: &'static str, secs: u64 },
    #[error("the request is not well-formed HTTP/1.1")]
    MalformedRequest,
    #[error(transparent)]
    Plivo(PlivoError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Forbidden { code, message } => ApiError::Forbidden { code, message },
            Refusal::Limited {
                code,
                message,
                retry_after_ms,
            } => ApiError::TooManyRequests {
                code,
                message,
                retry_after_secs: retry_secs(retry_after_ms),
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// The error answers every app API route can give, for the OpenAPI
/// document (never built: each variant only names a status and its body).
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum EveryRouteErrors {
    #[response(status = 401, description = "Missing or wrong API key")]
    Unauthorized(ErrorBody<'static>),
    #[response(
        status = 405,
        description = "Another method than the ones this path answers",
        headers(("Allow" = String, description = "The methods this path answers"))
    )]
    MethodNotAllowed(ErrorBody<'static>),
    #[response(
        status = 503,
        description = "The store is unavailable",
        headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))
    )]
    StoreUnavailable(ErrorBody<'static>),
}

/// The error answers of every route that reads a JSON body, for the OpenAPI
/// document.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum JsonBodyErrors {
    #[response(status = 400, description = "Bad input")]
    BadInput(ErrorBody<'static>),
    #[response(status = 413, description = "Body over 16 KiB")]
    TooLarge(ErrorBody<'static>),
    #[response(status = 415, description = "Not application/json")]
    NotJson(ErrorBody<'static>),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// A stable snake_case code, such as `invalid_phone_number`.
    code: &'a str,
    /// A sentence for people.
    message: &'a str,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::NotFound {
            code,
            message: message.into(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::TooManyRequests { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UriTooLong { .. } => "uri_too_long",
            ApiError::HeadersTooLarge { .. } => "headers_too_large",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::MalformedRequest => "malformed_request",
            ApiError::Plivo(_) => "plivo_error",
            ApiError::Store(_) => "store_unavailable",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Plivo(e) => e.public_message(),
            ApiError::Store(_) => {
                "The verification store is unavailable; try again shortly.".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl ApiError {
    /// The answer's body: `{"error": {"code", "message"}}`.
    pub fn body(&self) -> Vec<u8> {
        let message = self.message();
        serde_json::to_vec(&ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: &message,
            },
        })
        .unwrap_or_default()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::MalformedRequest => StatusCode::BAD_REQUEST,
            ApiError::Plivo(_) => StatusCode::BAD_GATEWAY,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Store(e) => tracing::error!(error = %e, "store unavailable"),
            ApiError::Plivo(e) => tracing::warn!(error = %e, "plivo request failed"),
            _ => {}
        }
        let body = self.body();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            response.insert_header((RETRY_AFTER, (*retry_after_secs).max(1).to_string()));
        }
        if let ApiError::Store(_) = self {
            response.insert_header((RETRY_AFTER, "1"));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            // RFC 9110 §15.5.6: a 405 names the methods the resource answers.
            response.insert_header((ALLOW, *allow));
        }
        response.body(body)
    }
}

/// Seconds to wait, rounded up, for a wait in milliseconds.
pub fn retry_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// Maps actix's JSON extractor failures into the error shape.
#[allow(clippy::needless_pass_by_value)] // actix's error-handler signature
pub fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            ApiError::PayloadTooLarge { limit: *limit }
        }
        E::ContentType => ApiError::UnsupportedMediaType,
        E::Deserialize(e) if e.is_data() => {
            let text = e.to_string();
            let text: String = text.chars().take(200).collect();
            ApiError::bad_request(
                "invalid_request",
                format!("The request body does not fit the schema: {text}"),
            )
        }
        E::Deserialize(_) => {
            ApiError::bad_request("malformed_json", "The request body is not valid JSON.")
        }
        _ => ApiError::bad_request("invalid_request", "The request body could not be read."),
    };
    api.into()
}

/// Any unknown route.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        "not_found",
        "There is nothing at this path.",
    ))
}

/// A known route with the wrong method; `allow` lists the methods it answers.
pub fn method_not_allowed(allow: &'static str) -> ApiError {
    ApiError::MethodNotAllowed { allow }
}
