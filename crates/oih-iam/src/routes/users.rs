//! `/api/v1/users` (iam-ils.md §10.2). Unlike OIH, every `/:id` route is tenant-scoped for
//! non-admins: another tenant's account is a 404, and cannot be edited, moved or deleted.

use axum::extract::State;
use axum::response::Response;
use oih_http::{ApiError, Json, Path, Query};
use oih_store::Filter;
use serde_json::{Map, Value, json};

use super::{
    input_invalid, list_response, not_found, object, ok, one_response, store_error, strings,
    valid_id, wants_meta,
};
use crate::access::{Caller, forbidden};
use crate::model::{
    ACCOUNT_HIDDEN, ACCOUNT_WRITABLE, Account, Role, Safeguard, Status, apply_patch, is_email,
    render,
};
use crate::state::AppState;
use crate::store::{ACCOUNTS, ROLES, Stored, TOKENS};

type Q = Query<Vec<(String, String)>>;

/// Admins only; filters `userId` and `username` (both repeatable).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Q,
) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    let mut filters = Vec::new();
    let values = |key: &str| -> Vec<Value> {
        query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| Value::String(v.clone()))
            .collect()
    };
    let ids = values("userId");
    if !ids.is_empty() {
        if ids
            .iter()
            .any(|v| !oih_core::ObjectId::is_valid(v.as_str().unwrap_or("")))
        {
            return Err(ApiError::bad_request("The filter is invalid."));
        }
        filters.push(Filter::In("_id".into(), ids));
    }
    let names = values("username");
    if !names.is_empty() {
        filters.push(Filter::In("username".into(), names));
    }
    let accounts: Vec<Stored<Account>> = state.repo.find(ACCOUNTS, &Filter::and(filters)).await?;
    let items = accounts.iter().map(|a| render(a, ACCOUNT_HIDDEN)).collect();
    Ok(list_response(items, wants_meta(&query)))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Q,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.tenant_can(&["tenant.account.create"])?;
    let mut body = object(body)?;
    let password = match body.remove("password") {
        Some(Value::String(p)) if !p.is_empty() => p,
        _ => return Err(ApiError::bad_request("No password was given")),
    };
    let template = Account {
        username: String::new(),
        firstname: None,
        lastname: None,
        phone: None,
        avatar: None,
        status: Status::Active,
        confirmed: true,
        tenant: None,
        roles: Vec::new(),
        permissions: Vec::new(),
        safeguard: Safeguard::default(),
        hash: None,
        salt: None,
    };
    let mut account = sanitize(&state, &caller, &template, &body).await?;
    account.hash = Some(state.hasher.hash(&password).map_err(ApiError::internal)?);
    let stored = state
        .repo
        .insert(ACCOUNTS, &account, None)
        .await
        .map_err(store_error)?;
    state
        .events
        .user_created(&stored.id, &stored.body.username)
        .await;
    Ok(one_response(json!({"id": stored.id}), wants_meta(&query)))
}

/// Applies a client body to `current` under the rules of iam-ils.md §5.3: non-admins may only
/// use their tenant's roles and common permissions, and cannot change the tenant.
async fn sanitize(
    state: &AppState,
    caller: &Caller,
    current: &Account,
    body: &Map<String, Value>,
) -> Result<Account, ApiError> {
    let roles = role_ids(body.get("roles"))?;
    let permissions = strings(body.get("permissions"))?;
    caller.may_grant(&permissions)?;
    if body.contains_key("roles") {
        check_roles(state, caller, &roles).await?;
    }
    let mut patch = body.clone();
    if !caller.is_admin() {
        // The account stays in (or is created in) the caller's tenant; a non-admin without
        // a tenant has nowhere to put one.
        let tenant = caller.tenant().ok_or_else(forbidden)?;
        patch.insert("tenant".into(), Value::String(tenant.into()));
    } else if let Some(Value::String(t)) = body.get("tenant") {
        valid_id(t)?;
    }
    // Role objects are stored as their ids.
    if body.contains_key("roles") {
        patch.insert("roles".into(), Value::from(roles));
    }
    let mut account =
        apply_patch(current, &patch, ACCOUNT_WRITABLE).map_err(|_| input_invalid())?;
    account.username = account.username.to_lowercase();
    if !is_email(&account.username) {
        return Err(input_invalid());
    }
    Ok(account)
}

