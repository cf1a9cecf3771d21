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

/// A store whose next few operations of a kind fail as if the database were briefly away
/// (`StoreError::Unavailable`): set `fail_begins`, `fail_gets` or `fail_updates` to how many
/// calls should fail. Everything else goes to the wrapped store. Services' tests use it to
/// prove that nothing is lost when the database hiccups.
pub struct FlakyStore {
    inner: std::sync::Arc<dyn crate::DocStore>,
    pub fail_begins: std::sync::atomic::AtomicUsize,
    pub fail_gets: std::sync::atomic::AtomicUsize,
    pub fail_updates: std::sync::atomic::AtomicUsize,
}

impl FlakyStore {
    pub fn new(inner: std::sync::Arc<dyn crate::DocStore>) -> Self {
        Self {
            inner,
            fail_begins: 0.into(),
            fail_gets: 0.into(),
            fail_updates: 0.into(),
        }
    }

    /// Takes one failure from `counter`, if any are left.
    fn inject(counter: &std::sync::atomic::AtomicUsize) -> Result<()> {
        let failing = counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            Err(crate::StoreError::Unavailable("injected failure".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl crate::DocStore for FlakyStore {
    async fn ensure_collection(
        &self,
        coll: crate::Collection,
        spec: &crate::CollectionSpec,
    ) -> Result<()> {
        self.inner.ensure_collection(coll, spec).await
    }
    async fn begin(&self) -> Result<Box<dyn crate::Transaction>> {
        Self::inject(&self.fail_begins)?;
        self.inner.begin().await
    }
    async fn insert(
        &self,
        coll: crate::Collection,
        id: &str,
        body: serde_json::Value,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<crate::Document> {
        self.inner.insert(coll, id, body, expires_at).await
    }
    async fn get(&self, coll: crate::Collection, id: &str) -> Result<Option<crate::Document>> {
        Self::inject(&self.fail_gets)?;
        self.inner.get(coll, id).await
    }
    async fn update(
        &self,
        coll: crate::Collection,
        id: &str,
        expected_version: Option<i64>,
        body: serde_json::Value,
    ) -> Result<crate::Document> {
        Self::inject(&self.fail_updates)?;
        self.inner.update(coll, id, expected_version, body).await
    }
    async fn delete(&self, coll: crate::Collection, id: &str) -> Result<bool> {
        self.inner.delete(coll, id).await
    }
    async fn find(
        &self,
        coll: crate::Collection,
        filter: &crate::Filter,
        opts: &crate::FindOptions,
    ) -> Result<Vec<crate::Document>> {
        self.inner.find(coll, filter, opts).await
    }
    async fn count(&self, coll: crate::Collection, filter: &crate::Filter) -> Result<u64> {
        self.inner.count(coll, filter).await
    }
    async fn delete_many(&self, coll: crate::Collection, filter: &crate::Filter) -> Result<u64> {
        self.inner.delete_many(coll, filter).await
    }
    async fn purge_expired(&self) -> Result<u64> {
        self.inner.purge_expired().await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    fn engine(&self) -> &'static str {
        self.inner.engine()
    }
    async fn close(&self) {
        self.inner.close().await
    }
}
