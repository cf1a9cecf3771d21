//! Runs one conformance test against one engine, with a private database: a temp dir for
//! SQLite files, a fresh `sqlite::memory:`, or a fresh schema on the PostgreSQL named by
//! `OIH_TEST_DATABASE_URL` (dropped afterwards, even when the test panics).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use futures::FutureExt;
use oih_store::{Backend, open};
use tempfile::TempDir;

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
            let Some(base) = oih_store::testing::pg_url() else {
                return Ok(());
            };
            let schema = oih_store::testing::PgSchema::create(&base).await?;
            let url = schema.url().to_owned();
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
            drop(schema);
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
