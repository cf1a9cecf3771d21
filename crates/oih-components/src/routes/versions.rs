//! `/virtual-components/{id}/{version_id}…`: component versions, a tenant's config of a
//! version, and single actions/triggers. Unlike OIH, a version is only reachable through the
//! virtual component it belongs to (OIH ignores the `{id}` segment once the virtual component
//! is visible, so any version of any tenant could be read or configured through one's own).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use oih_core::Identity;
use oih_http::{ApiError, Auth, Data, DataMeta, Json, Path, require};
use oih_store::{Filter, FindOptions, StoreError};
use serde_json::{Map, Value};

use super::virtual_components::{check_write, load};
use super::{AppState, new_id, object_id};
use crate::access;
use crate::model::component::Component;
use crate::model::version::{ComponentConfig, ComponentVersion, Function, functions_from_map};
use crate::model::virtual_component::VirtualComponent;
use crate::model::{object, parse, strip_managed};
use crate::store::{COMPONENTS, CONFIGS, Stored, VERSIONS, VIRTUAL_COMPONENTS};

/// The version `raw` of the virtual component `vc`; `invalid` is the 400 for a malformed id,
/// `missing` the 404 for one that does not exist there.
async fn load_version(
    s: &AppState,
    vc: &Stored<VirtualComponent>,
    raw: &str,
    invalid: &str,
    missing: &str,
) -> Result<Stored<ComponentVersion>, ApiError> {
    let id = object_id(raw, invalid)?;
    s.repo
        .get::<ComponentVersion>(VERSIONS, &id)
        .await?
        .filter(|v| v.body.virtual_component_id.as_deref() == Some(vc.id.as_str()))
        .ok_or_else(|| ApiError::not_found(missing))
}

/// A version may only point at a component that exists and that the caller can read (OIH only
/// checks existence, which lets one probe other tenants' private components).
async fn check_component(
    s: &AppState,
    identity: &Identity,
    version: &ComponentVersion,
) -> Result<(), ApiError> {
    let Some(id) = version.component_id.as_deref() else {
        return Ok(());
    };
    match s.repo.get::<Component>(COMPONENTS, id).await? {
        Some(c) if access::can_read(identity, &c.body) => Ok(()),
        _ => Err(ApiError::not_found("Component not found")),
    }
}

/// Parses a version body (function maps converted to lists) bound to `vc_id`.
fn build_version(mut body: Map<String, Value>, vc_id: &str) -> Result<ComponentVersion, ApiError> {
    strip_managed(&mut body);
    functions_from_map(&mut body);
    body.insert("virtualComponentId".into(), Value::String(vc_id.to_owned()));
    let version: ComponentVersion = parse(body)?;
    version.validate()?;
    Ok(version)
}

pub async fn create(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
    body: Result<Json<Value>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    require(&identity, &[&s.config.create_permission])?;
    let vc = load(&s, &identity, &id).await?;
    check_write(&identity, &vc.body)?;
    let Json(body) = body?;
    let version = build_version(object(body)?, &vc.id)?;
    check_component(&s, &identity, &version).await?;
    let stored = s.repo.insert(VERSIONS, &new_id(), &version).await?;
    Ok((StatusCode::CREATED, DataMeta::new(stored.render("_id"))))
}

pub async fn get_one(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path((id, version_id)): Path<(String, String)>,
) -> Result<DataMeta<Map<String, Value>>, ApiError> {
    let vc = load(&s, &identity, &id).await?;
    let version = load_version(
        &s,
        &vc,
        &version_id,
        "Invalid id",
        "Component version could not be found",
    )
    .await?;
    Ok(DataMeta::new(version.render("_id")))
}

