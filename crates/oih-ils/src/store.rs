//! The `ils_chunks` collection.
//!
//! Every chunk carries the scope (tenant) it was written in, and every read and write filters
//! on it. A mergeable chunk also carries `mergeKey` (common-id name and value); the store's
//! unique constraint on (scope, ilaId, mergeKey) makes "create or merge" race-free: a create
//! that loses the race gets `Duplicate` and merges instead, and a merge writes only if the
//! chunk is still at the version it read (optimistic concurrency), else it reads again.

use std::sync::Arc;

use chrono::{Duration, Utc};
use oih_core::ObjectId;
use oih_http::ApiError;
use oih_store::{
    Collection, CollectionSpec, DocStore, Document, Filter, FindOptions, SortOrder, StoreError,
};
use serde_json::{Map, Value, json};

use crate::model::{self, NewChunk, merge_key};

const CHUNKS: Collection = Collection("ils_chunks");

/// How often a create-or-merge re-reads after losing a race before giving up with 503.
const MAX_ATTEMPTS: usize = 16;

#[derive(Clone)]
pub struct ChunkStore {
    docs: Arc<dyn DocStore>,
    ttl: Duration,
}

/// What `POST /chunks` asks the store to do: put `payload` into the chunk with the same
/// common id, or start one.
pub struct Upsert<'a> {
    pub scope: &'a str,
    pub ila_id: &'a str,
    pub cid: &'a str,
    pub def: &'a Map<String, Value>,
    pub payload: &'a Map<String, Value>,
}

impl ChunkStore {
    pub async fn open(docs: Arc<dyn DocStore>, ttl: Duration) -> Result<Self, StoreError> {
        docs.ensure_collection(
            CHUNKS,
            &CollectionSpec {
                unique: vec![vec!["scope", "ilaId", "mergeKey"]],
                indexed: vec!["scope", "ilaId", "splitKey"],
            },
        )
        .await?;
        Ok(Self { docs, ttl })
    }

    /// Creates the chunk or merges into the existing one (shallow, incoming fields win), and
    /// sets `valid` with `validate` applied to the resulting payload. Every write restarts the
    /// chunk's lifetime.
    pub async fn upsert(
        &self,
        req: &Upsert<'_>,
        validate: &(dyn Fn(&Map<String, Value>) -> bool + Sync),
    ) -> Result<Document, ApiError> {
        let cid_value = req
            .payload
            .get(req.cid)
            .ok_or_else(|| ApiError::bad_request(model::NO_CID))?;
        let key = merge_key(req.cid, cid_value);
        let filter = Filter::and([
            Filter::eq("scope", req.scope),
            Filter::eq("ilaId", req.ila_id),
            Filter::eq("mergeKey", key.as_str()),
        ]);
        for _ in 0..MAX_ATTEMPTS {
            let existing = self
                .docs
                .find(CHUNKS, &filter, &FindOptions::default())
                .await?
                .into_iter()
                .next();
            let expire_at = Utc::now() + self.ttl;
            let written = match existing {
                None => {
                    let chunk = NewChunk {
                        ila_id: req.ila_id.to_owned(),
                        cid: Some(req.cid.to_owned()),
                        def: Some(req.def.clone()),
                        payload: req.payload.clone(),
                        split_key: None,
                        meta: Map::new(),
                        valid: validate(req.payload),
                    };
                    self.docs
                        .insert(
                            CHUNKS,
                            &ObjectId::new().to_string(),
                            chunk.body(req.scope, expire_at),
                            Some(expire_at),
                        )
                        .await
                }
                Some(doc) if !same_definition(&doc.body, req) => {
                    return Err(ApiError::bad_request(model::MERGE_MISMATCH));
                }
                Some(doc) => self.merge(doc, req, validate, expire_at).await,
            };
            match written {
                Ok(doc) => return Ok(doc),
                // Another request created or merged the chunk meanwhile: read it again.
                Err(
                    StoreError::Duplicate(_) | StoreError::Conflict { .. } | StoreError::NotFound,
                ) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Unavailable(
            "The chunk is being written by too many requests at once; retry".into(),
        ))
    }

    /// Writes the merged chunk. The store cannot move a document's expiry, so the merged
    /// chunk replaces the old one under a new id, in one transaction that first claims the
    /// version it read (a concurrent merge then fails and re-reads).
    async fn merge(
        &self,
        doc: Document,
        req: &Upsert<'_>,
        validate: &(dyn Fn(&Map<String, Value>) -> bool + Sync),
        expire_at: chrono::DateTime<Utc>,
    ) -> Result<Document, StoreError> {
        let Value::Object(mut body) = doc.body else {
            return Err(StoreError::Invalid("stored chunk is not an object".into()));
        };
        let mut payload = body
            .get("payload")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        payload.extend(req.payload.iter().map(|(k, v)| (k.clone(), v.clone())));
        body.insert("valid".into(), json!(validate(&payload)));
        body.insert("payload".into(), Value::Object(payload));
        model::set_expiry(&mut body, expire_at);
        let body = Value::Object(body);
        let mut tx = self.docs.begin().await?;
        let replaced = async {
            tx.update(CHUNKS, &doc.id, Some(doc.version), body.clone())
                .await?;
            tx.delete(CHUNKS, &doc.id).await?;
            tx.insert(CHUNKS, &ObjectId::new().to_string(), body, Some(expire_at))
                .await
        }
        .await;
        match replaced {
            Ok(doc) => {
                tx.commit().await?;
                Ok(doc)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// Stores the chunks of one split together (all or none).
    pub async fn insert_all(
        &self,
        scope: &str,
        chunks: &[NewChunk],
    ) -> Result<Vec<Document>, StoreError> {
        let expire_at = Utc::now() + self.ttl;
        let mut tx = self.docs.begin().await?;
        let mut stored = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let id = ObjectId::new().to_string();
            match tx
                .insert(CHUNKS, &id, chunk.body(scope, expire_at), Some(expire_at))
                .await
            {
                Ok(doc) => stored.push(doc),
                Err(e) => {
                    tx.rollback().await?;
                    return Err(e);
                }
            }
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// With a split key: the split chunks of that key; without: the valid chunks. Oldest first.
    pub async fn list(
        &self,
        scope: &str,
        ila_id: &str,
        split_key: Option<&str>,
    ) -> Result<Vec<Document>, StoreError> {
        let selector = match split_key {
            Some(key) => Filter::eq("splitKey", key),
            None => Filter::eq("valid", true),
        };
        let filter = Filter::and([
            Filter::eq("scope", scope),
            Filter::eq("ilaId", ila_id),
            selector,
        ]);
        let opts = FindOptions {
            sort: vec![("_createdAt".into(), SortOrder::Asc)],
            ..FindOptions::default()
        };
        self.docs.find(CHUNKS, &filter, &opts).await
    }
}

/// OIH merges only chunks of the same common id and domain. It meant to compare the schema
/// too (its code reads a field that is never set); this compares `schemaUri` as well.
fn same_definition(stored: &Value, req: &Upsert<'_>) -> bool {
    let def_field = |def: Option<&Map<String, Value>>, name: &str| {
        def.and_then(|d| d.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let stored_def = stored.get("def").and_then(Value::as_object);
    stored.get("cid").and_then(Value::as_str) == Some(req.cid)
        && ["domainId", "schemaUri"]
            .iter()
            .all(|f| def_field(stored_def, f) == def_field(Some(req.def), f))
}
