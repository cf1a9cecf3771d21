//! SQLite backend (WAL).
//!
//! SQLite runs one writer at a time no matter what we do, so the store owns exactly one
//! writer connection (a pool of one) and routes every write through it: document writes,
//! transactions and the message log. Writers therefore queue in tokio (fairly, without
//! `SQLITE_BUSY` back-off sleeps) instead of inside SQLite. Reads use a separate pool; in WAL
//! mode they never wait for the writer and see the last committed state.
//!
//! Transactions start with `BEGIN IMMEDIATE` so another *process* on the same file cannot
//! turn a read-then-write transaction into a `SQLITE_BUSY_SNAPSHOT` failure midway.

mod docs;
mod filter;
mod log;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection};
use tempfile::TempDir;

use crate::sql::{Hook, now_micros, run_hooks};
use crate::{
    Collection, CollectionSpec, DocOps, DocStore, Document, Filter, FindOptions, LogBatch,
    LogSnapshot, MessageLog, Result, StoreError, Transaction,
};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const READERS: u32 = 4;

pub(crate) struct SqliteStore {
    /// Exactly one connection: every write goes through it.
    writer: SqlitePool,
    readers: SqlitePool,
    /// For "in-memory" databases: the private temp dir holding the file, removed on drop.
    _scratch: Option<TempDir>,
}

/// Where the database lives.
pub(crate) enum Location<'a> {
    File(&'a Path),
    /// A `sqlite:` URL naming a file, with any options it carries.
    Url(&'a str),
    /// A private, throwaway database that lives as long as the store.
    Memory,
}

impl SqliteStore {
    pub(crate) async fn open(location: Location<'_>) -> Result<Self> {
        // "In-memory" is a WAL file in a private temp dir with fsync off. SQLite's real
        // in-memory modes cannot give us what a file does: shared-cache `:memory:` locks
        // readers out of tables (or shows them uncommitted rows) while a write transaction is
        // open, and the `memdb` VFS blocks all readers during one. A service that reads
        // outside its transaction would deadlock on them. The OS page cache keeps the file
        // about as fast, and nothing outlives the store.
        let mut scratch = None;
        let (base, durable) = match location {
            Location::File(path) => (SqliteConnectOptions::new().filename(path), true),
            Location::Url(url) => (url.parse::<SqliteConnectOptions>()?, true),
            Location::Memory => {
                let dir = tempfile::Builder::new()
                    .prefix("oih-memory-")
                    .tempdir()
                    .map_err(|e| StoreError::Invalid(format!("cannot create a temp dir: {e}")))?;
                let opts = SqliteConnectOptions::new().filename(dir.path().join("oih.db"));
                scratch = Some(dir);
                (opts, false)
            }
        };
        // In WAL mode `synchronous=NORMAL` is still crash-safe (a power loss can drop the
        // last commits but never corrupts the database) and saves an fsync per commit, which
        // the message log's group commit depends on.
        let sync = if durable {
            SqliteSynchronous::Normal
        } else {
            SqliteSynchronous::Off
        };
        let base = base
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(sync);
        let writer = connect_writer(&base).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(base)
            .await?;
        Ok(Self {
            writer,
            readers,
            _scratch: scratch,
        })
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Connects the writer, which switches the file to WAL (a persistent setting, so readers and
/// the writer never block each other), and migrates.
///
/// Processes opening a new file at the same moment can trip over each other twice: the switch
/// to WAL takes a lock that `busy_timeout` does not wait for, and sqlx's migration lock is a
/// no-op on SQLite, so both may apply a migration and one fails on the bookkeeping row. The
/// migrations are idempotent, so the loser simply tries again and finds everything done.
async fn connect_writer(base: &SqliteConnectOptions) -> Result<SqlitePool> {
    let mut attempt = 0;
    loop {
        let outcome = async {
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(base.clone().journal_mode(SqliteJournalMode::Wal))
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
            Ok::<_, StoreError>(writer)
        }
        .await;
        match outcome {
            Ok(writer) => return Ok(writer),
            Err(err) if attempt < 5 => {
                attempt += 1;
                tracing::debug!(%err, attempt, "retrying SQLite open");
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

#[async_trait]
impl DocStore for SqliteStore {
    async fn ensure_collection(&self, coll: Collection, spec: &CollectionSpec) -> Result<()> {
        let mut tx = self.begin_write().await?;
        docs::ensure_collection(&mut tx, coll, spec).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(SqliteTx {
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
        let mut conn = self.writer.acquire().await?;
        docs::insert(&mut conn, coll, id, body, expires_at).await
    }

    async fn get(&self, coll: Collection, id: &str) -> Result<Option<Document>> {
        let mut conn = self.readers.acquire().await?;
        docs::get(&mut conn, coll, id).await
    }

    async fn update(
        &self,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document> {
        let mut conn = self.writer.acquire().await?;
        docs::update(&mut conn, coll, id, expected_version, body).await
    }

    async fn delete(&self, coll: Collection, id: &str) -> Result<bool> {
        let mut conn = self.writer.acquire().await?;
        docs::delete(&mut conn, coll, id).await
    }

    async fn find(
        &self,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        let mut conn = self.readers.acquire().await?;
        docs::find(&mut conn, coll, filter, opts).await
    }

    async fn count(&self, coll: Collection, filter: &Filter) -> Result<u64> {
        let mut conn = self.readers.acquire().await?;
        docs::count(&mut conn, coll, filter).await
    }

    async fn delete_many(&self, coll: Collection, filter: &Filter) -> Result<u64> {
        let mut conn = self.writer.acquire().await?;
        docs::delete_many(&mut conn, coll, filter).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        let mut conn = self.writer.acquire().await?;
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
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

#[async_trait]
impl MessageLog for SqliteStore {
    async fn write(&self, batch: LogBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        log::write(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn load(&self) -> Result<LogSnapshot> {
        // One read transaction, so topology and messages are from the same commit.
        let mut tx = self.readers.begin().await?;
        let snapshot = log::load(&mut tx).await?;
        tx.commit().await?;
        Ok(snapshot)
    }
}

/// A write transaction on the writer connection. Dropping it un-committed rolls back (sqlx
/// queues the ROLLBACK before the connection is reused).
struct SqliteTx {
    tx: sqlx::Transaction<'static, Sqlite>,
    hooks: Vec<Hook>,
}

impl SqliteTx {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

#[async_trait]
impl DocOps for SqliteTx {
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
impl Transaction for SqliteTx {
    async fn log(&mut self, batch: LogBatch) -> Result<()> {
        log::write(self.conn(), batch).await
    }

    fn after_commit(&mut self, hook: Box<dyn FnOnce() + Send>) {
        self.hooks.push(hook);
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let SqliteTx { tx, hooks } = *self;
        tx.commit().await?;
        run_hooks(hooks);
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
