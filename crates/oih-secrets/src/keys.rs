//! Key management: the master key (from configuration, or generated once into the data
//! directory) and the per-tenant data keys it wraps.
//!
//! Secret values are sealed with a data key of their tenant ([`KeyRing::active`]); data keys are
//! stored in `secrets_keys`, each wrapped (AES-256-GCM) by the master key. Rotating the master key
//! therefore re-wraps a handful of data keys instead of re-encrypting every secret: start with
//! the new key as the master key and the old one as the previous key, and every data key still
//! wrapped by the old one is re-wrapped at start-up. A data key is never deleted, so a value
//! sealed under an older generation stays readable; `reencrypt_all` moves every value onto its
//! tenant's newest data key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use oih_core::ObjectId;
use oih_store::{Collection, CollectionSpec, DocStore, Filter, FindOptions, SortOrder, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::crypto::{self, CryptoError, Key};

pub(crate) const KEYS: Collection = Collection("secrets_keys");

/// Name of the master key file generated into the data directory when no key is configured.
pub const MASTER_KEY_FILE_NAME: &str = "secret-service.master-key";

/// Data keys of secrets without a tenant.
pub(crate) const GLOBAL_SCOPE: &str = "*";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no master key configured: --production needs OIH_MASTER_KEY (or CRYPTO_KEY) or \
         --master-key-file"
    )]
    MasterKeyRequired,
    #[error("the master key is empty")]
    EmptyMasterKey,
    #[error("master key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{count} data key(s) are wrapped by master key {master_key_id}, which is neither the \
         configured master key ({current}) nor the previous one: the wrong master key is \
         configured, and stored secrets could not be read"
    )]
    UnknownMasterKey {
        count: usize,
        master_key_id: String,
        current: String,
    },
    #[error("data key {0} does not exist")]
    MissingDataKey(ObjectId),
    #[error("data key {id} cannot be unwrapped: {source}")]
    Unwrap {
        id: String,
        #[source]
        source: CryptoError,
    },
    #[error("data key record {0} is malformed")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key that wraps data keys. `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey {
    key: Key,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// Derives the key from a configured string (any passphrase, e.g. OIH's CRYPTO_KEY, or the
    /// base64 text of a generated key file). Surrounding whitespace is ignored, so a file may
    /// end with a newline.
    pub fn from_secret(secret: &str) -> Result<Self, KeyError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(KeyError::EmptyMasterKey);
        }
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"oih-secrets master key v1\0")
            .chain_update(secret.as_bytes())
            .finalize()
            .into();
        // A public fingerprint: a different hash of the key, so it reveals nothing about it.
        let fingerprint: [u8; 32] = Sha256::new()
            .chain_update(b"oih-secrets master key id v1\0")
            .chain_update(key)
            .finalize()
            .into();
        let id = fingerprint[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self { key: Key(key), id })
    }

    /// The public fingerprint recorded next to each data key it wraps.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Where the master key comes from, in order of precedence.
#[derive(Debug, Clone, Default)]
pub struct MasterKeySource {
    /// The key itself (OIH_MASTER_KEY, or OIH's CRYPTO_KEY).
    pub secret: Option<String>,
    /// A file holding it.
    pub file: Option<PathBuf>,
    /// Where to generate (and later find) a key when neither is given.
    pub data_dir: PathBuf,
    /// Refuse to fall back to a generated key.
    pub production: bool,
}

impl MasterKeySource {
    pub fn load(&self) -> Result<MasterKey, KeyError> {
        if let Some(secret) = &self.secret {
            if secret.trim().chars().count() < 16 {
                tracing::warn!("the configured master key is shorter than 16 characters");
            }
            return MasterKey::from_secret(secret);
        }
        if let Some(path) = &self.file {
            return MasterKey::from_secret(&read_key_file(path)?);
        }
        if self.production {
            return Err(KeyError::MasterKeyRequired);
        }
        let path = self.data_dir.join(MASTER_KEY_FILE_NAME);
        MasterKey::from_secret(&generated_key(&path)?)
    }
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    oih_store::keyfile::read(path).map_err(|source| KeyError::KeyFile {
        path: path.to_owned(),
        source,
    })
}

/// Reads the generated key, creating it (mode 0600, never overwritten) on first start.
fn generated_key(path: &Path) -> Result<String, KeyError> {
    let (secret, created) =
        oih_store::keyfile::read_or_create(path, || B64.encode(Key::random().0)).map_err(
            |source| KeyError::KeyFile {
                path: path.to_owned(),
                source,
            },
        )?;
    if created {
        tracing::warn!(path = %path.display(), "generated a master key for secret-service; back it up: without it stored secrets cannot be read");
    }
    Ok(secret)
}

