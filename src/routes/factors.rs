//! Authenticator apps (TOTP): enrol a factor for an identity, verify it with
//! a first code, check codes at sign-in, read and delete it. Each handler
//! authenticates first, then parses its input into domain types in its
//! first lines; another application's factor answers as an unknown one.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::auth::ApiClient;
use super::error::{ApiError, ErrorBody, EveryRouteErrors, JsonBodyErrors, retry_secs};
use crate::domain::totp::{MAX_DIGITS, MIN_DIGITS};
use crate::domain::{Factor, FactorId, FactorStage, FriendlyName, Identity};
use crate::service::{CodeAnswer, FactorError};
use crate::view::{EnrolledFactorView, FactorCheckView, FactorVerifyView, FactorView};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFactorRequest {
    /// Your user's id (1 to 64 characters, no control characters, no colon):
    /// the authenticator app shows it after your brand.
    identity: String,
    /// What the user calls the device (1 to 64 characters).
    #[serde(default)]
    friendly_name: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorCodeRequest {
    /// The code the authenticator app shows (6 to 8 digits, as the factor was enrolled).
    code: String,
}

fn parse_id(raw: &str) -> Result<FactorId, ApiError> {
    FactorId::parse(raw).ok_or_else(unknown_factor)
}

fn unknown_factor() -> ApiError {
    ApiError::not_found("factor_not_found", "No factor has this id.")
}

/// A typed code's first check, before any factor is read: digits, and a
/// length some factor can have.
fn parse_code(raw: &str) -> Result<&str, ApiError> {
    let len = raw.len();
    if raw.bytes().all(|b| b.is_ascii_digit())
        && (usize::from(MIN_DIGITS)..=usize::from(MAX_DIGITS)).contains(&len)
    {
        Ok(raw)
    } else {
        Err(ApiError::bad_request(
            "invalid_code",
            format!(
                "`code` must be the {MIN_DIGITS} to {MAX_DIGITS} digits the authenticator app shows."
            ),
        ))
    }
}

/// Enrol an authenticator app for an identity.
#[utoipa::path(
    post,
    path = "/v1/factors",
    request_body = CreateFactorRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A new unverified factor, with its secret, otpauth URI and QR code (shown this once)", body = EnrolledFactorView),
        (status = 409, description = "The identity already has MAX_FACTORS_PER_IDENTITY factors (verified, or enrolled within the hour)", body = ErrorBody),
        EveryRouteErrors,
        JsonBodyErrors,
    )
)]
pub async fn create(
    client: ApiClient,
    state: web::Data<AppState>,
    body: web::Json<CreateFactorRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let identity = Identity::parse(&body.identity)
        .map_err(|e| ApiError::bad_request("invalid_identity", format!("`identity` {e}.")))?;
    let friendly_name = body
        .friendly_name
        .as_deref()
        .map(FriendlyName::parse)
        .transpose()
        .map_err(|e| {
            ApiError::bad_request("invalid_friendly_name", format!("`friendly_name` {e}."))
        })?;
    let app = &client.app;
    let (factor, secret) = state
        .use_cases
        .factors
        .enrol(app, identity, friendly_name)
        .await
        .map_err(factor_error)?;
    Ok(HttpResponse::Created().json(EnrolledFactorView::new(&factor, &secret, &app.brand)))
}

/// Prove an enrolment: the first right code makes the factor `verified`.
#[utoipa::path(
    post,
    path = "/v1/factors/{id}/verify",
    request_body = FactorCodeRequest,
    params(("id" = String, Path, description = "The factor id, YF and 32 hex digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The factor: `verified`, or still `unverified` with fewer `attempts_remaining`", body = FactorVerifyView),
        (status = 404, description = "No such factor", body = ErrorBody),
        (status = 409, description = "Already verified", body = ErrorBody),
        (status = 429, description = "Too many wrong codes; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        EveryRouteErrors,
        JsonBodyErrors,
    )
)]
pub async fn verify(
    client: ApiClient,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<FactorCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    take_code(
        &state,
        &client,
        &path,
        &body,
        FactorStage::Verify,
        |f, left| HttpResponse::Ok().json(FactorVerifyView::new(f, left)),
        || ApiError::Conflict {
            code: "factor_already_verified",
            message: "This factor is already verified; check sign-in codes with /check.".to_owned(),
        },
    )
    .await
}

