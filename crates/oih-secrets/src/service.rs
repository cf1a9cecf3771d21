//! Operations shared by the HTTP handlers and the event consumer: loading a secret for a
//! caller, rendering it, and removing an owner everywhere.

use std::sync::Arc;
use std::time::Duration;

use oih_core::{Identity, ObjectId, Owner};
use oih_http::ApiError;
use oih_store::Document;
use serde_json::{Map, Value, json};

use crate::client_model::StoredClient;
use crate::events::{CLIENT_DELETED, Events, SECRET_DELETED};
use crate::flows::consumer_credentials;
use crate::mask::{READ_RAW, mask_value};
use crate::model::StoredSecret;
use crate::refresh::Gates;
use crate::store::{Clients, Secrets, SecretsError};

/// What the handlers share.
#[derive(Clone)]
pub struct Service {
    pub secrets: Arc<Secrets>,
    pub clients: Arc<Clients>,
    pub events: Events,
    /// OIH's PAGINATION_PAGE_SIZE.
    pub page_size: u64,
    pub settings: Arc<Settings>,
    /// For provider calls (token exchange and refresh).
    pub http: reqwest::Client,
    pub refresh_gates: Arc<Gates>,
}

/// Timing settings, from [`crate::Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a started auth flow waits for its callback.
    pub flow_ttl: chrono::Duration,
    /// How long a refresh lock counts as held.
    pub refresh_timeout: Duration,
    /// Refresh when the token expires within this window.
    pub expiration_offset: Duration,
}

impl From<SecretsError> for ApiError {
    fn from(err: SecretsError) -> Self {
        match err {
            SecretsError::Rejected(message) => ApiError::BadRequest(message),
            SecretsError::Store(err) => err.into(),
            other => ApiError::internal(other),
        }
    }
}

impl Service {
    /// The secret `id` if the caller may use it: 400 for a malformed id, 404 when there is no
    /// such secret, 403 when it belongs to someone else.
    pub async fn owned(
        &self,
        who: &Identity,
        id: &str,
    ) -> Result<(Document, StoredSecret), ApiError> {
        if !ObjectId::is_valid(id) {
            return Err(ApiError::bad_request("Invalid secret id"));
        }
        let Some((doc, secret)) = self.secrets.get(&id.to_ascii_lowercase()).await? else {
            return Err(ApiError::not_found("Secret not found"));
        };
        if !secret.is_accessible_by(who) {
            return Err(ApiError::forbidden("You are not an owner of this secret"));
        }
        Ok((doc, secret))
    }

    /// The auth client `id` if it exists and the caller may use it.
    pub async fn usable_client(
        &self,
        who: &Identity,
        id: &str,
    ) -> Result<Option<(Document, StoredClient)>, SecretsError> {
        if !ObjectId::is_valid(id) {
            return Ok(None);
        }
        Ok(self
            .clients
            .get(&id.to_ascii_lowercase())
            .await?
            .filter(|(_, client)| client.is_usable_by(who)))
    }

    /// The secret as a caller sees it: decrypted, masked unless the caller holds
    /// `secrets.secret.readRaw` (or `all`) or is the flow step the secret is for (its step
    /// token was checked against the secret's id before).
    pub async fn view(
        &self,
        who: &Identity,
        doc: &Document,
        secret: &StoredSecret,
    ) -> Result<Value, ApiError> {
        let mut value = self.secrets.plaintext(&doc.id, secret).await?;
        let raw = who.has_one_of(&[READ_RAW]) || who.step.is_some();
        if raw {
            let consumer = consumer_credentials(self, secret.kind, &value).await?;
            value.extend(consumer);
        }
        mask_value(secret.kind, &mut value, raw);
        let mut out = envelope(doc, secret)?;
        out.insert("value".into(), Value::Object(value));
        // Every listed field was decrypted for this answer.
        out.insert("encryptedFields".into(), json!([]));
        Ok(Value::Object(out))
    }

    /// A list entry: identifying fields only (OIH's projection), never a credential.
    pub fn summary(doc: &Document, secret: &StoredSecret) -> Value {
        let mut out = Map::new();
        out.insert("_id".into(), Value::String(doc.id.clone()));
        out.insert("name".into(), Value::String(secret.name.clone()));
        out.insert("type".into(), json!(secret.kind));
        out.insert("owners".into(), json!(secret.owners));
        let value: Map<String, Value> = ["authClientId", "scope", "expires", "externalId"]
            .iter()
            .filter_map(|f| secret.value.get(*f).map(|v| ((*f).to_owned(), v.clone())))
            .collect();
        out.insert("value".into(), Value::Object(value));
        if let Some(err) = &secret.current_error {
            out.insert("currentError".into(), err.clone());
        }
        Value::Object(out)
    }

    /// OIH's `deleteAll({ownerId, type})`: every secret `owner` owns loses that owner, and one
    /// it owned alone is deleted. Returns how many secrets were touched.
    pub async fn remove_owner_everywhere(&self, owner: &Owner) -> Result<u64, SecretsError> {
        let ids = self.secrets.owned_by(owner).await?;
        for id in &ids {
            self.drop_owner_or_delete(id, owner).await?;
        }
        Ok(ids.len() as u64)
    }

    /// The same for auth clients.
    pub async fn remove_client_owner_everywhere(&self, owner: &Owner) -> Result<u64, SecretsError> {
        let ids = self.clients.owned_by(owner).await?;
        for id in &ids {
            self.drop_client_owner_or_delete(id, owner).await?;
        }
        Ok(ids.len() as u64)
    }

    /// Removes `owner` from the client, or deletes it when it is the only owner. OIH announces
    /// both as `secrets.authclient.deleted`.
    pub async fn drop_client_owner_or_delete(
        &self,
        id: &str,
        owner: &Owner,
    ) -> Result<(), SecretsError> {
        self.clients.drop_owner_or_delete(id, owner).await?;
        self.events
            .emit(CLIENT_DELETED, json!({ "client": id }))
            .await;
        Ok(())
    }

    /// Removes `owner` from the secret, or deletes the secret when it is the only owner.
    pub async fn drop_owner_or_delete(&self, id: &str, owner: &Owner) -> Result<(), SecretsError> {
        if self.secrets.drop_owner_or_delete(id, owner).await? {
            self.events.emit(SECRET_DELETED, json!({ "id": id })).await;
        }
        Ok(())
    }
}

/// The stored fields of a secret with `_id` and timestamps (values still as stored).
fn envelope(doc: &Document, secret: &StoredSecret) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(fields) = serde_json::to_value(secret).map_err(ApiError::internal)? else {
        return Err(ApiError::internal(
            "a secret did not serialize to an object",
        ));
    };
    let mut out = Map::new();
    out.insert("_id".into(), Value::String(doc.id.clone()));
    out.extend(fields);
    out.insert("createdAt".into(), json!(doc.created_at));
    out.insert("updatedAt".into(), json!(doc.updated_at));
    Ok(out)
}
