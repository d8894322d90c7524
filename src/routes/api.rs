//! The app API: start, check, get and cancel verifications. Each handler
//! authenticates first, then parses its input into domain types in its first
//! lines, then calls the verifier.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::auth::ApiClient;
use super::error::{ApiError, ErrorBody, EveryRouteErrors, JsonBodyErrors, retry_secs};
use crate::abuse::Requester;
use crate::apps::App;
use crate::delivery::AppHash;
use crate::domain::verification::CheckResult;
use crate::domain::{
    Channel, Locale, OtpCode, PhoneNumber, PhoneNumberError, Status, Verification, VerificationId,
};
use crate::service::{CheckBy, CheckError, StartError, StartRequest as Start, Started};
use crate::view::VerificationView;

/// Longest accepted `locale` value.
const MAX_LOCALE_LEN: usize = 12;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The number, in E.164 (no spaces, dashes or national prefix).
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550100")]
    to: String,
    /// `sms` when absent. `whatsapp` sends an authentication template (for
    /// an application with `PLIVO_WHATSAPP_FROM` and `WHATSAPP_TEMPLATE`;
    /// else 400 `channel_not_enabled`), falling back to SMS, then voice.
    #[serde(default)]
    #[schema(value_type = Option<Channel>)]
    channel: Option<String>,
    /// A BCP 47 tag (`ll` or `ll-RR`); the closest language the server
    /// speaks and writes is used (voice: de-DE, en-GB, en-US, es-ES, es-US,
    /// fr-FR, hi-IN, it-IT, pt-BR). The application's default when absent.
    #[serde(default)]
    #[schema(
        pattern = "^[A-Za-z]{2,3}(-([A-Za-z]{2}|[0-9]{3}))?$",
        example = "en-US"
    )]
    locale: Option<String>,
    /// The Android app's SMS Retriever hash (11 characters of `[A-Za-z0-9+/]`),
    /// added to the SMS as its own line.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9+/]{11}$")]
    app_hash: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The number the code went to, in E.164 (or give `id`).
    #[serde(default)]
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550100")]
    to: Option<String>,
    /// The verification's id (or give `to`).
    #[serde(default)]
    #[schema(pattern = "^VE[0-9a-f]{32}$")]
    id: Option<String>,
    /// The digits the user typed (the application's code length, 4 to 10).
    #[schema(pattern = "^[0-9]{4,10}$", example = "123456")]
    code: String,
}

fn respond(status: StatusCode, v: &Verification) -> HttpResponse {
    HttpResponse::build(status).json(VerificationView::new(v))
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw).map_err(|e| invalid_phone_number(&e))
}

fn invalid_phone_number(e: &PhoneNumberError) -> ApiError {
    ApiError::bad_request("invalid_phone_number", format!("`to`: {e}."))
}

fn parse_channel(raw: Option<&str>) -> Result<Channel, ApiError> {
    match raw {
        None => Ok(Channel::Sms),
        Some(c) => c.parse().map_err(|()| {
            ApiError::bad_request(
                "invalid_channel",
                "`channel` must be \"sms\", \"voice\" or \"whatsapp\".",
            )
        }),
    }
}

/// A channel this server knows that the application or the server does
/// not send on: 400 `channel_not_enabled`, whatever the reason.
fn channel_not_enabled(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("channel_not_enabled", message)
}

fn parse_locale(app: &App, raw: Option<&str>) -> Result<Locale, ApiError> {
    match raw {
        None => Ok(app.default_locale.clone()),
        Some(l) if l.len() <= MAX_LOCALE_LEN => Locale::parse(l).ok_or_else(invalid_locale),
        Some(_) => Err(invalid_locale()),
    }
}

fn parse_app_hash(state: &AppState, raw: &str) -> Result<AppHash, ApiError> {
    if !state.capabilities.own_sms_text {
        return Err(ApiError::bad_request(
            "invalid_app_hash",
            "`app_hash` needs the Message API; in PHLO mode the PHLO writes the SMS.",
        ));
    }
    AppHash::parse(raw).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_app_hash",
            "`app_hash` must be the 11-character SMS Retriever hash of your Android app ([A-Za-z0-9+/]).",
        )
    })
}

fn invalid_locale() -> ApiError {
    ApiError::bad_request(
        "invalid_locale",
        "`locale` must be a language tag such as \"en-US\".",
    )
}

pub(crate) fn parse_id(raw: &str) -> Result<VerificationId, ApiError> {
    VerificationId::parse(raw).ok_or_else(unknown_verification)
}

