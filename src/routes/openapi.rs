//! `GET /openapi.json`: the app API's OpenAPI 3 document, generated from the
//! handlers' annotations and the types they exchange (not a hand-kept copy).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{api, factors};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "plivo-2fa",
        description = "Self-hosted one-time-password verification for Plivo: start a verification, check the code the user typed; enrol authenticator apps (TOTP) and check their codes."
    ),
    paths(
        api::start,
        api::check,
        api::get,
        api::cancel,
        factors::create,
        factors::verify,
        factors::check,
        factors::get,
        factors::delete
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /openapi.json`
pub async fn document() -> HttpResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json.as_str())
}
