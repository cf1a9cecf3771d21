//! The `/api/v1/domains` routes with OIH's paths, envelopes, messages and permissions
//! (data-services.md §5.4), plus `POST …/schemas/{uri}/validate`.
//!
//! Every handler authenticates first (401), then loads the domain and applies OIH's guard
//! (403/404), then reads the body (400).

mod domains;
mod schemas;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use oih_core::Identity;
use oih_http::{ApiError, Json, ListQuery, PageRequest};
use serde_json::{Map, Value, json};
use utoipa::OpenApi as _;

use crate::Config;
use crate::access;
use crate::archive::ArchiveError;
use crate::events::Publisher;
use crate::model::Domain;
use crate::processing::ProcessError;
use crate::store::MetaStore;
use crate::validation::ValidatorCache;
use crate::write::WriteError;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    config: Arc<Config>,
    store: MetaStore,
    events: Publisher,
    validators: ValidatorCache,
}

impl AppState {
    pub fn new(config: Config, store: MetaStore, events: Publisher) -> Self {
        Self {
            config: Arc::new(config),
            store,
            events,
            validators: ValidatorCache::default(),
        }
    }

    fn base(&self) -> &str {
        self.config.base()
    }

    /// The domain `id` under `guard`'s rules.
    async fn domain(&self, who: &Identity, id: &str, guard: Guard) -> Result<Domain, ApiError> {
        let domain = self.store.domain(id).await?;
        match guard {
            Guard::Read => access::read(who, domain),
            Guard::OwnerOr(permissions) => access::owner_or_allowed(who, domain, permissions),
        }
    }
}

/// Which of OIH's two guards an endpoint uses.
#[derive(Clone, Copy)]
enum Guard {
    Read,
    OwnerOr(&'static [&'static str]),
}

pub fn router(state: AppState) -> Router {
    // Multipart framing adds a little to the archive itself.
    let upload_limit = usize::try_from(state.config.metadata_import_max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/api/v1/domains", get(domains::list).post(domains::create))
        .route(
            "/api/v1/domains/{id}",
            get(domains::read)
                .put(domains::update)
                .delete(domains::remove),
        )
        .route(
            "/api/v1/domains/{id}/schemas",
            get(schemas::list).post(schemas::create),
        )
        .route(
            "/api/v1/domains/{id}/schemas/import",
            post(schemas::import).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/api/v1/domains/{id}/schemas/{*path}",
            get(schemas::read)
                .put(schemas::update)
                .delete(schemas::remove)
                .post(schemas::validate),
        )
        .with_state(state)
}

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    MetadataApi::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "meta-data-repository",
        description = "Domains of JSON Schemas: CRUD, archive import, `$ref` resolution and validation. Every endpoint needs a bearer token; errors are `{message}`."
    ),
    paths(
        domains::list,
        domains::create,
        domains::read,
        domains::update,
        domains::remove,
        schemas::list,
        schemas::create,
        schemas::import,
        schemas::read,
        schemas::update,
        schemas::remove,
        schemas::validate,
    )
)]
struct MetadataApi;

/// A JSON body, or why it could not be read: handlers check access before looking at it.
type Body = Result<Json<Value>, ApiError>;

fn object_body(body: Body) -> Result<Map<String, Value>, ApiError> {
    match body?.0 {
        Value::Object(obj) => Ok(obj),
        _ => Err(ApiError::bad_request(
            "The request body must be a JSON object",
        )),
    }
}

/// Events are published after the write; a lost event is logged and the request still
/// succeeds (the write is what the caller asked for).
fn log_unpublished(name: &str, result: Result<(), oih_bus::BusError>) {
    if let Err(err) = result {
        tracing::warn!(event = name, error = %err, "event not published");
    }
}

/// `page[size]` / `page[number]` of the request.
fn page_of(query: Option<&str>) -> Result<PageRequest, ApiError> {
    Ok(ListQuery::parse(query)?.page)
}

/// OIH's list envelope; `totalPages` is at least 1 (as OIH's).
fn list_body(data: Vec<Value>, page: &PageRequest, total: u64) -> Value {
    json!({
        "data": data,
        "meta": {
            "page": page.number,
            "perPage": page.size,
            "total": total,
            "totalPages": total.div_ceil(page.size.max(1)).max(1),
        }
    })
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::Archive(e @ ArchiveError::TooLarge(_)) => ApiError::Other {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: e.to_string(),
            },
            WriteError::Archive(e) => ApiError::BadRequest(e.to_string()),
            WriteError::Process(e) => e.into(),
        }
    }
}

impl From<ProcessError> for ApiError {
    fn from(err: ProcessError) -> Self {
        match err {
            ProcessError::Invalid(message) => ApiError::BadRequest(message),
            ProcessError::Store(e) => e.into(),
        }
    }
}
