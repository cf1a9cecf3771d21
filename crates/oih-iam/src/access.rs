//! IAM's own authentication of its routes (iam-ils.md §6.3, with IAM's messages, which differ
//! from iam-utils') and its guards (§6.4).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use oih_http::ApiError;

use crate::model::Account;
use crate::permissions::is_common;
use crate::state::AppState;
use crate::tokens::{Resolved, resolve};

/// The authenticated caller of an IAM route.
pub struct Caller(pub Resolved);

impl std::ops::Deref for Caller {
    type Target = Resolved;
    fn deref(&self) -> &Resolved {
        &self.0
    }
}

pub fn unauthorized(message: &str) -> ApiError {
    ApiError::Unauthorized(message.to_owned())
}

pub fn forbidden() -> ApiError {
    ApiError::forbidden("FORBIDDEN")
}

fn missing_permission() -> ApiError {
    ApiError::forbidden("MISSING_PERMISSION")
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(""));
        };
        let value = value.to_str().map_err(|_| unauthorized("INVALID_HEADER"))?;
        let token = value
            .split(' ')
            .nth(1)
            .ok_or_else(|| unauthorized("INVALID_HEADER"))?;
        // Only basic (opaque token) authentication exists; OIH answers other types with 400.
        let auth_type = parts
            .headers
            .get(oih_http::auth::AUTH_TYPE_HEADER)
            .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase());
        if auth_type.as_deref().is_some_and(|t| t != "basic") {
            return Err(ApiError::Other {
                status: StatusCode::BAD_REQUEST,
                message: String::new(),
            });
        }
        match resolve(state, token).await {
            Ok(Some(resolved)) => Ok(Self(resolved)),
            Ok(None) => Err(unauthorized("VALIDATION_ERROR")),
            Err(err) => Err(ApiError::internal(err)),
        }
    }
}

impl Caller {
    pub fn tenant(&self) -> Option<&str> {
        self.account.body.tenant.as_deref()
    }

    pub fn id(&self) -> &str {
        &self.account.id
    }

    fn has(&self, p: &str) -> bool {
        self.permissions.iter().any(|x| x == p)
    }

    pub fn is_tenant_admin(&self) -> bool {
        self.has("tenant.all")
    }

    /// OIH's `can`: `all`, or every listed permission.
    pub fn can(&self, required: &[&str]) -> Result<(), ApiError> {
        if self.is_admin() || required.iter().all(|p| self.has(p)) {
            Ok(())
        } else {
            Err(missing_permission())
        }
    }

    /// OIH's `hasTenantPermissions`: `tenant.all` passes, otherwise as [`Caller::can`].
    pub fn tenant_can(&self, required: &[&str]) -> Result<(), ApiError> {
        if self.is_tenant_admin() {
            Ok(())
        } else {
            self.can(required)
        }
    }

    /// OIH's `isAdmin` guard: 403 `FORBIDDEN`.
    pub fn admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// Non-admins may only grant common permissions (iam-ils.md §5.3).
    pub fn may_grant(&self, permissions: &[String]) -> Result<(), ApiError> {
        if self.is_admin() || permissions.iter().all(|p| is_common(p)) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// Non-admins may not edit or remove an account holding more than they could grant
    /// (e.g. a service account given `iam.*` permissions by an admin): changing its password
    /// would hand them those permissions.
    pub fn may_manage(&self, account: &Account) -> Result<(), ApiError> {
        self.may_grant(&account.permissions)
    }

    /// Whether the caller may act on something in `tenant`: admins anywhere, others only in
    /// their own tenant (a tenant-less non-admin matches nothing).
    pub fn sees_tenant(&self, tenant: Option<&str>) -> bool {
        self.is_admin() || (self.tenant().is_some() && self.tenant() == tenant)
    }
}
