//! Helpers for router tests of every service (public on purpose; nothing here is used in
//! production paths).

use std::collections::HashMap;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use oih_core::Identity;
use serde_json::Value;
use tower::ServiceExt as _;

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

/// Calls a router in process, as the service tests do: a JSON body in, the status and the
/// JSON answer out (an answer that is not JSON comes back as a string).
#[derive(Clone)]
pub struct Client {
    router: axum::Router,
}

impl Client {
    pub fn new(router: axum::Router) -> Self {
        Self { router }
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    /// `method uri`, with `token` as a Bearer token and `body` as JSON when given.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_text(method, uri, token, body.map(|b| b.to_string()))
            .await
    }

    /// As [`Client::call`], the body sent as it is with a JSON content type (malformed JSON
    /// included).
    pub async fn call_text(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = match body {
            Some(body) => req
                .header("content-type", "application/json")
                .body(Body::from(body)),
            None => req.body(Body::empty()),
        };
        self.send(req.expect("request")).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, Some(token), Some(body)).await
    }

    pub async fn put(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("PUT", uri, Some(token), Some(body)).await
    }

    pub async fn patch(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("PATCH", uri, Some(token), Some(body)).await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call("DELETE", uri, Some(token), None).await
    }
}
