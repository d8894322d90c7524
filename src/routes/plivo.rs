//! Plivo-facing routes: the voice answer XML, the "press 1 to hear it again"
//! action, and the hangup callback. Every handler takes a [`SignedRequest`]
//! first, so nothing runs for a request Plivo did not sign.

use actix_web::{HttpResponse, ResponseError, web};
use serde::Deserialize;

use super::AppState;
use super::signed::{CallbackError, SignedRequest, SignedV3Request, UnclaimedV3Request};
use crate::domain::{ApplicationId, CallRef, Locale, PhoneNumber, VerificationId};
use crate::plivo::callback::{
    CallAnswer, CallHangup, DigitsPressed, MessageStatus, PhloCallStatus,
};
use crate::plivo::paths;
use crate::plivo::xml::{SpokenCode, TemplateKind, Vars};
use crate::service::Spoken;
use crate::store::Nonce;

/// How many times a caller may press 1 to hear the code again.
pub const MAX_REPLAYS: u8 = 3;

fn xml(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/xml")
        .body(body)
}

/// The locale to speak in when the verification's is not known: the one that
/// best fits the called number's country (Plivo's `To`), else en-US.
fn callee_locale(callee: Option<PhoneNumber>) -> Locale {
    callee
        .and_then(|n| n.region())
        .and_then(|region| Locale::for_region(&region))
        .unwrap_or_default()
}

/// The brand a call of `app` hears (when its verification is not known:
/// the default application's, see [`crate::apps::Apps::fallback_brand`]).
fn brand<'s>(state: &'s AppState, app: Option<&ApplicationId>) -> &'s str {
    app.and_then(|id| state.apps.get(id))
        .map_or_else(|| state.apps.fallback_brand(), |a| a.brand.as_str())
}

/// Renders a goodbye or an apology: in the verification's locale, with its
/// application's brand, when it is `known`; else in the callee's locale.
fn farewell(
    state: &AppState,
    known: Option<(Locale, ApplicationId)>,
    callee: Option<PhoneNumber>,
    kind: TemplateKind,
) -> HttpResponse {
    let (locale, app) = match known {
        Some((locale, app)) => (locale, Some(app)),
        None => (callee_locale(callee), None),
    };
    let vars = Vars {
        brand: brand(state, app.as_ref()),
        ..Vars::default()
    };
    xml(state.templates.render(locale.as_str(), kind, &vars))
}

/// Whether the request's nonce is taken already (by its extractor), or is to
/// be taken in the same store call that resolves the call (one round trip).
#[derive(Clone, Copy)]
enum SignedNonce<'a> {
    Taken,
    ToTake(&'a str),
}

/// The call's code, with the request's nonce taken first when it is still to
/// be: `Err` is the answer for a replay (403) or an unavailable store (503,
/// so Plivo retries).
async fn spoken(
    state: &AppState,
    call: &CallRef,
    nonce: SignedNonce<'_>,
) -> Result<Result<Spoken, crate::store::StoreError>, HttpResponse> {
    let voice = &state.use_cases.voice;
    match nonce {
        SignedNonce::Taken => Ok(voice.code(call).await),
        SignedNonce::ToTake(nonce) => {
            match voice.code_once(call, nonce, state.replay.ttl_ms()).await {
                Ok(Nonce::First(spoken)) => Ok(Ok(spoken)),
                Ok(Nonce::Replayed) => Err(CallbackError::Replayed.error_response()),
                Err(e) => Err(CallbackError::Store(e).error_response()),
            }
        }
    }
}

