//! `/logs` with OIH's paths, permissions, query parameters and envelopes (data-services.md
//! §4.3), and `/logs/verify` and `/logs/retention`, which OIH does not have.
//!
//! Each handler authenticates (401), checks the permission (403), then reads its input (400).
//! Who sees what: an admin (`all`) every entry; anyone else the entries of their tenant's
//! chain and those naming them as `payload.user`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oih_core::Identity;
use oih_core::identity::PERMISSION_ALL;
use oih_http::{ApiError, Auth, Json, ListQuery, Page, Path, require};
use oih_store::Filter;
use serde_json::{Value, json};
use utoipa::OpenApi as _;

use crate::Config;
use crate::model::{self, NewEntry};
use crate::retention::{Override, Policy};
use crate::store::{Appended, LogStore, new_id};

#[derive(Clone)]
pub struct AppState {
    config: Arc<Config>,
    logs: LogStore,
}

impl AppState {
    pub fn new(config: Config, logs: LogStore) -> Self {
        Self {
            config: Arc::new(config),
            logs,
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/logs", get(list).post(push))
        .route("/logs/verify", get(verify))
        .route("/logs/retention", get(list_retention))
        .route(
            "/logs/retention/{tenant_id}",
            get(get_retention)
                .put(put_retention)
                .delete(delete_retention),
        )
        .with_state(state)
}

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    AuditApi::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "audit-log",
        description = "Audit entries recorded from the event bus and pushed over HTTP, hash-chained per tenant. Every endpoint needs a bearer token."
    ),
    paths(
        list,
        push,
        verify,
        list_retention,
        get_retention,
        put_retention,
        delete_retention
    )
)]
struct AuditApi;

/// `GET /logs`: the entries the caller may see, filtered, newest first, paged.
#[utoipa::path(get, path = "/logs", tag = "logs",
    params(
        ("page[size]" = Option<u64>, Query, description = "Page size (default 10)"),
        ("page[number]" = Option<u64>, Query, description = "Page number, from 1"),
        ("filter[service]" = Option<String>, Query, description = "Publishing service (`headers.serviceName`)"),
        ("filter[name]" = Option<String>, Query, description = "Event name (`headers.name`)"),
        ("filter[key]" = Option<String>, Query, description = "Any other key: `payload.<key>` equals the value"),
    ),
    responses(
        (status = 200, description = "`{data: [Log], meta: {page, perPage, total, totalPages}}`; `total` counts the matching entries (needs `logs.read`)"),
        (status = 400, description = "Invalid page or filter parameter"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
    ))]
async fn list(
    State(st): State<AppState>,
    Auth(who): Auth,
    uri: Uri,
) -> Result<Page<Value>, ApiError> {
    require(&who, &[&st.config.log_read_permission])?;
    let query = ListQuery::parse(uri.query())?;
    let mut filters: Vec<Filter> = visibility(&who).into_iter().collect();
    for (key, value) in &query.filters {
        let path = match key.as_str() {
            "service" => "headers.serviceName".to_owned(),
            "name" => "headers.name".to_owned(),
            other if valid_key(other) => format!("payload.{other}"),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Invalid filter[{key}] parameter"
                )));
            }
        };
        filters.push(matches_text(&path, value));
    }
    let (items, total) = st
        .logs
        .list(&Filter::and(filters), query.page.skip(), query.page.limit())
        .await?;
    let data = items
        .iter()
        .map(|d| model::render(&d.id, &d.body))
        .collect();
    Ok(Page::new(data, &query.page, total))
}

