//! Graph versions (beyond OIH): `GET /flows/{id}/versions` and `/flows/{id}/versions/{n}`.

use axum::extract::State;
use axum::http::Uri;
use oih_http::{ApiError, Auth, DataMeta, ListQuery, Page, Path, require};
use serde_json::Value;

use super::{AppState, visible};

/// `GET /flows/{id}/versions`: the flow's graphs, oldest first, paged like `GET /flows`.
#[utoipa::path(get, path = "/flows/{id}/versions", tag = "flows",
    params(
        ("id" = String, Path, description = "Flow id"),
        ("page[size]" = Option<u64>, Query, description = "Page size (default 10)"),
        ("page[number]" = Option<u64>, Query, description = "Page number, from 1"),
    ),
    responses(
        (status = 200, description = "`{data: [{flowId, version, graph, createdBy, createdAt}], meta: {page, perPage, total, totalPages}}` (needs `flows.read`)"),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "No flow found"),
    ))]
pub(super) async fn list(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Page<Value>, ApiError> {
    require(&who, &[&st.config.flow_read_permission])?;
    let query = ListQuery::parse(uri.query())?;
    let flow = visible(&st, &who, &id, "No flow found").await?;
    let listed = st
        .flows
        .versions(flow.id(), query.page.skip(), query.page.limit())
        .await?;
    Ok(Page::new(listed.items, &query.page, listed.total))
}

/// `GET /flows/{id}/versions/{version}`.
#[utoipa::path(get, path = "/flows/{id}/versions/{version}", tag = "flows",
    params(
        ("id" = String, Path, description = "Flow id"),
        ("version" = u64, Path, description = "Version number, from 1"),
    ),
    responses(
        (status = 200, description = "`{data: {flowId, version, graph, createdBy, createdAt}, meta: {}}` (needs `flows.read`)"),
        (status = 400, description = "Invalid id or version"),
        (status = 404, description = "No flow found, or no flow version found"),
    ))]
pub(super) async fn read(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path((id, number)): Path<(String, String)>,
) -> Result<DataMeta<Value>, ApiError> {
    require(&who, &[&st.config.flow_read_permission])?;
    let flow = visible(&st, &who, &id, "No flow found").await?;
    let number = number
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::bad_request("Invalid version"))?;
    st.flows
        .version(flow.id(), number)
        .await?
        .map(DataMeta::new)
        .ok_or_else(|| ApiError::not_found("No flow version found"))
}
