//! `/api/v1/roles` (iam-ils.md §10.5). Every route needs `tenant.roles.read`; a non-admin only
//! reaches roles of their own tenant (OIH hung on global roles and returned the pre-update
//! role from PATCH; here it is 403 and the updated role).

use axum::extract::State;
use axum::response::Response;
use oih_http::{ApiError, Json, Path};
use oih_store::Filter;
use serde_json::{Map, Value};

use super::{input_invalid, object, ok, store_error, valid_id};
use crate::access::{Caller, forbidden};
use crate::model::{Account, Role, RoleType, render};
use crate::permissions::is_common;
use crate::state::AppState;
use crate::store::{ACCOUNTS, ROLES, Stored};

/// Names tenants may not give their roles (case-insensitive).
const RESERVED: &[&str] = &[
    "ADMIN",
    "USER",
    "SERVICE_ACCOUNT",
    "TENANT_ADMIN",
    "TENANT_INTEGRATOR",
    "TENANT_DEVELOPER",
    "TENANT_GUEST",
];

/// Global roles (for non-admins only `TENANT` ones), then the caller's tenant's roles; an
/// admin without tenant sees every role.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.tenant_can(&["tenant.roles.read"])?;
    let global = if caller.is_admin() {
        Filter::eq("isGlobal", true)
    } else {
        Filter::and([Filter::eq("isGlobal", true), Filter::eq("type", "TENANT")])
    };
    let own = match caller.tenant() {
        Some(t) => Filter::and([Filter::eq("isGlobal", false), Filter::eq("tenant", t)]),
        None if caller.is_admin() => Filter::eq("isGlobal", false),
        None => Filter::Not(Box::new(Filter::All)),
    };
    let mut roles: Vec<Stored<Role>> = state.repo.find(ROLES, &global).await?;
    roles.extend(state.repo.find::<Role>(ROLES, &own).await?);
    Ok(Json(Value::Array(
        roles.iter().map(|r| render(r, &[])).collect(),
    )))
}

/// Validates `name`, `description`, `permissions` of a body onto `role`.
fn apply(role: &mut Role, body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(name) = body.get("name") {
        let name = name
            .as_str()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(input_invalid)?;
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name.trim())) {
            return Err(forbidden());
        }
        role.name = name.to_owned();
    }
    match body.get("description") {
        None | Some(Value::Null) => {}
        Some(Value::String(d)) => role.description = d.clone(),
        Some(_) => return Err(input_invalid()),
    }
    match body.get("permissions") {
        None | Some(Value::Null) => {}
        // Anything that is not a common permission, including non-strings (OIH clients send
        // `[null]` for an unknown constant), is a 403 as in OIH.
        Some(Value::Array(items)) => {
            role.permissions = items
                .iter()
                .map(|p| p.as_str().filter(|p| is_common(p)).map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(forbidden)?;
        }
        Some(_) => return Err(input_invalid()),
    }
    Ok(())
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.tenant_can(&["tenant.roles.read", "tenant.roles.create"])?;
    let body = object(body)?;
    if !body.get("name").is_some_and(Value::is_string) {
        return Err(input_invalid());
    }
    let is_global =
        caller.is_admin() && body.get("isGlobal").and_then(Value::as_bool) == Some(true);
    let tenant = if is_global {
        None
    } else {
        // A role always belongs somewhere: a tenant-less non-admin cannot make one.
        match caller.tenant() {
            Some(t) => Some(t.to_owned()),
            None if caller.is_admin() => None,
            None => return Err(forbidden()),
        }
    };
    let mut role = Role {
        name: String::new(),
        kind: RoleType::Tenant,
        is_global,
        permissions: Vec::new(),
        description: String::new(),
        tenant,
    };
    apply(&mut role, &body)?;
    let stored = state
        .repo
        .insert(ROLES, &role, None)
        .await
        .map_err(store_error)?;
    state
        .events
        .role("created", &stored.id, stored.body.tenant.as_deref())
        .await;
    Ok(Json(render(&stored, &[])))
}

/// OIH's owner check: admins reach every role; others only their tenant's (missing: 404
/// `FORBIDDEN`, foreign or global: 403 `FORBIDDEN`).
async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<Stored<Role>, ApiError> {
    valid_id(id)?;
    let role = state
        .repo
        .get::<Role>(ROLES, id)
        .await?
        .ok_or_else(|| ApiError::not_found("FORBIDDEN"))?;
    if caller.is_admin()
        || (caller.tenant().is_some() && role.body.tenant.as_deref() == caller.tenant())
    {
        Ok(role)
    } else {
        Err(forbidden())
    }
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.tenant_can(&["tenant.roles.read"])?;
    let role = owned(&state, &caller, &id).await?;
    Ok(Json(render(&role, &[])))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.tenant_can(&["tenant.roles.read", "tenant.roles.update"])?;
    let current = owned(&state, &caller, &id).await?;
    let body = object(body)?;
    let mut role = current.body.clone();
    apply(&mut role, &body)?;
    let stored = state
        .repo
        .update(ROLES, &current, &role)
        .await
        .map_err(store_error)?;
    state.forget_identities();
    state
        .events
        .role_modified(
            &stored.id,
            stored.body.tenant.as_deref(),
            &stored.body.permissions,
        )
        .await;
    Ok(Json(render(&stored, &[])))
}

/// Removes the role from every account holding it, then deletes it.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.tenant_can(&["tenant.roles.read", "tenant.roles.delete"])?;
    let role = owned(&state, &caller, &id).await?;
    let holders: Vec<Stored<Account>> = state
        .repo
        .find(
            ACCOUNTS,
            &Filter::ArrayContains("roles".into(), Value::String(id.clone())),
        )
        .await?;
    for holder in holders {
        let mut body = holder.body.clone();
        body.roles.retain(|r| r != &id);
        state.repo.update(ACCOUNTS, &holder, &body).await?;
    }
    state.repo.delete(ROLES, &id).await?;
    state.forget_identities();
    state
        .events
        .role("deleted", &id, role.body.tenant.as_deref())
        .await;
    Ok(ok())
}
