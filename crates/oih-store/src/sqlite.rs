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
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tempfile::TempDir;

use crate::engine::{SqlBackend, Tx};
use crate::{Result, StoreError};

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

/// Writes and transactions queue for the single writer; single reads and snapshots use the
/// readers, which in WAL mode never wait for it.
#[async_trait]
impl SqlBackend for SqliteStore {
    async fn reader(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.readers.acquire().await?)
    }

    async fn writer(&self) -> Result<PoolConnection<Sqlite>> {
        Ok(self.writer.acquire().await?)
    }

    async fn begin_write(&self) -> Result<Tx<Self>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// In WAL mode a read transaction sees one commit throughout.
    async fn begin_snapshot(&self) -> Result<Tx<Self>> {
        Ok(self.readers.begin().await?)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}
