//! `/snapshots` with OIH's paths, bodies and error shape (runtime.md §7).
//!
//! Every route authenticates first (401). Unlike OIH, a caller only reaches the snapshots of
//! flows they started, or of their tenant when they are its admin (`tenant.all`); admins
//! (`all`) reach all. A snapshot the caller may not see is answered exactly like a missing one
//! (`{"data": {}}`, an empty list, a 204 that deletes nothing), so its existence does not leak.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::{delete, get};
use oih_http::{ApiError, Auth, Json, Path, StepAuth};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::OpenApi as _;

use crate::model::render;
use crate::store::{SnapshotStore, visibility};

#[derive(Clone)]
pub struct AppState {
    store: SnapshotStore,
}

impl AppState {
    pub fn new(store: SnapshotStore) -> Self {
        Self { store }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/snapshots", delete(delete_execution))
        .route("/snapshots/flows/{flowId}/steps", get(list))
        .route(
            "/snapshots/flows/{flowId}/steps/{stepId}",
            get(read).delete(remove),
        )
        .with_state(state)
}

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    SnapshotsApi::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "snapshots-service",
        description = "The state flow steps keep between messages: one snapshot per flow, step and execution (none: the step's persistent one). Every endpoint needs a bearer token; callers see the snapshots of flows they started (tenant admins: of their tenant; admins: all)."
    ),
    paths(list, read, remove, delete_execution)
)]
struct SnapshotsApi;

#[derive(Debug, Deserialize)]
struct ExecutionParam {
    #[serde(rename = "flowExecId")]
    flow_exec_id: Option<String>,
}

/// `flowExecId` from the query string: absent is None, empty is refused.
fn flow_exec_id(uri: &Uri) -> Result<Option<String>, ApiError> {
    let axum::extract::Query(param) = axum::extract::Query::<ExecutionParam>::try_from_uri(uri)?;
    match param.flow_exec_id {
        Some(id) if id.is_empty() => Err(ApiError::bad_request(
            "Query parameter flowExecId must not be empty",
        )),
        other => Ok(other),
    }
}

/// `GET /snapshots/flows/{flowId}/steps`: the flow's snapshots, of one execution when asked.
#[utoipa::path(get, path = "/snapshots/flows/{flowId}/steps", tag = "snapshots",
    params(
        ("flowId" = String, Path, description = "Flow id"),
        ("flowExecId" = Option<String>, Query, description = "Only this execution's snapshots (absent: every snapshot of the flow, persistent ones included)"),
    ),
    responses(
        (status = 200, description = "`{data: [{id, snapshot, flowId, stepId, flowExecId?}]}`, by step id"),
        (status = 400, description = "Empty or repeated `flowExecId`"),
        (status = 401, description = "Missing or invalid token"),
    ))]
async fn list(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(flow_id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let exec = flow_exec_id(&uri)?;
    let docs = st
        .store
        .list(&flow_id, exec.as_deref(), visibility(&who))
        .await?;
    let data: Vec<Value> = docs.iter().map(render).collect();
    Ok(Json(json!({ "data": data })))
}

/// `GET /snapshots/flows/{flowId}/steps/{stepId}`: what a step starts from. A step token
/// reads its own step's snapshot only (another's answers as if there were none).
#[utoipa::path(get, path = "/snapshots/flows/{flowId}/steps/{stepId}", tag = "snapshots",
    params(
        ("flowId" = String, Path, description = "Flow id"),
        ("stepId" = String, Path, description = "Step (graph node) id"),
    ),
    responses(
        (status = 200, description = "`{data: <snapshot>}`: the step's most recently written snapshot, of any execution; `{data: {}}` when there is none"),
        (status = 401, description = "Missing or invalid token"),
    ))]
async fn read(
    State(st): State<AppState>,
    StepAuth(who): StepAuth,
    Path((flow_id, step_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if who
        .step
        .as_ref()
        .is_some_and(|s| s.flow_id != flow_id || s.step_id != step_id)
    {
        return Ok(Json(json!({ "data": {} })));
    }
    let newest = st
        .store
        .newest(&flow_id, &step_id, visibility(&who))
        .await?;
    let snapshot = newest
        .and_then(|doc| doc.body.get("snapshot").cloned())
        .unwrap_or_else(|| json!({}));
    Ok(Json(json!({ "data": snapshot })))
}

/// `DELETE /snapshots/flows/{flowId}/steps/{stepId}`: deletes the snapshot `GET` answers with.
#[utoipa::path(delete, path = "/snapshots/flows/{flowId}/steps/{stepId}", tag = "snapshots",
    params(
        ("flowId" = String, Path, description = "Flow id"),
        ("stepId" = String, Path, description = "Step (graph node) id"),
    ),
    responses(
        (status = 204, description = "Deleted, or there was nothing to delete"),
        (status = 401, description = "Missing or invalid token"),
    ))]
async fn remove(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path((flow_id, step_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if let Some(doc) = st
        .store
        .newest(&flow_id, &step_id, visibility(&who))
        .await?
    {
        st.store.delete(&doc.id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /snapshots?flowExecId=`: deletes an execution's snapshots (admins only).
#[utoipa::path(delete, path = "/snapshots", tag = "snapshots",
    params(
        ("flowExecId" = String, Query, description = "The execution"),
    ),
    responses(
        (status = 204, description = "Deleted (also when there were none)"),
        (status = 400, description = "`flowExecId` missing or empty"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`Forbidden`: the caller is not an admin (`all`)"),
    ))]
async fn delete_execution(
    State(st): State<AppState>,
    Auth(who): Auth,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    if !who.is_admin() {
        return Err(ApiError::forbidden("Forbidden"));
    }
    let exec = flow_exec_id(&uri)?
        .ok_or_else(|| ApiError::bad_request("Query parameter flowExecId is required"))?;
    st.store.purge_execution(&exec).await?;
    Ok(StatusCode::NO_CONTENT)
}
