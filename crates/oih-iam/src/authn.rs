//! The two ways another service learns who a bearer token belongs to (data-services.md §0.1):
//! - [`LocalAuthenticator`]: IAM runs in the same process; the token is looked up in IAM's
//!   store (no network hop) and the answer kept for a few seconds;
//! - [`IntrospectionAuthenticator`]: the service runs alone (`serve --only`); it verifies IAM's
//!   JWTs itself (RS256 against IAM's JWKS, or HS256 with the shared secret) and asks IAM
//!   about opaque tokens with OIH's introspection call. Both answers are cached briefly.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use oih_core::{Identity, TtlCache};
use oih_http::{AuthError, Authenticator};
use serde_json::Value;

use crate::config::Secret;
use crate::jwt::{Claims, Verifier, ensure_crypto_provider, looks_like_jwt};
use crate::routes::auth::{LoginFailure, check_credentials};
use crate::state::AppState;
use crate::tokens::resolve;

/// A JWT naming an unknown key triggers a JWKS download at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(10);

/// Checks tokens against IAM's own store. Revocations made through IAM clear its cache.
pub struct LocalAuthenticator {
    state: AppState,
}

impl LocalAuthenticator {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[async_trait]
impl Authenticator for LocalAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        if let Some(identity) = self.state.identities.get(token) {
            return Ok(identity);
        }
        match resolve(&self.state, token).await {
            Ok(Some(resolved)) => {
                let identity = resolved.identity();
                self.state
                    .identities
                    .put(token, identity.clone(), resolved.token.body.expire_at);
                Ok(identity)
            }
            Ok(None) => Err(AuthError::not_found()),
            Err(err) => {
                tracing::warn!(error = %err, "token lookup failed");
                Err(AuthError::failed())
            }
        }
    }
}

/// Username and password checks for services that accept Basic credentials (the webhooks),
/// with the same throttle, failure events and hash upgrade as `POST /login`.
#[derive(Clone)]
pub struct PasswordLogins {
    state: AppState,
}

impl PasswordLogins {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    /// The account's identity with its effective permissions; `None` when the credentials
    /// are refused (unknown user, wrong password, disabled, throttled).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<Identity>, crate::Error> {
        let account = match check_credentials(&self.state, username, password).await {
            Ok(account) => account,
            Err(LoginFailure::Throttled | LoginFailure::Rejected(_)) => return Ok(None),
            Err(LoginFailure::Store(err)) => return Err(err.into()),
            Err(LoginFailure::Hash(err)) => return Err(crate::Error::Data(err)),
        };
        let (_, permissions) = self.state.resolve_roles(&account.body, &[]).await?;
        let mut identity = Identity::new(account.id, account.body.tenant.clone(), permissions);
        identity.username = account.body.username;
        Ok(Some(identity))
    }
}

/// How a service running without IAM reaches it (iam-utils' variables, plus where to find
/// IAM's JWT keys).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "iam-introspection")]
pub struct IntrospectionConfig {
    /// IAM's introspection endpoint.
    #[arg(
        long = "introspect-endpoint-basic",
        env = "INTROSPECT_ENDPOINT_BASIC",
        default_value = "http://iam.openintegrationhub.com/api/v1/tokens/introspect"
    )]
    pub endpoint: String,

    /// This service's own token; it needs `iam.token.introspect`.
    #[arg(
        long = "iam-token",
        env = "IAM_TOKEN",
        default_value = "NoToken",
        hide_env_values = true
    )]
    pub iam_token: Secret,

    /// Seconds an introspection or JWT answer is reused (0: check every time).
    #[arg(
        long = "iam-token-cache-ttl",
        env = "IAM_TOKEN_CACHE_TTL",
        default_value_t = 10
    )]
    pub cache_ttl_seconds: u64,

    /// IAM's JWKS (`<iam>/.well-known/jwks.json`): RS256 JWTs are then verified locally.
    #[arg(long = "iam-jwks-url", env = "IAM_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// IAM's HS256 secret: HS256 JWTs are then verified locally.
    #[arg(
        long = "iam-jwt-verify-secret",
        env = "IAM_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_verify_secret: Option<Secret>,

    /// The `iss` IAM puts into its JWTs (IAM's base URL).
    #[arg(
        long = "iam-jwt-issuer",
        env = "IAM_BASEURL",
        default_value = "https://127.0.0.1:3099"
    )]
    pub jwt_verify_issuer: String,

    /// The `aud` IAM puts into its JWTs.
    #[arg(
        long = "iam-jwt-verify-audience",
        env = "IAM_JWT_AUDIENCE",
        default_value = "example.com"
    )]
    pub jwt_verify_audience: String,
}

/// An identity and the expiry of the token it was checked from, when known.
type Checked = (Identity, Option<DateTime<Utc>>);

/// OIH's `iam-utils` introspection in basic mode, with local JWT verification.
pub struct IntrospectionAuthenticator {
    client: reqwest::Client,
    endpoint: String,
    iam_token: Secret,
    cache: TtlCache<Identity>,
    jwt: Option<RemoteKeys>,
}

