//! Refreshing a secret's access token when it is read (data-services.md §3.6).
//!
//! Which secrets: OA2 secrets with a refresh token, and SESSION_AUTH secrets, whose token is
//! missing or expires within EXPIRATION_OFFSET.
//!
//! The lock is the secret's `lockedAt`, taken with an optimistic (versioned) write, so no two
//! replicas can both hold it. Unlike OIH's:
//! - the holder always releases it, on success and on every failure; the provider call is cut
//!   off well before REFRESH_TIMEOUT, after which anyone may take a lock over anyway;
//! - readers in one process wait for the one refresh on an in-process gate instead of each
//!   polling the store, and readers elsewhere poll until it is done (OIH gave up after three
//!   tries with a 500);
//! - `currentError` is cleared by a successful refresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oih_http::{ApiError, Worker};
use oih_store::{Document, Filter, FindOptions, SortOrder};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::flows::expires_from;
use crate::model::{SecretType, StoredSecret};
use crate::oauth::{self, ProviderError, Tokens};
use crate::service::Service;
use crate::store::SecretsError;

/// Per-secret gates, so one refresh runs per process and the others wait for it.
#[derive(Debug, Default)]
pub struct Gates(Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>);

impl Gates {
    fn gate(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, gate| gate.strong_count() > 0);
        if let Some(gate) = map.get(id).and_then(Weak::upgrade) {
            return gate;
        }
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id.to_owned(), Arc::downgrade(&gate));
        gate
    }
}

/// How often a reader checks whether another replica's refresh is done.
const POLL: Duration = Duration::from_millis(200);

fn refreshable(secret: &StoredSecret) -> bool {
    match secret.kind {
        SecretType::Oa2AuthorizationCode => secret.value.contains_key("refreshToken"),
        SecretType::SessionAuth => true,
        _ => false,
    }
}

/// The token is missing its expiry, or expires within `offset`.
fn needs_refresh(secret: &StoredSecret, now: DateTime<Utc>, offset: Duration) -> bool {
    let expires = secret
        .value
        .get("expires")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    match expires {
        None => true,
        Some(at) => {
            at.with_timezone(&Utc) - now <= chrono::Duration::from_std(offset).unwrap_or_default()
        }
    }
}

fn still_valid(secret: &StoredSecret, now: DateTime<Utc>) -> bool {
    secret
        .value
        .get("expires")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|at| at.with_timezone(&Utc) > now)
}

impl Service {
    /// The secret, with a fresh token if it needed one.
    pub async fn fresh(
        &self,
        doc: Document,
        secret: StoredSecret,
    ) -> Result<(Document, StoredSecret), ApiError> {
        let offset = self.settings.expiration_offset;
        if !refreshable(&secret) || !needs_refresh(&secret, Utc::now(), offset) {
            return Ok((doc, secret));
        }
        let gate = self.refresh_gates.gate(&doc.id);
        let _turn = gate.lock().await;
        let deadline = tokio::time::Instant::now() + self.settings.refresh_timeout * 3;
        loop {
            let Some((doc, mut secret)) = self.secrets.get(&doc.id).await? else {
                return Err(ApiError::not_found("Secret not found"));
            };
            let now = Utc::now();
            if !refreshable(&secret) || !needs_refresh(&secret, now, offset) {
                return Ok((doc, secret));
            }
            let lock_timeout =
                chrono::Duration::from_std(self.settings.refresh_timeout).unwrap_or_default();
            let held_elsewhere = secret.locked_at.is_some_and(|at| now - at < lock_timeout);
            if held_elsewhere {
                if tokio::time::Instant::now() > deadline {
                    return Err(ApiError::Unavailable(
                        "The secret's token is being refreshed; try again".into(),
                    ));
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
            secret.locked_at = Some(now);
            let Some(locked) = self.secrets.write(&doc, &secret).await? else {
                // Another replica changed it first: look again.
                continue;
            };
            return self.refresh_locked(locked, secret).await;
        }
    }

    /// Calls the provider while holding the lock, then stores the outcome and releases it.
    async fn refresh_locked(
        &self,
        doc: Document,
        secret: StoredSecret,
    ) -> Result<(Document, StoredSecret), ApiError> {
        let outcome = match tokio::time::timeout(
            self.settings.refresh_timeout / 2,
            self.call_provider(&doc, &secret),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(RefreshError::Provider(ProviderError::Unreachable(
                "no answer in time".into(),
            ))),
        };
        let now = Utc::now();
        let stored = self
            .secrets
            .update(&doc.id, |s| {
                s.locked_at = None;
                match &outcome {
                    Ok(tokens) => {
                        for (field, value) in fresh_fields(s.kind, tokens, now) {
                            s.encrypted_fields.retain(|f| f != field);
                            s.value.insert(field.to_owned(), value);
                        }
                        s.current_error = None;
                    }
                    Err(err) => s.current_error = Some(err.to_json()),
                }
                Ok(true)
            })
            .await?
            .ok_or_else(|| ApiError::not_found("Secret not found"))?;
        match outcome {
            Ok(_) => Ok(stored),
            // A token that has not expired yet is still of use.
            Err(_) if still_valid(&stored.1, now) => Ok(stored),
            Err(err) => {
                tracing::warn!(secret = %doc.id, error = %err, "token refresh failed");
                Err(ApiError::Other {
                    status: axum::http::StatusCode::BAD_GATEWAY,
                    message: format!("Refreshing the token failed: {err}"),
                })
            }
        }
    }

    async fn call_provider(
        &self,
        doc: &Document,
        secret: &StoredSecret,
    ) -> Result<Tokens, RefreshError> {
        let value = self.secrets.plaintext(&doc.id, secret).await?;
        let client_id = value
            .get("authClientId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some((client_doc, client)) = self.clients.get(client_id).await? else {
            return Err(RefreshError::NoClient);
        };
        let fields = self.clients.plaintext(&client_doc.id, &client).await?;
        let text = |map: &serde_json::Map<String, Value>, k: &str| {
            map.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let tokens = match secret.kind {
            SecretType::SessionAuth => {
                let inputs = value
                    .get("inputFields")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                oauth::session_login(&self.http, &fields, &inputs).await?
            }
            _ => {
                let token_url = fields
                    .get("endpoints")
                    .and_then(|e| e.get("token"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let refresh_token = text(&value, "refreshToken");
                let (client_key, client_secret) =
                    (text(&fields, "clientId"), text(&fields, "clientSecret"));
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh_token),
                    ("client_id", client_key),
                    ("client_secret", client_secret),
                ];
                if fields.get("refreshWithScope").and_then(Value::as_bool) == Some(true) {
                    let scope = format!(
                        "{} {}",
                        text(&fields, "predefinedScope"),
                        text(&value, "scope")
                    );
                    form.push(("scope", scope.trim().to_owned()));
                }
                let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                oauth::token_request(&self.http, &token_url, &form).await?
            }
        };
        Ok(tokens)
    }
}

/// Refreshes, ahead of any read, the tokens with a known expiry that expire within
/// EXPIRATION_OFFSET. Every replica may run it: the refresh lock keeps them from refreshing
/// one secret twice.
pub fn proactive(service: Service, every: Duration) -> Worker {
    Worker::new(
        "secret-service-token-refresh",
        move |cancel: CancellationToken| async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(every) => {}
                }
                if let Err(err) = service.refresh_due(&cancel).await {
                    tracing::warn!(error = %err, "proactive token refresh pass failed");
                }
            }
        },
    )
}

