//! `/components`: list, create, read, update, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use oih_core::Identity;
use oih_http::{ApiError, Auth, DataMeta, Json, Page, PageRequest, Path, Query, require};
use oih_store::{Filter, FindOptions, SortOrder};
use serde_json::{Map, Value, json};

use super::{AppState, new_id, object_id};
use crate::access;
use crate::events::FlowUsage;
use crate::model::component::{Component, SpecialFlags};
use crate::model::{object, parse, strip_managed};
use crate::store::{COMPONENTS, FLOW_USAGE, Stored};

const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 100;

type Params = Query<Vec<(String, String)>>;

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `page[number]` / `page[size]`: positive integers, size at most 100. OIH answers a bad value
/// with a 500; here it is a 400 with OIH's message.
fn paging(params: &[(String, String)]) -> Result<PageRequest, ApiError> {
    let positive = |key: &str, default: u64| -> Result<u64, ApiError> {
        let Some(raw) = param(params, key) else {
            return Ok(default);
        };
        match raw.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(n.unsigned_abs()),
            Ok(_) => Err(ApiError::bad_request(format!(
                "{key} parameter should be greater than 0"
            ))),
            Err(_) => Err(ApiError::bad_request(format!(
                "{key} parameter should be a positive integer"
            ))),
        }
    };
    let number = positive("page[number]", 1)?;
    let size = positive("page[size]", DEFAULT_PAGE_SIZE)?;
    if size > MAX_PAGE_SIZE {
        return Err(ApiError::bad_request(format!(
            "page[size] shouldn't be greater than {MAX_PAGE_SIZE}"
        )));
    }
    Ok(PageRequest { size, number })
}

pub async fn list(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Query(params): Params,
) -> Result<Page<Map<String, Value>>, ApiError> {
    let page = paging(&params)?;
    let mut filter = access::listable(&identity);
    if let Some(artifact) = param(&params, "artifactId") {
        if !artifact.starts_with("artifact_") {
            return Err(ApiError::bad_request(
                "artifactId parameter is not a valid Artifact Id",
            ));
        }
        filter = Filter::and([filter, Filter::eq("artifactId", artifact)]);
    }
    let opts = FindOptions {
        // OIH returns natural (insertion) order.
        sort: vec![("_createdAt".into(), SortOrder::Asc)],
        skip: page.skip(),
        limit: Some(page.limit()),
    };
    let total = s.repo.docs.count(COMPONENTS, &filter).await?;
    let found = s.repo.find::<Component>(COMPONENTS, &filter, &opts).await?;
    let data = found.iter().map(|c| c.render("id")).collect();
    Ok(Page::new(data, &page, total))
}

/// Only admins may grant `specialFlags` (the orchestrator puts them into the component's
/// token, so a privileged flag is a privilege). OIH lets any creator set them.
fn guard_special_flags(
    identity: &Identity,
    before: Option<&SpecialFlags>,
    after: Option<&SpecialFlags>,
) -> Result<(), ApiError> {
    if before != after && !identity.is_admin() {
        return Err(ApiError::forbidden("Only admins may set specialFlags"));
    }
    Ok(())
}

pub async fn create(
    State(s): State<AppState>,
    Auth(identity): Auth,
    body: Result<Json<Value>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    require(&identity, &[&s.config.create_permission])?;
    let Json(body) = body?;
    let mut body = object(body)?;
    strip_managed(&mut body);
    let mut component: Component = parse(body)?;
    if !component.has_user_owner(&identity.sub) {
        component
            .owners
            .push(crate::model::Owner::user(&identity.sub));
    }
    component.tenant = identity.tenant.clone();
    component.minimize();
    guard_special_flags(&identity, None, component.special_flags.as_ref())?;
    component.validate(s.catalogue.names())?;
    let stored = s.repo.insert(COMPONENTS, &new_id(), &component).await?;
    Ok((StatusCode::CREATED, DataMeta::new(stored.render("id"))))
}

#[derive(Debug, serde::Deserialize)]
pub struct VersionQuery {
    pub version: Option<String>,
}

