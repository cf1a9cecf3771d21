use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("document not found")]
    NotFound,
    /// An insert collided with an existing id or a unique constraint.
    #[error("duplicate key: {0}")]
    Duplicate(String),
    /// An update named a version that is no longer current.
    #[error("version conflict: expected {expected}, found {found}")]
    Conflict { expected: i64, found: i64 },
    /// The caller passed something the store cannot express (bad collection name, bad path).
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    /// The database could not be reached or did not answer in time (connection lost, pool
    /// exhausted). Worth retrying; HTTP answers 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err.to_string()),
            other => Self::Database(other),
        }
    }
}
