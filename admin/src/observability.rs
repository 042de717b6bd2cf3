//! What `cleave-admin serve` tells operators: a request id on every request (taken from
//! `x-request-id` when the caller sends a sane one, else new; echoed in the response and in
//! every log line of the request), one log line per request, and Prometheus metrics at
//! `GET /metrics` — requests and latencies per route, publishes and rollbacks per outcome.
//! Logs never contain tokens, keys or bodies.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tracing::Instrument as _;

const REQUEST_ID: &str = "x-request-id";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PublishLabels {
    environment: String,
    kind: String,
    outcome: String,
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    publishes: Family<PublishLabels, Counter>,
    refused_records: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("cleave_admin");
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register(
        "http_requests",
        "HTTP requests by method, route and status",
        requests.clone(),
    );
    let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
        // 0.5 ms to about 16 s.
        Histogram::new(exponential_buckets(0.0005, 2.0, 16))
    });
    registry.register(
        "http_request_duration_seconds",
        "Time to answer a request, by method and route",
        latency.clone(),
    );
    let publishes = Family::<PublishLabels, Counter>::default();
    registry.register(
        "publishes",
        "Publishes and rollbacks by environment and outcome (published, unchanged, failed)",
        publishes.clone(),
    );
    let refused_records = Counter::default();
    registry.register(
        "ingest_refused_records",
        "Exposures and events ingest refused (each named in its answer), which the edge dead-letters",
        refused_records.clone(),
    );
    Metrics {
        registry,
        requests,
        latency,
        publishes,
        refused_records,
    }
});

/// Counts one publish or rollback attempt.
pub fn count_publish(environment: &str, kind: &str, outcome: &str) {
    METRICS
        .publishes
        .get_or_create(&PublishLabels {
            environment: environment.to_owned(),
            kind: kind.to_owned(),
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// Counts records ingest refused.
pub fn count_refused_records(records: usize) {
    METRICS
        .refused_records
        .inc_by(u64::try_from(records).unwrap_or(u64::MAX));
}

/// `GET /metrics`: the Prometheus text exposition format.
pub async fn metrics() -> Response {
    let mut body = String::new();
    if encode(&mut body, &METRICS.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Middleware: request id, a span around the request, one log line and the metrics.
pub async fn observe(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(status, ms = elapsed.as_secs_f64() * 1000.0, "answered");
    });
    METRICS
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    METRICS
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Ids from callers are kept only when short and plain, so they cannot forge log lines.
fn is_sane_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}
