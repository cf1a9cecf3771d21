//! The store traits on top of either SQL engine, written once. An engine supplies its
//! statements on one connection ([`Engine`] in `<engine>/docs.rs`, [`LogEngine`] in
//! `<engine>/log.rs`) and how its store hands out connections ([`SqlBackend`]: SQLite writes
//! through its single writer, PostgreSQL uses one pool); which connection serves what, and the
//! transaction type, live here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Database;
use sqlx::pool::PoolConnection;
use std::collections::HashSet;

use crate::sql::{Hook, now_micros, run_hooks, truncate_micros};
use crate::{
    Collection, CollectionSpec, DocOps, DocStore, Document, Filter, FindOptions, LogBatch,
    LogSnapshot, MessageLog, NewDocument, Result, StoreError, Transaction,
};

/// A connection of engine `E`.
pub(crate) type Conn<E> = <<E as Engine>::Db as Database>::Connection;
/// A transaction of engine `E` that owns its (pooled) connection.
pub(crate) type Tx<E> = sqlx::Transaction<'static, <E as Engine>::Db>;

/// One engine's document statements, each on the connection (or transaction) it is given.
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    type Db: Database;
    /// What [`DocStore::engine`] reports.
    const NAME: &'static str;

    /// Creates the collection's table and indexes and records it, in the caller's transaction.
    async fn ensure_collection(
        conn: &mut Conn<Self>,
        coll: Collection,
        spec: &CollectionSpec,
    ) -> Result<()>;
    async fn insert(
        conn: &mut Conn<Self>,
        coll: Collection,
        id: &str,
        body: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Document>;
    /// Inserts `docs` (distinct ids), created at `now`, in as few statements as the engine
    /// allows, skipping any that collides with a stored id or unique value; the ids inserted.
    async fn insert_new(
        conn: &mut Conn<Self>,
        coll: Collection,
        docs: &[NewDocument],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>>;
    async fn get(conn: &mut Conn<Self>, coll: Collection, id: &str) -> Result<Option<Document>>;
    async fn update(
        conn: &mut Conn<Self>,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document>;
    async fn delete(conn: &mut Conn<Self>, coll: Collection, id: &str) -> Result<bool>;
    async fn find(
        conn: &mut Conn<Self>,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>>;
    async fn count(conn: &mut Conn<Self>, coll: Collection, filter: &Filter) -> Result<u64>;
    async fn delete_many(conn: &mut Conn<Self>, coll: Collection, filter: &Filter) -> Result<u64>;
    /// The collections `ensure_collection` recorded.
    async fn collections(conn: &mut Conn<Self>) -> Result<Vec<String>>;
    /// Physically removes the documents of `coll` that expired by `now`.
    async fn purge_expired(conn: &mut Conn<Self>, coll: &str, now: DateTime<Utc>) -> Result<u64>;
}

/// One engine's message-log statements (`<engine>/log.rs`).
#[async_trait]
pub(crate) trait LogEngine: Engine {
    /// Applies `batch` in the caller's transaction.
    async fn write_log(conn: &mut Conn<Self>, batch: LogBatch) -> Result<()>;
    /// The message log as of the caller's (snapshot) transaction.
    async fn load_log(conn: &mut Conn<Self>) -> Result<LogSnapshot>;
}

/// The error for an insert that hit a constraint: which one, as far as it can be told.
pub(crate) async fn duplicate<E: Engine>(
    conn: &mut Conn<E>,
    coll: Collection,
    id: &str,
) -> StoreError {
    match E::get(conn, coll, id).await {
        Ok(Some(_)) => StoreError::Duplicate(format!("{}: id {id} already exists", coll.0)),
        Ok(None) => StoreError::Duplicate(format!("{}: unique constraint violated", coll.0)),
        Err(e) => e,
    }
}

/// [`DocOps::insert_many`] on any engine: the documents go in with [`Engine::insert_new`];
/// those it skipped (a collision, or an id repeated in `docs`) take the single insert's way,
/// which makes room by dropping expired documents and tells which constraint they hit.
async fn insert_many<E: Engine>(
    conn: &mut Conn<E>,
    coll: Collection,
    docs: Vec<NewDocument>,
) -> Result<Vec<Result<Document>>> {
    let now = now_micros();
    let count = docs.len();
    let mut seen = HashSet::with_capacity(count);
    let (mut batch, mut batch_at, mut repeated) = (Vec::new(), Vec::new(), Vec::new());
    for (at, doc) in docs.into_iter().enumerate() {
        if seen.insert(doc.id.clone()) {
            batch.push(doc);
            batch_at.push(at);
        } else {
            repeated.push((at, doc));
        }
    }
    let mut inserted: HashSet<String> = E::insert_new(conn, coll, &batch, now)
        .await?
        .into_iter()
        .collect();
    let mut outcomes: Vec<Option<Result<Document>>> = (0..count).map(|_| None).collect();
    for (at, doc) in batch_at.into_iter().zip(batch).chain(repeated) {
        let outcome = if inserted.remove(&doc.id) {
            Ok(Document {
                id: doc.id,
                version: 1,
                body: doc.body,
                created_at: now,
                updated_at: now,
                expires_at: doc.expires_at.map(truncate_micros),
            })
        } else {
            E::insert(conn, coll, &doc.id, doc.body, doc.expires_at).await
        };
        outcomes[at] = Some(outcome);
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// How a store hands out connections: the one thing besides SQL the engines do differently.
#[async_trait]
pub(crate) trait SqlBackend: LogEngine {
    /// A connection for a single read.
    async fn reader(&self) -> Result<PoolConnection<Self::Db>>;
    /// A connection for a single write.
    async fn writer(&self) -> Result<PoolConnection<Self::Db>>;
    /// A read-write transaction.
    async fn begin_write(&self) -> Result<Tx<Self>>;
    /// A read-only transaction whose reads all see the same commit.
    async fn begin_snapshot(&self) -> Result<Tx<Self>>;
    async fn ping(&self) -> Result<()>;
    async fn close(&self);
}

#[async_trait]
impl<S: SqlBackend> DocStore for S {
    async fn ensure_collection(&self, coll: Collection, spec: &CollectionSpec) -> Result<()> {
        let mut tx = self.begin_write().await?;
        S::ensure_collection(&mut tx, coll, spec).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(SqlTx::<S> {
            tx: self.begin_write().await?,
            hooks: Vec::new(),
        }))
    }

    async fn insert(
        &self,
        coll: Collection,
        id: &str,
        body: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Document> {
        S::insert(&mut *self.writer().await?, coll, id, body, expires_at).await
    }

    async fn get(&self, coll: Collection, id: &str) -> Result<Option<Document>> {
        S::get(&mut *self.reader().await?, coll, id).await
    }

    async fn update(
        &self,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document> {
        S::update(&mut *self.writer().await?, coll, id, expected_version, body).await
    }

    async fn delete(&self, coll: Collection, id: &str) -> Result<bool> {
        S::delete(&mut *self.writer().await?, coll, id).await
    }

    async fn find(
        &self,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        S::find(&mut *self.reader().await?, coll, filter, opts).await
    }

    async fn count(&self, coll: Collection, filter: &Filter) -> Result<u64> {
        S::count(&mut *self.reader().await?, coll, filter).await
    }

    async fn delete_many(&self, coll: Collection, filter: &Filter) -> Result<u64> {
        S::delete_many(&mut *self.writer().await?, coll, filter).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        let mut conn = self.writer().await?;
        let now = now_micros();
        let mut purged = 0;
        for name in S::collections(&mut conn).await? {
            purged += S::purge_expired(&mut conn, &name, now).await?;
        }
        Ok(purged)
    }

    async fn ping(&self) -> Result<()> {
        SqlBackend::ping(self).await
    }

    fn engine(&self) -> &'static str {
        S::NAME
    }

    async fn close(&self) {
        SqlBackend::close(self).await;
    }
}

#[async_trait]
impl<S: SqlBackend> MessageLog for S {
    async fn write(&self, batch: LogBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        S::write_log(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn load(&self) -> Result<LogSnapshot> {
        // One snapshot, so topology and messages are from the same commit.
        let mut tx = self.begin_snapshot().await?;
        let snapshot = S::load_log(&mut tx).await?;
        tx.commit().await?;
        Ok(snapshot)
    }
}

/// A transaction on one connection of engine `E`. Dropping it un-committed rolls back (sqlx
/// queues the ROLLBACK before the connection is reused).
struct SqlTx<E: LogEngine> {
    tx: Tx<E>,
    hooks: Vec<Hook>,
}

#[async_trait]
impl<E: LogEngine> DocOps for SqlTx<E> {
    async fn insert(
        &mut self,
        coll: Collection,
        id: &str,
        body: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Document> {
        E::insert(&mut self.tx, coll, id, body, expires_at).await
    }

    async fn insert_many(
        &mut self,
        coll: Collection,
        docs: Vec<NewDocument>,
    ) -> Result<Vec<Result<Document>>> {
        insert_many::<E>(&mut self.tx, coll, docs).await
    }

    async fn get(&mut self, coll: Collection, id: &str) -> Result<Option<Document>> {
        E::get(&mut self.tx, coll, id).await
    }

    async fn update(
        &mut self,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document> {
        E::update(&mut self.tx, coll, id, expected_version, body).await
    }

    async fn delete(&mut self, coll: Collection, id: &str) -> Result<bool> {
        E::delete(&mut self.tx, coll, id).await
    }

    async fn find(
        &mut self,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        E::find(&mut self.tx, coll, filter, opts).await
    }

    async fn count(&mut self, coll: Collection, filter: &Filter) -> Result<u64> {
        E::count(&mut self.tx, coll, filter).await
    }

    async fn delete_many(&mut self, coll: Collection, filter: &Filter) -> Result<u64> {
        E::delete_many(&mut self.tx, coll, filter).await
    }
}

#[async_trait]
impl<E: LogEngine> Transaction for SqlTx<E> {
    async fn log(&mut self, batch: LogBatch) -> Result<()> {
        E::write_log(&mut self.tx, batch).await
    }

    fn after_commit(&mut self, hook: Box<dyn FnOnce() + Send>) {
        self.hooks.push(hook);
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let SqlTx { tx, hooks } = *self;
        tx.commit().await?;
        run_hooks(hooks);
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