impl Service {
    async fn refresh_due(&self, cancel: &CancellationToken) -> Result<(), SecretsError> {
        const BATCH: u64 = 100;
        let due = Filter::and([
            Filter::In(
                "type".into(),
                vec![
                    json!(SecretType::Oa2AuthorizationCode),
                    json!(SecretType::SessionAuth),
                ],
            ),
            Filter::Exists("value.expires".into(), true),
        ]);
        let mut skip = 0;
        loop {
            let opts = FindOptions {
                sort: vec![("_id".into(), SortOrder::Asc)],
                skip,
                limit: Some(BATCH),
            };
            let batch = self.secrets.find(&due, &opts).await?;
            let now = Utc::now();
            for (doc, secret) in &batch {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                let known_expiry = secret.value.get("expires").is_some_and(Value::is_string);
                if !known_expiry
                    || !refreshable(secret)
                    || !needs_refresh(secret, now, self.settings.expiration_offset)
                {
                    continue;
                }
                if let Err(err) = self.fresh(doc.clone(), secret.clone()).await {
                    tracing::debug!(secret = %doc.id, error = %err, "proactive refresh failed");
                }
            }
            if (batch.len() as u64) < BATCH {
                return Ok(());
            }
            skip += BATCH;
        }
    }
}

/// The value fields a refresh sets.
fn fresh_fields(
    kind: SecretType,
    tokens: &Tokens,
    now: DateTime<Utc>,
) -> Vec<(&'static str, Value)> {
    let mut out = vec![("accessToken", Value::String(tokens.access_token.clone()))];
    if let Some(refresh) = &tokens.refresh_token {
        out.push(("refreshToken", Value::String(refresh.clone())));
    }
    let expires = match (kind, tokens.expires_in) {
        // A session without an expiry is refreshed at every read, as in OIH.
        (SecretType::SessionAuth, None) => Value::Null,
        (_, expires_in) => Value::String(expires_from(expires_in, now)),
    };
    out.push(("expires", expires));
    out
}

#[derive(Debug, thiserror::Error)]
enum RefreshError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("the secret's auth client no longer exists")]
    NoClient,
    #[error("the secret or its auth client cannot be read: {0}")]
    Stored(#[from] SecretsError),
}

impl RefreshError {
    fn to_json(&self) -> Value {
        match self {
            Self::Provider(err) => err.to_json(),
            other => serde_json::json!({"error": other.to_string()}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oa2(expires: Option<&str>) -> StoredSecret {
        let mut value = json!({"authClientId": "c", "accessToken": "a", "refreshToken": "r"});
        if let Some(e) = expires {
            value["expires"] = json!(e);
        }
        StoredSecret {
            name: "s".into(),
            kind: SecretType::Oa2AuthorizationCode,
            owners: vec![],
            tenant: None,
            domain: None,
            mixed_properties: None,
            value: value.as_object().cloned().unwrap_or_default(),
            encrypted_fields: vec![],
            current_error: None,
            locked_at: None,
        }
    }

    #[test]
    fn when_to_refresh() {
        let now = Utc::now();
        let offset = Duration::from_secs(900);
        assert!(needs_refresh(&oa2(None), now, offset));
        let soon = (now + chrono::Duration::seconds(60)).to_rfc3339();
        assert!(needs_refresh(&oa2(Some(&soon)), now, offset));
        let later = (now + chrono::Duration::hours(2)).to_rfc3339();
        assert!(!needs_refresh(&oa2(Some(&later)), now, offset));
        assert!(still_valid(&oa2(Some(&soon)), now));
        let mut no_refresh_token = oa2(None);
        no_refresh_token.value.remove("refreshToken");
        assert!(!refreshable(&no_refresh_token));
    }
}
