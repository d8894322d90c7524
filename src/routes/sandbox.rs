//! `/sandbox/*`: what the simulator delivered, so a person (or a test) can read
//! the code without a phone. Registered in sandbox mode only.

use actix_web::{HttpResponse, web};

use super::AppState;
use super::error::ApiError;

fn sandbox(state: &AppState) -> Result<&crate::sandbox::SandboxState, ApiError> {
    state
        .sandbox
        .as_deref()
        .ok_or_else(|| ApiError::not_found("not_found", "The sandbox is off."))
}

/// `GET /sandbox/messages`
pub async fn messages(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(sandbox(&state)?.messages()))
}

/// `GET /sandbox/phlo-runs`
pub async fn phlo_runs(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(sandbox(&state)?.phlo_runs()))
}

/// `GET /sandbox/calls`
pub async fn calls(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(sandbox(&state)?.calls()))
}