/// `POST /logs`: appends one entry to its tenant's chain.
#[utoipa::path(post, path = "/logs", tag = "logs",
    request_body(content = Object, description = "`{headers: {name, serviceName, createdAt?}, payload?}`"),
    responses(
        (status = 201, description = "The stored entry `{_id, headers, payload, chain}` (needs `logs.push`)"),
        (status = 400, description = "`{errors: [{message, code, field}]}`, one entry per failed rule"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`, or an entry for another tenant"),
    ))]
async fn push(
    State(st): State<AppState>,
    Auth(who): Auth,
    body: Result<Json<Value>, ApiError>,
) -> Result<Response, ApiError> {
    require(&who, &[&st.config.log_push_permission])?;
    let Json(body) = body?;
    let mut entry = NewEntry::from_body(&body).map_err(ApiError::Validation)?;
    own_tenant(&who, &mut entry)?;
    match st.logs.append(&new_id(), &entry).await? {
        Appended::Added(doc) => {
            Ok((StatusCode::CREATED, Json(model::render(&doc.id, &doc.body))).into_response())
        }
        // A fresh id cannot exist already.
        Appended::AlreadyRecorded => Err(ApiError::internal("fresh entry id already used")),
    }
}

/// `GET /logs/verify`: recomputes the caller's chains and names the first broken entry.
#[utoipa::path(get, path = "/logs/verify", tag = "logs",
    params(
        ("filter[tenant]" = Option<String>, Query, description = "Only this tenant's chain (empty: the chain of entries without tenant; admins only)"),
    ),
    responses(
        (status = 200, description = "`{data: [{tenant, valid, entries, head: {seq, hash}, firstBroken: {_id, seq, reason} | null}], meta: {total, valid}}` (needs `logs.read`); non-admins get their tenant's chain"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
    ))]
async fn verify(
    State(st): State<AppState>,
    Auth(who): Auth,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    require(&who, &[&st.config.log_read_permission])?;
    let query = ListQuery::parse(uri.query())?;
    let asked = query.filter("tenant");
    let tenants: Vec<String> = if who.is_admin() {
        match asked {
            Some(t) => vec![t.to_owned()],
            None => st
                .logs
                .heads()
                .await?
                .into_iter()
                .map(|h| h.tenant)
                .collect(),
        }
    } else {
        // Only the caller's own tenant chain; asking for another one yields nothing.
        who.tenant
            .iter()
            .filter(|own| asked.is_none_or(|t| t == own.as_str()))
            .cloned()
            .collect()
    };
    let mut reports = Vec::new();
    for tenant in tenants {
        if let Some(report) = st.logs.verify(&tenant).await? {
            reports.push(report);
        }
    }
    let valid = reports.iter().all(|r| r.broken.is_none());
    let total = reports.len();
    let data: Vec<Value> = reports.iter().map(|r| r.to_json()).collect();
    Ok(Json(
        json!({"data": data, "meta": {"total": total, "valid": valid}}),
    ))
}

/// Longest accepted tenant id in `/logs/retention/{tenantId}`.
const MAX_TENANT_LEN: usize = 256;

/// `GET /logs/retention`: the default limits and every tenant's override.
#[utoipa::path(get, path = "/logs/retention", tag = "retention",
    responses(
        (status = 200, description = "`{data: {defaults: {maxAgeSecs, maxEntries}, intervalSecs, tenants: [TenantRetention]}}`; `null` is no limit (needs `all`)"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
    ))]
async fn list_retention(
    State(st): State<AppState>,
    Auth(who): Auth,
) -> Result<Json<Value>, ApiError> {
    require(&who, &[PERMISSION_ALL])?;
    let defaults = st.config.retention();
    let tenants: Vec<Value> = st
        .logs
        .overrides()
        .await?
        .iter()
        .map(|(tenant, limits)| tenant_retention(tenant, Some(limits), defaults))
        .collect();
    Ok(Json(json!({"data": {
        "defaults": defaults.to_json(),
        "intervalSecs": st.config.audit_retention_interval_secs.max(1),
        "tenants": tenants,
    }})))
}

/// `GET /logs/retention/{tenantId}`: the limits a tenant's chain is held to.
#[utoipa::path(get, path = "/logs/retention/{tenantId}", tag = "retention",
    params(("tenantId" = String, Path, description = "The tenant (its chain is the entries whose `payload.tenant` it is)")),
    responses(
        (status = 200, description = "`{data: TenantRetention}`: `{tenantId, maxAgeSecs?, maxEntries?, effective: {maxAgeSecs, maxEntries}}`; the override's limits are present only when set (needs `all`)"),
        (status = 400, description = "Invalid tenant id"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
    ))]
async fn get_retention(
    State(st): State<AppState>,
    Auth(who): Auth,
    tenant: Result<Path<String>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    require(&who, &[PERMISSION_ALL])?;
    let tenant = tenant_id(tenant)?;
    let limits = st.logs.override_for(&tenant).await?;
    Ok(Json(json!({
        "data": tenant_retention(&tenant, limits.as_ref(), st.config.retention())
    })))
}

/// `PUT /logs/retention/{tenantId}`: sets (replaces) a tenant's override; the next retention
/// round applies it.
#[utoipa::path(put, path = "/logs/retention/{tenantId}", tag = "retention",
    params(("tenantId" = String, Path, description = "The tenant")),
    request_body(content = Object, description = "`{maxAgeSecs?, maxEntries?}`: a positive integer replaces the default limit, `null` lifts it for this tenant, an absent one keeps the default; at least one, nothing else"),
    responses(
        (status = 200, description = "`{data: TenantRetention}` (needs `all`)"),
        (status = 400, description = "`{errors: [{message, code, field}]}`, one entry per failed rule; or an invalid tenant id"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
    ))]
async fn put_retention(
    State(st): State<AppState>,
    Auth(who): Auth,
    tenant: Result<Path<String>, ApiError>,
    body: Result<Json<Value>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    require(&who, &[PERMISSION_ALL])?;
    let tenant = tenant_id(tenant)?;
    let Json(body) = body?;
    let limits = Override::from_body(&body).map_err(ApiError::Validation)?;
    st.logs.set_override(&tenant, &limits).await?;
    tracing::info!(%tenant, limits = %limits.to_json(), by = %who.sub, "audit retention override set");
    Ok(Json(json!({
        "data": tenant_retention(&tenant, Some(&limits), st.config.retention())
    })))
}

/// `DELETE /logs/retention/{tenantId}`: the tenant's chain goes back to the default limits.
#[utoipa::path(delete, path = "/logs/retention/{tenantId}", tag = "retention",
    params(("tenantId" = String, Path, description = "The tenant")),
    responses(
        (status = 204, description = "Override removed (needs `all`)"),
        (status = 400, description = "Invalid tenant id"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "`MISSING_PERMISSION`"),
        (status = 404, description = "The tenant has no override"),
    ))]
async fn delete_retention(
    State(st): State<AppState>,
    Auth(who): Auth,
    tenant: Result<Path<String>, ApiError>,
) -> Result<StatusCode, ApiError> {
    require(&who, &[PERMISSION_ALL])?;
    let tenant = tenant_id(tenant)?;
    if st.logs.remove_override(&tenant).await? {
        tracing::info!(%tenant, by = %who.sub, "audit retention override removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "No retention override for tenant {tenant}"
        )))
    }
}

/// The path's tenant id, checked after the permission (a caller without it learns nothing).
fn tenant_id(path: Result<Path<String>, ApiError>) -> Result<String, ApiError> {
    let Path(tenant) = path?;
    if tenant.trim().is_empty()
        || tenant.chars().count() > MAX_TENANT_LEN
        || tenant.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(format!(
            "tenantId must be 1 to {MAX_TENANT_LEN} characters without control characters"
        )));
    }
    Ok(tenant)
}

/// `{tenantId, maxAgeSecs?, maxEntries?, effective}`: the override as set and what applies.
fn tenant_retention(tenant: &str, limits: Option<&Override>, defaults: Policy) -> Value {
    let mut view = limits.map_or_else(|| json!({}), Override::to_json);
    let effective = limits.map_or(defaults, |l| l.apply(defaults));
    view["tenantId"] = json!(tenant);
    view["effective"] = effective.to_json();
    view
}

/// Non-admins see their tenant's chain and entries naming them; admins everything. Unlike
/// OIH, a caller without tenant does not see every tenant-less entry.
fn visibility(who: &Identity) -> Option<Filter> {
    if who.is_admin() {
        return None;
    }
    let mut any = vec![Filter::eq("payload.user", who.sub.as_str())];
    if let Some(tenant) = who.tenant.as_deref().filter(|t| !t.is_empty()) {
        any.push(Filter::eq("chain.tenant", tenant));
    }
    Some(Filter::or(any))
}

/// A non-admin pushes into their own tenant's chain only: a missing `payload.tenant` becomes
/// theirs, another one is refused.
fn own_tenant(who: &Identity, entry: &mut NewEntry) -> Result<(), ApiError> {
    if who.is_admin() {
        return Ok(());
    }
    let own = who.tenant.as_deref().filter(|t| !t.is_empty());
    match (entry.payload.get("tenant"), own) {
        (None, Some(own)) => {
            entry.payload.insert("tenant".into(), json!(own));
            Ok(())
        }
        (None, None) => Ok(()),
        (Some(Value::String(t)), Some(own)) if t == own => Ok(()),
        _ => Err(ApiError::forbidden(
            "Entries can only be pushed for your own tenant",
        )),
    }
}

/// `filter[...]` keys become payload paths; keep them to what the store can address.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-'))
        })
}

/// Query values are text; a value that reads as a JSON number or boolean also matches that
/// (OIH's Mongo query matched only the string).
fn matches_text(path: &str, value: &str) -> Filter {
    let text = Filter::eq(path, value);
    match serde_json::from_str::<Value>(value) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => {
            Filter::or([text, Filter::Eq(path.into(), v)])
        }
        _ => text,
    }
}
