//! Helpers for router tests of every service (public on purpose; nothing here is used in
//! production paths).

use std::collections::HashMap;

use async_trait::async_trait;
use oih_core::Identity;

use crate::auth::{AuthError, Authenticator, Authn};
use crate::{App, ServiceModule};

/// A service's router as `oih serve` would mount it (error shape, 404/405, body limit, metrics),
/// authenticating with `authn`. For `tower::ServiceExt::oneshot` tests.
pub fn router(module: ServiceModule, authn: StaticAuthenticator) -> axum::Router {
    App::new()
        .module(module)
        .authenticator(std::sync::Arc::new(authn))
        .build()
        .router
}

/// Accepts a fixed set of tokens, each standing for one identity, like the nock'ed IAM of
/// OIH's own tests. Unknown tokens fail as IAM's 404 does.
#[derive(Debug, Clone, Default)]
pub struct StaticAuthenticator {
    tokens: HashMap<String, Identity>,
}

impl StaticAuthenticator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, token: impl Into<String>, identity: Identity) -> Self {
        self.tokens.insert(token.into(), identity);
        self
    }

    /// Shorthand: a user `sub` in `tenant` holding `permissions`.
    pub fn with_user(
        self,
        token: impl Into<String>,
        sub: &str,
        tenant: Option<&str>,
        permissions: &[&str],
    ) -> Self {
        let identity = Identity::new(
            sub,
            tenant.map(str::to_owned),
            permissions.iter().map(|p| (*p).to_owned()).collect(),
        );
        self.with(token, identity)
    }

    pub fn into_authn(self) -> Authn {
        Authn::new(self)
    }
}

#[async_trait]
impl Authenticator for StaticAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        self.tokens
            .get(token)
            .cloned()
            .ok_or_else(AuthError::not_found)
    }
}
