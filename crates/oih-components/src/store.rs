//! This service's collections and typed access to them. Bodies are stored without id and
//! timestamps; those come from the store's own columns.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use oih_store::{Collection, CollectionSpec, DocStore, Document, Filter, FindOptions, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::model::timestamp;

pub const COMPONENTS: Collection = Collection("components_components");
pub const VIRTUAL_COMPONENTS: Collection = Collection("components_virtual");
pub const VERSIONS: Collection = Collection("components_versions");
pub const CONFIGS: Collection = Collection("components_configs");
/// Local projection of which active flows use which components, fed by flow events (the
/// flow repository's own collections are not ours to read).
pub const FLOW_USAGE: Collection = Collection("components_flow_usage");

pub async fn ensure_collections(docs: &dyn DocStore) -> Result<(), StoreError> {
    let specs = [
        (
            COMPONENTS,
            CollectionSpec {
                unique: vec![],
                indexed: vec!["artifactId", "access", "isGlobal"],
            },
        ),
        (
            VIRTUAL_COMPONENTS,
            CollectionSpec {
                unique: vec![],
                indexed: vec!["tenant"],
            },
        ),
        (
            VERSIONS,
            CollectionSpec {
                unique: vec![],
                indexed: vec!["virtualComponentId"],
            },
        ),
        (
            CONFIGS,
            CollectionSpec {
                unique: vec![vec!["componentVersionId", "tenant"]],
                indexed: vec!["tenant"],
            },
        ),
        (FLOW_USAGE, CollectionSpec::default()),
    ];
    for (coll, spec) in specs {
        docs.ensure_collection(coll, &spec).await?;
    }
    Ok(())
}

/// A document with its typed body.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    pub id: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub body: T,
}

impl<T: DeserializeOwned> Stored<T> {
    fn decode(doc: Document) -> Result<Self, StoreError> {
        Ok(Self {
            body: serde_json::from_value(doc.body)?,
            id: doc.id,
            version: doc.version,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        })
    }
}

impl<T: Serialize> Stored<T> {
    /// The JSON clients see: the body plus `id_key` (`id` for components, `_id` elsewhere,
    /// as OIH's serializers differ) and the timestamps.
    pub fn render(&self, id_key: &str) -> Map<String, Value> {
        let mut out = match serde_json::to_value(&self.body) {
            Ok(Value::Object(map)) => map,
            // Every model serializes to an object.
            _ => Map::new(),
        };
        out.insert(id_key.into(), Value::String(self.id.clone()));
        out.insert("createdAt".into(), timestamp(self.created_at));
        out.insert("updatedAt".into(), timestamp(self.updated_at));
        out
    }
}

/// Typed access to one collection.
#[derive(Clone)]
pub struct Repo {
    pub docs: Arc<dyn DocStore>,
}

impl Repo {
    pub async fn get<T: DeserializeOwned>(
        &self,
        coll: Collection,
        id: &str,
    ) -> Result<Option<Stored<T>>, StoreError> {
        self.docs
            .get(coll, id)
            .await?
            .map(Stored::decode)
            .transpose()
    }

    pub async fn find<T: DeserializeOwned>(
        &self,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Stored<T>>, StoreError> {
        self.docs
            .find(coll, filter, opts)
            .await?
            .into_iter()
            .map(Stored::decode)
            .collect()
    }

    pub async fn insert<T: Serialize + DeserializeOwned>(
        &self,
        coll: Collection,
        id: &str,
        body: &T,
    ) -> Result<Stored<T>, StoreError> {
        let doc = self
            .docs
            .insert(coll, id, serde_json::to_value(body)?, None)
            .await?;
        Stored::decode(doc)
    }

    /// Writes `doc.body` if nobody changed the document since it was read.
    pub async fn update<T: Serialize + DeserializeOwned>(
        &self,
        coll: Collection,
        doc: &Stored<T>,
    ) -> Result<Stored<T>, StoreError> {
        let written = self
            .docs
            .update(
                coll,
                &doc.id,
                Some(doc.version),
                serde_json::to_value(&doc.body)?,
            )
            .await?;
        Stored::decode(written)
    }

    /// Applies `change` to the current body and writes it, re-reading and re-applying when a
    /// concurrent write got there first. None if there is no such document.
    pub async fn modify<T, F>(
        &self,
        coll: Collection,
        id: &str,
        mut change: F,
    ) -> Result<Option<Stored<T>>, StoreError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T) + Send,
    {
        loop {
            let Some(mut doc) = self.get::<T>(coll, id).await? else {
                return Ok(None);
            };
            change(&mut doc.body);
            match self.update(coll, &doc).await {
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => return Ok(None),
                other => return other.map(Some),
            }
        }
    }

    /// Inserts `body` under `id`, or replaces what is there if it differs. Safe against a
    /// concurrent writer (another replica doing the same): a lost race is retried.
    pub async fn upsert<T>(&self, coll: Collection, id: &str, body: &T) -> Result<(), StoreError>
    where
        T: Serialize + DeserializeOwned + PartialEq + Clone,
    {
        loop {
            let outcome = match self.get::<T>(coll, id).await? {
                None => self.insert(coll, id, body).await.map(drop),
                Some(current) if current.body == *body => return Ok(()),
                Some(mut current) => {
                    current.body = body.clone();
                    self.update(coll, &current).await.map(drop)
                }
            };
            match outcome {
                Err(
                    StoreError::Duplicate(_) | StoreError::Conflict { .. } | StoreError::NotFound,
                ) => {
                    continue;
                }
                other => return other,
            }
        }
    }
}
