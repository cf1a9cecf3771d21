//! Step tokens: what a flow step (a Ferryman process, later a container) presents to the
//! Secret Service and the Snapshots service. OIH hands every step the flow starter's
//! long-lived IAM token; here the orchestrator signs a short-lived token that acts for the
//! starter but reaches only the step's own secret and snapshots ([`StepScope`]).
//!
//! Tokens are HS256 JWTs with audience [`AUDIENCE`], signed with the hub's step-token key
//! (`ORCHESTRATOR_TOKEN_SECRET`). [`WithStepTokens`] puts their check in front of the hub's
//! authenticator; [`crate::Auth`] then refuses scoped identities everywhere except where a
//! handler takes [`crate::StepAuth`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use oih_core::{Identity, StepScope};
use serde::{Deserialize, Serialize};

use crate::{AuthError, Authenticator};

/// The `aud` of step tokens: no other token the hub accepts carries it.
pub const AUDIENCE: &str = "oih-step";
const ISSUER: &str = "oih-orchestrator";

/// What a step token grants, as the orchestrator issues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepGrant {
    /// The user the flow runs as (its `startedBy`).
    pub user_id: String,
    pub tenant: Option<String>,
    pub scope: StepScope,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claims {
    sub: String,
    aud: String,
    iss: String,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    flow_id: String,
    step_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_id: Option<String>,
}

/// Issues and checks step tokens with one key.
pub struct StepTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl std::fmt::Debug for StepTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepTokens")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl StepTokens {
    /// `lifetime` bounds how long a message may wait in a step's queue and still be processed
    /// with access to its secret.
    pub fn new(key: &[u8], lifetime: Duration) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 5;
        Ok(Self {
            encoding: EncodingKey::from_secret(key)?,
            decoding: DecodingKey::from_secret(key)?,
            validation,
            lifetime,
        })
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Signs a token for `grant`, valid for the configured lifetime.
    pub fn issue(&self, grant: &StepGrant) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: grant.user_id.clone(),
            aud: AUDIENCE.into(),
            iss: ISSUER.into(),
            iat: now,
            exp: now.saturating_add(lifetime),
            tenant: grant.tenant.clone(),
            flow_id: grant.scope.flow_id.clone(),
            step_id: grant.scope.step_id.clone(),
            secret_id: grant.scope.secret_id.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Signs OIH's `orchestratorToken` (runtime.md §2.5): `claims` plus `iat`, and an `exp`
    /// OIH's lacks. Ferryman reads it without verifying; the hub never accepts it as a
    /// bearer token (it has no [`AUDIENCE`]).
    pub fn sign_orchestrator_token(
        &self,
        mut claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), now.saturating_add(lifetime).into());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of an `orchestratorToken` this key signed, expired or not: a step answers
    /// with the token of its input, which may have waited long (a rebound) before it ran.
    pub fn read_orchestrator_token(
        &self,
        token: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims::<&str>(&[]);
        jsonwebtoken::decode(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }

    /// The scoped identity of a valid step token; `None` for anything else (other tokens,
    /// bad signatures, expired tokens).
    pub fn verify(&self, token: &str) -> Option<Identity> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        let mut identity = Identity::new(claims.sub, claims.tenant, Vec::new());
        identity.step = Some(StepScope {
            flow_id: claims.flow_id,
            step_id: claims.step_id,
            secret_id: claims.secret_id,
        });
        Some(identity)
    }
}

/// The hub's authenticator with step tokens checked first (locally, no IAM round trip).
pub struct WithStepTokens {
    pub tokens: Arc<StepTokens>,
    pub inner: Arc<dyn Authenticator>,
}

#[async_trait]
impl Authenticator for WithStepTokens {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        match self.tokens.verify(token) {
            Some(identity) => Ok(identity),
            None => self.inner.authenticate(token).await,
        }
    }

    async fn authenticate_as(
        &self,
        token: &str,
        auth_type: Option<&str>,
    ) -> Result<Identity, AuthError> {
        match self.tokens.verify(token) {
            Some(identity) => Ok(identity),
            None => self.inner.authenticate_as(token, auth_type).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> StepGrant {
        StepGrant {
            user_id: "u1".into(),
            tenant: Some("t1".into()),
            scope: StepScope {
                flow_id: "f1".into(),
                step_id: "s1".into(),
                secret_id: Some("sec1".into()),
            },
        }
    }

    #[test]
    fn a_token_verifies_to_its_scoped_identity() {
        let tokens = StepTokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60))
            .expect("key");
        let token = tokens.issue(&grant()).expect("sign");
        let identity = tokens.verify(&token).expect("valid");
        assert_eq!(identity.sub, "u1");
        assert_eq!(identity.tenant.as_deref(), Some("t1"));
        assert!(identity.permissions.is_empty());
        assert_eq!(identity.step, Some(grant().scope));
    }

    #[test]
    fn other_keys_expired_tokens_and_other_audiences_are_refused() {
        let tokens = StepTokens::new(b"key-one-key-one-key-one-key-one!", Duration::from_secs(60))
            .expect("key");
        let other = StepTokens::new(b"key-two-key-two-key-two-key-two!", Duration::from_secs(60))
            .expect("key");
        let token = other.issue(&grant()).expect("sign");
        assert!(tokens.verify(&token).is_none());

        let expired =
            StepTokens::new(b"key-one-key-one-key-one-key-one!", Duration::ZERO).expect("key");
        let mut claims = serde_json::to_value(Claims {
            sub: "u".into(),
            aud: AUDIENCE.into(),
            iss: ISSUER.into(),
            iat: 0,
            exp: 1,
            tenant: None,
            flow_id: "f".into(),
            step_id: "s".into(),
            secret_id: None,
        })
        .expect("json");
        let old =
            jsonwebtoken::encode(&Header::default(), &claims, &expired.encoding).expect("sign");
        assert!(tokens.verify(&old).is_none(), "expired");

        claims["exp"] = serde_json::json!(chrono::Utc::now().timestamp() + 60);
        claims["aud"] = serde_json::json!("someone-else");
        let foreign =
            jsonwebtoken::encode(&Header::default(), &claims, &expired.encoding).expect("sign");
        assert!(tokens.verify(&foreign).is_none(), "audience");
        assert!(tokens.verify("not a jwt").is_none());
    }
}