pub(crate) fn unknown_verification() -> ApiError {
    ApiError::not_found("verification_not_found", "No verification has this id.")
}

/// Start a verification: send a code, or re-send the open one's.
#[utoipa::path(
    post,
    path = "/v1/verifications",
    request_body = StartRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A new verification; its code was sent (a delivery with status `unknown` when Plivo's answer left it unclear)", body = VerificationView),
        (status = 200, description = "The number's open verification; its same code was re-sent", body = VerificationView),
        (status = 403, description = "Country or number type not allowed", body = ErrorBody),
        (status = 429, description = "A limit was hit", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 502, description = "Plivo refused the request or could not be reached (its text redacted); a new verification is then failed", body = ErrorBody),
        EveryRouteErrors,
        JsonBodyErrors,
        // After JsonBodyErrors, whose plain 400 this one replaces.
        (status = 400, description = "Bad input, or a channel not enabled (`channel_not_enabled`: left out of the application's CHANNELS, voice with no caller ID, WhatsApp without its sender and template)", body = ErrorBody),
    )
)]
pub async fn start(
    client: ApiClient,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<StartRequest>,
) -> Result<HttpResponse, ApiError> {
    let who = Requester {
        ip: state.client_ip(&req),
        api_key: Some(client.key_index),
    };
    let (status, v) = start_verification(&state, &client.app, body.into_inner(), &who).await?;
    Ok(respond(status, &v))
}

/// Opens a verification, or re-sends the open one's code: 201 or 200. Shared by
/// the app API and the demo page, so both parse and refuse alike.
pub(crate) async fn start_verification(
    state: &AppState,
    app: &App,
    body: StartRequest,
    who: &Requester,
) -> Result<(StatusCode, Verification), ApiError> {
    let to = parse_phone(&body.to)?;
    let channel = parse_channel(body.channel.as_deref())?;
    let locale = parse_locale(app, body.locale.as_deref())?;
    let app_hash = body
        .app_hash
        .as_deref()
        .map(|raw| parse_app_hash(state, raw))
        .transpose()?;
    if channel == Channel::WhatsApp && app.whatsapp.is_none() {
        return Err(channel_not_enabled(
            "`channel` \"whatsapp\" is not enabled for this application (it needs PLIVO_WHATSAPP_FROM and WHATSAPP_TEMPLATE).",
        ));
    }
    if !app.channels.allows(channel) {
        return Err(channel_not_enabled(format!(
            "`channel` \"{}\" is not enabled for this application.",
            channel.as_str()
        )));
    }
    if channel == Channel::Voice && !state.capabilities.voice {
        return Err(channel_not_enabled(
            "Voice calls are not available on this server (it has no PLIVO_FROM_NUMBER to call from).",
        ));
    }
    let request = Start {
        to,
        channel,
        locale,
        app_hash,
    };
    match state.use_cases.start.run(app, request, who).await {
        Err(StartError::Refused(refusal)) => Err(refusal.into()),
        Ok((Started::New, v)) => Ok((StatusCode::CREATED, v)),
        Ok((Started::Existing, v)) => Ok((StatusCode::OK, v)),
        Err(StartError::Store(e)) => Err(e.into()),
        Err(StartError::Delivery(e)) => Err(ApiError::Plivo(e)),
        Err(StartError::Expiring { retry_after_ms }) => Err(ApiError::TooManyRequests {
            code: "verification_expiring",
            message: format!(
                "This verification's code expires in under {} seconds, too soon to send it again; start a new one once it has expired.",
                crate::plivo::client::MIN_MESSAGE_EXPIRY_SECS
            ),
            retry_after_secs: retry_secs(retry_after_ms),
        }),
        Err(StartError::Cooldown { retry_after_ms }) => Err(ApiError::TooManyRequests {
            code: "resend_cooldown",
            message: format!(
                "A code was sent to this number moments ago; wait {} seconds before asking again.",
                retry_secs(retry_after_ms)
            ),
            retry_after_secs: retry_secs(retry_after_ms),
        }),
        Err(StartError::SendLimit { retry_after_ms }) => Err(ApiError::TooManyRequests {
            code: "max_sends_reached",
            message:
                "This verification has been sent as many times as allowed; wait for it to expire."
                    .to_owned(),
            retry_after_secs: retry_secs(retry_after_ms),
        }),
    }
}

