//! Opening a database from a URL or a data directory.

use std::path::Path;
use std::sync::Arc;

use crate::{DocStore, MessageLog, Result};

/// An open database: the same connection pool behind both faces.
#[derive(Clone)]
pub struct Backend {
    pub docs: Arc<dyn DocStore>,
    pub log: Arc<dyn MessageLog>,
}

/// Opens (creating if needed) and migrates the database. `database_url` `postgres://…` selects
/// PostgreSQL; `None` selects SQLite at `<data_dir>/oih.db` in WAL mode; `sqlite::memory:` an
/// in-memory SQLite database (tests).
pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Backend> {
    todo!("{database_url:?} {data_dir:?}")
}
