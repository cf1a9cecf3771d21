//! The document-store contract. Both engines implement it; one conformance suite runs against
//! each: `tests/it/main.rs` lists its cases (`conformance!`), written once in `tests/it/docs.rs`,
//! `filters.rs`, `txn.rs` and `log.rs`, and `tests/it/support.rs` runs each on SQLite and
//! PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{Filter, LogBatch, Result};

/// A named collection (one table per collection, owned by one service). Names are
/// `[a-z][a-z0-9_]*`, at most 48 characters; the service prefixes its own (`flows_flows`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Collection(pub &'static str);

/// What a collection needs beyond id and body; declared once at start-up with
/// [`DocStore::ensure_collection`] (idempotent, and safe from several processes at once).
#[derive(Debug, Clone, Default)]
pub struct CollectionSpec {
    /// Each entry is a set of JSON paths (dotted, e.g. `"tenant"`, `"owner.id"`) whose combined
    /// values must be unique among live documents. A document missing any of the paths is not
    /// constrained (as a Mongo sparse unique index).
    pub unique: Vec<Vec<&'static str>>,
    /// Paths that are filtered or sorted on often; the engine indexes them.
    pub indexed: Vec<&'static str>,
}

/// A stored document. `id` is the 24-hex id the service gave it; `version` starts at 1 and
/// grows by one with every update (optimistic concurrency).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub version: i64,
    pub body: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When set, the document is invisible to every read from that instant on and is removed
    /// by [`DocStore::purge_expired`].
    pub expires_at: Option<DateTime<Utc>>,
}

/// A document for [`DocOps::insert_many`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    pub id: String,
    pub body: Value,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Default)]
pub struct FindOptions {
    /// Sort keys in priority order: JSON paths, or the pseudo-paths `_id`, `_createdAt`,
    /// `_updatedAt`. Ties are always broken by id ascending, so paging is stable.
    pub sort: Vec<(String, SortOrder)>,
    pub skip: u64,
    pub limit: Option<u64>,
}

/// Operations available both directly on the store and inside a [`Transaction`].
#[async_trait]
pub trait DocOps: Send {
    /// Inserts a new document (version 1). `StoreError::Duplicate` if the id exists or a
    /// unique constraint is violated.
    async fn insert(
        &mut self,
        coll: Collection,
        id: &str,
        body: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Document>;
    /// Inserts several documents in as few statements as the engine allows (a group commit's
    /// worth in one or two, where one at a time costs a round trip each). Each one's outcome,
    /// in order, is what [`DocOps::insert`] would have given it.
    async fn insert_many(
        &mut self,
        coll: Collection,
        docs: Vec<NewDocument>,
    ) -> Result<Vec<Result<Document>>>;
    async fn get(&mut self, coll: Collection, id: &str) -> Result<Option<Document>>;
    /// Replaces the body if the stored version equals `expected_version` (None: any version).
    /// `StoreError::NotFound` if absent, `StoreError::Conflict` if the version moved on.
    async fn update(
        &mut self,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document>;
    /// Returns whether a document was deleted.
    async fn delete(&mut self, coll: Collection, id: &str) -> Result<bool>;
    async fn find(
        &mut self,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>>;
    async fn count(&mut self, coll: Collection, filter: &Filter) -> Result<u64>;
    /// Deletes every matching document; returns how many.
    async fn delete_many(&mut self, coll: Collection, filter: &Filter) -> Result<u64>;
}

/// A unit of work: documents written and bus messages logged through it become visible
/// together at [`Transaction::commit`], or not at all.
#[async_trait]
pub trait Transaction: DocOps {
    /// Writes message-log changes (the embedded bus's outbox rows) in this transaction.
    async fn log(&mut self, batch: LogBatch) -> Result<()>;
    /// Runs `hook` once the commit has succeeded (the embedded bus uses it to hand committed
    /// messages to consumers). Hooks are dropped on rollback.
    fn after_commit(&mut self, hook: Box<dyn FnOnce() + Send>);
    async fn commit(self: Box<Self>) -> Result<()>;
    async fn rollback(self: Box<Self>) -> Result<()>;
}

/// The store as the services see it. Cheap to share as `Arc<dyn DocStore>`.
#[async_trait]
pub trait DocStore: Send + Sync {
    async fn ensure_collection(&self, coll: Collection, spec: &CollectionSpec) -> Result<()>;
    async fn begin(&self) -> Result<Box<dyn Transaction>>;

    async fn insert(
        &self,
        coll: Collection,
        id: &str,
        body: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Document>;
    async fn get(&self, coll: Collection, id: &str) -> Result<Option<Document>>;
    async fn update(
        &self,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document>;
    async fn delete(&self, coll: Collection, id: &str) -> Result<bool>;
    async fn find(
        &self,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>>;
    async fn count(&self, coll: Collection, filter: &Filter) -> Result<u64>;
    async fn delete_many(&self, coll: Collection, filter: &Filter) -> Result<u64>;

    /// Removes documents whose `expires_at` has passed in every collection; returns how many.
    /// Reads already hide them, so this only reclaims space.
    async fn purge_expired(&self) -> Result<u64>;
    /// True when the database answers (used by `/healthcheck`).
    async fn ping(&self) -> Result<()>;
    /// The engine's name, `"sqlite"` or `"postgres"`.
    fn engine(&self) -> &'static str;
    async fn close(&self);
}
