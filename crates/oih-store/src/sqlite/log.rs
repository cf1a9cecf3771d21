//! The message log on SQLite. `write` is the embedded bus's group commit and the hot path of
//! the whole system, so it avoids per-row statements for appends and removals:
//!
//! - appends are multi-row `INSERT`s in a few fixed chunk sizes. sqlx caches prepared
//!   statements by SQL text, so fixed sizes mean a handful of statements prepared once per
//!   connection and reused for every batch;
//! - removals and delivery-count updates send all ids as one JSON array bound to a single
//!   parameter and let `json_each` expand it inside SQLite: one statement per batch, no
//!   bound-parameter limit to chunk around, and no SQL text that varies with the batch size.

use async_trait::async_trait;
use std::sync::OnceLock;

use sqlx::{AssertSqlSafe, SqliteConnection};

use super::SqliteStore;
use crate::engine::LogEngine;
use crate::sql::{MessageRow, TopologyRow};
use crate::{LogBatch, LogSnapshot, Result, StoredMessage};

const MESSAGE_COLS: &str =
    "id, queue, exchange, routing_key, props, body, enqueued_at, expires_at, delivery_count";
const PARAMS_PER_ROW: usize = 9;
/// Largest first. 512 rows × 9 parameters stays far below SQLite's limit of 32766.
const CHUNKS: [usize; 4] = [512, 64, 8, 1];
const _: () = assert!(CHUNKS[0] * PARAMS_PER_ROW < 32_766);

/// The INSERT statement for each chunk size, built once.
fn insert_sql(chunk_index: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        CHUNKS
            .iter()
            .map(|&rows| {
                let row = format!("({})", ["?"; PARAMS_PER_ROW].join(", "));
                format!(
                    "INSERT INTO bus_messages ({MESSAGE_COLS}) VALUES {}",
                    vec![row; rows].join(", ")
                )
            })
            .collect()
    });
    all.get(chunk_index).map_or("", String::as_str)
}

#[async_trait]
impl LogEngine for SqliteStore {
    /// Applies `batch` on `conn`, which the caller has put in a transaction. Order: topology
    /// deletes, topology upserts, queue purges, removals, delivery counts, appends — purges come
    /// before appends so a purge never swallows messages appended in the same batch.
    async fn write_log(conn: &mut SqliteConnection, batch: LogBatch) -> Result<()> {
        for (kind, name) in &batch.delete_topology {
            sqlx::query("DELETE FROM bus_topology WHERE kind = ? AND name = ?")
                .bind(kind)
                .bind(name)
                .execute(&mut *conn)
                .await?;
        }
        for rec in batch.upsert_topology {
            sqlx::query(
                "INSERT INTO bus_topology (kind, name, spec) VALUES (?, ?, ?) \
                 ON CONFLICT (kind, name) DO UPDATE SET spec = excluded.spec",
            )
            .bind(rec.kind)
            .bind(rec.name)
            .bind(rec.spec)
            .execute(&mut *conn)
            .await?;
        }
        for queue in &batch.purge_queues {
            sqlx::query("DELETE FROM bus_messages WHERE queue = ?")
                .bind(queue)
                .execute(&mut *conn)
                .await?;
        }
        if !batch.remove.is_empty() {
            sqlx::query("DELETE FROM bus_messages WHERE id IN (SELECT value FROM json_each(?))")
                .bind(json_ints(batch.remove.iter().copied()))
                .execute(&mut *conn)
                .await?;
        }
        if !batch.set_delivery_count.is_empty() {
            // `[[id, count], ...]`
            let mut pairs = String::with_capacity(batch.set_delivery_count.len() * 16);
            pairs.push('[');
            for (i, (id, count)) in batch.set_delivery_count.iter().enumerate() {
                if i > 0 {
                    pairs.push(',');
                }
                pairs.push_str(&format!("[{id},{count}]"));
            }
            pairs.push(']');
            sqlx::query(
                "UPDATE bus_messages SET delivery_count = json_extract(u.value, '$[1]') \
                 FROM json_each(?) AS u WHERE bus_messages.id = json_extract(u.value, '$[0]')",
            )
            .bind(pairs)
            .execute(&mut *conn)
            .await?;
        }
        append(conn, batch.append).await
    }

    async fn load_log(conn: &mut SqliteConnection) -> Result<LogSnapshot> {
        let topology: Vec<TopologyRow> =
            sqlx::query_as("SELECT kind, name, spec FROM bus_topology ORDER BY kind, name")
                .fetch_all(&mut *conn)
                .await?;
        let messages: Vec<MessageRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLS} FROM bus_messages ORDER BY id"
        )))
        .fetch_all(&mut *conn)
        .await?;
        Ok(LogSnapshot {
            topology: topology.into_iter().map(Into::into).collect(),
            messages: messages.into_iter().map(Into::into).collect(),
        })
    }
}

/// `[1,2,3]`
fn json_ints(ids: impl Iterator<Item = i64>) -> String {
    let mut out = String::from("[");
    for (i, id) in ids.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out.push(']');
    out
}

async fn append(conn: &mut SqliteConnection, messages: Vec<StoredMessage>) -> Result<()> {
    let mut rest = messages.into_iter();
    let mut left = rest.len();
    for (chunk_index, &size) in CHUNKS.iter().enumerate() {
        while left >= size {
            let mut q = sqlx::query(AssertSqlSafe(insert_sql(chunk_index)));
            for m in rest.by_ref().take(size) {
                q = q
                    .bind(m.id)
                    .bind(m.queue)
                    .bind(m.exchange)
                    .bind(m.routing_key)
                    .bind(m.props)
                    .bind(m.body)
                    .bind(m.enqueued_at)
                    .bind(m.expires_at)
                    .bind(m.delivery_count);
            }
            q.execute(&mut *conn).await?;
            left -= size;
        }
    }
    Ok(())
}
