//! Plivo-facing routes: the voice answer XML, the "press 1 to hear it again"
//! action, and the hangup callback. Every handler takes a [`SignedRequest`]
//! first, so nothing runs for a request Plivo did not sign.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::signed::{SignedRequest, SignedV3Request};
use crate::domain::{
    CallOutcome, CallRef, Channel, Delivery, Locale, PhoneNumber, Timestamp, VerificationId,
};
use crate::plivo::paths;
use crate::plivo::xml::{SpokenCode, TemplateKind, Vars};
use crate::service::{CallReport, Spoken};

/// How many times a caller may press 1 to hear the code again.
pub const MAX_REPLAYS: u8 = 3;

fn xml(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/xml")
        .body(body)
}

/// The locale to speak in when the verification's is not known: the one that
/// best fits the called number's country (Plivo's `To`), else en-US.
fn callee_locale(signed: &SignedRequest) -> Locale {
    callback_number(signed)
        .and_then(|n| n.region())
        .and_then(|region| Locale::for_region(&region))
        .unwrap_or_default()
}

/// Renders a goodbye or an apology in `locale`.
fn farewell(state: &AppState, locale: &Locale, kind: TemplateKind) -> HttpResponse {
    let vars = Vars {
        brand: state.verifier.brand(),
        ..Vars::default()
    };
    xml(state.templates.render(locale.as_str(), kind, &vars))
}

/// Renders the code for a call, or the apology when it cannot be read out.
async fn speak(
    state: &AppState,
    signed: &SignedRequest,
    call_ref: &str,
    kind: TemplateKind,
    replay: u8,
) -> HttpResponse {
    let verifier = &state.verifier;
    let apology = |locale: Option<Locale>| {
        let locale = locale.unwrap_or_else(|| callee_locale(signed));
        farewell(state, &locale, TemplateKind::Apology)
    };
    let Some(call) = CallRef::parse(call_ref) else {
        return apology(None);
    };
    let (code, locale, expires_at) = match verifier.voice_code(&call).await {
        Ok(Spoken::Code {
            code,
            locale,
            expires_at,
        }) => (code, locale, expires_at),
        Ok(Spoken::Gone(locale)) => return apology(locale),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the code for a call");
            return apology(None);
        }
    };
    let Ok(spoken) = SpokenCode::new(code.expose()) else {
        return apology(Some(locale));
    };
    let action_url = state.public_url(&paths::voice_again(&call, replay + 1));
    let now = verifier.now();
    let vars = Vars {
        brand: verifier.brand(),
        code: spoken,
        action_url: &action_url,
        minutes: now.minutes_until(expires_at),
    };
    xml(state.templates.render(locale.as_str(), kind, &vars))
}

/// `POST /plivo/voice/answer/{call_ref}`: the XML that reads the code out
/// (V3 only: see [`SignedV3Request`]).
pub async fn answer(
    signed: SignedV3Request,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    speak(&state, &signed, &path, TemplateKind::Answer, 0).await
}

#[derive(Debug, Deserialize)]
pub struct ReplayQuery {
    #[serde(default)]
    n: Option<u8>,
}

/// `POST /plivo/voice/again/{call_ref}?n=N`: the GetDigits action (V3 only:
/// under V2 anyone holding one signed request could choose its `Digits`).
pub async fn again(
    signed: SignedV3Request,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ReplayQuery>,
) -> HttpResponse {
    let replay = query.n.unwrap_or(1);
    let pressed_one = signed.param("Digits") == Some("1");
    if !pressed_one || replay == 0 || replay > MAX_REPLAYS {
        let known = match CallRef::parse(&path) {
            Some(call) => state.verifier.call_locale(&call).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read a call's locale");
                None
            }),
            None => None,
        };
        let locale = known.unwrap_or_else(|| callee_locale(&signed));
        return farewell(&state, &locale, TemplateKind::Goodbye);
    }
    let kind = if replay == MAX_REPLAYS {
        TemplateKind::Last
    } else {
        TemplateKind::Repeat
    };
    speak(&state, &signed, &path, kind, replay).await
}

