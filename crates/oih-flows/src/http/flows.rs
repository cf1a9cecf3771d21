//! Flow CRUD: `GET/POST /flows`, `PATCH /flows/bulk`, `GET/PATCH/DELETE /flows/{id}`.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use oih_core::{Identity, ObjectId};
use oih_http::pagination::Sort;
use oih_http::{ApiError, Auth, DataMeta, ListQuery, Page, Path, require};
use oih_store::{Filter, FindOptions, SortOrder, StoreError};
use serde_json::{Map, Value, json};

use super::{AppState, Body, entry, flow_id, invalid_id, object_body, visible};
use crate::events::{FLOW_CREATED, FLOW_DELETED, FLOW_MODIFIED};
use crate::model::{self, STATUS_ACTIVE, STATUS_INACTIVE};
use crate::store::{StoredFlow, owned_by, visibility};

/// `GET /flows`: the caller's flows, filtered, searched, sorted and paged.
#[utoipa::path(get, path = "/flows", tag = "flows",
    params(
        ("page[size]" = Option<u64>, Query, description = "Page size (default 10)"),
        ("page[number]" = Option<u64>, Query, description = "Page number, from 1"),
        ("filter[status]" = Option<String>, Query, description = "`active`/`1` or `inactive`/`0`"),
        ("filter[type]" = Option<String>, Query, description = "`ordinary` or `long_running`"),
        ("filter[user]" = Option<String>, Query, description = "Only flows this owner id owns (within the caller's view)"),
        ("filter[fromTemplate]" = Option<String>, Query, description = "Template id the flow was generated from"),
        ("sort" = Option<String>, Query, description = "`createdAt`, `updatedAt` or `name`; prefix `-` for descending"),
        ("search" = Option<String>, Query, description = "Text searched in name and description"),
    ),
    responses(
        (status = 200, description = "`{data: [Flow], meta: {page, perPage, total, totalPages}}` (needs `flows.read`)"),
        (status = 400, description = "Invalid filter, sort or page parameter"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
    ))]
pub(super) async fn list(
    State(st): State<AppState>,
    Auth(who): Auth,
    uri: Uri,
) -> Result<Page<Value>, ApiError> {
    require(&who, &[&st.config.flow_read_permission])?;
    let query = ListQuery::parse(uri.query())?;
    let mut filters = vec![visibility(&who)];
    if let Some(status) = query.filter("status") {
        let status = match status {
            "1" | STATUS_ACTIVE => STATUS_ACTIVE,
            "0" | STATUS_INACTIVE => STATUS_INACTIVE,
            _ => return Err(ApiError::bad_request("Invalid filter[status] parameter")),
        };
        filters.push(Filter::eq("status", status));
    }
    if let Some(kind) = query.filter("type") {
        if !matches!(kind, "ordinary" | "long_running") {
            return Err(ApiError::bad_request("Invalid filter[type] parameter"));
        }
        filters.push(Filter::eq("type", kind));
    }
    // Narrows the caller's own view; unlike OIH it never widens it to other users' flows.
    if let Some(user) = query.filter("user") {
        filters.push(owned_by(user));
    }
    if let Some(template) = query.filter("fromTemplate") {
        if !ObjectId::is_valid(template) {
            return Err(ApiError::bad_request(
                "Invalid filter[fromTemplate] parameter",
            ));
        }
        filters.push(Filter::eq("fromTemplate", template.to_ascii_lowercase()));
    }
    let sort = query.sort_by(&["createdAt", "updatedAt", "name"], Sort::asc("createdAt"))?;
    if let Some(search) = query.search.as_deref().map(sanitize_search)
        && !search.is_empty()
    {
        filters.push(Filter::or([
            Filter::ContainsText("name".into(), search.clone()),
            Filter::ContainsText("description".into(), search),
        ]));
    }
    let sort_path = match sort.field.as_str() {
        "createdAt" => "_createdAt".to_owned(),
        "updatedAt" => "_updatedAt".to_owned(),
        other => other.to_owned(),
    };
    let order = match sort.order {
        oih_http::SortOrder::Asc => SortOrder::Asc,
        oih_http::SortOrder::Desc => SortOrder::Desc,
    };
    let opts = FindOptions {
        sort: vec![(sort_path, order)],
        skip: query.page.skip(),
        limit: Some(query.page.limit()),
    };
    let listed = st.flows.list(&Filter::and(filters), &opts).await?;
    let data = listed.items.iter().map(StoredFlow::to_json).collect();
    Ok(Page::new(data, &query.page, listed.total))
}

/// OIH keeps letters, digits, `-`, `_` and whitespace, then trims leading whitespace and one
/// trailing whitespace character.
fn sanitize_search(raw: &str) -> String {
    let kept: String = raw
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_') || c.is_whitespace())
        .collect();
    let trimmed = kept.trim_start();
    let mut out = trimmed.to_owned();
    if out.ends_with(char::is_whitespace) {
        out.pop();
    }
    out
}