pub async fn patch(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path((id, version_id)): Path<(String, String)>,
    body: Result<Json<Value>, ApiError>,
) -> Result<DataMeta<Map<String, Value>>, ApiError> {
    require(&identity, &[&s.config.update_permission])?;
    let vc = load(&s, &identity, &id).await?;
    check_write(&identity, &vc.body)?;
    let mut doc = load_version(
        &s,
        &vc,
        &version_id,
        "Invalid id",
        "ComponentVersion is not found",
    )
    .await?;
    let Json(body) = body?;
    let mut merged = match serde_json::to_value(&doc.body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    merged.extend(object(body)?);
    let version = build_version(merged, &vc.id)?;
    if version.component_id != doc.body.component_id {
        check_component(&s, &identity, &version).await?;
    }
    doc.body = version;
    let saved = s.repo.update(VERSIONS, &doc).await?;
    Ok(DataMeta::new(saved.render("_id")))
}

/// Deletes a version that is not the default: its configs, its entry in `versions`, and the
/// version itself (by id; OIH's filter matched an arbitrary version).
pub async fn delete(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path((id, version_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require(&identity, &[&s.config.delete_permission])?;
    let mut vc = load(&s, &identity, &id).await?;
    check_write(&identity, &vc.body)?;
    let version_id = object_id(&version_id, "Invalid component version id")?;
    if vc.body.default_version_id.as_deref() == Some(version_id.as_str()) {
        return Err(ApiError::bad_request(
            "Cannot delete the default component Version",
        ));
    }
    load_version(
        &s,
        &vc,
        &version_id,
        "Invalid component version id",
        "Component version could not be found",
    )
    .await?;
    vc.body
        .versions
        .retain(|v| v.id.as_deref() != Some(version_id.as_str()));
    let mut tx = s.repo.docs.begin().await?;
    tx.delete_many(
        CONFIGS,
        &Filter::eq("componentVersionId", version_id.as_str()),
    )
    .await?;
    tx.delete(VERSIONS, &version_id).await?;
    tx.update(
        VIRTUAL_COMPONENTS,
        &vc.id,
        Some(vc.version),
        serde_json::to_value(&vc.body).map_err(ApiError::internal)?,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `authClientId` from a config body: absent, or an id.
fn auth_client_id(body: &Map<String, Value>, required: bool) -> Result<Option<String>, ApiError> {
    let invalid = || ApiError::bad_request("Invalid auth Client id");
    match body.get("authClientId") {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(id)) if oih_core::ObjectId::is_valid(id) => {
            Ok(Some(id.to_ascii_lowercase()))
        }
        _ => Err(invalid()),
    }
}

/// The tenant a config is for: an admin names it in the body, everyone else gets their own.
fn config_tenant(identity: &Identity, body: &Map<String, Value>) -> Option<String> {
    if identity.is_admin() {
        body.get("tenant")
            .and_then(Value::as_str)
            .map(str::to_owned)
    } else {
        identity.tenant.clone()
    }
}

pub async fn create_config(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path((id, version_id)): Path<(String, String)>,
    body: Result<Json<Value>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    require(&identity, &[&s.config.write_permission])?;
    let vc = load(&s, &identity, &id).await?;
    let Json(body) = body?;
    let body = object(body)?;
    let version = load_version(
        &s,
        &vc,
        &version_id,
        "Invalid id",
        "Component version could not be found",
    )
    .await?;
    let auth_client_id = auth_client_id(&body, false)?;
    let tenant = config_tenant(&identity, &body)
        .ok_or_else(|| ApiError::bad_request("Configuration requires a Tenant"))?;
    let config = ComponentConfig {
        component_version_id: version.id,
        auth_client_id,
        tenant,
    };
    match s.repo.insert(CONFIGS, &new_id(), &config).await {
        Ok(stored) => Ok((StatusCode::CREATED, Data::new(stored.render("_id")))),
        Err(StoreError::Duplicate(_)) => Err(ApiError::bad_request(
            "This component version has already been set.",
        )),
        Err(other) => Err(other.into()),
    }
}

pub async fn patch_config(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path((id, version_id)): Path<(String, String)>,
    body: Result<Json<Value>, ApiError>,
) -> Result<DataMeta<Map<String, Value>>, ApiError> {
    require(&identity, &[&s.config.write_permission])?;
    let vc = load(&s, &identity, &id).await?;
    let Json(body) = body?;
    let body = object(body)?;
    let auth_client_id = auth_client_id(&body, true)?;
    let missing = "This component version has not been found.";
    let version = load_version(&s, &vc, &version_id, "Invalid id", missing).await?;
    let tenant = config_tenant(&identity, &body).ok_or_else(|| ApiError::not_found(missing))?;
    let filter = Filter::and([
        Filter::eq("componentVersionId", version.id.as_str()),
        Filter::eq("tenant", tenant),
    ]);
    let mut found = s
        .repo
        .find::<ComponentConfig>(CONFIGS, &filter, &FindOptions::default())
        .await?;
    let mut config = found.pop().ok_or_else(|| ApiError::not_found(missing))?;
    config.body.auth_client_id = auth_client_id;
    let saved = s.repo.update(CONFIGS, &config).await?;
    Ok(DataMeta::new(saved.render("_id")))
}

#[derive(Clone, Copy)]
enum Kind {
    Action,
    Trigger,
}

/// One action or trigger of a version, by name.
async fn function(
    s: &AppState,
    identity: &Identity,
    (id, version_id, name): (String, String, String),
    kind: Kind,
) -> Result<DataMeta<Function>, ApiError> {
    let vc = load(s, identity, &id).await?;
    let missing = match kind {
        Kind::Action => "Component version or action could not be found!",
        Kind::Trigger => "Component version or trigger could not be found!",
    };
    let version = load_version(s, &vc, &version_id, "Invalid id", missing).await?;
    let list = match kind {
        Kind::Action => version.body.actions,
        Kind::Trigger => version.body.triggers,
    };
    list.into_iter()
        .find(|f| f.name.as_deref() == Some(name.as_str()))
        .map(DataMeta::new)
        .ok_or_else(|| ApiError::not_found(missing))
}

pub async fn action(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(path): Path<(String, String, String)>,
) -> Result<DataMeta<Function>, ApiError> {
    function(&s, &identity, path, Kind::Action).await
}

pub async fn trigger(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(path): Path<(String, String, String)>,
) -> Result<DataMeta<Function>, ApiError> {
    function(&s, &identity, path, Kind::Trigger).await
}