/// Check a sign-in code against a verified factor.
#[utoipa::path(
    post,
    path = "/v1/factors/{id}/check",
    request_body = FactorCodeRequest,
    params(("id" = String, Path, description = "The factor id, YF and 32 hex digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`approved`, or `pending` with fewer `attempts_remaining`", body = FactorCheckView),
        (status = 404, description = "No such factor", body = ErrorBody),
        (status = 409, description = "The factor is not verified yet", body = ErrorBody),
        (status = 429, description = "Too many wrong codes; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        EveryRouteErrors,
        JsonBodyErrors,
    )
)]
pub async fn check(
    client: ApiClient,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<FactorCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    take_code(
        &state,
        &client,
        &path,
        &body,
        FactorStage::Check,
        |f, left| HttpResponse::Ok().json(FactorCheckView::new(f, left)),
        || ApiError::Conflict {
            code: "factor_not_verified",
            message: NOT_VERIFIED.to_owned(),
        },
    )
    .await
}

const NOT_VERIFIED: &str = "This factor is not verified yet: verify it with /verify first; an unverified factor approves no check.";

/// Takes a typed code for factor `raw_id` at `stage`: 200 with `respond`'s view of the
/// factor (and the attempts left when the code was wrong), `wrong_stage` when
/// its status takes no code at this stage, 429 when it is locked or its
/// identity is at the day's ceiling.
async fn take_code(
    state: &AppState,
    client: &ApiClient,
    raw_id: &str,
    body: &FactorCodeRequest,
    stage: FactorStage,
    respond: impl Fn(&Factor, Option<u32>) -> HttpResponse,
    wrong_stage: impl Fn() -> ApiError,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(raw_id)?;
    let code = parse_code(&body.code)?;
    let answer = state
        .use_cases
        .factors
        .code(&client.app, &id, stage, code)
        .await
        .map_err(factor_error)?;
    match answer {
        CodeAnswer::Approved(f) => Ok(respond(&f, None)),
        CodeAnswer::Wrong {
            factor,
            attempts_remaining,
        } => Ok(respond(&factor, Some(attempts_remaining))),
        CodeAnswer::WrongStage(_) => Err(wrong_stage()),
        CodeAnswer::Locked { retry_after_ms } => Err(locked(retry_after_ms)),
        CodeAnswer::DailyCeiling { retry_after_ms } => Err(at_ceiling(retry_after_ms)),
    }
}

fn factor_error(e: FactorError) -> ApiError {
    match e {
        FactorError::Store(e) => ApiError::Store(e),
        FactorError::NotFound => unknown_factor(),
        FactorError::InvalidCode(e) => {
            ApiError::bad_request("invalid_code", format!("`code`: {e}."))
        }
        FactorError::IdentityFull { max } => ApiError::Conflict {
            code: "too_many_factors",
            message: format!(
                "This identity has {max} authenticator factors, as many as it may; delete one before enrolling another."
            ),
        },
    }
}

/// The 429 of a factor locked after too many wrong codes in a row.
fn locked(retry_after_ms: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: "max_attempts_reached",
        message: format!(
            "Too many wrong codes in a row: this factor takes no code for {} seconds.",
            retry_secs(retry_after_ms)
        ),
        retry_after_secs: retry_secs(retry_after_ms),
    }
}

/// The 429 of an identity whose wrong codes reached the day's ceiling.
fn at_ceiling(retry_after_ms: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: "identity_locked",
        message: "Too many wrong codes for this identity today; its codes are refused until the day ends (UTC).".to_owned(),
        retry_after_secs: retry_secs(retry_after_ms),
    }
}

/// Read a factor (never its secret).
#[utoipa::path(
    get,
    path = "/v1/factors/{id}",
    params(("id" = String, Path, description = "The factor id, YF and 32 hex digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The factor", body = FactorView),
        (status = 404, description = "No such factor", body = ErrorBody),
        EveryRouteErrors,
    )
)]
pub async fn get(
    client: ApiClient,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let factor = state
        .use_cases
        .factors
        .get(&client.app, &id)
        .await?
        .ok_or_else(unknown_factor)?;
    Ok(HttpResponse::Ok().json(FactorView::new(&factor)))
}

/// Delete a factor: its codes are refused from now on.
#[utoipa::path(
    delete,
    path = "/v1/factors/{id}",
    params(("id" = String, Path, description = "The factor id, YF and 32 hex digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted; the factor as it was", body = FactorView),
        (status = 404, description = "No such factor", body = ErrorBody),
        EveryRouteErrors,
    )
)]
pub async fn delete(
    client: ApiClient,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let factor = state
        .use_cases
        .factors
        .delete(&client.app, &id)
        .await?
        .ok_or_else(unknown_factor)?;
    Ok(HttpResponse::build(StatusCode::OK).json(FactorView::new(&factor)))
}