/// A data key record in `secrets_keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataKeyRecord {
    scope: String,
    generation: i64,
    /// `nonce ‖ AES-256-GCM(master key, data key)`, base64.
    wrapped_key: String,
    master_key_id: String,
}

impl DataKeyRecord {
    /// Binds a wrapped key to its record, so it cannot be moved to another tenant or id.
    fn aad(&self, id: &str) -> Vec<u8> {
        format!("{}/{id}/{}/{}", KEYS.0, self.scope, self.generation).into_bytes()
    }
}

/// The data keys, unwrapped on demand and cached (they never change once written).
pub struct KeyRing {
    store: Arc<dyn DocStore>,
    master: MasterKey,
    previous: Option<MasterKey>,
    cache: Mutex<HashMap<ObjectId, Key>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("master", &self.master)
            .field("previous", &self.previous)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Opens the ring. Call [`KeyRing::rewrap`] next: it also refuses a wrong master key.
    pub async fn open(
        store: Arc<dyn DocStore>,
        master: MasterKey,
        previous: Option<MasterKey>,
    ) -> Result<Self, KeyError> {
        store
            .ensure_collection(
                KEYS,
                &CollectionSpec {
                    unique: vec![vec!["scope", "generation"]],
                    indexed: vec!["scope", "masterKeyId"],
                },
            )
            .await?;
        Ok(Self {
            store,
            master,
            previous,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn master_key_id(&self) -> &str {
        self.master.id()
    }

    /// Re-wraps every data key wrapped by the previous master key with the current one;
    /// returns how many. Fails if a data key is wrapped by a master key that is neither (a
    /// wrong key would otherwise surface only when a secret is read).
    pub async fn rewrap(&self) -> Result<u64, KeyError> {
        let foreign = self
            .store
            .find(
                KEYS,
                &Filter::Ne("masterKeyId".into(), json!(self.master.id())),
                &FindOptions::default(),
            )
            .await?;
        let mut rewrapped = 0;
        for doc in foreign {
            let record: DataKeyRecord = serde_json::from_value(doc.body)
                .map_err(|_| KeyError::Malformed(doc.id.clone()))?;
            let Some(previous) = self
                .previous
                .as_ref()
                .filter(|p| p.id() == record.master_key_id)
            else {
                let count = self
                    .store
                    .count(
                        KEYS,
                        &Filter::eq("masterKeyId", record.master_key_id.clone()),
                    )
                    .await?;
                return Err(KeyError::UnknownMasterKey {
                    count: usize::try_from(count).unwrap_or(usize::MAX),
                    master_key_id: record.master_key_id,
                    current: self.master.id().to_owned(),
                });
            };
            let key = unwrap_key(&doc.id, &record, previous)?;
            let rewrapped_record = wrap_key(
                &doc.id,
                &record.scope,
                record.generation,
                &key,
                &self.master,
            );
            let body = serde_json::to_value(&rewrapped_record)
                .map_err(|_| KeyError::Malformed(doc.id.clone()))?;
            match self
                .store
                .update(KEYS, &doc.id, Some(doc.version), body)
                .await
            {
                // Another replica re-wrapped it at the same time: fine.
                Ok(_) | Err(StoreError::Conflict { .. }) => rewrapped += 1,
                Err(err) => return Err(err.into()),
            }
        }
        if rewrapped > 0 {
            tracing::info!(rewrapped, master_key_id = %self.master.id(), "re-wrapped data keys with the new master key");
        }
        Ok(rewrapped)
    }

    /// The newest data key of `scope`, created on first use.
    pub async fn active(&self, scope: &str) -> Result<(ObjectId, Key), KeyError> {
        // Two replicas may race to create the first key: the unique (scope, generation)
        // constraint lets one win; the other reads the winner's.
        for _ in 0..3 {
            if let Some(found) = self.newest(scope).await? {
                return Ok(found);
            }
            match self.create(scope, 1).await {
                Ok(created) => return Ok(created),
                Err(KeyError::Store(StoreError::Duplicate(_))) => continue,
                Err(err) => return Err(err),
            }
        }
        self.newest(scope)
            .await?
            .ok_or_else(|| KeyError::Malformed(format!("no data key for scope {scope}")))
    }

    /// Starts a new generation of `scope`'s data key; older ones stay for reading.
    pub async fn rotate(&self, scope: &str) -> Result<ObjectId, KeyError> {
        let next = match self.newest_record(scope).await? {
            Some((_, record)) => record.generation + 1,
            None => 1,
        };
        Ok(self.create(scope, next).await?.0)
    }

    /// Every scope that has a data key.
    pub async fn scopes(&self) -> Result<Vec<String>, KeyError> {
        let docs = self
            .store
            .find(KEYS, &Filter::All, &FindOptions::default())
            .await?;
        let mut scopes: Vec<String> = docs
            .into_iter()
            .filter_map(|d| {
                d.body
                    .get("scope")
                    .and_then(|s| s.as_str())
                    .map(str::to_owned)
            })
            .collect();
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }

    /// The data key with this id.
    pub async fn get(&self, id: ObjectId) -> Result<Key, KeyError> {
        if let Some(key) = self.cached(id) {
            return Ok(key);
        }
        let doc = self
            .store
            .get(KEYS, &id.to_string())
            .await?
            .ok_or(KeyError::MissingDataKey(id))?;
        let record: DataKeyRecord =
            serde_json::from_value(doc.body).map_err(|_| KeyError::Malformed(doc.id.clone()))?;
        let master = if record.master_key_id == self.master.id() {
            &self.master
        } else {
            self.previous
                .as_ref()
                .filter(|p| p.id() == record.master_key_id)
                .ok_or_else(|| KeyError::UnknownMasterKey {
                    count: 1,
                    master_key_id: record.master_key_id.clone(),
                    current: self.master.id().to_owned(),
                })?
        };
        let key = unwrap_key(&doc.id, &record, master)?;
        self.remember(id, &key);
        Ok(key)
    }

    async fn newest_record(
        &self,
        scope: &str,
    ) -> Result<Option<(String, DataKeyRecord)>, KeyError> {
        let opts = FindOptions {
            sort: vec![("generation".into(), SortOrder::Desc)],
            skip: 0,
            limit: Some(1),
        };
        let docs = self
            .store
            .find(KEYS, &Filter::eq("scope", scope), &opts)
            .await?;
        docs.into_iter()
            .next()
            .map(|doc| {
                serde_json::from_value(doc.body)
                    .map(|record| (doc.id.clone(), record))
                    .map_err(|_| KeyError::Malformed(doc.id))
            })
            .transpose()
    }

    async fn newest(&self, scope: &str) -> Result<Option<(ObjectId, Key)>, KeyError> {
        let Some((id, _)) = self.newest_record(scope).await? else {
            return Ok(None);
        };
        let id: ObjectId = id.parse().map_err(|_| KeyError::Malformed(id))?;
        Ok(Some((id, self.get(id).await?)))
    }

    async fn create(&self, scope: &str, generation: i64) -> Result<(ObjectId, Key), KeyError> {
        let id = ObjectId::new();
        let key = Key::random();
        let record = wrap_key(&id.to_string(), scope, generation, &key, &self.master);
        let body =
            serde_json::to_value(&record).map_err(|_| KeyError::Malformed(id.to_string()))?;
        self.store.insert(KEYS, &id.to_string(), body, None).await?;
        tracing::info!(scope, generation, key_id = %id, "created a data key");
        self.remember(id, &key);
        Ok((id, key))
    }

    fn cached(&self, id: ObjectId) -> Option<Key> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn remember(&self, id: ObjectId, key: &Key) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, key.clone());
    }
}

fn wrap_key(
    id: &str,
    scope: &str,
    generation: i64,
    key: &Key,
    master: &MasterKey,
) -> DataKeyRecord {
    let mut record = DataKeyRecord {
        scope: scope.to_owned(),
        generation,
        wrapped_key: String::new(),
        master_key_id: master.id().to_owned(),
    };
    record.wrapped_key = B64.encode(crypto::seal(&master.key, &key.0, &record.aad(id)));
    record
}

fn unwrap_key(id: &str, record: &DataKeyRecord, master: &MasterKey) -> Result<Key, KeyError> {
    let unwrap = |source| KeyError::Unwrap {
        id: id.to_owned(),
        source,
    };
    let sealed = B64
        .decode(&record.wrapped_key)
        .map_err(|_| unwrap(CryptoError::Malformed))?;
    let bytes = crypto::open(&master.key, &sealed, &record.aad(id)).map_err(unwrap)?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| unwrap(CryptoError::Malformed))?;
    Ok(Key(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_ids_are_stable_and_distinct() {
        let a = MasterKey::from_secret("correct horse battery staple").expect("key");
        let b = MasterKey::from_secret(" correct horse battery staple\n").expect("key");
        let c = MasterKey::from_secret("another key entirely").expect("key");
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(a.id().len(), 16);
        assert!(matches!(
            MasterKey::from_secret("  \n"),
            Err(KeyError::EmptyMasterKey)
        ));
        assert!(!format!("{a:?}").contains("horse"));
    }
}
