//! Opening a database from a URL or a data directory.

use std::path::Path;
use std::sync::Arc;

use crate::pg::PgStore;
use crate::sqlite::{Location, SqliteStore};
use crate::{DocStore, MessageLog, Result, StoreError};

/// The SQLite file used when no database URL is given.
pub const SQLITE_FILE_NAME: &str = "oih.db";

/// An open database: the same connection pool behind both faces.
#[derive(Clone)]
pub struct Backend {
    pub docs: Arc<dyn DocStore>,
    pub log: Arc<dyn MessageLog>,
}

/// Opens (creating if needed) and migrates the database. `database_url` `postgres://…` selects
/// PostgreSQL; `None` selects SQLite at `<data_dir>/oih.db` in WAL mode; `sqlite::memory:` an
/// in-memory SQLite database (tests). That one is a private throwaway database behaving
/// exactly like a file (it is one, in a temp dir removed when the store is dropped), because
/// SQLite's own in-memory modes block readers while a write transaction is open.
pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Backend> {
    match database_url {
        None => {
            tokio::fs::create_dir_all(data_dir).await.map_err(|e| {
                StoreError::Invalid(format!(
                    "cannot create data directory {}: {e}",
                    data_dir.display()
                ))
            })?;
            let path = data_dir.join(SQLITE_FILE_NAME);
            Ok(backend(SqliteStore::open(Location::File(&path)).await?))
        }
        Some(url) if is_sqlite_memory(url) => {
            Ok(backend(SqliteStore::open(Location::Memory).await?))
        }
        Some(url) if url.starts_with("sqlite:") => {
            Ok(backend(SqliteStore::open(Location::Url(url)).await?))
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(backend(PgStore::open(url).await?))
        }
        Some(url) => {
            // Never echo the URL: it may carry a password.
            let scheme = url.split(':').next().unwrap_or_default();
            Err(StoreError::Invalid(format!(
                "unsupported database URL scheme {scheme:?}: use postgres://, postgresql://, \
                 sqlite:<path> or sqlite::memory:, or no URL for SQLite in the data directory"
            )))
        }
    }
}

/// `sqlite::memory:`, `sqlite://:memory:` and `sqlite:…?mode=memory` all mean a private
/// throwaway database.
fn is_sqlite_memory(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return false;
    };
    let rest = rest.trim_start_matches("//");
    let (db, params) = rest.split_once('?').unwrap_or((rest, ""));
    db == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

fn backend<S: DocStore + MessageLog + 'static>(store: S) -> Backend {
    let store = Arc::new(store);
    Backend {
        docs: store.clone(),
        log: store,
    }
}

#[cfg(test)]
mod tests {
    use super::is_sqlite_memory;

    #[test]
    fn memory_urls() {
        assert!(is_sqlite_memory("sqlite::memory:"));
        assert!(is_sqlite_memory("sqlite://:memory:"));
        assert!(is_sqlite_memory("sqlite:foo?mode=memory"));
        assert!(!is_sqlite_memory("sqlite://data/oih.db"));
        assert!(!is_sqlite_memory("postgres://x/:memory:"));
    }
}
