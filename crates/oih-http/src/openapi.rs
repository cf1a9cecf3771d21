//! OpenAPI glue: each service's document at `/api-docs/<service>/openapi.json`, one Swagger UI
//! at `/api-docs/` with a selector over all of them, and OIH's `/docs` → `/api-docs` redirect.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::{SwaggerUi, Url};

pub const DOCS_PATH: &str = "/api-docs";

/// Where a service's document is served.
pub fn spec_path(service: &str) -> String {
    format!("{DOCS_PATH}/{service}/openapi.json")
}

/// Swagger UI wants `'static` names and paths; service names are `'static` but their paths are
/// built at run time. Interned once per service name, so the leak is bounded by the (small,
/// fixed) set of services.
fn static_spec_path(service: &'static str) -> &'static str {
    static PATHS: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let mut paths = PATHS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    paths
        .entry(service)
        .or_insert_with(|| Box::leak(spec_path(service).into_boxed_str()))
}

/// The routes serving `docs` (service name, document) and the UI over them.
pub fn router(docs: Vec<(&'static str, OpenApi)>) -> Router {
    let urls = docs
        .into_iter()
        .map(|(name, doc)| (Url::new(name, static_spec_path(name)), doc))
        .collect();
    Router::from(SwaggerUi::new(DOCS_PATH).urls(urls)).route(
        "/docs",
        get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/api-docs/")]) }),
    )
}

/// The app's own endpoints (health, metrics), documented as the `oih` entry.
pub fn system_doc() -> OpenApi {
    SystemApi::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "oih", description = "Endpoints of the hub itself."),
    paths(healthcheck, metrics)
)]
struct SystemApi;

/// Health of the process and its dependencies.
#[utoipa::path(
    get,
    path = "/healthcheck",
    tag = "oih",
    responses(
        (status = 200, description = "Every check passes: `{status:\"pass\", version, details:{store, bus}, services:{<service>:{status, details}}}`, one entry per service this process runs"),
        (status = 503, description = "A check fails: a dependency (`details.<check>.status` is `fail`) or a service (`services.<name>.status` is `fail`: a dependency, one of its checks, or one of its workers died)")
    )
)]
#[allow(dead_code)]
fn healthcheck() {}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "oih",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain"))
)]
#[allow(dead_code)]
fn metrics() {}
