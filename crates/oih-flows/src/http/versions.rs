//! Graph versions (beyond OIH): `GET /flows/{id}/versions` and `/flows/{id}/versions/{n}`.
//! They outlive their flow, so an execution can still resolve the graph it ran: once the flow
//! is deleted they are readable by whoever could read it when it was deleted.

use axum::extract::State;
use axum::http::Uri;
use oih_core::Identity;
use oih_http::{ApiError, Auth, DataMeta, ListQuery, Page, Path, require};
use serde_json::Value;

use super::{AppState, flow_id};

/// The id of a flow whose versions `who` may read: a live flow they see, or a deleted flow
/// they could see; else 400 (malformed id) or 404 (as for an unknown flow).
async fn readable_flow(st: &AppState, who: &Identity, raw_id: &str) -> Result<String, ApiError> {
    let id = flow_id(raw_id)?;
    let found = match st.flows.get(&id).await? {
        Some(flow) => Some(flow).filter(|f| f.visible_to(who)),
        None => st.flows.get_deleted_visible(&id, who).await?,
    };
    found
        .map(|f| f.id().to_owned())
        .ok_or_else(|| ApiError::not_found("No flow found"))
}

/// `GET /flows/{id}/versions`: the flow's graphs, oldest first, paged like `GET /flows`; also
/// after the flow was deleted.
#[utoipa::path(get, path = "/flows/{id}/versions", tag = "flows",
    params(
        ("id" = String, Path, description = "Flow id (also of a deleted flow)"),
        ("page[size]" = Option<u64>, Query, description = "Page size (default 10)"),
        ("page[number]" = Option<u64>, Query, description = "Page number, from 1"),
    ),
    responses(
        (status = 200, description = "`{data: [{flowId, version, graph, createdBy, createdAt}], meta: {page, perPage, total, totalPages}}` (needs `flows.read`)"),
        (status = 400, description = "Invalid id, or invalid page parameter"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
        (status = 404, description = "No flow found (unknown, or not the caller's)"),
    ))]
pub(super) async fn list(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Page<Value>, ApiError> {
    require(&who, &[&st.config.flow_read_permission])?;
    let query = ListQuery::parse(uri.query())?;
    let flow_id = readable_flow(&st, &who, &id).await?;
    let listed = st
        .flows
        .versions(&flow_id, query.page.skip(), query.page.limit())
        .await?;
    Ok(Page::new(listed.items, &query.page, listed.total))
}

/// `GET /flows/{id}/versions/{version}`.
#[utoipa::path(get, path = "/flows/{id}/versions/{version}", tag = "flows",
    params(
        ("id" = String, Path, description = "Flow id (also of a deleted flow)"),
        ("version" = u64, Path, description = "Version number, from 1"),
    ),
    responses(
        (status = 200, description = "`{data: {flowId, version, graph, createdBy, createdAt}, meta: {}}` (needs `flows.read`)"),
        (status = 400, description = "Invalid id or version"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
        (status = 404, description = "No flow found, or no flow version found"),
    ))]
pub(super) async fn read(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path((id, number)): Path<(String, String)>,
) -> Result<DataMeta<Value>, ApiError> {
    require(&who, &[&st.config.flow_read_permission])?;
    let flow_id = readable_flow(&st, &who, &id).await?;
    let number = number
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::bad_request("Invalid version"))?;
    st.flows
        .version(&flow_id, number)
        .await?
        .map(DataMeta::new)
        .ok_or_else(|| ApiError::not_found("No flow version found"))
}
