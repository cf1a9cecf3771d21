//! Prometheus metrics: the process-wide recorder, the per-request middleware and `GET /metrics`.
//!
//! Labels use the matched route template (`/flows/{id}`), never the raw path, so an attacker
//! cannot blow up the number of series.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS_TOTAL: &str = "http_requests_total";
pub const REQUEST_DURATION: &str = "http_request_duration_seconds";

/// Label for requests no service answered (unknown routes, `/metrics`, `/healthcheck`, docs).
pub const APP_SERVICE: &str = "oih";

/// Seconds; from sub-millisecond API calls to slow synchronous webhooks.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Which service answered a request; set on the response by the service's router layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceTag(pub &'static str);

/// The process-wide Prometheus handle. The first call installs the global `metrics` recorder;
/// later calls (more apps in the same test process) share it.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> PrometheusHandle {
    let builder = match PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), BUCKETS)
    {
        Ok(builder) => builder,
        Err(e) => {
            tracing::warn!(error = %e, "invalid histogram buckets; using summaries");
            PrometheusBuilder::new()
        }
    };
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    // Someone else (a test harness, an embedding program) may own the global recorder; then
    // our handle renders nothing, which beats refusing to start.
    if let Err(e) = metrics::set_global_recorder(recorder) {
        tracing::warn!(error = %e, "a metrics recorder is already installed; /metrics will be empty");
    }
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        "HTTP requests answered, by service, method, route and status."
    );
    metrics::describe_histogram!(
        REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by service, method and route."
    );
    handle
}

/// Middleware recording [`REQUESTS_TOTAL`] and [`REQUEST_DURATION`] for every request.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    let service = res
        .extensions()
        .get::<ServiceTag>()
        .map_or(APP_SERVICE, |t| t.0);
    let status = res.status().as_u16().to_string();
    metrics::counter!(REQUESTS_TOTAL, "service" => service, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(REQUEST_DURATION, "service" => service, "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

/// `GET /metrics` body.
pub fn render(handle: &PrometheusHandle) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}
