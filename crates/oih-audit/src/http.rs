//! `/logs` with OIH's paths, permissions, query parameters and envelopes (data-services.md
//! §4.3), and `/logs/verify`, which OIH does not have.
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
use oih_http::{ApiError, Auth, Json, ListQuery, Page, require};
use oih_store::Filter;
use serde_json::{Value, json};
use utoipa::OpenApi as _;

use crate::Config;
use crate::model::{self, NewEntry};
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
    paths(list, push, verify)
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
