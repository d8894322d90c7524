//! HTTP routes: the app API, the operator routes, the demo page and, in sandbox
//! mode, what the simulator delivered. `startup` wires them into the actix App.

use std::sync::Arc;

use actix_web::web;
use secrecy::SecretString;
use url::Url;

use ipnet::IpNet;

use crate::apps::Apps;
use crate::domain::{Clock, Timestamp};
use crate::limits::Limiter;
use crate::plivo::paths;
use crate::plivo::xml::Templates;
use crate::sandbox::SandboxState;
use crate::service::{
    CheckCode, Factors, ReadVerification, Receipts, StartVerification, VoiceCall,
};
use crate::store::Store;

pub mod api;
pub mod auth;
pub mod client_ip;
pub mod demo;
pub mod error;
pub mod factors;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod plivo;
pub mod sandbox;
pub mod signed;

/// Largest JSON body the app API accepts.
pub const MAX_JSON_BODY: usize = 16 * 1024;

/// The use cases the routes call.
#[derive(Debug, Clone)]
pub struct UseCases {
    pub start: StartVerification,
    pub check: CheckCode,
    pub read: ReadVerification,
    pub receipts: Receipts,
    pub voice: VoiceCall,
    pub factors: Factors,
}

/// What the server can send, for the checks a start's input gets.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// Whether codes can go out by voice (a caller ID is configured).
    pub voice: bool,
    /// Whether this server writes the SMS text (not in PHLO mode, where the
    /// PHLO writes it, so autofill lines cannot be added).
    pub own_sms_text: bool,
}

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// Every application, and which API key opens which.
    pub apps: Arc<Apps>,
    pub use_cases: UseCases,
    pub capabilities: Capabilities,
    pub clock: Arc<dyn Clock>,
    /// Refuses a signed callback's nonce seen before.
    pub replay: signed::ReplayGuard,
    /// What `/readyz` asks.
    pub readiness: Store,
    /// Present in sandbox mode only.
    pub sandbox: Option<Arc<SandboxState>>,
    /// Every auth token Plivo may sign callbacks with (rotation).
    pub plivo_tokens: Vec<SecretString>,
    /// Whether receipt callbacks signed with V2 only are accepted (`PLIVO_ACCEPT_V2`).
    pub accept_v2: bool,
    /// `PUBLIC_BASE_URL` without its trailing slash.
    pub public_base: String,
    pub templates: Templates,
    pub limiter: Limiter,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Requests in flight and whether the server is shutting down.
    pub drain: Arc<crate::drain::Drain>,
    /// What the demo page offers (countries, WebOTP).
    pub demo: demo::DemoSettings,
}

impl AppState {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// `PUBLIC_BASE_URL` in the form [`AppState::public_base`] holds.
    pub fn base_without_slash(url: &Url) -> String {
        url.as_str().trim_end_matches('/').to_owned()
    }

    /// The client's address (see [`client_ip::client_ip`]).
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        client_ip::client_ip(req, &self.trusted_proxies)
    }

    /// An absolute URL on this server, as Plivo reaches it.
    pub fn public_url(&self, path: &str) -> String {
        format!("{}{path}", self.public_base)
    }

    /// The URL Plivo signed for a request that arrived with `uri`.
    pub fn signed_url(&self, uri: &actix_web::http::Uri) -> String {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        self.public_url(path)
    }
}

/// Which optional route groups an App serves.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// `/sandbox/*`: what the simulator delivered.
    pub sandbox: bool,
    /// `/` and `/demo/*`: the demo page and its endpoints.
    pub demo_page: bool,
    /// `/metrics` on this listener (off when `METRICS_ADDR` serves it apart).
    pub metrics: bool,
}

/// A resource that answers the method `allow` names with `route`, and 405
/// in the error shape, with that `Allow` header, to any other. Where `allow`
/// names more than one, the caller adds their routes (as [`probe`] does).
pub(crate) fn one_method(
    path: &str,
    allow: &'static str,
    route: actix_web::Route,
) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(move || async move {
            Err::<actix_web::HttpResponse, _>(error::method_not_allowed(allow))
        }))
}

