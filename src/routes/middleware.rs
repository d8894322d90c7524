//! What wraps every request: a request id (taken from `X-Request-Id` when it
//! is sane, else generated) echoed back and carried by the request's span; the
//! HTTP latency histogram by route and the access log's line; limits on URL
//! and header sizes; a deadline for the whole request body; response headers
//! that keep browsers and caches from misusing answers; and the in-flight
//! count a graceful shutdown waits on (see [`crate::drain`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CACHE_CONTROL, HeaderName, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use actix_web::http::{ConnectionType, Method};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};
use futures_core::Stream;
use tracing::Instrument;

use super::AppState;
use super::error::ApiError;
use crate::drain::{Drain, Tracked};

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest accepted request URL (path and query), in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Most request headers, and their total size in bytes.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_REQUEST_ID: usize = 64;
/// How long a client has to send a whole request body, from the end of its
/// head: this server's bodies are at most 64 KiB (16 KiB for JSON), which any
/// client sends well within it. Past it the answer is 408 and the connection
/// closes, so a client trickling a body cannot hold a connection open.
pub const BODY_DEADLINE: Duration = Duration::from_secs(5);

/// What became of a request body under its deadline.
#[derive(Debug, Default)]
struct BodyWatch {
    timed_out: AtomicBool,
}

/// A request body that ends in an error once [`BODY_DEADLINE`] has passed.
struct DeadlineBody {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    watch: Arc<BodyWatch>,
}

impl Stream for DeadlineBody {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.watch.timed_out.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.watch.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Puts the request's body, if it has one, under [`BODY_DEADLINE`].
fn watch_body(req: &mut ServiceRequest) -> Option<Arc<BodyWatch>> {
    match req.take_payload() {
        Payload::None => None,
        inner => {
            let watch = Arc::new(BodyWatch::default());
            req.set_payload(Payload::Stream {
                payload: Box::pin(DeadlineBody {
                    inner,
                    deadline: Box::pin(tokio::time::sleep(BODY_DEADLINE)),
                    watch: Arc::clone(&watch),
                }),
            });
            Some(watch)
        }
    }
}
/// The target of the access log's lines (one per request, at `info`), so
/// `RUST_LOG=info,plivo_2fa::access=warn` turns it off.
pub const ACCESS_LOG: &str = "plivo_2fa::access";
/// The route label of a request no route pattern matched.
const UNMATCHED_ROUTE: &str = "unmatched";
/// The method label of any method outside the standard set.
const OTHER_METHOD: &str = "other";

/// HTTP's standard methods (RFC 9110 and PATCH): the method labels kept as sent.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The method as a metric label: one of HTTP's standard methods, or `other`.
fn method_label(method: &Method) -> &'static str {
    STANDARD_METHODS
        .iter()
        .find(|m| **m == method.as_str())
        .copied()
        .unwrap_or(OTHER_METHOD)
}

/// The request's id, for handlers that want it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn sane_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= MAX_REQUEST_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
    .then(|| s.to_owned())
}

/// A request id unique to this process and, by its random prefix, across
/// instances: ids need not be secret, so this costs no system call.
fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| crate::sandbox::random_hex(6));
    format!("{prefix}-{:010x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn oversized(req: &ServiceRequest) -> Option<ApiError> {
    let url = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if url > MAX_URL_BYTES {
        return Some(ApiError::UriTooLong {
            limit: MAX_URL_BYTES,
        });
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.as_bytes().len())
        .sum();
    (headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES).then_some(ApiError::HeadersTooLarge {
        limit: MAX_HEADER_BYTES,
    })
}

pub async fn around(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let body = watch_body(&mut req);
    let drain = req
        .app_data::<web::Data<AppState>>()
        .map(|state| Arc::clone(&state.drain));
    let in_flight = drain.as_ref().map(Drain::enter);
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane_request_id)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let span = tracing::info_span!("request", request.id = %id, http.method = %method, http.route = tracing::field::Empty);
    let refused = oversized(&req);
    let route = req
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    span.record("http.route", route.as_str());
    let mut response = match refused {
        Some(e) => req.into_response(e.error_response()),
        None => next
            .call(req)
            .instrument(span.clone())
            .await?
            .map_into_boxed_body(),
    };
    if body.is_some_and(|b| b.timed_out.load(Ordering::Relaxed)) {
        // Whatever the handler made of the cut-off body, the answer is 408.
        let timeout = ApiError::RequestTimeout {
            part: "body",
            secs: BODY_DEADLINE.as_secs(),
        };
        let (request, _) = response.into_parts();
        response = ServiceResponse::new(request, timeout.error_response());
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    let latency = started.elapsed();
    let status = response.status().as_u16();
    // The access log: the route's pattern, never the raw path (which may
    // hold a verification id or anything a client typed), and no query,
    // header or body, so no key, code or number reaches it.
    tracing::info!(
        target: ACCESS_LOG,
        method = method_label(&method),
        route = route.as_str(),
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        request_id = id.as_str(),
        "request"
    );
    // Every label comes from a closed set: a client that invents methods or
    // paths must not grow the registry (each new label set is a series kept
    // for the life of the process).
    metrics::histogram!(
        "plivo2fa_http_request_duration_seconds",
        "route" => route,
        "method" => method_label(&method),
        // Statuses are this server's own answers: a bounded set.
        "status" => status.to_string()
    )
    .record(latency.as_secs_f64());
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if drain.is_some_and(|d| d.is_draining()) {
        // Shutting down: this connection takes no further requests.
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(match in_flight {
        Some(token) => response.map_body(|_, body| Tracked::new(body, token).boxed()),
        None => response,
    })
}