/// Renders the code for a call, or the apology when it cannot be read out.
async fn speak(
    state: &AppState,
    signed: &SignedRequest,
    nonce: SignedNonce<'_>,
    call_ref: &str,
    kind: TemplateKind,
    replay: u8,
) -> HttpResponse {
    let apology = |known: Option<(Locale, ApplicationId)>| {
        let callee = signed.form::<CallAnswer>().callee();
        farewell(state, known, callee, TemplateKind::Apology)
    };
    let Some(call) = CallRef::parse(call_ref) else {
        if let SignedNonce::ToTake(nonce) = nonce {
            match state.replay.first_sight(nonce).await {
                Ok(true) => {}
                Ok(false) => return CallbackError::Replayed.error_response(),
                Err(e) => return CallbackError::Store(e).error_response(),
            }
        }
        return apology(None);
    };
    let found = match spoken(state, &call, nonce).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let (code, locale, application, expires_at) = match found {
        Ok(Spoken::Code {
            code,
            locale,
            application,
            expires_at,
        }) => (code, locale, application, expires_at),
        Ok(Spoken::Gone(known)) => return apology(known),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the code for a call");
            return apology(None);
        }
    };
    let Ok(spoken) = SpokenCode::new(code.expose()) else {
        return apology(Some((locale, application)));
    };
    let action_url = state.public_url(&paths::voice_again(&call, replay + 1));
    let now = state.now();
    let vars = Vars {
        brand: brand(state, Some(&application)),
        code: spoken,
        action_url: &action_url,
        minutes: now.minutes_until(expires_at),
    };
    xml(state.templates.render(locale.as_str(), kind, &vars))
}

/// `POST /plivo/voice/answer/{call_ref}`: the XML that reads the code out
/// (V3 only: see [`SignedV3Request`]; its nonce is taken in the store call
/// that resolves the call, one round trip: see [`UnclaimedV3Request`]).
pub async fn answer(
    signed: UnclaimedV3Request,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let nonce = SignedNonce::ToTake(signed.nonce());
    speak(&state, &signed, nonce, &path, TemplateKind::Answer, 0).await
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
    let pressed: DigitsPressed = signed.form();
    if !pressed.wants_replay() || replay == 0 || replay > MAX_REPLAYS {
        let known = match CallRef::parse(&path) {
            Some(call) => state
                .use_cases
                .voice
                .locale(&call)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read a call's locale");
                    None
                }),
            None => None,
        };
        return farewell(&state, known, pressed.callee(), TemplateKind::Goodbye);
    }
    let kind = if replay == MAX_REPLAYS {
        TemplateKind::Last
    } else {
        TemplateKind::Repeat
    };
    speak(&state, &signed, SignedNonce::Taken, &path, kind, replay).await
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
    let Some(delivery) = signed.form::<CallHangup>().delivery(state.now()) else {
        tracing::info!("hangup without a RequestUUID");
        return ok();
    };
    match state.use_cases.receipts.call(&call, delivery).await {
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

/// `POST /plivo/phlo/message-status`: the 2FA PHLO's Send Message receipts.
pub async fn phlo_message_status(
    signed: SignedRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    let receipt: MessageStatus = signed.form();
    let (Some(to), Some(delivery)) = (receipt.recipient(), receipt.delivery(state.now())) else {
        return HttpResponse::Ok().finish();
    };
    phlo_outcome(state.use_cases.receipts.phlo_status(&to, delivery).await)
}

/// `POST /plivo/phlo/call-status`: the 2FA PHLO's Initiate Call hangup.
pub async fn phlo_call_status(signed: SignedRequest, state: web::Data<AppState>) -> HttpResponse {
    let hangup: PhloCallStatus = signed.form();
    let (Some(to), Some(delivery)) = (hangup.callee(), hangup.delivery(state.now())) else {
        return HttpResponse::Ok().finish();
    };
    phlo_outcome(state.use_cases.receipts.phlo_status(&to, delivery).await)
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
    let receipt: MessageStatus = signed.form();
    let (Some(id), Some(delivery)) = (VerificationId::parse(&path), receipt.delivery(state.now()))
    else {
        tracing::info!("message status for an unknown verification or without MessageUUID/Status");
        return ok();
    };
    match state.use_cases.receipts.message_status(&id, delivery).await {
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
