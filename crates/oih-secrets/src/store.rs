//! Access to the service's document collections (`secrets_secrets`, `secrets_auth_clients`),
//! with sensitive fields sealed on the way in and opened on the way out. Nothing outside this
//! module sees an envelope.

use std::marker::PhantomData;
use std::sync::Arc;

use oih_core::Owner;
use oih_store::{Collection, CollectionSpec, DocStore, Document, Filter, FindOptions, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::client_model::{CLIENT_SENSITIVE, StoredClient};
use crate::keys::KeyRing;
use crate::model::{SENSITIVE_FIELDS, StoredSecret};
use crate::sealing::{SealError, Sealer, Target};

/// How often a read-modify-write is retried when another writer got in between.
const WRITE_ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The requested change is not valid (a 400 for the caller).
    #[error("{0}")]
    Rejected(String),
    #[error("document {0} is malformed in the store")]
    Malformed(String),
    #[error("document {0} kept changing; gave up after {WRITE_ATTEMPTS} attempts")]
    Contended(String),
}

/// A document type with sealed fields.
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    const COLLECTION: Collection;
    /// Fields sealed at rest.
    const SENSITIVE: &'static [&'static str];
    fn spec() -> CollectionSpec;
    fn tenant(&self) -> Option<&str>;
    fn owners_mut(&mut self) -> &mut Vec<Owner>;
    /// The map holding the sensitive fields, and the list of those currently sealed.
    fn sealed(&self) -> (&Map<String, Value>, &[String]);
    fn sealed_mut(&mut self) -> (&mut Map<String, Value>, &mut Vec<String>);
}

impl Record for StoredSecret {
    const COLLECTION: Collection = Collection("secrets_secrets");
    const SENSITIVE: &'static [&'static str] = SENSITIVE_FIELDS;

    fn spec() -> CollectionSpec {
        CollectionSpec {
            unique: vec![],
            indexed: vec!["value.authClientId", "value.externalId", "tenant"],
        }
    }

    fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    fn owners_mut(&mut self) -> &mut Vec<Owner> {
        &mut self.owners
    }

    fn sealed(&self) -> (&Map<String, Value>, &[String]) {
        (&self.value, &self.encrypted_fields)
    }

    fn sealed_mut(&mut self) -> (&mut Map<String, Value>, &mut Vec<String>) {
        (&mut self.value, &mut self.encrypted_fields)
    }
}

impl Record for StoredClient {
    const COLLECTION: Collection = Collection("secrets_auth_clients");
    const SENSITIVE: &'static [&'static str] = CLIENT_SENSITIVE;

    fn spec() -> CollectionSpec {
        CollectionSpec {
            unique: vec![],
            indexed: vec!["tenant"],
        }
    }

    fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    fn owners_mut(&mut self) -> &mut Vec<Owner> {
        &mut self.owners
    }

    fn sealed(&self) -> (&Map<String, Value>, &[String]) {
        (&self.fields, &self.encrypted_fields)
    }

    fn sealed_mut(&mut self) -> (&mut Map<String, Value>, &mut Vec<String>) {
        (&mut self.fields, &mut self.encrypted_fields)
    }
}

pub type Secrets = Repo<StoredSecret>;
pub type Clients = Repo<StoredClient>;

/// One collection of `T` and the sealer for its sensitive fields.
pub struct Repo<T> {
    store: Arc<dyn DocStore>,
    sealer: Sealer,
    records: PhantomData<fn() -> T>,
}

impl<T: Record> Repo<T> {
    pub async fn open(store: Arc<dyn DocStore>, keys: Arc<KeyRing>) -> Result<Self, StoreError> {
        store.ensure_collection(T::COLLECTION, &T::spec()).await?;
        Ok(Self {
            store,
            sealer: Sealer::new(keys),
            records: PhantomData,
        })
    }

    pub fn docs(&self) -> &Arc<dyn DocStore> {
        &self.store
    }

    pub async fn get(&self, id: &str) -> Result<Option<(Document, T)>, SecretsError> {
        match self.store.get(T::COLLECTION, id).await? {
            Some(doc) => {
                let record = parse(&doc)?;
                Ok(Some((doc, record)))
            }
            None => Ok(None),
        }
    }

    /// Stores a new record with plaintext sensitive fields; returns the stored document.
    pub async fn insert(&self, id: &str, mut record: T) -> Result<Document, SecretsError> {
        self.seal(id, &mut record).await?;
        Ok(self
            .store
            .insert(T::COLLECTION, id, to_body(id, &record)?, None)
            .await?)
    }

