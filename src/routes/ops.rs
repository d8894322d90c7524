//! Routes for operators: liveness and readiness.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use crate::store::Health;

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the store answers, else 503; 503 as well while
/// the server drains for shutdown, so a load balancer stops sending to it.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = &state.readiness;
    if state.drain.is_draining() {
        return HttpResponse::ServiceUnavailable()
            .json(json!({"status": "shutting_down", "store": store.describe()}));
    }
    match store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "store": store.describe()})),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: store unavailable");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({"status": "unavailable", "store": store.describe()}))
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::metrics().render())
}
