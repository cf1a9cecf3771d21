//! Sealing the sensitive fields of a stored document (a secret's `value`, an auth client's
//! credentials) with the data key of its tenant, and opening them again. Each sealed value is
//! bound to its collection, document id and field name, so it cannot be copied elsewhere.

use std::sync::Arc;

use oih_store::Collection;
use serde_json::{Map, Value};

use crate::crypto::{self, CryptoError, Envelope};
use crate::keys::{GLOBAL_SCOPE, KeyError, KeyRing};

/// Fields whose plaintext is JSON rather than a string (OIH stringified `inputFields` before
/// encrypting it).
const JSON_FIELDS: &[&str] = &["inputFields"];

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Names the document and field, never the value.
    #[error("field {field} of {collection}/{id} cannot be decrypted: {source}")]
    Decrypt {
        collection: &'static str,
        id: String,
        field: String,
        #[source]
        source: CryptoError,
    },
}

/// The document whose fields are sealed.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub collection: Collection,
    pub id: &'a str,
    /// Selects the data key; none: the global one.
    pub tenant: Option<&'a str>,
}

impl Target<'_> {
    fn aad(&self, field: &str) -> Vec<u8> {
        format!("{}/{}/{field}", self.collection.0, self.id).into_bytes()
    }
}

#[derive(Debug, Clone)]
pub struct Sealer {
    keys: Arc<KeyRing>,
}

impl Sealer {
    pub fn new(keys: Arc<KeyRing>) -> Self {
        Self { keys }
    }

    /// Seals each of `sensitive` present in `map` and not yet listed in `sealed`, and lists
    /// it. Empty values stay as they are (OIH encrypted only truthy ones).
    pub async fn seal(
        &self,
        target: Target<'_>,
        sensitive: &[&str],
        map: &mut Map<String, Value>,
        sealed: &mut Vec<String>,
    ) -> Result<(), SealError> {
        let pending: Vec<&str> = sensitive
            .iter()
            .copied()
            .filter(|f| !sealed.iter().any(|e| e == f))
            .filter(|f| map.get(*f).is_some_and(is_truthy))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let scope = target.tenant.unwrap_or(GLOBAL_SCOPE);
        let (key_id, key) = self.keys.active(scope).await?;
        for field in pending {
            let text = match map.get(field) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => continue,
            };
            let envelope = crypto::seal_field(key_id, &key, &text, &target.aad(field));
            map.insert(field.to_owned(), Value::String(envelope));
            sealed.push(field.to_owned());
        }
        Ok(())
    }

    /// `map` with every field listed in `sealed` opened.
    pub async fn open(
        &self,
        target: Target<'_>,
        map: &Map<String, Value>,
        sealed: &[String],
    ) -> Result<Map<String, Value>, SealError> {
        let mut out = map.clone();
        for field in sealed {
            let Some(Value::String(text)) = map.get(field) else {
                continue;
            };
            let failed = |source| SealError::Decrypt {
                collection: target.collection.0,
                id: target.id.to_owned(),
                field: field.clone(),
                source,
            };
            let envelope = Envelope::parse(text).map_err(failed)?;
            let key = self.keys.get(envelope.key_id).await?;
            let plain = envelope.open(&key, &target.aad(field)).map_err(failed)?;
            let plain = if JSON_FIELDS.contains(&field.as_str()) {
                serde_json::from_str(&plain).unwrap_or(Value::String(plain))
            } else {
                Value::String(plain)
            };
            out.insert(field.clone(), plain);
        }
        Ok(out)
    }
}

fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Array(_) | Value::Object(_) => true,
    }
}
