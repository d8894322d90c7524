//! Routes for operators: liveness, readiness and metrics.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use crate::events::JOB_PREFIX as EVENT_JOB;
use crate::store::{Health, JobStore};

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
            tracing::warn!(error = %e, store = store.location(), "not ready: store unavailable");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({"status": "unavailable", "store": store.describe()}))
        }
    }
}

/// `GET /metrics`: Prometheus text format. The queue gauges are read from
/// the store first (within its timeout; on failure they keep their last
/// value), and the process metrics are read from `/proc/self`.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    use crate::telemetry::{JOBS_QUEUED, WEBHOOK_BACKLOG};
    match state.readiness.queue_depth(EVENT_JOB).await {
        Ok(depth) => {
            metrics::gauge!(JOBS_QUEUED).set(depth.total as f64);
            metrics::gauge!(WEBHOOK_BACKLOG).set(depth.with_prefix as f64);
        }
        Err(e) => tracing::debug!(error = %e, "metrics: cannot read the job queue's depth"),
    }
    let mut text = crate::telemetry::metrics().render();
    text.push_str(&crate::telemetry::process_metrics());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
