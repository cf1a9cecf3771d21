//! `/virtual-components`: the catalogue entries, their default versions and the caller's
//! tenant configs of those.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use oih_core::Identity;
use oih_http::{ApiError, Auth, DataMeta, Json, Path, Query, require};
use oih_store::{Filter, FindOptions, SortOrder};
use serde_json::{Map, Value};

use super::{AppState, new_id};
use crate::access;
use crate::model::version::{ComponentConfig, ComponentVersion};
use crate::model::virtual_component::VirtualComponent;
use crate::model::{Owner, object, parse, strip_managed};
use crate::store::{CONFIGS, Stored, VERSIONS, VIRTUAL_COMPONENTS};

type Rendered = DataMeta<Vec<Map<String, Value>>>;

fn oldest_first() -> FindOptions {
    FindOptions {
        sort: vec![("_createdAt".into(), SortOrder::Asc)],
        ..FindOptions::default()
    }
}

/// OIH's `loadVirtualComponent`: missing, malformed and invisible are all the same 404.
pub(super) async fn load(
    s: &AppState,
    identity: &Identity,
    raw: &str,
) -> Result<Stored<VirtualComponent>, ApiError> {
    let not_found = || ApiError::not_found("VirtualComponent is not found");
    if !oih_core::ObjectId::is_valid(raw) {
        return Err(not_found());
    }
    let doc = s
        .repo
        .get::<VirtualComponent>(VIRTUAL_COMPONENTS, &raw.to_ascii_lowercase())
        .await?
        .ok_or_else(not_found)?;
    if access::can_load_virtual(identity, &doc.body) {
        Ok(doc)
    } else {
        Err(not_found())
    }
}

pub(super) fn check_write(identity: &Identity, vc: &VirtualComponent) -> Result<(), ApiError> {
    if access::can_write_virtual(identity, vc) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Not authorized"))
    }
}

pub async fn list(State(s): State<AppState>, Auth(identity): Auth) -> Result<Rendered, ApiError> {
    let found = s
        .repo
        .find::<VirtualComponent>(
            VIRTUAL_COMPONENTS,
            &access::listable_virtual(&identity, false),
            &oldest_first(),
        )
        .await?;
    Ok(DataMeta::new(
        found.iter().map(|d| d.render("_id")).collect(),
    ))
}

/// The default version ids of the virtual components the caller sees.
async fn default_version_ids(
    s: &AppState,
    identity: &Identity,
    tenant_owner: bool,
) -> Result<Vec<Value>, ApiError> {
    let visible = s
        .repo
        .find::<VirtualComponent>(
            VIRTUAL_COMPONENTS,
            &access::listable_virtual(identity, tenant_owner),
            &oldest_first(),
        )
        .await?;
    Ok(visible
        .into_iter()
        .filter_map(|vc| vc.body.default_version_id.map(Value::String))
        .collect())
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultsQuery {
    verbose: Option<String>,
    filter_active_functions: Option<String>,
}

/// A query flag: set, and not empty, `false` or `0`.
fn truthy(raw: Option<&str>) -> bool {
    raw.is_some_and(|v| !matches!(v.trim(), "" | "false" | "0"))
}

pub async fn defaults(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Query(q): Query<DefaultsQuery>,
) -> Result<Rendered, ApiError> {
    let ids = default_version_ids(&s, &identity, true).await?;
    let versions = s
        .repo
        .find::<ComponentVersion>(VERSIONS, &Filter::In("_id".into(), ids), &oldest_first())
        .await?;
    let light = q.verbose.as_deref() == Some("false");
    let only_active = truthy(q.filter_active_functions.as_deref());
    let data = versions
        .into_iter()
        .map(|mut doc| {
            if only_active {
                doc.body.triggers.retain(|f| f.active);
                doc.body.actions.retain(|f| f.active);
            }
            if light {
                let mut out = doc.body.light();
                out.insert("_id".into(), Value::String(doc.id.clone()));
                out
            } else {
                doc.render("_id")
            }
        })
        .collect();
    Ok(DataMeta::new(data))
}

pub async fn defaults_config(
    State(s): State<AppState>,
    Auth(identity): Auth,
) -> Result<Rendered, ApiError> {
    let filter = if identity.is_admin() {
        Filter::All
    } else {
        let Some(tenant) = identity.tenant.as_deref() else {
            // Configs are per tenant; a caller without one has none.
            return Ok(DataMeta::new(Vec::new()));
        };
        let ids = default_version_ids(&s, &identity, false).await?;
        Filter::and([
            Filter::eq("tenant", tenant),
            Filter::In("componentVersionId".into(), ids),
        ])
    };
    let configs = s
        .repo
        .find::<ComponentConfig>(CONFIGS, &filter, &oldest_first())
        .await?;
    Ok(DataMeta::new(
        configs.iter().map(|d| d.render("_id")).collect(),
    ))
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
    let mut vc: VirtualComponent = parse(body)?;
    if identity.is_admin() {
        // Admins may create for any tenant and owners; by default for themselves.
        if vc.tenant.is_none() {
            vc.tenant = identity.tenant.clone();
        }
        if vc.owners.is_empty() {
            vc.owners.push(Owner::user(&identity.sub));
        }
    } else {
        vc.tenant = identity.tenant.clone();
        vc.owners = vec![Owner::user(&identity.sub)];
    }
    vc.validate()?;
    let stored = s.repo.insert(VIRTUAL_COMPONENTS, &new_id(), &vc).await?;
    Ok((StatusCode::CREATED, DataMeta::new(stored.render("_id"))))
}

pub async fn get_one(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
) -> Result<DataMeta<Map<String, Value>>, ApiError> {
    let doc = load(&s, &identity, &id).await?;
    Ok(DataMeta::new(doc.render("_id")))
}

pub async fn patch(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
    body: Result<Json<Value>, ApiError>,
) -> Result<DataMeta<Map<String, Value>>, ApiError> {
    require(&identity, &[&s.config.update_permission])?;
    let mut doc = load(&s, &identity, &id).await?;
    check_write(&identity, &doc.body)?;
    let Json(body) = body?;
    let mut changes = object(body)?;
    strip_managed(&mut changes);
    if !identity.is_admin() {
        // Only admins move virtual components between tenants (as on create).
        changes.remove("tenant");
    }
    let mut merged = match serde_json::to_value(&doc.body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    merged.extend(changes);
    let mut vc: VirtualComponent = parse(merged)?;
    if vc.owners.is_empty() {
        vc.owners.push(Owner::user(&identity.sub));
    }
    vc.validate()?;
    doc.body = vc;
    let saved = s.repo.update(VIRTUAL_COMPONENTS, &doc).await?;
    Ok(DataMeta::new(saved.render("_id")))
}

/// Deletes the virtual component with its versions and their configs, in one transaction.
pub async fn delete(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require(&identity, &[&s.config.delete_permission])?;
    let doc = load(&s, &identity, &id).await?;
    check_write(&identity, &doc.body)?;
    let mut tx = s.repo.docs.begin().await?;
    let of_vc = Filter::eq("virtualComponentId", doc.id.as_str());
    let version_ids: Vec<Value> = tx
        .find(VERSIONS, &of_vc, &FindOptions::default())
        .await?
        .into_iter()
        .map(|v| Value::String(v.id))
        .collect();
    tx.delete_many(
        CONFIGS,
        &Filter::In("componentVersionId".into(), version_ids),
    )
    .await?;
    tx.delete_many(VERSIONS, &of_vc).await?;
    tx.delete(VIRTUAL_COMPONENTS, &doc.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