/// Role ids, or role objects (`{_id, ...}`, as the web UI sends them).
fn role_ids(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .or_else(|| v.get("_id").and_then(Value::as_str))
                    .map(str::to_owned)
                    .ok_or_else(input_invalid)
            })
            .collect(),
        Some(_) => Err(input_invalid()),
    }
}

/// Every role must exist; non-admins may only assign roles of their own tenant.
async fn check_roles(state: &AppState, caller: &Caller, ids: &[String]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    for id in ids {
        valid_id(id)?;
    }
    let wanted = ids.iter().map(|i| Value::String(i.clone())).collect();
    let found: Vec<Stored<Role>> = state
        .repo
        .find(ROLES, &Filter::In("_id".into(), wanted))
        .await?;
    if !caller.is_admin()
        && found
            .iter()
            .any(|r| r.body.tenant.as_deref() != caller.tenant())
    {
        return Err(forbidden());
    }
    if found.len() != ids.iter().collect::<std::collections::HashSet<_>>().len() {
        return Err(input_invalid());
    }
    Ok(())
}

/// The account with its roles populated (single-account responses).
async fn render_full(state: &AppState, account: &Stored<Account>) -> Result<Value, ApiError> {
    let (roles, _) = state.resolve_roles(&account.body, &[]).await?;
    let mut out = render(account, ACCOUNT_HIDDEN);
    if let Value::Object(obj) = &mut out {
        obj.insert(
            "roles".into(),
            Value::Array(roles.iter().map(|r| render(r, &[])).collect()),
        );
    }
    Ok(out)
}

pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Q,
) -> Result<Json<Value>, ApiError> {
    let body = render_full(&state, &caller.account).await?;
    Ok(one_response(body, wants_meta(&query)))
}

/// Only `firstname` and `lastname` are applied, as in OIH.
pub async fn patch_me(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let body = object(body)?;
    let account = apply_patch(&caller.account.body, &body, &["firstname", "lastname"])
        .map_err(|_| input_invalid())?;
    state
        .repo
        .update(ACCOUNTS, &caller.account, &account)
        .await
        .map_err(store_error)?;
    Ok(ok())
}

/// The account `id` if the caller may see it (admins: any; others: their tenant's).
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Stored<Account>, ApiError> {
    valid_id(id)?;
    match state.repo.get::<Account>(ACCOUNTS, id).await? {
        Some(a) if caller.sees_tenant(a.body.tenant.as_deref()) => Ok(a),
        _ => Err(not_found()),
    }
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Q,
) -> Result<Json<Value>, ApiError> {
    caller.tenant_can(&["tenant.account.read"])?;
    let account = visible(&state, &caller, &id).await?;
    Ok(one_response(
        render_full(&state, &account).await?,
        wants_meta(&query),
    ))
}

/// PATCH and PUT: both set the given fields (OIH's PUT is no replace either); `password`
/// re-hashes.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    caller.tenant_can(&["tenant.account.update"])?;
    let current = visible(&state, &caller, &id).await?;
    caller.may_manage(&current.body)?;
    let mut body = object(body)?;
    let password = match body.remove("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if !p.is_empty() => Some(p),
        Some(_) => return Err(input_invalid()),
    };
    let mut account = sanitize(&state, &caller, &current.body, &body).await?;
    if let Some(password) = password {
        account.hash = Some(state.hasher.hash(&password).map_err(ApiError::internal)?);
        account.salt = None;
    }
    let stored = state
        .repo
        .update(ACCOUNTS, &current, &account)
        .await
        .map_err(store_error)?;
    state.forget_identities();
    state
        .events
        .user_modified(&stored.id, &stored.body.username)
        .await;
    Ok(ok())
}

/// Needs `iam.account.delete`; deletes the account and its tokens. 200 also for unknown ids.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.can(&["iam.account.delete"])?;
    valid_id(&id)?;
    if let Some(account) = state.repo.get::<Account>(ACCOUNTS, &id).await? {
        if !caller.sees_tenant(account.body.tenant.as_deref()) {
            return Err(not_found());
        }
        delete_account(&state, &id).await?;
    }
    Ok(ok())
}

/// Deletes an account and every token it owns, then tells the other services.
pub async fn delete_account(state: &AppState, id: &str) -> Result<(), ApiError> {
    state
        .repo
        .delete_many(TOKENS, &Filter::eq("accountId", id))
        .await?;
    state.repo.delete(ACCOUNTS, id).await?;
    state.forget_identities();
    state.events.user_deleted(id).await;
    state
        .events
        .token_deleted(json!({"account": id, "user": id}))
        .await;
    Ok(())
}
