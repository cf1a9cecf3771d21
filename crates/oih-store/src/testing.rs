//! Test support for every crate's suites: a PostgreSQL schema private to one test, so tests
//! can run in parallel against one real server. (Here because only this crate names sqlx.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;

use crate::Result;

/// The environment variable naming the PostgreSQL that tests may use.
pub const PG_ENV: &str = "OIH_TEST_DATABASE_URL";

const PREFIX: &str = "oih_test_";
/// Schemas a crashed or leaked test left behind are dropped by later runs after this long.
const STALE_AFTER_SECS: u64 = 3600;

/// The URL in [`PG_ENV`], or None after printing why the test is skipped.
pub fn pg_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipping: {PG_ENV} not set");
            None
        }
    }
}

/// A fresh schema, dropped when this value is dropped (also when the test panicked).
pub struct PgSchema {
    base_url: String,
    name: String,
    url: String,
}

impl PgSchema {
    /// Creates the schema (and sweeps stale ones left by earlier runs).
    pub async fn create(base_url: &str) -> Result<Self> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{PREFIX}{}_{}_{}_{}",
            now.as_secs(),
            std::process::id(),
            now.subsec_nanos(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(base_url).await?;
        sweep_stale(&mut conn, now.as_secs()).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let separator = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{separator}options=-c%20search_path%3D{name}");
        Ok(Self {
            base_url: base_url.to_owned(),
            name,
            url,
        })
    }

    /// The URL to open the store with: every connection works in this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.base_url.clone(), self.name.clone());
        // Drop cannot await, and may run inside a runtime: use a private one on its own thread.
        // The test's own runtime is blocked meanwhile, so a transaction its pool left open
        // (e.g. a bus write cut short) can never finish: end the sessions that hold locks in
        // this private schema first, or DROP SCHEMA would wait for them forever.
        let outcome = std::thread::spawn(move || -> std::result::Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(
                    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                     JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                )
                .bind(&name)
                .execute(&mut conn)
                .await?;
                let drop_sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                sqlx::query(sqlx::AssertSqlSafe(drop_sql)).execute(&mut conn).await?;
                conn.close().await
            })
            .map_err(|e| e.to_string())
        })
        .join();
        if !matches!(outcome, Ok(Ok(()))) {
            eprintln!(
                "could not drop test schema {} (a later run will)",
                self.name
            );
        }
    }
}

async fn sweep_stale(conn: &mut sqlx::PgConnection, now_secs: u64) -> Result<()> {
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'oih\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (name,) in names {
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|secs| secs + STALE_AFTER_SECS < now_secs) {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
