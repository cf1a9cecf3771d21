//! PostgreSQL backend (JSONB). One pool serves documents, transactions and the message log;
//! PostgreSQL handles concurrent writers itself.
//!
//! Known issue: sqlx 0.9.0 does not set `TCP_NODELAY` (sqlx issue #4335, fixed upstream
//! by #4336 but not yet released). Over TCP, a request larger than the socket's initial send
//! buffer (about 16 KiB: a big document, a large log batch) then waits ~40 ms for a delayed
//! ACK. Unix sockets are not affected (`postgres://user@localhost/db?host=/var/run/postgresql`).

mod docs;
mod filter;
mod log;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres};

use crate::sql::{Hook, now_micros, run_hooks};
use crate::{
    Collection, CollectionSpec, DocOps, DocStore, Document, Filter, FindOptions, LogBatch,
    LogSnapshot, MessageLog, Result, Transaction,
};

const MAX_CONNECTIONS: u32 = 10;

pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects and migrates. Several processes may do this at once against one database:
    /// sqlx's migrator holds a PostgreSQL advisory lock while it works.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl DocStore for PgStore {
    async fn ensure_collection(&self, coll: Collection, spec: &CollectionSpec) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        docs::ensure_collection(&mut tx, coll, spec).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(PgTx {
            tx: self.pool.begin().await?,
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
        let mut conn = self.pool.acquire().await?;
        docs::insert(&mut conn, coll, id, body, expires_at).await
    }

    async fn get(&self, coll: Collection, id: &str) -> Result<Option<Document>> {
        let mut conn = self.pool.acquire().await?;
        docs::get(&mut conn, coll, id).await
    }

    async fn update(
        &self,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document> {
        let mut conn = self.pool.acquire().await?;
        docs::update(&mut conn, coll, id, expected_version, body).await
    }

    async fn delete(&self, coll: Collection, id: &str) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        docs::delete(&mut conn, coll, id).await
    }

    async fn find(
        &self,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        let mut conn = self.pool.acquire().await?;
        docs::find(&mut conn, coll, filter, opts).await
    }

    async fn count(&self, coll: Collection, filter: &Filter) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        docs::count(&mut conn, coll, filter).await
    }

    async fn delete_many(&self, coll: Collection, filter: &Filter) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        docs::delete_many(&mut conn, coll, filter).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM oih_collections ORDER BY name")
                .fetch_all(&mut *conn)
                .await?;
        let now = now_micros();
        let mut purged = 0;
        for name in names {
            purged += docs::purge_expired(&mut conn, &name, now).await?;
        }
        Ok(purged)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl MessageLog for PgStore {
    async fn write(&self, batch: LogBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        log::write(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn load(&self) -> Result<LogSnapshot> {
        // One snapshot, so topology and messages are from the same commit.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let snapshot = log::load(&mut tx).await?;
        tx.commit().await?;
        Ok(snapshot)
    }
}

/// A transaction on one pooled connection. Dropping it un-committed rolls back (sqlx queues
/// the ROLLBACK before the connection is reused).
struct PgTx {
    tx: sqlx::Transaction<'static, Postgres>,
    hooks: Vec<Hook>,
}

impl PgTx {
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

#[async_trait]
impl DocOps for PgTx {
    async fn insert(
        &mut self,
        coll: Collection,
        id: &str,
        body: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Document> {
        docs::insert(self.conn(), coll, id, body, expires_at).await
    }

    async fn get(&mut self, coll: Collection, id: &str) -> Result<Option<Document>> {
        docs::get(self.conn(), coll, id).await
    }

    async fn update(
        &mut self,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document> {
        docs::update(self.conn(), coll, id, expected_version, body).await
    }

    async fn delete(&mut self, coll: Collection, id: &str) -> Result<bool> {
        docs::delete(self.conn(), coll, id).await
    }

    async fn find(
        &mut self,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        docs::find(self.conn(), coll, filter, opts).await
    }

    async fn count(&mut self, coll: Collection, filter: &Filter) -> Result<u64> {
        docs::count(self.conn(), coll, filter).await
    }

    async fn delete_many(&mut self, coll: Collection, filter: &Filter) -> Result<u64> {
        docs::delete_many(self.conn(), coll, filter).await
    }
}

#[async_trait]
impl Transaction for PgTx {
    async fn log(&mut self, batch: LogBatch) -> Result<()> {
        log::write(self.conn(), batch).await
    }

    fn after_commit(&mut self, hook: Box<dyn FnOnce() + Send>) {
        self.hooks.push(hook);
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let PgTx { tx, hooks } = *self;
        tx.commit().await?;
        run_hooks(hooks);
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
