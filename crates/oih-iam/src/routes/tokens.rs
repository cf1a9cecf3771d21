//! `/api/v1/tokens` (iam-ils.md §10.4) and the introspection contract (§11).

use axum::extract::State;
use axum::response::Response;
use oih_http::{ApiError, Json, Path, Query};
use oih_store::Filter;
use serde_json::{Value, json};

use super::{
    input_invalid, list_response, not_found, object, ok, one_response, strings, valid_id,
    wants_meta,
};
use crate::access::{Caller, forbidden};
use crate::model::{Account, Status, TokenDoc, TokenType, render};
use crate::permissions::merge;
use crate::state::AppState;
use crate::store::{ACCOUNTS, Stored, TOKENS};
use crate::tokens::{Lifespan, MintRequest, mint, resolve};

type Q = Query<Vec<(String, String)>>;

/// Admins only; filters `token` and `accountId`; every token is masked but its last 4 chars.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Q,
) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    let mut filters = Vec::new();
    for (key, field) in [("token", "token"), ("accountId", "accountId")] {
        if let Some((_, v)) = query.iter().find(|(k, _)| k == key) {
            filters.push(Filter::eq(field, v.clone()));
        }
    }
    let tokens: Vec<Stored<TokenDoc>> = state.repo.find(TOKENS, &Filter::and(filters)).await?;
    let items = tokens
        .into_iter()
        .map(|mut t| {
            t.body.token = mask(&t.body.token);
            render(&t, &[])
        })
        .collect();
    Ok(list_response(items, wants_meta(&query)))
}

fn mask(token: &str) -> String {
    let n = token.chars().count();
    token
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { '*' } else { c })
        .collect()
}

/// Mints a token for `accountId`. `expiresIn: -1` makes a persistent token.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.can(&["iam.token.create"])?;
    let body = object(body)?;
    let account_id = body
        .get("accountId")
        .and_then(Value::as_str)
        .ok_or_else(input_invalid)?
        .to_owned();
    valid_id(&account_id)?;
    let inquirer = match body.get("inquirer") {
        None | Some(Value::Null) => caller.id().to_owned(),
        Some(Value::String(s)) => {
            valid_id(s)?;
            s.clone()
        }
        Some(_) => return Err(input_invalid()),
    };
    let custom = strings(body.get("customPermissions"))?;
    if !custom.is_empty() {
        caller.can(&["iam.token.update"]).map_err(|_| forbidden())?;
    }
    let (kind, lifespan_text) = match body.get("expiresIn") {
        None | Some(Value::Null) => (
            TokenType::EphemeralServiceAccount,
            state.default_lifespan.0.clone(),
        ),
        Some(Value::Number(n)) if n.as_i64() == Some(-1) => (TokenType::Persistent, "-1".into()),
        Some(Value::Number(n)) => (TokenType::EphemeralServiceAccount, n.to_string()),
        Some(Value::String(s)) => (TokenType::EphemeralServiceAccount, s.clone()),
        Some(_) => return Err(input_invalid()),
    };
    let lifespan = Lifespan::parse(&lifespan_text).ok_or_else(input_invalid)?;
    let description = match body.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(input_invalid()),
    };
    let force_new = match body.get("new") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(input_invalid()),
    };
    let account = match state.repo.get::<Account>(ACCOUNTS, &account_id).await? {
        // A non-admin mints only for their own account or their own tenant's (OIH let any
        // holder of `iam.token.create` act as anybody); another tenant's account looks absent.
        Some(a)
            if a.body.status == Status::Active
                && (a.id == caller.id() || caller.sees_tenant(a.body.tenant.as_deref())) =>
        {
            a
        }
        _ => return Err(ApiError::not_found("FORBIDDEN")),
    };
    if !caller.is_admin() {
        // Nor may the token carry anything the caller lacks: the account's effective
        // permissions (its own and its roles') and the custom ones.
        let (_, effective) = state.resolve_roles(&account.body, &custom).await?;
        if !effective.iter().all(|p| caller.permissions.contains(p)) {
            return Err(forbidden());
        }
    }
    let permissions = merge([account.body.permissions.as_slice(), custom.as_slice()]);
    let token = mint(
        &state,
        MintRequest {
            account_id,
            kind,
            lifespan_text,
            lifespan,
            initiator: Some(caller.id().to_owned()),
            inquirer: Some(inquirer),
            permissions,
            description,
            force_new,
        },
    )
    .await?;
    Ok(Json(json!({"token": token.body.token, "id": token.id})))
}

/// `POST /introspect` `{token}`: the token owner's account with roles, merged permissions and
/// `isAdmin`; 404 for unknown, expired or disabled.
pub async fn introspect(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    caller.can(&["iam.token.introspect"])?;
    let token = body
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(input_invalid)?;
    match resolve(&state, token).await? {
        Some(resolved) => Ok(Json(resolved.introspection())),
        None => Err(not_found()),
    }
}

/// The caller's own token (its expiry was pushed forward by the lookup).
pub async fn refresh(caller: Caller) -> Json<Value> {
    Json(json!({"token": caller.token.body.token}))
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Q,
) -> Result<Json<Value>, ApiError> {
    caller.admin()?;
    valid_id(&id)?;
    let token = state
        .repo
        .get::<TokenDoc>(TOKENS, &id)
        .await?
        .ok_or_else(not_found)?;
    Ok(one_response(render(&token, &[]), wants_meta(&query)))
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.can(&["iam.token.delete"])?;
    valid_id(&id)?;
    let Some(token) = state.repo.get::<TokenDoc>(TOKENS, &id).await? else {
        return Ok(ok());
    };
    if state.repo.delete(TOKENS, &id).await? {
        state.forget_identities();
        state
            .events
            .token_deleted(json!({"id": id, "user": token.body.account_id}))
            .await;
    }
    Ok(ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_all_but_the_last_four() {
        assert_eq!(super::mask("abcdefgh"), "****efgh");
        assert_eq!(super::mask("abc"), "abc");
    }
}
