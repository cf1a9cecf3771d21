//! [`App`]: composes service modules into the one router `oih serve` listens with, adding what
//! every request gets: request ids, a tracing span, metrics, the body limit, the JSON 404/405,
//! and the app's own routes (`/healthcheck`, `/metrics`, `/api-docs`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use axum::routing::get;
use axum::{Extension, Router, middleware};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::auth::{Authenticator, Authn};
use crate::health::{ServiceHealth, WorkerWatch};
use crate::{ApiError, ErrorShape, HealthCheck, ServiceModule, Worker, health, metrics, openapi};

/// OIH's `PAYLOAD_SIZE_LIMIT` default.
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// How often histogram buffers are folded; without it they grow between scrapes.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// Builder of the whole HTTP app.
pub struct App {
    /// Each module with the name `/healthcheck` reports it under.
    modules: Vec<(&'static str, ServiceModule)>,
    health: Vec<HealthCheck>,
    body_limit: usize,
    authn: Option<Authn>,
    version: &'static str,
    cors_origins: Vec<String>,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

/// The composed app: the router to serve and the workers to run next to it.
pub struct Built {
    pub router: Router,
    pub workers: Vec<Worker>,
}

impl App {
    pub fn new() -> Self {
        Self {
            modules: Vec::new(),
            health: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            authn: None,
            version: env!("CARGO_PKG_VERSION"),
            cors_origins: Vec::new(),
        }
    }

    pub fn module(mut self, module: ServiceModule) -> Self {
        self.modules.push((module.name, module));
        self
    }

    /// As [`App::module`], reported by `/healthcheck` under `name`: the name the operator
    /// selects the service by (`--only`), where it differs from the module's own.
    pub fn service(mut self, name: &'static str, module: ServiceModule) -> Self {
        self.modules.push((name, module));
        self
    }

    /// A dependency every service relies on (store, bus): reported under `details`, and a
    /// service passes only while all of these pass.
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.health.push(check);
        self
    }

    /// Largest request body the JSON extractors accept (413 beyond).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    pub fn authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Self {
        self.authn = Some(Authn(authenticator));
        self
    }

    /// Browser origins allowed to call the API (OIH's `ORIGINWHITELIST`); `*` allows any.
    /// Without any, no CORS headers are sent, so browsers allow only same-origin calls.
    /// Requests without an `Origin` header (servers, curl) are never affected.
    pub fn cors_origins(mut self, origins: Vec<String>) -> Self {
        self.cors_origins = origins;
        self
    }

    /// Version reported by `/healthcheck`.
    pub fn version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }

    /// Composes the router. Panics if two services claim the same route (a programming error
    /// that the all-services test catches).
    pub fn build(self) -> Built {
        // With one service (`--only x`), unknown paths answer in that service's shape, as the
        // OIH service alone would; with several, in the common `{errors:[…]}` shape.
        let fallback_shape = match self.modules.as_slice() {
            [(_, only)] => only.shape,
            _ => ErrorShape::Errors,
        };
        let prometheus = metrics::prometheus();
        let mut router = Router::new();
        let mut docs = vec![("oih", openapi::system_doc())];
        let mut services = Vec::new();
        let mut workers = Vec::new();
        for (name, module) in self.modules {
            router = router.merge(module.layered_router());
            if let Some(doc) = module.openapi {
                docs.push((module.name, doc));
            }
            let watch = Arc::new(WorkerWatch::default());
            workers.extend(module.workers.into_iter().map(|w| watch.watch(w)));
            services.push(ServiceHealth {
                name,
                checks: module.health,
                workers: watch,
            });
        }
        workers.push(metrics_upkeep(prometheus.clone()));

        let dependencies: Arc<[HealthCheck]> = self.health.into();
        let services: Arc<[ServiceHealth]> = services.into();
        let version = self.version;
        router = router
            .route(
                "/healthcheck",
                get(move || {
                    let dependencies = dependencies.clone();
                    let services = services.clone();
                    async move { health::respond(&dependencies, &services, version).await }
                }),
            )
            .route(
                "/metrics",
                get(move || {
                    let prometheus = prometheus.clone();
                    async move { metrics::render(&prometheus) }
                }),
            )
            .merge(openapi::router(docs))
            .fallback(|| async { ApiError::not_found("Not found") });
        router = fallback_shape
            .apply(router)
            .layer(DefaultBodyLimit::max(self.body_limit))
            .layer(middleware::from_fn(metrics::track));
        if let Some(authn) = self.authn {
            router = router.layer(Extension(authn));
        }
        if let Some(cors) = cors_layer(&self.cors_origins) {
            router = router.layer(cors);
        }
        let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
        let router = router.layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(make_span)
                        .on_response(on_response)
                        // 5xx causes are logged where they happen (ApiError::Internal).
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(request_id)),
        );
        Built { router, workers }
    }
}

/// The CORS policy for the configured origins; None when no origin is allowed. Origins that
/// are not valid header values are skipped with a warning rather than failing the start.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| match HeaderValue::from_str(o.trim()) {
                Ok(v) => Some(v),
                Err(_) => {
                    tracing::warn!(origin = %o, "ignoring an invalid CORS origin");
                    None
                }
            })
            .collect();
        AllowOrigin::list(list)
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static(REQUEST_ID_HEADER),
                HeaderName::from_static("x-auth-type"),
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([HeaderName::from_static(REQUEST_ID_HEADER)])
            .max_age(Duration::from_secs(600)),
    )
}

fn make_span(req: &Request<Body>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The path only: query strings can carry tokens.
    tracing::info_span!(
        "http",
        method = %req.method(),
        path = req.uri().path(),
        route,
        request_id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

fn on_response(res: &Response<Body>, latency: Duration, span: &Span) {
    // Microsecond precision is plenty and keeps log lines short.
    let latency_ms = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX) as f64 / 1000.0;
    span.record("status", res.status().as_u16());
    span.record("latency_ms", latency_ms);
    // Status and latency are on the span, so every log format shows them once.
    tracing::info!("response");
}

fn metrics_upkeep(handle: metrics_exporter_prometheus::PrometheusHandle) -> Worker {
    Worker::new("metrics-upkeep", move |token| async move {
        loop {
            tokio::select! {
                () = token.cancelled() => return Ok(()),
                () = tokio::time::sleep(METRICS_UPKEEP) => handle.run_upkeep(),
            }
        }
    })
}
