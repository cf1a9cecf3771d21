//! The IAM service (iam-ils.md §1–§11): accounts, tenants, roles, permissions, opaque tokens
//! (and, configurable, HS256/RS256 JWT login tokens with a JWKS), login/logout and token
//! introspection, with OIH's paths, bodies, status codes and `{message}` errors; an OpenID
//! Connect provider when enabled; plus the two [`oih_http::Authenticator`]s every other
//! service authenticates with: [`LocalAuthenticator`] (IAM in the same process: no network
//! hop, a short cache) and [`IntrospectionAuthenticator`] (a service running alone: local JWT
//! verification, OIH's introspection call for opaque tokens).
//!
//! Layout: `model` (documents and validation), `store` (the `iam_*` collections), `password`,
//! `tokens` (minting, lookup, expiry), `jwt` (signing, keys, rotation), `access` (the caller
//! and IAM's guards), `routes/*` (handlers), `events`, `throttle`, `bootstrap`, `authn`,
//! `oidc/*` (the OpenID Connect provider).

mod access;
mod authn;
mod bootstrap;
mod config;
mod events;
mod jwt;
mod model;
mod oidc;
mod openapi;
mod password;
mod permissions;
mod routes;
mod state;
mod store;
mod throttle;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use oih_bus::MessageBus;
use oih_http::{Authenticator, BoxError, ErrorShape, ServiceModule, Worker};
use oih_store::DocStore;

pub use authn::{
    IntrospectionAuthenticator, IntrospectionConfig, LocalAuthenticator, PasswordLogins,
};
pub use config::{Config, Secret, TokenFormat};
pub use jwt::JwtAlgorithm;
pub use permissions::{COMMON_PERMISSIONS, RESTRICTED_PERMISSIONS};

/// The service's name on the event bus and in metrics (OIH's IAM publishes as `accounts`
/// on the bus; the module name is what `serve --only` selects).
pub const SERVICE_NAME: &str = "iam";
const EVENT_SERVICE_NAME: &str = "accounts";

/// What IAM needs from the hub.
#[derive(Clone)]
pub struct Deps {
    pub docs: Arc<dyn DocStore>,
    pub bus: Arc<dyn MessageBus>,
}

/// Why IAM could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("bus: {0}")]
    Bus(#[from] oih_bus::BusError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("stored IAM data is not valid: {0}")]
    Data(String),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

/// What `serve` gets from IAM: the routes, the authenticator the other services use when IAM
/// runs in the same process, and the hub's own service token.
pub struct Iam {
    pub module: ServiceModule,
    /// Checks tokens against IAM's store through a short in-memory cache. Using a token writes
    /// at most one expiry extension per refresh interval, never one per request.
    pub authenticator: Arc<dyn Authenticator>,
    /// The persistent token of the bootstrap service account (`iam.token.*` and `all`), for
    /// services that call IAM over HTTP (OIH's `IAM_TOKEN`).
    pub service_token: String,
    /// Password checks for Basic credentials on webhooks in the same process.
    pub logins: PasswordLogins,
    /// The admin password generated on this start, when one was (it has been printed on
    /// stdout, once); `None` on later starts or when the password was configured.
    pub generated_admin_password: Option<Secret>,
}

/// Builds IAM: declares its collections, runs the first-start bootstrap and returns the module.
pub async fn module(config: Config, deps: Deps) -> Result<Iam, Error> {
    let state = state::AppState::open(&config, &deps).await?;
    let bootstrap::Outcome {
        service_token,
        generated_admin_password,
    } = bootstrap::run(&state, &config).await?;
    let authenticator: Arc<dyn Authenticator> = Arc::new(LocalAuthenticator::new(state.clone()));
    let logins = PasswordLogins::new(state.clone());
    let mut module = ServiceModule::new(
        SERVICE_NAME,
        ErrorShape::Message,
        routes::router(state.clone()),
    )
    .with_openapi(openapi::document(state.oidc.is_some()));
    if state.jwt.is_some() || state.oidc.is_some() {
        module = module.with_worker(Worker::new("iam-jwt-keys", move |cancel| {
            rotate_keys(state, cancel)
        }));
    }
    Ok(Iam {
        module,
        authenticator,
        service_token,
        logins,
        generated_admin_password,
    })
}

/// How often the JWT key set is reloaded (picking up keys other replicas made) and rotated.
const KEY_REFRESH: Duration = Duration::from_secs(60);

async fn rotate_keys(
    state: state::AppState,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<(), BoxError> {
    let key_sets = state.jwt.iter().chain(state.oidc.as_ref().map(|o| &o.keys));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(KEY_REFRESH) => {
                for keys in key_sets.clone() {
                    // A failed refresh keeps the current keys; the next tick tries again.
                    if let Err(err) = keys.refresh(&state.repo).await {
                        tracing::warn!(error = %err, "JWT key refresh failed");
                    }
                }
            }
        }
    }
}