/// Check a code the user typed.
#[utoipa::path(
    post,
    path = "/v1/verifications/check",
    request_body = CheckRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "approved, or pending with fewer attempts_remaining", body = VerificationView),
        (status = 404, description = "No pending verification of the key's application (another application's answers alike)", body = ErrorBody),
        (status = 429, description = "Attempts exhausted", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        EveryRouteErrors,
        JsonBodyErrors,
    )
)]
pub async fn check(
    client: ApiClient,
    state: web::Data<AppState>,
    body: web::Json<CheckRequest>,
) -> Result<HttpResponse, ApiError> {
    let v = check_verification(&state, &client.app, body.into_inner()).await?;
    Ok(respond(StatusCode::OK, &v))
}

/// Checks a typed code: the verification, approved or pending with fewer
/// attempts left, or the error that closes the flow. Shared by the app API and
/// the demo page.
pub(crate) async fn check_verification(
    state: &AppState,
    app: &App,
    body: CheckRequest,
) -> Result<Verification, ApiError> {
    // The service parses the number only when it must (see `CheckCode::run`).
    let target = match (body.to, body.id.as_deref()) {
        (Some(to), None) => CheckBy::Number(to),
        (None, Some(id)) => CheckBy::Id(parse_id(id)?),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "Give exactly one of `to` or `id`.",
            ));
        }
    };
    let policy = &app.policy;
    let code = match OtpCode::parse(&body.code, policy.code_length) {
        Ok(code) => code,
        Err(e) => {
            // An invalid number is the first thing wrong, as it always was.
            if let CheckBy::Number(to) = &target {
                parse_phone(to)?;
            }
            return Err(ApiError::bad_request(
                "invalid_code",
                format!("`code`: {e}."),
            ));
        }
    };

    let checked = state.use_cases.check.run(app, target, &code).await;
    let Some((result, v)) = checked.map_err(|e| match e {
        CheckError::Store(e) => ApiError::from(e),
        CheckError::Number(e) => invalid_phone_number(&e),
    })?
    else {
        return Err(ApiError::not_found(
            "verification_not_found",
            "There is no pending verification for this number or id.",
        ));
    };
    match result {
        CheckResult::Approved | CheckResult::Wrong => Ok(v),
        CheckResult::Exhausted | CheckResult::NotPending(Status::MaxAttemptsReached) => {
            Err(ApiError::TooManyRequests {
                code: "max_attempts_reached",
                message: "Too many wrong codes: this verification is closed. Start a new one."
                    .to_owned(),
                retry_after_secs: policy.send.cooldown_ms.div_ceil(1000),
            })
        }
        CheckResult::Expired | CheckResult::NotPending(Status::Expired) => {
            Err(ApiError::not_found(
                "verification_expired",
                "This verification has expired. Start a new one.",
            ))
        }
        CheckResult::NotPending(status) => Err(ApiError::not_found(
            "verification_not_pending",
            format!(
                "This verification is already {}; there is no pending verification to check.",
                status.as_str()
            ),
        )),
    }
}

/// Read a verification (kept 24 hours after it ends).
#[utoipa::path(
    get,
    path = "/v1/verifications/{id}",
    params(("id" = String, Path, description = "The verification id, VE and 32 hex digits")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The verification", body = VerificationView),
        (status = 404, description = "No such verification in the key's application (another application's answers alike)", body = ErrorBody),
        EveryRouteErrors,
    )
)]
pub async fn get(
    client: ApiClient,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let v = state
        .use_cases
        .read
        .get(&client.app, &id)
        .await?
        .ok_or_else(unknown_verification)?;
    Ok(respond(StatusCode::OK, &v))
}

/// Cancel a pending verification.
#[utoipa::path(
    post,
    path = "/v1/verifications/{id}/cancel",
    params(("id" = String, Path, description = "The verification id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Canceled", body = VerificationView),
        (status = 404, description = "No such verification in the key's application (another application's answers alike)", body = ErrorBody),
        (status = 409, description = "Already ended", body = ErrorBody),
        EveryRouteErrors,
    )
)]
pub async fn cancel(
    client: ApiClient,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    match state.use_cases.read.cancel(&client.app, &id).await? {
        None => Err(unknown_verification()),
        Some((Ok(()), v)) => Ok(respond(StatusCode::OK, &v)),
        Some((Err(status), _)) => Err(ApiError::Conflict {
            code: "verification_not_pending",
            message: format!(
                "This verification is already {} and cannot be canceled.",
                status.as_str()
            ),
        }),
    }
}
