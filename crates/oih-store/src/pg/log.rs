//! The message log on PostgreSQL. Bulk parts of a batch are sent as arrays and expanded
//! server-side with `UNNEST` / `= ANY`: one round trip and one prepared statement per part,
//! whatever the batch size.

use async_trait::async_trait;
use sqlx::PgConnection;

use super::PgStore;
use crate::engine::LogEngine;
use crate::sql::{MessageRow, TopologyRow};
use crate::{LogBatch, LogSnapshot, Result, StoredMessage};

/// Keeps each bind message to a bounded size on very large batches.
const APPEND_CHUNK: usize = 5_000;

#[async_trait]
impl LogEngine for PgStore {
    /// Applies `batch` on `conn`, which the caller has put in a transaction. Order: topology
    /// deletes, topology upserts, queue purges, removals, delivery counts, appends — purges come
    /// before appends so a purge never swallows messages appended in the same batch.
    async fn write_log(conn: &mut PgConnection, batch: LogBatch) -> Result<()> {
        if !batch.delete_topology.is_empty() {
            let (kinds, names): (Vec<String>, Vec<String>) =
                batch.delete_topology.into_iter().unzip();
            sqlx::query(
                "DELETE FROM bus_topology AS t USING UNNEST($1::text[], $2::text[]) AS d(kind, name) \
                 WHERE t.kind = d.kind AND t.name = d.name",
            )
            .bind(kinds)
            .bind(names)
            .execute(&mut *conn)
            .await?;
        }
        for rec in batch.upsert_topology {
            sqlx::query(
                "INSERT INTO bus_topology (kind, name, spec) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, name) DO UPDATE SET spec = excluded.spec",
            )
            .bind(rec.kind)
            .bind(rec.name)
            .bind(rec.spec)
            .execute(&mut *conn)
            .await?;
        }
        if !batch.purge_queues.is_empty() {
            sqlx::query("DELETE FROM bus_messages WHERE queue = ANY($1)")
                .bind(batch.purge_queues)
                .execute(&mut *conn)
                .await?;
        }
        if !batch.remove.is_empty() {
            sqlx::query("DELETE FROM bus_messages WHERE id = ANY($1)")
                .bind(batch.remove)
                .execute(&mut *conn)
                .await?;
        }
        if !batch.set_delivery_count.is_empty() {
            let (ids, counts): (Vec<i64>, Vec<i32>) = batch.set_delivery_count.into_iter().unzip();
            sqlx::query(
                "UPDATE bus_messages AS m SET delivery_count = u.count \
                 FROM UNNEST($1::int8[], $2::int4[]) AS u(id, count) WHERE m.id = u.id",
            )
            .bind(ids)
            .bind(counts)
            .execute(&mut *conn)
            .await?;
        }
        let mut rest = batch.append.into_iter();
        loop {
            let chunk: Vec<StoredMessage> = rest.by_ref().take(APPEND_CHUNK).collect();
            if chunk.is_empty() {
                return Ok(());
            }
            append(conn, chunk).await?;
        }
    }

    async fn load_log(conn: &mut PgConnection) -> Result<LogSnapshot> {
        let topology: Vec<TopologyRow> =
            sqlx::query_as("SELECT kind, name, spec FROM bus_topology ORDER BY kind, name")
                .fetch_all(&mut *conn)
                .await?;
        let messages: Vec<MessageRow> = sqlx::query_as(
            "SELECT id, queue, exchange, routing_key, props, body, enqueued_at, expires_at, \
             delivery_count FROM bus_messages ORDER BY id",
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(LogSnapshot {
            topology: topology.into_iter().map(Into::into).collect(),
            messages: messages.into_iter().map(Into::into).collect(),
        })
    }
}

async fn append(conn: &mut PgConnection, messages: Vec<StoredMessage>) -> Result<()> {
    let n = messages.len();
    let mut ids = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut exchanges = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut props = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    let mut enqueued = Vec::with_capacity(n);
    let mut expires = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    for m in messages {
        ids.push(m.id);
        queues.push(m.queue);
        exchanges.push(m.exchange);
        keys.push(m.routing_key);
        props.push(m.props);
        bodies.push(m.body);
        enqueued.push(m.enqueued_at);
        expires.push(m.expires_at);
        counts.push(m.delivery_count);
    }
    sqlx::query(
        "INSERT INTO bus_messages \
         (id, queue, exchange, routing_key, props, body, enqueued_at, expires_at, delivery_count) \
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::bytea[], \
         $6::bytea[], $7::int8[], $8::int8[], $9::int4[])",
    )
    .bind(ids)
    .bind(queues)
    .bind(exchanges)
    .bind(keys)
    .bind(props)
    .bind(bodies)
    .bind(enqueued)
    .bind(expires)
    .bind(counts)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