/// A probe answers GET and HEAD (load balancers use either), and 405 in the
/// error shape to the rest.
fn probe(path: &str, get: actix_web::Route, head: actix_web::Route) -> actix_web::Resource {
    one_method(path, "GET, HEAD", get).route(head)
}

/// `GET /metrics`, on the main listener or on `METRICS_ADDR`'s.
pub fn metrics_route() -> actix_web::Resource {
    one_method("/metrics", "GET", web::get().to(ops::metrics))
}

/// Registers every route on an App.
pub fn configure(cfg: &mut web::ServiceConfig, features: Features) {
    let json = web::JsonConfig::default()
        .limit(MAX_JSON_BODY)
        .content_type_required(true)
        .error_handler(error::json_error);
    // Static prefixes before `{…}` patterns: actix matches a path against each
    // pattern with a `{…}` segment by running a regular expression, in
    // registration order; behind a static prefix only the requests under it
    // pay for that.
    cfg.app_data(json)
        .service(
            web::scope("/v1/verifications")
                .service(one_method("", "POST", web::post().to(api::start)))
                .service(one_method("/check", "POST", web::post().to(api::check)))
                .service(one_method("/{id}", "GET", web::get().to(api::get)))
                .service(one_method(
                    "/{id}/cancel",
                    "POST",
                    web::post().to(api::cancel),
                )),
        )
        .service(
            web::scope("/v1/factors")
                .service(one_method("", "POST", web::post().to(factors::create)))
                .service(
                    one_method("/{id}", "GET, DELETE", web::get().to(factors::get))
                        .route(web::delete().to(factors::delete)),
                )
                .service(one_method(
                    "/{id}/verify",
                    "POST",
                    web::post().to(factors::verify),
                ))
                .service(one_method(
                    "/{id}/check",
                    "POST",
                    web::post().to(factors::check),
                )),
        )
        .service(
            web::scope(paths::SCOPE)
                .app_data(web::PayloadConfig::new(signed::MAX_CALLBACK_BODY))
                .service(
                    web::scope(paths::VOICE_ANSWER)
                        .route("/{call_ref}", web::post().to(plivo::answer))
                        .route("/{call_ref}", web::get().to(plivo::answer)),
                )
                .service(
                    web::scope(paths::VOICE_AGAIN)
                        .route("/{call_ref}", web::post().to(plivo::again)),
                )
                .service(
                    web::scope(paths::VOICE_HANGUP)
                        .route("/{call_ref}", web::post().to(plivo::hangup)),
                )
                .service(
                    web::scope(paths::MESSAGE_STATUS)
                        .route("/{id}", web::post().to(plivo::message_status)),
                )
                .route(
                    paths::PHLO_MESSAGE_STATUS,
                    web::post().to(plivo::phlo_message_status),
                )
                .route(
                    paths::PHLO_CALL_STATUS,
                    web::post().to(plivo::phlo_call_status),
                ),
        )
        .service(probe(
            "/healthz",
            web::get().to(ops::healthz),
            web::head().to(ops::healthz),
        ))
        .service(probe(
            "/readyz",
            web::get().to(ops::readyz),
            web::head().to(ops::readyz),
        ))
        .configure(|cfg| {
            if features.metrics {
                cfg.service(metrics_route());
            }
        })
        .service(one_method(
            "/openapi.json",
            "GET",
            web::get().to(openapi::document),
        ));
    if features.demo_page {
        demo::configure(cfg);
    }
    if features.sandbox {
        cfg.service(one_method(
            "/sandbox/messages",
            "GET",
            web::get().to(sandbox::messages),
        ))
        .service(one_method(
            "/sandbox/phlo-runs",
            "GET",
            web::get().to(sandbox::phlo_runs),
        ))
        .service(one_method(
            "/sandbox/calls",
            "GET",
            web::get().to(sandbox::calls),
        ));
    }
}
