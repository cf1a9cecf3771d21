//! The executions API (runtime.md §3.10). OIH serves it without authentication to anyone who
//! can reach it; here every request needs a token and sees only the executions of flows the
//! caller can see (the flow's owners or tenant; admins see all). Another tenant's execution
//! is a 404, indistinguishable from an unknown id.

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::get;
use oih_core::Identity;
use oih_http::{ApiError, Auth, Data, ListQuery, Path};
use utoipa::OpenApi as _;

use crate::executions::{Execution, ExecutionStore};

/// The most executions one list answers with (OIH's limit).
const LIST_LIMIT: u64 = 100;

pub fn router(executions: ExecutionStore) -> Router {
    Router::new()
        .route("/executions", get(list))
        .route("/executions/{id}", get(read))
        .with_state(executions)
}

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ExecutionsApi::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "component-orchestrator",
        description = "Flow executions: status, per-step counters and timing. Every endpoint needs a bearer token."
    ),
    paths(list, read)
)]
struct ExecutionsApi;

/// OIH's visibility rule for flows: an owner is the caller or the caller's tenant, or the
/// flow belongs to the caller's tenant.
fn visible(who: &Identity, execution: &Execution) -> bool {
    if who.is_admin() {
        return true;
    }
    let tenant = who.tenant.as_deref();
    execution
        .owners
        .iter()
        .any(|o| o.id == who.sub || Some(o.id.as_str()) == tenant)
        || (tenant.is_some() && execution.tenant.as_deref() == tenant)
}

#[utoipa::path(get, path = "/executions", tag = "executions",
    params(("filter[flowId]" = String, Query, description = "The flow whose executions to list (required)")),
    responses(
        (status = 200, description = "`{data: [Execution]}`, at most 100, newest first"),
        (status = 400, description = "`filter[flowId]` missing"),
        (status = 401, description = "Missing or invalid token"),
    ))]
async fn list(
    State(executions): State<ExecutionStore>,
    Auth(who): Auth,
    uri: Uri,
) -> Result<Data<Vec<Execution>>, ApiError> {
    let query = ListQuery::parse(uri.query())?;
    let flow_id = query
        .filter("flowId")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::bad_request("filter[flowId] is required."))?;
    let found = executions.of_flow(flow_id, LIST_LIMIT).await?;
    let data = found.into_iter().filter(|e| visible(&who, e)).collect();
    Ok(Data::new(data))
}

#[utoipa::path(get, path = "/executions/{id}", tag = "executions",
    params(("id" = String, Path, description = "The execution's flowExecId")),
    responses(
        (status = 200, description = "`{data: Execution}`"),
        (status = 401, description = "Missing or invalid token"),
        (status = 404, description = "Execution not found (or not visible to the caller)"),
    ))]
async fn read(
    State(executions): State<ExecutionStore>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<Data<Execution>, ApiError> {
    match executions.get(&id).await? {
        Some(execution) if visible(&who, &execution) => Ok(Data::new(execution)),
        _ => Err(ApiError::not_found("Execution not found")),
    }
}
