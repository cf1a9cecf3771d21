//! PostgreSQL backend (JSONB). One pool serves documents, transactions and the message log;
//! PostgreSQL handles concurrent writers itself.
//!
//! Known issue: sqlx 0.9.0 does not set `TCP_NODELAY` (sqlx issue #4335, fixed upstream
//! by #4336 but not yet released). Over TCP, a request larger than the socket's initial send
//! buffer (about 16 KiB: a big document, a large log batch) then waits ~40 ms for a delayed
//! ACK. Unix sockets are not affected (`postgres://user@localhost/db?host=/var/run/postgresql`).

mod docs;
mod filter;
mod log;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::Result;
use crate::engine::{SqlBackend, Tx};

const MAX_CONNECTIONS: u32 = 10;

pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects and migrates. Several processes may do this at once against one database:
    /// sqlx's migrator holds a PostgreSQL advisory lock while it works.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl SqlBackend for PgStore {
    async fn reader(&self) -> Result<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    async fn writer(&self) -> Result<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    async fn begin_write(&self) -> Result<Tx<Self>> {
        Ok(self.pool.begin().await?)
    }

    async fn begin_snapshot(&self) -> Result<Tx<Self>> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
