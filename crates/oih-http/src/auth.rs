//! The authentication contract every service relies on, with OIH's iam-utils messages
//! (data-services.md §0.1, iam-ils.md §16.3).
//!
//! IAM implements [`Authenticator`] (local token lookup when it runs in the same process,
//! introspection over HTTP when it does not); the app puts it in the request extensions as
//! [`Authn`], and handlers take an [`Auth`] argument to get the caller's [`Identity`].

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use oih_core::Identity;

use crate::ApiError;

/// Header with which a caller picks the introspection type (`basic` / `oidc`) per request.
pub const AUTH_TYPE_HEADER: &str = "x-auth-type";

/// Why a token was not accepted. Rendered as iam-utils renders it, inside a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// IAM answered that the token is not valid: `Token invalid. Error: <reason>.`
    #[error("{0}")]
    Rejected(String),
    /// Introspection failed: `Token invalid. Error: <name>. Details: <message>`.
    #[error("{name}: {message}")]
    Failed { name: String, message: String },
}

impl AuthError {
    /// IAM does not know the token (iam-utils: IAM answered 404).
    pub fn not_found() -> Self {
        Self::Failed {
            name: "Error".into(),
            message: "Token not found in IAM".into(),
        }
    }

    /// Anything else went wrong while checking the token (IAM unreachable, bad answer).
    pub fn failed() -> Self {
        Self::Failed {
            name: "Error".into(),
            message: "Authorization failed".into(),
        }
    }

    /// OIDC introspection said `active: false`.
    pub fn expired() -> Self {
        Self::Rejected("Token expired".into())
    }

    /// The 401 message OIH clients see.
    pub fn message(&self) -> String {
        match self {
            Self::Rejected(reason) => format!("Token invalid. Error: {reason}."),
            Self::Failed { name, message } => {
                format!("Token invalid. Error: {name}. Details: {message}")
            }
        }
    }
}

/// Turns a bearer token into the caller's identity.
#[async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError>;

    /// Same, honouring the caller's `x-auth-type` header (`basic`/`oidc`), which OIH passes
    /// through to introspection. Implementations that have one way to check ignore it.
    async fn authenticate_as(
        &self,
        token: &str,
        auth_type: Option<&str>,
    ) -> Result<Identity, AuthError> {
        let _ = auth_type;
        self.authenticate(token).await
    }
}

/// The app's authenticator, carried in the request extensions (so it works with any
/// router state type).
#[derive(Clone)]
pub struct Authn(pub Arc<dyn Authenticator>);

impl Authn {
    pub fn new(authenticator: impl Authenticator + 'static) -> Self {
        Self(Arc::new(authenticator))
    }
}

/// The authenticated user. As an extractor it answers 401 with OIH's messages when the
/// request has no valid bearer token, and 403 to a step token (see [`StepAuth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth(pub Identity);

/// The authenticated caller, a user or a flow step with its step token
/// ([`crate::step_token`]). Only the handlers a step needs take it (its secret, its
/// snapshots), and they check `identity.step` against what is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAuth(pub Identity);

impl std::ops::Deref for StepAuth {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

impl std::ops::Deref for Auth {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

/// An identity established earlier in this request (by [`require_auth`] or a previous
/// extractor). Private, so nothing else can plant one.
#[derive(Clone)]
struct Authenticated(Identity);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let identity = identify(parts).await?;
        if identity.step.is_some() {
            return Err(ApiError::Forbidden {
                message: "A step token reaches only its step's secret and snapshots".into(),
                details: None,
            });
        }
        Ok(Self(identity))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for StepAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        identify(parts).await.map(Self)
    }
}

/// The caller of this request, authenticated once and remembered for later extractors.
async fn identify(parts: &mut Parts) -> Result<Identity, ApiError> {
    if let Some(Authenticated(identity)) = parts.extensions.get::<Authenticated>() {
        return Ok(identity.clone());
    }
    let Some(Authn(authenticator)) = parts.extensions.get::<Authn>().cloned() else {
        return Err(ApiError::internal(
            "no authenticator installed: the app must add an Authn extension",
        ));
    };
    let identity = authenticate(authenticator.as_ref(), &parts.headers).await?;
    parts.extensions.insert(Authenticated(identity.clone()));
    Ok(identity)
}

/// iam-utils' middleware logic: the second space-separated part of `Authorization` is the
/// token (the scheme word is not checked, as in OIH).
pub async fn authenticate(
    authenticator: &dyn Authenticator,
    headers: &HeaderMap,
) -> Result<Identity, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(
            "Missing authorization header.".into(),
        ));
    };
    let invalid = || ApiError::Unauthorized("Invalid authorization header".into());
    let value = value.to_str().map_err(|_| invalid())?;
    let token = value.split(' ').nth(1).ok_or_else(invalid)?;
    let auth_type = headers.get(AUTH_TYPE_HEADER).and_then(|v| v.to_str().ok());
    authenticator
        .authenticate_as(token, auth_type)
        .await
        .map_err(|e| {
            tracing::debug!(error = %e, "token rejected");
            ApiError::Unauthorized(e.message())
        })
}

/// Middleware form of [`StepAuth`] (`router.route_layer(axum::middleware::from_fn(require_auth))`):
/// OIH puts the IAM middleware in front of whole routers, so e.g. an unauthenticated request
/// is a 401 before its body is looked at. Step tokens pass here; each handler's [`Auth`] or
/// [`StepAuth`] argument decides whether a step may go on.
pub async fn require_auth(mut req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match identify(&mut parts).await {
        Ok(_) => {
            req = Request::from_parts(parts, body);
            next.run(req).await
        }
        Err(err) => err.into_response(),
    }
}

/// OIH's `can(perms)`: 403 `MISSING_PERMISSION` with the required permissions as `details`
/// (a JSON array in a string, as `JSON.stringify(perms)`).
pub fn require(identity: &Identity, permissions: &[&str]) -> Result<(), ApiError> {
    if identity.can(permissions) {
        return Ok(());
    }
    Err(missing_permission(permissions))
}

/// OIH's `hasOneOf(perms)`, with the same 403 as [`require`].
pub fn require_one_of(identity: &Identity, permissions: &[&str]) -> Result<(), ApiError> {
    if identity.has_one_of(permissions) {
        return Ok(());
    }
    Err(missing_permission(permissions))
}

fn missing_permission(permissions: &[&str]) -> ApiError {
    ApiError::Forbidden {
        message: "MISSING_PERMISSION".into(),
        details: serde_json::to_string(permissions).ok(),
    }
}
