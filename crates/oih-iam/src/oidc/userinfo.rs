//! `GET|POST /op/me`: the claims of the user an access token was issued for, limited to the
//! token's scopes. Also builds the same claims for ID tokens.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::error::OAuthError;
use super::grants::{TokenKind, find_token};
use super::has_scope;
use crate::model::{Account, Status};
use crate::state::AppState;
use crate::store::{ACCOUNTS, Stored};

/// OIDC standard claims from an account (OIH usernames are e-mail addresses).
pub fn profile_claims(account: &Account, scope: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    if has_scope(scope, "profile") {
        claims.insert("preferred_username".into(), account.username.clone().into());
        let names: Vec<&str> = [&account.firstname, &account.lastname]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !names.is_empty() {
            claims.insert("name".into(), names.join(" ").into());
        }
        if let Some(first) = &account.firstname {
            claims.insert("given_name".into(), first.clone().into());
        }
        if let Some(last) = &account.lastname {
            claims.insert("family_name".into(), last.clone().into());
        }
    }
    if has_scope(scope, "email") {
        claims.insert("email".into(), account.username.clone().into());
        claims.insert("email_verified".into(), account.confirmed.into());
    }
    claims
}

/// An active account, or `None` when it is gone or disabled.
pub async fn active_account(
    state: &AppState,
    id: &str,
) -> Result<Option<Stored<Account>>, OAuthError> {
    let account: Option<Stored<Account>> = state.repo.get(ACCOUNTS, id).await?;
    Ok(account.filter(|a| a.body.status == Status::Active))
}

pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, OAuthError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(OAuthError::invalid_token)?;
    let grant = find_token(&state, token.trim(), TokenKind::Access)
        .await?
        .filter(|g| has_scope(&g.body.scope, "openid"))
        .ok_or_else(OAuthError::invalid_token)?;
    // Client-credentials tokens have no user to describe.
    let account_id = grant
        .body
        .account_id
        .as_deref()
        .ok_or_else(OAuthError::invalid_token)?;
    let account = active_account(&state, account_id)
        .await?
        .ok_or_else(OAuthError::invalid_token)?;
    let mut claims = profile_claims(&account.body, &grant.body.scope);
    claims.insert("sub".into(), account.id.into());
    Ok(axum::Json(Value::Object(claims)))
}
