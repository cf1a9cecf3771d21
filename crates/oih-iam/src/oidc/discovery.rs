//! `GET /.well-known/openid-configuration` and the provider's public keys (`GET /op/certs`,
//! OIH's `oidc-provider` path).

use axum::extract::State;
use serde_json::{Value, json};

use super::error::OAuthError;
use super::{SCOPES, provider};
use crate::state::AppState;

pub async fn configuration(State(state): State<AppState>) -> Result<axum::Json<Value>, OAuthError> {
    let op = provider(&state)?;
    Ok(axum::Json(json!({
        "issuer": op.issuer,
        "authorization_endpoint": op.url("/op/auth"),
        "token_endpoint": op.url("/op/token"),
        "userinfo_endpoint": op.url("/op/me"),
        "jwks_uri": op.url("/op/certs"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp",
            "preferred_username", "name", "given_name", "family_name", "email", "email_verified"
        ],
    })))
}

pub async fn certs(State(state): State<AppState>) -> Result<axum::Json<Value>, OAuthError> {
    provider(&state)?
        .keys
        .jwks()
        .map(axum::Json)
        .ok_or_else(|| OAuthError::server_error("no RSA keys"))
}
