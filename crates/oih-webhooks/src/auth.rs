//! Per-flow authorization from `flowSettings.webhooks` (runtime.md §5.4), applied to every
//! method (OIH skips it for GET). In order: an HMAC of the raw body checked by the Secret
//! Service against the flow's `hmacAuthSecret`; else a Bearer token (the app's
//! authenticator) or Basic credentials (IAM login), whose user needs the execute permission
//! and ownership of the flow; else refused. Every refusal is OIH's 403 `Unauthorized`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oih_core::Identity;
use oih_http::auth::AUTH_TYPE_HEADER;
use oih_http::{Authn, BoxError};
use serde_json::Value;

use crate::error::HookError;
use crate::store::HookFlow;

/// Checks a webhook signature with the Secret Service (OIH's `validateHmac`): `secret_id` is
/// the flow's `hmacAuthSecret`, `signature` the value of its HMAC header.
#[async_trait]
pub trait HmacVerifier: Send + Sync {
    async fn verify(
        &self,
        owner: &Identity,
        secret_id: &str,
        algorithm: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<bool, BoxError>;
}

/// Exchanges Basic credentials for the user's identity (OIH: IAM `POST /login`, then
/// introspection). `Ok(None)`: wrong credentials.
#[async_trait]
pub trait PasswordLogin: Send + Sync {
    async fn login(&self, username: &str, password: &str) -> Result<Option<Identity>, BoxError>;
}

pub struct Authorizer {
    pub hmac: Arc<dyn HmacVerifier>,
    pub login: Option<Arc<dyn PasswordLogin>>,
    pub default_hmac_header: String,
    pub default_hmac_algorithm: String,
    pub permission: String,
}

impl Authorizer {
    /// Allows the request to `flow`, or refuses it.
    pub async fn check(
        &self,
        flow: &HookFlow,
        headers: &HeaderMap,
        body: &[u8],
        authn: Option<&Authn>,
    ) -> Result<(), HookError> {
        let Some(settings) = flow.webhook_settings() else {
            return Ok(());
        };
        if settings.get("requireWebhookAuth").and_then(Value::as_bool) != Some(true) {
            return Ok(());
        }
        let text = |key: &str| {
            settings
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if let Some(secret) = text("hmacAuthSecret") {
            let header_key = text("hmacHeaderKey").unwrap_or(&self.default_hmac_header);
            let algorithm = text("hmacAlgorithm").unwrap_or(&self.default_hmac_algorithm);
            let signature = headers
                .get(header_key.to_ascii_lowercase().as_str())
                .and_then(|v| v.to_str().ok())
                .ok_or(HookError::Unauthorized)?;
            // OIH checks the secret as the user who started the flow.
            let owner = Identity::new(
                flow.started_by().unwrap_or_default(),
                flow.tenant().map(str::to_owned),
                Vec::new(),
            );
            return match self
                .hmac
                .verify(&owner, secret, algorithm, body, signature)
                .await
            {
                Ok(true) => Ok(()),
                Ok(false) => Err(HookError::Unauthorized),
                Err(err) => {
                    tracing::warn!(error = %err, "HMAC verification failed");
                    Err(HookError::Unavailable(
                        "The signature could not be checked; retry later".into(),
                    ))
                }
            };
        }
        let identity = self.caller(headers, authn).await?;
        let all_tenant_users =
            settings.get("allTenantUsers").and_then(Value::as_bool) == Some(true);
        let allowed = identity.is_admin()
            || (identity.can(&[self.permission.as_str()])
                && identity.is_owner_of(&flow.owners(), flow.tenant(), all_tenant_users));
        if allowed {
            Ok(())
        } else {
            Err(HookError::Unauthorized)
        }
    }

    /// The user behind the `Authorization` header.
    async fn caller(
        &self,
        headers: &HeaderMap,
        authn: Option<&Authn>,
    ) -> Result<Identity, HookError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(HookError::Unauthorized)?;
        let (scheme, credentials) = value.split_once(' ').ok_or(HookError::Unauthorized)?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let Authn(authenticator) =
                authn.ok_or_else(|| HookError::Internal("no authenticator installed".into()))?;
            let auth_type = headers.get(AUTH_TYPE_HEADER).and_then(|v| v.to_str().ok());
            return authenticator
                .authenticate_as(credentials, auth_type)
                .await
                .map_err(|_| HookError::Unauthorized);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let login = self.login.as_ref().ok_or(HookError::Unauthorized)?;
            let decoded = STANDARD
                .decode(credentials)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(HookError::Unauthorized)?;
            let (username, password) = decoded.split_once(':').ok_or(HookError::Unauthorized)?;
            return match login.login(username, password).await {
                Ok(Some(identity)) => Ok(identity),
                Ok(None) => Err(HookError::Unauthorized),
                Err(err) => {
                    tracing::warn!(error = %err, "Basic login failed");
                    Err(HookError::Unavailable(
                        "The credentials could not be checked; retry later".into(),
                    ))
                }
            };
        }
        Err(HookError::Unauthorized)
    }
}