/// IAM's JWT keys as seen from another process.
struct RemoteKeys {
    jwks_url: Option<String>,
    issuer: String,
    audience: String,
    verifier: RwLock<Arc<Verifier>>,
    fetched: Mutex<Option<Instant>>,
}

impl IntrospectionAuthenticator {
    pub fn new(config: &IntrospectionConfig) -> Result<Arc<Self>, crate::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let jwt = match (&config.jwt_verify_secret, &config.jwks_url) {
            (None, None) => None,
            (secret, jwks_url) => {
                ensure_crypto_provider();
                let alg = if secret.is_some() {
                    Algorithm::HS256
                } else {
                    Algorithm::RS256
                };
                let mut verifier =
                    Verifier::new(alg, &config.jwt_verify_issuer, &config.jwt_verify_audience);
                if let Some(secret) = secret {
                    verifier = verifier.with_shared_secret(secret.expose().as_bytes())?;
                }
                Some(RemoteKeys {
                    jwks_url: jwks_url.clone(),
                    issuer: config.jwt_verify_issuer.clone(),
                    audience: config.jwt_verify_audience.clone(),
                    verifier: RwLock::new(Arc::new(verifier)),
                    fetched: Mutex::new(None),
                })
            }
        };
        Ok(Arc::new(Self {
            client,
            endpoint: config.endpoint.clone(),
            iam_token: config.iam_token.clone(),
            cache: TtlCache::new(Duration::from_secs(config.cache_ttl_seconds)),
            jwt,
        }))
    }

    /// The identity and, when IAM tells it (`tokenExpireAt`, which OIH's IAM does not send),
    /// when the token expires.
    async fn introspect(&self, token: &str) -> Result<Checked, AuthError> {
        let response = self
            .client
            .post(&self.endpoint)
            .bearer_auth(self.iam_token.expose())
            .header(oih_http::auth::AUTH_TYPE_HEADER, "basic")
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .map_err(|err| {
                tracing::warn!(error = %err, "introspection request failed");
                AuthError::failed()
            })?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(AuthError::not_found()),
            status => {
                tracing::warn!(status, "introspection refused");
                return Err(AuthError::failed());
            }
        }
        let body: Value = response.json().await.map_err(|_| AuthError::failed())?;
        let identity = identity_from(&body).ok_or_else(AuthError::failed)?;
        let expires = body
            .get("tokenExpireAt")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok((identity, expires))
    }

    /// Verifies a JWT without asking IAM. A revoked (logged-out) JWT stays valid here until
    /// its `exp`: that is the price of not calling IAM.
    async fn verify_locally(&self, keys: &RemoteKeys, token: &str) -> Result<Checked, AuthError> {
        let current = || {
            keys.verifier
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        };
        if current().lacks_key_for(token) {
            self.fetch_jwks(keys).await;
        }
        let claims = current().verify(token).ok_or_else(AuthError::failed)?;
        let expires = DateTime::from_timestamp(claims.exp, 0);
        Ok((identity_from_claims(claims), expires))
    }

    /// Downloads IAM's JWKS (after key rotation the kid is new), at most every few seconds.
    async fn fetch_jwks(&self, keys: &RemoteKeys) {
        let Some(url) = &keys.jwks_url else { return };
        {
            let mut fetched = keys.fetched.lock().unwrap_or_else(|p| p.into_inner());
            if fetched.is_some_and(|at| at.elapsed() < JWKS_REFETCH) {
                return;
            }
            *fetched = Some(Instant::now());
        }
        let set = match self.client.get(url).send().await {
            Ok(res) if res.status().is_success() => res.json::<JwkSet>().await.ok(),
            Ok(res) => {
                tracing::warn!(status = res.status().as_u16(), "JWKS refused");
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "JWKS request failed");
                None
            }
        };
        if let Some(set) = set {
            let verifier =
                Verifier::new(Algorithm::RS256, &keys.issuer, &keys.audience).with_jwks(&set);
            *keys.verifier.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(verifier);
        }
    }
}

fn identity_from_claims(claims: Claims) -> Identity {
    let mut identity = Identity::new(claims.sub, claims.tenant, claims.permissions);
    identity.username = claims.username;
    identity
}

/// iam-utils' user object, reduced to what [`Identity`] carries: `sub` (or `_id`), `username`,
/// `tenant`, `permissions`.
fn identity_from(body: &Value) -> Option<Identity> {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let sub = text("sub").or_else(|| text("_id"))?;
    let permissions = body
        .get("permissions")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut identity = Identity::new(sub, text("tenant"), permissions);
    identity.username = text("username").unwrap_or_default();
    Some(identity)
}

#[async_trait]
impl Authenticator for IntrospectionAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        if let Some(identity) = self.cache.get(token) {
            return Ok(identity);
        }
        let (identity, expires) = match &self.jwt {
            Some(keys) if looks_like_jwt(token) => self.verify_locally(keys, token).await?,
            _ => self.introspect(token).await?,
        };
        self.cache.put(token, identity.clone(), expires);
        Ok(identity)
    }
}