/// `POST /plivo/voice/hangup/{call_ref}`: records how the call ended.
pub async fn hangup(
    signed: SignedRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let ok = || xml("<Response></Response>".to_owned());
    let Some(call) = CallRef::parse(&path) else {
        tracing::info!("hangup for an unknown call reference");
        return ok();
    };
    let Some(request_uuid) = signed
        .param("RequestUUID")
        .or_else(|| signed.param("ALegRequestUUID"))
        .or_else(|| signed.param("CallUUID"))
    else {
        tracing::info!("hangup without a RequestUUID");
        return ok();
    };
    let report = CallReport {
        request_uuid: request_uuid.to_owned(),
        status: signed.param("CallStatus").unwrap_or("completed").to_owned(),
        outcome: Some(call_outcome(&signed)),
    };
    match state.verifier.record_call(&call, report).await {
        Ok(true) => {}
        Ok(false) => tracing::info!("hangup for a call reference that is no longer known"),
        Err(e) => {
            // Plivo retries a failed callback; let it, rather than lose the outcome.
            tracing::error!(error = %e, "cannot record a call's outcome");
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
    ok()
}

/// A message status callback as a delivery report.
fn sms_receipt(signed: &SignedRequest, uuid: &str, status: &str, now: Timestamp) -> Delivery {
    Delivery {
        channel: Channel::Sms,
        provider_id: uuid.to_owned(),
        status: status.to_ascii_lowercase(),
        // Plivo sends "000" (or nothing) when there is no error.
        error_code: signed
            .param("ErrorCode")
            .filter(|c| *c != "000" && *c != "0")
            .map(str::to_owned),
        updated_at: now.as_millis(),
        call: None,
        sequence: signed.param("Sequence").and_then(|s| s.parse().ok()),
        created_at: Some(now.as_millis()),
    }
}

/// How a call ended, from a hangup callback's fields.
fn call_outcome(signed: &SignedRequest) -> CallOutcome {
    let duration = signed.param("Duration").and_then(|d| d.parse::<u32>().ok());
    CallOutcome {
        answered: signed.param("AnswerTime").is_some() || duration.is_some_and(|d| d > 0),
        hangup_cause_code: signed.param("HangupCauseCode").map(str::to_owned),
        hangup_cause_name: signed
            .param("HangupCauseName")
            .or_else(|| signed.param("HangupCause"))
            .map(str::to_owned),
        duration,
    }
}

/// The E.164 form of a callback's `To` (Plivo omits the `+`).
fn callback_number(signed: &SignedRequest) -> Option<PhoneNumber> {
    let to = signed.param("To")?;
    let e164 = if to.starts_with('+') {
        to.to_owned()
    } else {
        format!("+{to}")
    };
    PhoneNumber::parse(&e164).ok()
}

/// `POST /plivo/phlo/message-status`: the 2FA PHLO's Send Message receipts.
pub async fn phlo_message_status(
    signed: SignedRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (Some(to), Some(uuid), Some(status)) = (
        callback_number(&signed),
        signed.param("MessageUUID"),
        signed.param("Status"),
    ) else {
        return HttpResponse::Ok().finish();
    };
    let delivery = sms_receipt(&signed, uuid, status, state.verifier.now());
    phlo_outcome(state.verifier.record_phlo_status(&to, delivery).await)
}

/// `POST /plivo/phlo/call-status`: the 2FA PHLO's Initiate Call hangup.
pub async fn phlo_call_status(signed: SignedRequest, state: web::Data<AppState>) -> HttpResponse {
    let (Some(to), Some(uuid)) = (
        callback_number(&signed),
        signed
            .param("RequestUUID")
            .or_else(|| signed.param("CallUUID")),
    ) else {
        return HttpResponse::Ok().finish();
    };
    let now = state.verifier.now();
    let report = CallReport {
        request_uuid: uuid.to_owned(),
        status: signed.param("CallStatus").unwrap_or("completed").to_owned(),
        outcome: Some(call_outcome(&signed)),
    };
    let delivery = report.into_delivery(now);
    phlo_outcome(state.verifier.record_phlo_status(&to, delivery).await)
}

fn phlo_outcome(result: Result<bool, crate::store::StoreError>) -> HttpResponse {
    match result {
        Ok(found) => {
            if !found {
                tracing::info!("PHLO receipt for a number with no verification");
            }
            HttpResponse::Ok().finish()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a PHLO receipt");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}

/// `POST /plivo/message-status/{id}`: a message's delivery receipt.
pub async fn message_status(
    signed: SignedRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    // Unknown or malformed receipts still get 200, so Plivo does not retry them forever.
    let ok = || HttpResponse::Ok().finish();
    let (Some(id), Some(uuid), Some(status)) = (
        VerificationId::parse(&path),
        signed.param("MessageUUID"),
        signed.param("Status"),
    ) else {
        tracing::info!("message status for an unknown verification or without MessageUUID/Status");
        return ok();
    };
    let delivery = sms_receipt(&signed, uuid, status, state.verifier.now());
    match state.verifier.record_sms_status(&id, delivery).await {
        Ok(true) => ok(),
        Ok(false) => {
            tracing::info!(verification.id = %id, "message status for a verification no longer known");
            ok()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record a message status");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}