/// `POST /flows`: one flow, or (with the bulk permission) an array of them.
#[utoipa::path(post, path = "/flows", tag = "flows",
    request_body(content = Object, description = "A flow, or an array of flows (bulk create, needs `flows.bulk`)"),
    responses(
        (status = 201, description = "`{data: Flow, meta: {}}`; for an array `{data: [Flow | {errors}], meta: {}}` (needs `flows.write`)"),
        (status = 400, description = "`{errors: [{message, code, field}]}`, one entry per failed rule"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`, or no permission for bulk operations"),
    ))]
pub(super) async fn create(
    State(st): State<AppState>,
    Auth(who): Auth,
    body: Body,
) -> Result<Response, ApiError> {
    require(&who, &[&st.config.flow_write_permission])?;
    match body?.0 {
        Value::Object(flow) => {
            let flow = create_one(&st, &who, flow).await?;
            Ok((StatusCode::CREATED, DataMeta::new(flow.to_json())).into_response())
        }
        Value::Array(flows) => {
            let allowed =
                who.is_admin() || who.is_tenant_admin() || who.has(&st.config.flow_bulk_permission);
            if !allowed {
                return Err(ApiError::forbidden(
                    "User is missing permission for bulk operations",
                ));
            }
            let mut results = Vec::with_capacity(flows.len());
            for flow in flows {
                let result = match flow {
                    Value::Object(flow) => create_one(&st, &who, flow).await,
                    _ => Err(ApiError::bad_request("Each flow must be a JSON object")),
                };
                results.push(entry(result.map(|f| f.to_json())));
            }
            Ok((StatusCode::CREATED, DataMeta::new(results)).into_response())
        }
        _ => Err(ApiError::bad_request(
            "The request body must be a flow object or an array of flows",
        )),
    }
}

async fn create_one(
    st: &AppState,
    who: &Identity,
    mut flow: Map<String, Value>,
) -> Result<StoredFlow, ApiError> {
    ensure_owner(&mut flow, &who.sub, "user");
    if let Some(tenant) = &who.tenant {
        ensure_owner(&mut flow, tenant, "tenant");
    }
    keep_tenant(&mut flow, who, who.tenant.as_deref());
    let body = model::validate(&flow).map_err(ApiError::Validation)?;
    let created = st.flows.create(body, &who.sub).await?;
    st.events
        .audit(FLOW_CREATED, who.tenant.as_deref(), &who.sub, created.id())
        .await?;
    Ok(created)
}

/// Adds `{id, type}` to the owners unless an owner with that id (and, for tenants, that type)
/// is there, as OIH does on create and update. A non-array `owners` is left for validation.
fn ensure_owner(flow: &mut Map<String, Value>, id: &str, kind: &str) {
    let owners = flow
        .entry("owners")
        .or_insert_with(|| Value::Array(Vec::new()));
    if owners.is_null() {
        *owners = Value::Array(Vec::new());
    }
    let Value::Array(owners) = owners else { return };
    let present = owners.iter().any(|o| {
        o.get("id").and_then(Value::as_str) == Some(id)
            && (kind == "user" || o.get("type").and_then(Value::as_str) == Some(kind))
    });
    if !present {
        owners.push(json!({"id": id, "type": kind}));
    }
}

/// Only admins choose a flow's `tenant`; for anyone else it is `tenant` (their own on create,
/// the stored one on update).
fn keep_tenant(flow: &mut Map<String, Value>, who: &Identity, tenant: Option<&str>) {
    if who.is_admin() {
        return;
    }
    match tenant {
        Some(tenant) => flow.insert("tenant".into(), Value::String(tenant.into())),
        None => flow.remove("tenant"),
    };
}

/// `GET /flows/{id}`.
#[utoipa::path(get, path = "/flows/{id}", tag = "flows",
    params(("id" = String, Path, description = "Flow id")),
    responses(
        (status = 200, description = "`{data: Flow, meta: {}}` (needs `flows.read`)"),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "No flow found"),
    ))]
pub(super) async fn read(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<DataMeta<Value>, ApiError> {
    require(&who, &[&st.config.flow_read_permission])?;
    let flow = visible(&st, &who, &id, "No flow found").await?;
    Ok(DataMeta::new(flow.to_json()))
}

/// `PATCH /flows/{id}`: top-level fields of the body replace the flow's; inactive flows only.
#[utoipa::path(patch, path = "/flows/{id}", tag = "flows",
    params(("id" = String, Path, description = "Flow id")),
    request_body(content = Object, description = "Top-level flow fields to replace"),
    responses(
        (status = 200, description = "`{data: Flow, meta: {}}` (needs `flows.write`)"),
        (status = 400, description = "Invalid id, or `{errors: [...]}` per failed rule"),
        (status = 404, description = "Flow not found"),
        (status = 409, description = "Flow is not inactive"),
    ))]
pub(super) async fn update(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<DataMeta<Value>, ApiError> {
    require(&who, &[&st.config.flow_write_permission])?;
    let id = flow_id(&id)?;
    let changes = object_body(body)?;
    let current = editable(&st, &who, &id, Messages::Single).await?;
    let updated = update_one(&st, &who, &current, changes).await?;
    Ok(DataMeta::new(updated.to_json()))
}

/// How the single and the bulk endpoints word their 404 and 409 (OIH's texts differ).
#[derive(Clone, Copy)]
enum Messages {
    Single,
    Bulk,
}

/// The flow, if the caller may see it and it is inactive (OIH edits only inactive flows).
async fn editable(
    st: &AppState,
    who: &Identity,
    id: &str,
    messages: Messages,
) -> Result<StoredFlow, ApiError> {
    let flow = st.flows.get_visible(id, who).await?.ok_or_else(|| {
        ApiError::not_found(match messages {
            Messages::Single => "Flow not found".to_owned(),
            Messages::Bulk => format!("Flow {id} not found"),
        })
    })?;
    if flow.status() != STATUS_INACTIVE {
        let status = flow.status();
        return Err(ApiError::conflict(match messages {
            Messages::Single => format!("Flow is not inactive. Current status: {status}"),
            Messages::Bulk => format!("Flow {id} is not inactive. Current status: {status}"),
        }));
    }
    Ok(flow)
}

async fn update_one(
    st: &AppState,
    who: &Identity,
    current: &StoredFlow,
    changes: Map<String, Value>,
) -> Result<StoredFlow, ApiError> {
    let mut merged = current.body().clone();
    merged.extend(changes);
    keep_tenant(&mut merged, who, current.tenant());
    // OIH re-adds the editor as a user owner (not their tenant) on every update.
    ensure_owner(&mut merged, &who.sub, "user");
    let body = model::validate(&merged).map_err(ApiError::Validation)?;
    let updated = st.flows.replace(current, body, &who.sub).await?;
    st.events
        .audit(FLOW_MODIFIED, who.tenant.as_deref(), &who.sub, updated.id())
        .await?;
    Ok(updated)
}

/// `PATCH /flows/bulk`: an array of partial flows, each with its `id`.
#[utoipa::path(patch, path = "/flows/bulk", tag = "flows",
    request_body(content = Object, description = "An array of partial flows, each with its `id`"),
    responses(
        (status = 200, description = "`{data: [Flow | {errors}], meta: {}}` (needs `flows.bulk`)"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
    ))]
pub(super) async fn update_bulk(
    State(st): State<AppState>,
    Auth(who): Auth,
    body: Body,
) -> Result<DataMeta<Vec<Value>>, ApiError> {
    require(&who, &[&st.config.flow_bulk_permission])?;
    let items = match body?.0 {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        results.push(entry(update_bulk_one(&st, &who, item).await));
    }
    Ok(DataMeta::new(results))
}

async fn update_bulk_one(st: &AppState, who: &Identity, item: Value) -> Result<Value, ApiError> {
    let Value::Object(changes) = item else {
        return Err(ApiError::bad_request("Each flow must be a JSON object"));
    };
    let id = changes
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(invalid_id)
        .and_then(flow_id)?;
    let current = editable(st, who, &id, Messages::Bulk).await?;
    Ok(update_one(st, who, &current, changes).await?.to_json())
}

/// `DELETE /flows/{id}`: inactive flows only; answers OIH's `{msg}`.
#[utoipa::path(delete, path = "/flows/{id}", tag = "flows",
    params(("id" = String, Path, description = "Flow id")),
    responses(
        (status = 200, description = "`{msg: \"Flow was successfully deleted\"}` (needs `flows.write`)"),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "Flow not found"),
        (status = 409, description = "Flow is not inactive"),
    ))]
pub(super) async fn remove(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&who, &[&st.config.flow_write_permission])?;
    let id = flow_id(&id)?;
    let flow = editable(&st, &who, &id, Messages::Single).await?;
    match st.flows.delete(&flow).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(ApiError::not_found("Flow not found")),
        Err(err) => return Err(err.into()),
    }
    st.events
        .audit(FLOW_DELETED, who.tenant.as_deref(), &who.sub, flow.id())
        .await?;
    Ok(axum::Json(json!({"msg": "Flow was successfully deleted"})).into_response())
}

#[cfg(test)]
mod tests {
    use super::sanitize_search;

    #[test]
    fn search_is_sanitized_like_oih() {
        assert_eq!(sanitize_search("  desc$%^ "), "desc");
        assert_eq!(sanitize_search("a-b_c  "), "a-b_c ");
        assert_eq!(sanitize_search("Fluß"), "Fluß");
    }
}