    /// Read-modify-write with optimistic concurrency: `change` gets the stored record
    /// (sensitive fields still sealed; plaintext it puts in is sealed before writing) and
    /// returns whether it changed anything, or a message for the caller. `None` if the record
    /// is gone.
    pub async fn update(
        &self,
        id: &str,
        mut change: impl FnMut(&mut T) -> Result<bool, String>,
    ) -> Result<Option<(Document, T)>, SecretsError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some((doc, mut record)) = self.get(id).await? else {
                return Ok(None);
            };
            if !change(&mut record).map_err(SecretsError::Rejected)? {
                return Ok(Some((doc, record)));
            }
            self.seal(id, &mut record).await?;
            match self.write(&doc, &record).await {
                Ok(Some(doc)) => return Ok(Some((doc, record))),
                Ok(None) => continue,
                Err(SecretsError::Store(StoreError::NotFound)) => return Ok(None),
                Err(err) => return Err(err),
            }
        }
        Err(SecretsError::Contended(id.into()))
    }

    /// Writes `record` over `doc` if nobody changed it meanwhile (None: somebody did).
    pub async fn write(
        &self,
        doc: &Document,
        record: &T,
    ) -> Result<Option<Document>, SecretsError> {
        let body = to_body(&doc.id, record)?;
        match self
            .store
            .update(T::COLLECTION, &doc.id, Some(doc.version), body)
            .await
        {
            Ok(doc) => Ok(Some(doc)),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Removes `owner`, or deletes the record when it has no other owner (OIH's rule for
    /// DELETE and for deleting a user's or tenant's things); returns whether it was deleted.
    pub async fn drop_owner_or_delete(
        &self,
        id: &str,
        owner: &Owner,
    ) -> Result<bool, SecretsError> {
        let mut sole_owner = false;
        self.update(id, |record| {
            let owners = record.owners_mut();
            sole_owner = owners.len() <= 1;
            if sole_owner {
                return Ok(false);
            }
            let before = owners.len();
            owners.retain(|o| o != owner);
            Ok(owners.len() != before)
        })
        .await?;
        Ok(sole_owner && self.delete(id).await?)
    }

    /// Ids of the records `owner` owns.
    pub async fn owned_by(&self, owner: &Owner) -> Result<Vec<String>, SecretsError> {
        let filter = Filter::ArrayContains("owners".into(), json!(owner));
        let found = self
            .store
            .find(T::COLLECTION, &filter, &FindOptions::default())
            .await?;
        Ok(found.into_iter().map(|doc| doc.id).collect())
    }

    pub async fn delete(&self, id: &str) -> Result<bool, SecretsError> {
        Ok(self.store.delete(T::COLLECTION, id).await?)
    }

    pub async fn find(
        &self,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<(Document, T)>, SecretsError> {
        let docs = self.store.find(T::COLLECTION, filter, opts).await?;
        docs.into_iter()
            .map(|doc| {
                let record = parse(&doc)?;
                Ok((doc, record))
            })
            .collect()
    }

    pub async fn count(&self, filter: &Filter) -> Result<u64, SecretsError> {
        Ok(self.store.count(T::COLLECTION, filter).await?)
    }

    /// Seals every sensitive field not sealed yet, with the newest data key of the record's
    /// tenant.
    pub async fn seal(&self, id: &str, record: &mut T) -> Result<(), SecretsError> {
        let tenant = record.tenant().map(str::to_owned);
        let target = target::<T>(id, tenant.as_deref());
        let (map, sealed) = record.sealed_mut();
        self.sealer.seal(target, T::SENSITIVE, map, sealed).await?;
        Ok(())
    }

    /// The record's sealed map (a secret's value, a client's fields) in plaintext.
    pub async fn plaintext(
        &self,
        id: &str,
        record: &T,
    ) -> Result<Map<String, Value>, SecretsError> {
        let target = target::<T>(id, record.tenant());
        let (map, sealed) = record.sealed();
        Ok(self.sealer.open(target, map, sealed).await?)
    }

    /// Opens and re-seals every sensitive field with the tenant's newest data key (and seals
    /// sensitive values stored in clear, e.g. imported from an OIH with crypto off). Returns
    /// whether the record still existed.
    pub async fn reseal(&self, id: &str) -> Result<bool, SecretsError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some((doc, mut record)) = self.get(id).await? else {
                return Ok(false);
            };
            let plain = self.plaintext(id, &record).await?;
            let (map, sealed) = record.sealed_mut();
            *map = plain;
            sealed.clear();
            self.seal(id, &mut record).await?;
            match self.write(&doc, &record).await {
                Ok(Some(_)) => return Ok(true),
                Ok(None) => continue,
                Err(SecretsError::Store(StoreError::NotFound)) => return Ok(false),
                Err(err) => return Err(err),
            }
        }
        Err(SecretsError::Contended(id.into()))
    }
}

fn parse<T: Record>(doc: &Document) -> Result<T, SecretsError> {
    serde_json::from_value(doc.body.clone()).map_err(|_| SecretsError::Malformed(doc.id.clone()))
}

fn to_body<T: Record>(id: &str, record: &T) -> Result<Value, SecretsError> {
    serde_json::to_value(record).map_err(|_| SecretsError::Malformed(id.into()))
}

fn target<'a, T: Record>(id: &'a str, tenant: Option<&'a str>) -> Target<'a> {
    Target {
        collection: T::COLLECTION,
        id,
        tenant,
    }
}
