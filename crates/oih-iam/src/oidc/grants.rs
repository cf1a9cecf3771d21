//! Authorization codes (`iam_oidc_codes`) and OIDC access and refresh tokens
//! (`iam_oidc_tokens`). Only fingerprints are stored; each document carries its store expiry,
//! and the expiry is checked here as well. A redeemed code is kept (marked used, with a
//! versioned update so that of two concurrent redemptions only one wins) until it expires: if
//! it comes back, it may have been stolen, and every token that descends from it is revoked
//! (RFC 6749 §4.1.2).

use std::time::Duration;

use chrono::{DateTime, Utc};
use oih_store::{Filter, StoreError};
use serde::{Deserialize, Serialize};

use super::error::OAuthError;
use super::{fingerprint, random_secret};
use crate::state::AppState;
use crate::store::{OIDC_CODES, OIDC_TOKENS, Stored};

/// What the user approved at the login form, waiting for the client to redeem it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Code {
    pub code_hash: String,
    pub client_id: String,
    pub account_id: String,
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub scope: String,
    pub auth_time: i64,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub used: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub token_hash: String,
    pub kind: TokenKind,
    pub client_id: String,
    /// The user; absent for `client_credentials` tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Fingerprint of the authorization code this token descends from (through any number of
    /// refreshes), so that a replayed code can revoke them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub expires_at: DateTime<Utc>,
}

pub fn expiry(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

/// Stores the code (already filled in but for its fingerprint) and returns the code itself.
pub async fn issue_code(state: &AppState, mut code: Code) -> Result<String, OAuthError> {
    let raw = random_secret();
    code.code_hash = fingerprint(&raw);
    state
        .repo
        .insert(OIDC_CODES, &code, Some(code.expires_at))
        .await?;
    Ok(raw)
}

/// The code's grant, consumed: `None` when unknown, expired or used before (and then the
/// tokens it gave are revoked).
pub async fn redeem_code(state: &AppState, raw: &str) -> Result<Option<Code>, OAuthError> {
    let hash = fingerprint(raw);
    let found: Option<Stored<Code>> = state
        .repo
        .find_one(OIDC_CODES, &Filter::eq("codeHash", hash.clone()))
        .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    if found.body.used {
        state
            .repo
            .delete_many(OIDC_TOKENS, &Filter::eq("origin", hash))
            .await?;
        return Ok(None);
    }
    if found.body.expires_at <= Utc::now() {
        return Ok(None);
    }
    let mut used = found.body.clone();
    used.used = true;
    match state.repo.update(OIDC_CODES, &found, &used).await {
        Ok(_) => Ok(Some(found.body)),
        // Somebody redeemed it at the same moment.
        Err(StoreError::Conflict { .. } | StoreError::NotFound) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Stores a token (its fingerprint set here) and returns the token itself.
pub async fn issue_token(state: &AppState, mut grant: Grant) -> Result<String, OAuthError> {
    let raw = random_secret();
    grant.token_hash = fingerprint(&raw);
    state
        .repo
        .insert(OIDC_TOKENS, &grant, Some(grant.expires_at))
        .await?;
    Ok(raw)
}

/// A live token of the given kind.
pub async fn find_token(
    state: &AppState,
    raw: &str,
    kind: TokenKind,
) -> Result<Option<Stored<Grant>>, OAuthError> {
    let found: Option<Stored<Grant>> = state
        .repo
        .find_one(OIDC_TOKENS, &Filter::eq("tokenHash", fingerprint(raw)))
        .await?;
    Ok(found.filter(|g| g.body.kind == kind && g.body.expires_at > Utc::now()))
}

/// Deletes a token; false when somebody else deleted it first (a refresh token used twice).
pub async fn consume(state: &AppState, grant: &Stored<Grant>) -> Result<bool, OAuthError> {
    Ok(state.repo.delete(OIDC_TOKENS, &grant.id).await?)
}
