//! The `/flows` routes with OIH's paths, envelopes, messages and permissions
//! (data-services.md §1.5), and the graph-version routes this service adds.
//!
//! Every handler authenticates first (401), then checks the permission (403), then looks at
//! the id and the body (400), then at the flow (404 when it does not exist or the caller may
//! not see it, so another tenant's ids are indistinguishable from unknown ones).

mod control;
mod flows;
mod versions;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, patch, post};
use oih_core::{Identity, ObjectId};
use oih_http::{ApiError, ErrorShape, Json};
use serde_json::{Map, Value};
use utoipa::OpenApi as _;

use crate::Config;
use crate::events::Publisher;
use crate::store::{FlowStore, StoredFlow};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    config: Arc<Config>,
    flows: FlowStore,
    events: Publisher,
}

impl AppState {
    pub fn new(config: Config, flows: FlowStore, events: Publisher) -> Self {
        Self {
            config: Arc::new(config),
            flows,
            events,
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/flows", get(flows::list).post(flows::create))
        .route("/flows/bulk", patch(flows::update_bulk))
        .route("/flows/multiple/start", post(control::start_many))
        .route("/flows/multiple/stop", post(control::stop_many))
        .route(
            "/flows/{id}",
            get(flows::read).patch(flows::update).delete(flows::remove),
        )
        .route("/flows/{id}/start", post(control::start))
        .route("/flows/{id}/stop", post(control::stop))
        .route("/flows/{id}/versions", get(versions::list))
        .route("/flows/{id}/versions/{version}", get(versions::read))
        .with_state(state)
}

/// The service's OpenAPI document, served at `/api-docs/flow-repository/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    FlowApi::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "flow-repository",
        description = "Flows (graphs of component nodes), their start/stop lifecycle and graph versions. Every endpoint needs a bearer token."
    ),
    paths(
        flows::list,
        flows::create,
        flows::update_bulk,
        flows::read,
        flows::update,
        flows::remove,
        control::start,
        control::stop,
        control::start_many,
        control::stop_many,
        versions::list,
        versions::read,
    )
)]
struct FlowApi;

/// A JSON body, or why it could not be read: handlers check permissions before looking at it.
type Body = Result<Json<Value>, ApiError>;

fn invalid_id() -> ApiError {
    ApiError::bad_request("Invalid id")
}

/// A path id in the stored (lowercase) form, or OIH's 400.
fn flow_id(raw: &str) -> Result<String, ApiError> {
    if ObjectId::is_valid(raw) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(invalid_id())
    }
}

fn object_body(body: Body) -> Result<Map<String, Value>, ApiError> {
    match body?.0 {
        Value::Object(obj) => Ok(obj),
        _ => Err(ApiError::bad_request(
            "The request body must be a JSON object",
        )),
    }
}

/// One element of a bulk answer: the result, or its errors as `{errors:[{message, code}]}`.
fn entry(result: Result<Value, ApiError>) -> Value {
    result.unwrap_or_else(|err| error_body(&err))
}

fn error_body(err: &ApiError) -> Value {
    if err.status().is_server_error() {
        tracing::error!(error = %err, "bulk entry failed");
    }
    ErrorShape::Errors.body(&err.report())
}

/// The flow with this path id if the caller may see it, else 400/404.
async fn visible(
    st: &AppState,
    who: &Identity,
    raw_id: &str,
    not_found: &str,
) -> Result<StoredFlow, ApiError> {
    let id = flow_id(raw_id)?;
    st.flows
        .get_visible(&id, who)
        .await?
        .ok_or_else(|| ApiError::not_found(not_found))
}