/// OIH's `loadComp`: by id, or by artifact id (`artifact_…`, highest `version` unless
/// `?version=` picks one).
pub(super) async fn load(
    s: &AppState,
    raw: &str,
    version: Option<&str>,
) -> Result<Stored<Component>, ApiError> {
    let not_found = || ApiError::not_found("Component is not found");
    if !raw.starts_with("artifact_") {
        let id = object_id(raw, "Invalid id")?;
        return s.repo.get(COMPONENTS, &id).await?.ok_or_else(not_found);
    }
    let mut filter = vec![Filter::eq("artifactId", raw)];
    if let Some(version) = version {
        let number = version
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| ApiError::bad_request("version parameter should be a number"))?;
        filter.push(Filter::eq("version", number));
    }
    let opts = FindOptions {
        sort: vec![("version".into(), SortOrder::Desc)],
        skip: 0,
        limit: Some(1),
    };
    let mut found = s
        .repo
        .find::<Component>(COMPONENTS, &Filter::And(filter), &opts)
        .await?;
    found.pop().ok_or_else(not_found)
}

pub async fn get_one(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<DataMeta<Map<String, Value>>, ApiError> {
    let doc = load(&s, &id, q.version.as_deref()).await?;
    if !access::can_read(&identity, &doc.body) {
        return Err(ApiError::forbidden("Not authorized"));
    }
    Ok(DataMeta::new(doc.render("id")))
}

/// The write checks shared by PATCH and DELETE: catalogue components are read-only for
/// everyone, others writable by admins and user owners.
pub(super) fn check_write(
    s: &AppState,
    identity: &Identity,
    doc: &Stored<Component>,
) -> Result<(), ApiError> {
    if let Some(name) = s.catalogue.builtin_name(&doc.id) {
        return Err(ApiError::forbidden(format!(
            "Component {name:?} is a built-in component of this hub and is read-only"
        )));
    }
    if !access::can_write(identity, &doc.body) {
        return Err(ApiError::forbidden("Not authorized"));
    }
    Ok(())
}

pub async fn patch(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
    body: Result<Json<Value>, ApiError>,
) -> Result<DataMeta<Map<String, Value>>, ApiError> {
    require(&identity, &[&s.config.update_permission])?;
    let mut doc = load(&s, &id, q.version.as_deref()).await?;
    check_write(&s, &identity, &doc)?;
    let Json(body) = body?;
    let mut changes = object(body)?;
    strip_managed(&mut changes);
    // The tenant is the creator's and stays: moving a component into another tenant is not
    // a field edit.
    changes.remove("tenant");
    let mut merged = match serde_json::to_value(&doc.body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    merged.extend(changes);
    let mut component: Component = parse(merged)?;
    component.minimize();
    guard_special_flags(
        &identity,
        doc.body.special_flags.as_ref(),
        component.special_flags.as_ref(),
    )?;
    component.validate(s.catalogue.names())?;
    doc.body = component;
    let saved = s.repo.update(COMPONENTS, &doc).await?;
    Ok(DataMeta::new(saved.render("id")))
}

pub async fn delete(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<StatusCode, ApiError> {
    require(&identity, &[&s.config.delete_permission])?;
    let doc = load(&s, &id, q.version.as_deref()).await?;
    check_write(&s, &identity, &doc)?;
    let users = s
        .repo
        .find::<FlowUsage>(
            FLOW_USAGE,
            &Filter::ArrayContains("componentIds".into(), json!(doc.id)),
            &FindOptions::default(),
        )
        .await?;
    if !users.is_empty() {
        return Err(ApiError::conflict(in_use_message(&identity, &users)));
    }
    s.repo.docs.delete(COMPONENTS, &doc.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Names the active flows the caller may know of (their tenant's, or all for an admin) and
/// only counts the others, so the answer does not leak other tenants' flows.
fn in_use_message(identity: &Identity, users: &[Stored<FlowUsage>]) -> String {
    let (named, hidden): (Vec<_>, Vec<_>) = users.iter().partition(|u| {
        identity.is_admin() || (identity.tenant.is_some() && u.body.tenant == identity.tenant)
    });
    let mut parts: Vec<String> = named
        .iter()
        .map(|u| match &u.body.name {
            Some(name) => format!("{name:?} ({})", u.id),
            None => u.id.clone(),
        })
        .collect();
    if !hidden.is_empty() {
        parts.push(format!("{} flow(s) of other tenants", hidden.len()));
    }
    format!(
        "Component is used by active flows and cannot be deleted: {}",
        parts.join(", ")
    )
}
