//! `/api/v1/tenants` (iam-ils.md §10.3). Non-admins only reach their own tenant: OIH silently
//! replaced a foreign `:id` with the caller's tenant; here it is a 404.

use axum::extract::State;
use axum::response::Response;
use oih_http::{ApiError, Json, Path, Query};
use oih_store::Filter;
use serde_json::{Value, json};

use super::users::delete_account;
use super::{
    input_invalid, list_response, not_found, object, ok, one_response, store_error, valid_id,
    wants_meta,
};
use crate::access::Caller;
use crate::model::{
    ACCOUNT_HIDDEN, Account, TENANT_WRITABLE, Tenant, TenantKey, apply_patch, render,
};
use crate::state::AppState;
use crate::store::{ACCOUNTS, ROLES, Stored, TENANT_KEYS, TENANTS};

type Q = Query<Vec<(String, String)>>;

fn bad_request() -> ApiError {
    ApiError::bad_request("Bad Request")
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Q,
) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    let tenants: Vec<Stored<Tenant>> = state.repo.find(TENANTS, &Filter::All).await?;
    let items = tenants.iter().map(|t| render(t, &[])).collect();
    Ok(list_response(items, wants_meta(&query)))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Q,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.can(&["iam.tenant.create"])?;
    let body = object(body).map_err(|_| bad_request())?;
    let template = Tenant {
        name: String::new(),
        confirmed: true,
        status: Default::default(),
    };
    let tenant = apply_patch(&template, &body, TENANT_WRITABLE).map_err(|_| bad_request())?;
    if tenant.name.trim().is_empty() {
        return Err(bad_request());
    }
    let stored = state.repo.insert(TENANTS, &tenant, None).await?;
    state
        .events
        .tenant_created(&stored.id, &stored.body.name)
        .await;
    Ok(one_response(json!({"id": stored.id}), wants_meta(&query)))
}

/// The tenant `id` if the caller may see it.
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Stored<Tenant>, ApiError> {
    valid_id(id)?;
    if !caller.sees_tenant(Some(id)) {
        return Err(not_found());
    }
    state
        .repo
        .get::<Tenant>(TENANTS, id)
        .await?
        .ok_or_else(not_found)
}

/// `GET /:id` and `GET /:id/profile`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Q,
) -> Result<Json<Value>, ApiError> {
    caller.tenant_can(&["tenant.profile.read"])?;
    let tenant = visible(&state, &caller, &id).await?;
    Ok(one_response(render(&tenant, &[]), wants_meta(&query)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    caller.tenant_can(&["tenant.profile.update"])?;
    let current = visible(&state, &caller, &id).await?;
    let body = object(body).map_err(|_| bad_request())?;
    let tenant = apply_patch(&current.body, &body, TENANT_WRITABLE).map_err(|_| bad_request())?;
    if tenant.name.trim().is_empty() {
        return Err(bad_request());
    }
    state.repo.update(TENANTS, &current, &tenant).await?;
    state.events.tenant_modified(&id).await;
    Ok(ok())
}

/// Deletes the tenant with its accounts (and their tokens) and roles; OIH left tokens and
/// roles behind.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.can(&["iam.tenant.delete"])?;
    valid_id(&id)?;
    if !caller.sees_tenant(Some(&id)) {
        return Err(not_found());
    }
    let accounts: Vec<Stored<Account>> = state
        .repo
        .find(ACCOUNTS, &Filter::eq("tenant", id.clone()))
        .await?;
    for account in accounts {
        delete_account(&state, &account.id).await?;
    }
    for coll in [ROLES, TENANT_KEYS] {
        state
            .repo
            .delete_many(coll, &Filter::eq("tenant", id.clone()))
            .await?;
    }
    if state.repo.delete(TENANTS, &id).await? {
        state.events.tenant_deleted(&id).await;
    }
    state.forget_identities();
    Ok(ok())
}

pub async fn users(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Q,
) -> Result<Json<Value>, ApiError> {
    caller.tenant_can(&["tenant.account.read"])?;
    valid_id(&id)?;
    if !caller.sees_tenant(Some(&id)) {
        return Err(not_found());
    }
    let accounts: Vec<Stored<Account>> =
        state.repo.find(ACCOUNTS, &Filter::eq("tenant", id)).await?;
    let items = accounts.iter().map(|a| render(a, ACCOUNT_HIDDEN)).collect();
    Ok(list_response(items, wants_meta(&query)))
}

/// Removes a user from the tenant, i.e. deletes the account and its tokens (OIH's handler
/// called a misspelled method and never answered).
pub async fn remove_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.tenant_can(&["tenant.account.delete"])?;
    valid_id(&id)?;
    valid_id(&user_id)?;
    if !caller.sees_tenant(Some(&id)) {
        return Err(not_found());
    }
    match state.repo.get::<Account>(ACCOUNTS, &user_id).await? {
        Some(account) if account.body.tenant.as_deref() == Some(id.as_str()) => {
            caller.may_manage(&account.body)?;
            delete_account(&state, &user_id).await?;
            Ok(ok())
        }
        _ => Err(not_found()),
    }
}

/// `POST /:id/key` `{value}`: stores the tenant's key (one per tenant: a second is a 409).
/// The `iam.key.*` permissions are service-level grants, so they are not tenant-scoped.
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    caller.can(&["iam.key.create"])?;
    valid_id(&id)?;
    let value = match body.get("value") {
        Some(Value::String(v)) if !v.is_empty() => v.clone(),
        _ => return Err(input_invalid()),
    };
    let key = TenantKey { tenant: id, value };
    state
        .repo
        .insert(TENANT_KEYS, &key, None)
        .await
        .map_err(store_error)?;
    Ok(ok())
}

async fn find_key(state: &AppState, tenant: &str) -> Result<Option<Stored<TenantKey>>, ApiError> {
    Ok(state
        .repo
        .find_one(TENANT_KEYS, &Filter::eq("tenant", tenant))
        .await?)
}

/// `GET /:id/key`: `{key}`, `null` when the tenant has none.
pub async fn get_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.can(&["iam.key.read"])?;
    valid_id(&id)?;
    let key = find_key(&state, &id).await?.map(|k| k.body.value);
    Ok(Json(json!({ "key": key })))
}

pub async fn delete_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.can(&["iam.key.delete"])?;
    valid_id(&id)?;
    if let Some(key) = find_key(&state, &id).await? {
        state.repo.delete(TENANT_KEYS, &key.id).await?;
    }
    Ok(ok())
}
