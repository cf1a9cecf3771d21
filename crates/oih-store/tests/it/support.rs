//! Runs one conformance test against one engine, with a private database: a temp dir for
//! SQLite files, a fresh `sqlite::memory:`, or a fresh schema on the PostgreSQL named by
//! `OIH_TEST_DATABASE_URL` (dropped afterwards, even when the test panics).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use oih_store::{Backend, open};
use sqlx::Connection;
use tempfile::TempDir;

pub const PG_ENV: &str = "OIH_TEST_DATABASE_URL";

#[derive(Debug, Clone, Copy)]
pub enum Engine {
    SqliteFile,
    SqliteMemory,
    Postgres,
}

/// What a test gets: an open database, and a way to open the same database again (a second
/// process, or a restart).
#[derive(Clone)]
pub struct Ctx {
    pub db: Backend,
    reopen: Option<Reopen>,
    /// Keeps the SQLite temp dir alive for the whole test.
    _dir: Arc<TempDir>,
}

#[derive(Clone)]
enum Reopen {
    DataDir(PathBuf),
    Url(String),
}

impl Ctx {
    /// Opens the same database through a new, independent backend; `None` for in-memory
    /// SQLite, which is private to its backend. The caller closes what it opens.
    pub async fn open_again(&self) -> anyhow::Result<Option<Backend>> {
        Ok(match &self.reopen {
            None => None,
            Some(Reopen::DataDir(dir)) => Some(open(None, dir).await?),
            Some(Reopen::Url(url)) => Some(open(Some(url), self._dir.path()).await?),
        })
    }
}

pub async fn run<F, Fut>(engine: Engine, test: F) -> anyhow::Result<()>
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let dir = Arc::new(tempfile::tempdir()?);
    match engine {
        Engine::SqliteFile => {
            let data_dir = dir.path().join("data");
            let db = open(None, &data_dir).await?;
            let ctx = Ctx {
                db: db.clone(),
                reopen: Some(Reopen::DataDir(data_dir)),
                _dir: dir,
            };
            let outcome = AssertUnwindSafe(test(ctx)).catch_unwind().await;
            db.docs.close().await;
            finish(outcome)
        }
        Engine::SqliteMemory => {
            let db = open(Some("sqlite::memory:"), dir.path()).await?;
            let ctx = Ctx {
                db: db.clone(),
                reopen: None,
                _dir: dir,
            };
            let outcome = AssertUnwindSafe(test(ctx)).catch_unwind().await;
            db.docs.close().await;
            finish(outcome)
        }
        Engine::Postgres => {
            let Ok(base) = std::env::var(PG_ENV) else {
                eprintln!("skipping: {PG_ENV} not set");
                return Ok(());
            };
            let schema = unique_schema_name();
            let mut admin = sqlx::PgConnection::connect(&base).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut admin)
                .await?;
            let url = with_search_path(&base, &schema);
            let outcome = match open(Some(&url), dir.path()).await {
                Ok(db) => {
                    let ctx = Ctx {
                        db: db.clone(),
                        reopen: Some(Reopen::Url(url)),
                        _dir: dir,
                    };
                    let outcome = AssertUnwindSafe(test(ctx)).catch_unwind().await;
                    db.docs.close().await;
                    outcome
                }
                Err(e) => Ok(Err(e.into())),
            };
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut admin)
                .await?;
            admin.close().await?;
            finish(outcome)
        }
    }
}

fn finish(
    outcome: Result<anyhow::Result<()>, Box<dyn std::any::Any + Send>>,
) -> anyhow::Result<()> {
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Unique across the parallel test processes: pid, clock and a counter.
fn unique_schema_name() -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "oih_test_{}_{nanos}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Adds `options=-c search_path=<schema>` (URL-encoded) so every pooled connection works in
/// the test's schema.
pub fn with_search_path(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// Declares one suite of `async fn(Ctx) -> anyhow::Result<()>` tests and instantiates it
/// once per engine: `sqlite_file::name`, `sqlite_memory::name`, `postgres::name`.
#[macro_export]
macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    $crate::support::run($crate::support::Engine::SqliteFile, $crate::$module::$name).await
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    $crate::support::run($crate::support::Engine::SqliteMemory, $crate::$module::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    $crate::support::run($crate::support::Engine::Postgres, $crate::$module::$name).await
                }
            )*
        }
    };
}
