//! HTTP routes: the app API, the operator routes and, in sandbox mode, what the
//! simulator delivered. `startup` wires them into the actix App.

use std::sync::Arc;

use actix_web::web;

use crate::sandbox::SandboxState;
use crate::service::Verifier;

pub mod api;
pub mod auth;
pub mod error;
pub mod ops;
pub mod sandbox;

/// Largest JSON body the app API accepts.
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    pub verifier: Verifier,
    pub api_keys: auth::ApiKeys,
    /// Present in sandbox mode only.
    pub sandbox: Option<Arc<SandboxState>>,
}

/// Registers every route on an App.
pub fn configure(cfg: &mut web::ServiceConfig, sandbox: bool) {
    let json = web::JsonConfig::default()
        .limit(MAX_JSON_BODY)
        .content_type_required(true)
        .error_handler(error::json_error);
    cfg.app_data(json)
        .service(
            web::resource("/v1/verifications")
                .route(web::post().to(api::start))
                .default_service(web::to(error::method_not_allowed)),
        )
        .service(
            web::resource("/v1/verifications/check")
                .route(web::post().to(api::check))
                .default_service(web::to(error::method_not_allowed)),
        )
        .service(
            web::resource("/v1/verifications/{id}")
                .route(web::get().to(api::get))
                .default_service(web::to(error::method_not_allowed)),
        )
        .service(
            web::resource("/v1/verifications/{id}/cancel")
                .route(web::post().to(api::cancel))
                .default_service(web::to(error::method_not_allowed)),
        )
        .route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz));
    if sandbox {
        cfg.route("/sandbox/messages", web::get().to(sandbox::messages))
            .route("/sandbox/phlo-runs", web::get().to(sandbox::phlo_runs));
    }
}
