//! HMAC checks with API_KEY secrets: for `POST /secrets/{id}/validateHmac`, and in process for
//! the webhooks of the same hub (a flow's `hmacAuthSecret`).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use oih_core::{Identity, ObjectId};
use oih_store::DocStore;
use serde_json::Value;

use crate::store::Secrets;
use crate::{Config, Error};

/// Whether `expected_b64` is the HMAC of `data` under `key`, compared in constant time; None
/// for an algorithm other than sha224/256/384/512. A signature that is not base64 is no match.
pub(crate) fn matches(
    algorithm: &str,
    key: &[u8],
    data: &[u8],
    expected_b64: &str,
) -> Option<bool> {
    fn check<M: Mac + KeyInit>(key: &[u8], data: &[u8], expected: &[u8]) -> bool {
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
            return false;
        };
        mac.update(data);
        mac.verify_slice(expected).is_ok()
    }
    let expected = B64.decode(expected_b64.trim()).ok();
    let verify = |f: fn(&[u8], &[u8], &[u8]) -> bool| {
        Some(expected.as_deref().is_some_and(|e| f(key, data, e)))
    };
    match algorithm.to_ascii_lowercase().as_str() {
        "sha224" => verify(check::<Hmac<sha2::Sha224>>),
        "sha256" => verify(check::<Hmac<sha2::Sha256>>),
        "sha384" => verify(check::<Hmac<sha2::Sha384>>),
        "sha512" => verify(check::<Hmac<sha2::Sha512>>),
        _ => None,
    }
}

/// Verifies webhook signatures with the hub's API_KEY secrets, in process.
#[derive(Clone)]
pub struct WebhookHmac {
    secrets: Arc<Secrets>,
}

impl WebhookHmac {
    /// Opens the secrets with the same keys as the service (same `config` as `module`).
    pub async fn open(config: &Config, docs: Arc<dyn DocStore>) -> Result<Self, Error> {
        let keys = crate::open_keys(config, docs.clone()).await?;
        Ok(Self {
            secrets: Arc::new(Secrets::open(docs, keys).await?),
        })
    }

    /// True when `signature_b64` is the HMAC of `data` keyed by the `key` of secret
    /// `secret_id`, and `owner` (the flow's starter, as OIH checks it) may use that secret.
    /// An unknown or foreign secret, or an unsupported algorithm, is no match.
    pub async fn verify(
        &self,
        owner: &Identity,
        secret_id: &str,
        algorithm: &str,
        data: &[u8],
        signature_b64: &str,
    ) -> Result<bool, Error> {
        if !ObjectId::is_valid(secret_id) {
            return Ok(false);
        }
        let Some((doc, secret)) = self.secrets.get(&secret_id.to_ascii_lowercase()).await? else {
            return Ok(false);
        };
        if !secret.is_accessible_by(owner) {
            return Ok(false);
        }
        let value = self.secrets.plaintext(&doc.id, &secret).await?;
        let Some(key) = value.get("key").and_then(Value::as_str) else {
            return Ok(false);
        };
        Ok(matches(algorithm, key.as_bytes(), data, signature_b64).unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_vector_per_algorithm_name() {
        // RFC 4231 test case 2.
        let mac = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=";
        let data = b"what do ya want for nothing?";
        assert_eq!(matches("sha256", b"Jefe", data, mac), Some(true));
        assert_eq!(matches("SHA256", b"Jefe", data, mac), Some(true));
        assert_eq!(matches("sha256", b"jefe", data, mac), Some(false));
        assert_eq!(matches("sha256", b"Jefe", data, "garbage!"), Some(false));
        assert_eq!(matches("md5", b"Jefe", data, mac), None);
    }
}
