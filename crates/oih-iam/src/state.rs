//! The state every IAM handler shares.

use std::sync::Arc;
use std::time::Duration;

use oih_bus::EventBus;
use oih_core::{Identity, TtlCache};
use oih_store::{Filter, StoreError};
use serde_json::Value;

use crate::config::{Config, TokenFormat};
use crate::events::Events;
use crate::jwt::{Jwt, JwtAlgorithm, JwtSettings};
use crate::model::{Account, Role};
use crate::password::Hasher;
use crate::permissions::merge;
use crate::store::{ROLES, Repo, Stored};
use crate::throttle::Throttle;
use crate::tokens::Lifespan;
use crate::{Deps, EVENT_SERVICE_NAME, Error};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub repo: Repo,
    pub hasher: Hasher,
    pub events: Events,
    /// token → identity, for [`crate::LocalAuthenticator`]; cleared on every change that can
    /// revoke or narrow a token.
    pub identities: TtlCache<Identity>,
    pub throttle: Throttle,
    /// `IAM_JWT_EXPIRES` as given (stored on tokens as `tokenLifeSpan`) and parsed.
    pub default_lifespan: (String, Lifespan),
    pub refresh_every: Duration,
    /// JWT keys: present when login tokens are JWTs, or in RSA mode (for the JWKS).
    pub jwt: Option<Jwt>,
    /// Login tokens are JWTs.
    pub issue_jwt: bool,
    /// The OpenID Connect provider, when enabled.
    pub oidc: Option<crate::oidc::Oidc>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub async fn open(config: &Config, deps: &Deps) -> Result<Self, Error> {
        let repo = Repo::open(deps.docs.clone()).await?;
        let hasher = Hasher::new(config.argon2_memory_kib, config.argon2_iterations)
            .map_err(|e| Error::Config(e.to_string()))?;
        let bus = EventBus::new(deps.bus.clone(), EVENT_SERVICE_NAME).await?;
        let lifespan = Lifespan::parse(&config.token_lifespan)
            .filter(|l| *l != Lifespan::Never)
            .ok_or_else(|| {
                Error::Config(format!(
                    "token lifespan {:?} is not a duration like 3h",
                    config.token_lifespan
                ))
            })?;
        // RSA mode publishes a JWKS even when logins hand out opaque tokens, as OIH's does.
        let issue_jwt = config.token_format == TokenFormat::Jwt;
        let jwt = match issue_jwt || config.jwt_algorithm == JwtAlgorithm::Rsa {
            false => None,
            true => {
                let Lifespan::For(grace) = lifespan else {
                    return Err(Error::Config("JWTs need a finite token lifespan".into()));
                };
                let settings = JwtSettings {
                    algorithm: config.jwt_algorithm,
                    secret: config.jwt_secret.clone(),
                    issuer: config.base_url.clone(),
                    audience: config.jwt_audience.clone(),
                    rotation: Duration::from_secs(config.jwt_key_rotation_seconds),
                    grace,
                };
                Some(Jwt::open(settings, &repo).await?)
            }
        };
        let oidc = crate::oidc::Oidc::open(config, &repo).await?;
        Ok(Self(Arc::new(Inner {
            repo,
            hasher,
            events: Events::new(bus),
            identities: TtlCache::new(config.auth_cache_ttl()),
            throttle: Throttle::new(
                config.login_max_failures,
                Duration::from_secs(config.login_lockout_seconds),
            ),
            default_lifespan: (config.token_lifespan.clone(), lifespan),
            refresh_every: Duration::from_secs(config.token_refresh_seconds),
            jwt,
            issue_jwt,
            oidc,
        })))
    }

    /// The account's roles (those that still exist) and its effective permissions: its own,
    /// then its roles', then `extra` (a token's), without duplicates (iam-ils.md §5.2).
    pub async fn resolve_roles(
        &self,
        account: &Account,
        extra: &[String],
    ) -> Result<(Vec<Stored<Role>>, Vec<String>), StoreError> {
        let roles: Vec<Stored<Role>> = if account.roles.is_empty() {
            Vec::new()
        } else {
            let ids = account
                .roles
                .iter()
                .map(|r| Value::String(r.clone()))
                .collect();
            self.repo
                .find(ROLES, &Filter::In("_id".into(), ids))
                .await?
        };
        let mut lists: Vec<&[String]> = vec![account.permissions.as_slice()];
        lists.extend(roles.iter().map(|r| r.body.permissions.as_slice()));
        lists.push(extra);
        let permissions = merge(lists);
        Ok((roles, permissions))
    }

    /// Call after anything that may revoke or narrow existing tokens.
    pub fn forget_identities(&self) {
        self.identities.clear();
    }
}
