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
//!
//! The WAL is checkpointed by a task of its own on a connection of its own
//! ([`run_checkpoints`]), not by the commit that happens to fill it: a checkpoint copies
//! megabytes into the database file and syncs it, and every write queued behind the writer
//! would wait for that.

mod docs;
mod filter;
mod log;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Sqlite};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::engine::{SqlBackend, Tx};
use crate::{Result, StoreError};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const READERS: u32 = 4;
/// How often the WAL is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// WAL frames (pages) beyond which it is started over: SQLite's own checkpoint threshold.
const RESTART_FRAMES: i64 = 1000;
/// How long a restarting checkpoint waits for readers (and holds up writers meanwhile).
const RESTART_WAIT: Duration = Duration::from_millis(50);

pub(crate) struct SqliteStore {
    /// Exactly one connection: every write goes through it.
    writer: SqlitePool,
    readers: SqlitePool,
    checkpoints: Checkpoints,
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
        // No commit checkpoints (`wal_autocheckpoint=0`): `run_checkpoints` does.
        let base = base
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(sync)
            .pragma("wal_autocheckpoint", "0");
        let writer = connect_writer(&base).await?;
        let checkpoints =
            Checkpoints::start(base.clone().busy_timeout(RESTART_WAIT).connect().await?);
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(base)
            .await?;
        Ok(Self {
            writer,
            readers,
            checkpoints,
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

/// The checkpointing task: stopped by [`SqlBackend::close`], or when the store is dropped.
struct Checkpoints {
    task: Mutex<Option<JoinHandle<()>>>,
    stop: CancellationToken,
    _on_drop: DropGuard,
}

impl Checkpoints {
    fn start(conn: SqliteConnection) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_checkpoints(conn, stop.clone()));
        Self {
            task: Mutex::new(Some(task)),
            _on_drop: stop.clone().drop_guard(),
            stop,
        }
    }

    async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Copies what the WAL holds into the database every [`CHECKPOINT_EVERY`], without waiting
/// for readers or the writer (`PASSIVE`). The WAL is written from its start again only once a
/// checkpoint copied all of it, which a passive one never does while writes go on; so when it
/// has grown past [`RESTART_FRAMES`], the few frames written meanwhile are copied while
/// writers wait (`RESTART`, at most [`RESTART_WAIT`] for readers), and the next write starts
/// the WAL over.
async fn run_checkpoints(mut conn: SqliteConnection, stop: CancellationToken) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = every.tick() => {}
        }
        if let Err(err) = checkpoint(&mut conn).await {
            tracing::warn!(error = %err, "SQLite WAL checkpoint failed");
        }
    }
    let _ = conn.close().await;
}

async fn checkpoint(conn: &mut SqliteConnection) -> Result<()> {
    let (_busy, frames, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *conn)
            .await?;
    if frames >= RESTART_FRAMES {
        sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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
        self.checkpoints.stop().await;
        self.readers.close().await;
        self.writer.close().await;
    }
}
