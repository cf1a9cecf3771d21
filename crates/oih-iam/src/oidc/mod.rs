//! The OpenID Connect provider (issue 3, item 3; OIH used node `oidc-provider` under `/op`):
//! discovery, JWKS, the authorization-code flow with PKCE behind a minimal login form, the
//! token endpoint (`authorization_code`, `refresh_token`, `client_credentials`), userinfo,
//! and client registration by an admin.
//!
//! Layout: `discovery` (metadata, keys), `clients` (registration, client authentication),
//! `authorize` (login form, codes), `token`, `userinfo`, `grants` (codes and tokens at rest,
//! stored only as SHA-256 fingerprints), `error` (RFC 6749 error bodies).

mod authorize;
mod clients;
mod discovery;
mod error;
mod grants;
mod token;
mod userinfo;

use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::jwt::{Jwt, JwtAlgorithm, JwtSettings};
use crate::password::to_hex;
use crate::state::AppState;
use crate::store::Repo;
use error::OAuthError;

/// Scopes the provider knows; others in a request are ignored.
const SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The provider's settings and its RS256 signing keys.
pub struct Oidc {
    /// RSA keys in `iam_keys`, shared with the RS256 login JWTs when those are configured.
    pub keys: Jwt,
    issuer: String,
    code_ttl: Duration,
    access_ttl: Duration,
    id_ttl: Duration,
    refresh_ttl: Duration,
}

impl Oidc {
    /// The provider when enabled; makes sure an RSA signing key exists.
    pub async fn open(config: &Config, repo: &Repo) -> Result<Option<Self>, crate::Error> {
        if !config.oidc_enabled {
            return Ok(None);
        }
        let issuer = config.base_url.trim_end_matches('/').to_owned();
        let id_ttl = Duration::from_secs(config.oidc_id_token_ttl_seconds);
        let settings = JwtSettings {
            algorithm: JwtAlgorithm::Rsa,
            secret: None,
            issuer: issuer.clone(),
            audience: issuer.clone(),
            rotation: Duration::from_secs(config.jwt_key_rotation_seconds),
            // A retired key must verify every ID token it signed.
            grace: id_ttl,
        };
        Ok(Some(Self {
            keys: Jwt::open(settings, repo).await?,
            issuer,
            code_ttl: Duration::from_secs(config.oidc_code_ttl_seconds),
            access_ttl: Duration::from_secs(config.oidc_access_token_ttl_seconds),
            id_ttl,
            refresh_ttl: Duration::from_secs(config.oidc_refresh_token_ttl_seconds),
        }))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// The provider, for handlers that are only mounted when it exists.
fn provider(state: &AppState) -> Result<&Oidc, OAuthError> {
    state
        .oidc
        .as_ref()
        .ok_or_else(|| OAuthError::server_error("OIDC provider not configured"))
}

/// Codes, tokens and client secrets are random; a fast digest is enough to keep them
/// unusable when the database leaks, and lets them be looked up by value.
fn fingerprint(secret: &str) -> String {
    to_hex(&Sha256::digest(secret.as_bytes()))
}

/// 32 random bytes, base64url: codes, tokens, client secrets.
fn random_secret() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The known scopes of a space-separated list, in our order, once each.
fn known_scopes(requested: &str) -> Vec<&'static str> {
    let asked: Vec<&str> = requested.split_ascii_whitespace().collect();
    SCOPES
        .iter()
        .copied()
        .filter(|s| asked.contains(s))
        .collect()
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split_ascii_whitespace().any(|s| s == wanted)
}

/// The protocol endpoints (OIH's `/op` mount, discovery at the issuer's well-known path).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/op/certs", get(discovery::certs))
        .route("/op/auth", get(authorize::form).post(authorize::login))
        .route("/op/token", axum::routing::post(token::token))
        .route("/op/me", get(userinfo::userinfo).post(userinfo::userinfo))
}

/// Client management, under `/api/v1`, admins only.
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/oidc/clients", get(clients::list).post(clients::register))
        .route("/oidc/clients/{id}", delete(clients::remove))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_filtered_and_ordered() {
        assert_eq!(
            known_scopes("email bogus openid email"),
            vec!["openid", "email"]
        );
        assert!(has_scope("openid profile", "profile"));
        assert!(!has_scope("openid profiles", "profile"));
    }

    #[test]
    fn fingerprints_are_sha256_hex() {
        assert_eq!(
            fingerprint("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(random_secret(), random_secret());
    }
}
