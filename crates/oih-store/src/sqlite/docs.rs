//! Document operations on one SQLite connection. The store calls them on a pooled connection,
//! a transaction on its own; so each is written once.
//!
//! Layout of a collection table: `body` is JSON text, timestamps are INTEGER microseconds
//! since the epoch (exact, and they sort and compare as numbers).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, SqliteConnection};

use super::SqliteStore;
use super::filter::{SYNTAX, extract_expr, push_order_and_page};
use crate::engine::{Engine, duplicate};
use crate::sql::{
    Target, from_micros, index_name, map_err, now_micros, parse_json_path, parse_target,
    push_filter, table_name, truncate_micros,
};
use crate::{
    Collection, CollectionSpec, Document, Filter, FindOptions, NewDocument, Result, StoreError,
};

const COLS: &str = "id, version, body, created_at, updated_at, expires_at";
/// Appended to every read and write: expired documents do not exist for callers.
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?)";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    version: i64,
    body: String,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
}

/// The rows of one `insert_new` statement, largest first (5 parameters a row stays far below
/// SQLite's limit of 32,766).
const INSERT_CHUNKS: [usize; 3] = [64, 8, 1];

/// What an update returns: everything but the body, which the caller just gave.
const META: &str = "id, version, created_at, updated_at, expires_at";

#[derive(sqlx::FromRow)]
struct Meta {
    id: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
}

impl Meta {
    fn with_body(self, body: Value) -> Document {
        Document {
            id: self.id,
            version: self.version,
            body,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
            expires_at: self.expires_at.map(from_micros),
        }
    }
}

impl Row {
    fn into_doc(self) -> Result<Document> {
        Ok(Document {
            id: self.id,
            version: self.version,
            body: serde_json::from_str(&self.body)?,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
            expires_at: self.expires_at.map(from_micros),
        })
    }
}

#[async_trait]
impl Engine for SqliteStore {
    type Db = Sqlite;
    const NAME: &'static str = "sqlite";

    /// Creates the table and its indexes and records the collection (for `purge_expired`). Runs
    /// in the caller's `BEGIN IMMEDIATE` transaction, so processes racing here queue up.
    async fn ensure_collection(
        conn: &mut SqliteConnection,
        coll: Collection,
        spec: &CollectionSpec,
    ) -> Result<()> {
        let table = table_name(coll.0)?;
        let mut ddl = vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                    id TEXT PRIMARY KEY NOT NULL, \
                    version INTEGER NOT NULL, \
                    body TEXT NOT NULL, \
                    created_at INTEGER NOT NULL, \
                    updated_at INTEGER NOT NULL, \
                    expires_at INTEGER)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {table} (expires_at) WHERE expires_at IS NOT NULL",
                index_name("ex", coll.0, &[])
            ),
        ];
        for paths in &spec.unique {
            if paths.is_empty() {
                return Err(StoreError::Invalid(
                    "a unique constraint needs a path".into(),
                ));
            }
            let mut exprs = Vec::new();
            for path in paths {
                exprs.push(extract_expr("body", &parse_json_path(path)?));
            }
            // Partial: a document missing any of the paths is not constrained (Mongo's sparse).
            let present = exprs
                .iter()
                .map(|e| format!("{e} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" AND ");
            ddl.push(format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {table} ({}) WHERE {present}",
                index_name("ux", coll.0, paths),
                exprs.join(", ")
            ));
        }
        for path in &spec.indexed {
            let expr = match parse_target(path)? {
                Target::Column(col) => col.sql().to_owned(),
                Target::Json(segments) => extract_expr("body", &segments),
            };
            ddl.push(format!(
                "CREATE INDEX IF NOT EXISTS {} ON {table} ({expr})",
                index_name("ix", coll.0, &[path])
            ));
        }
        for stmt in ddl {
            sqlx::query(AssertSqlSafe(stmt))
                .execute(&mut *conn)
                .await
                .map_err(|e| map_err(coll.0, e))?;
        }
        sqlx::query(
            "INSERT INTO oih_collections (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(coll.0)
        .bind(now_micros().timestamp_micros())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn insert(
        conn: &mut SqliteConnection,
        coll: Collection,
        id: &str,
        body: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Document> {
        let table = table_name(coll.0)?;
        let now = now_micros();
        let expires_at = expires_at.map(truncate_micros);
        let text = serde_json::to_string(&body)?;
        // DO NOTHING instead of an error: on a collision we first try to make room by dropping
        // expired documents (they must not hold ids or unique values), then retry once.
        let sql = format!(
            "INSERT INTO {table} ({COLS}) VALUES (?, 1, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        );
        for attempt in 0..2 {
            let done = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(&text)
                .bind(now.timestamp_micros())
                .bind(now.timestamp_micros())
                .bind(expires_at.map(|t| t.timestamp_micros()))
                .execute(&mut *conn)
                .await
                .map_err(|e| map_err(coll.0, e))?;
            if done.rows_affected() == 1 {
                return Ok(Document {
                    id: id.to_owned(),
                    version: 1,
                    body,
                    created_at: now,
                    updated_at: now,
                    expires_at,
                });
            }
            if attempt == 0 && Self::purge_expired(conn, coll.0, now).await? == 0 {
                break;
            }
        }
        Err(duplicate::<Self>(conn, coll, id).await)
    }

    /// Multi-row `INSERT`s in a few fixed sizes, so that the statements sqlx prepares and
    /// caches by their text are a handful per collection, whatever the batch sizes.
    async fn insert_new(
        conn: &mut SqliteConnection,
        coll: Collection,
        docs: &[NewDocument],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let table = table_name(coll.0)?;
        let now = now.timestamp_micros();
        let mut inserted = Vec::with_capacity(docs.len());
        let mut rest = docs;
        for size in INSERT_CHUNKS {
            while rest.len() >= size {
                let (chunk, tail) = rest.split_at(size);
                rest = tail;
                let sql = format!(
                    "INSERT INTO {table} ({COLS}) VALUES {} ON CONFLICT DO NOTHING RETURNING id",
                    vec!["(?, 1, ?, ?, ?, ?)"; size].join(", ")
                );
                let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
                for doc in chunk {
                    q = q
                        .bind(doc.id.as_str())
                        .bind(serde_json::to_string(&doc.body)?)
                        .bind(now)
                        .bind(now)
                        .bind(doc.expires_at.map(|t| t.timestamp_micros()));
                }
                let ids = q
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(|e| map_err(coll.0, e))?;
                inserted.extend(ids);
            }
        }
        Ok(inserted)
    }

    async fn get(
        conn: &mut SqliteConnection,
        coll: Collection,
        id: &str,
    ) -> Result<Option<Document>> {
        let table = table_name(coll.0)?;
        let sql = format!("SELECT {COLS} FROM {table} WHERE id = ? AND {LIVE}");
        let row: Option<Row> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(id)
            .bind(now_micros().timestamp_micros())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))?;
        row.map(Row::into_doc).transpose()
    }

    async fn update(
        conn: &mut SqliteConnection,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document> {
        let table = table_name(coll.0)?;
        let now = now_micros().timestamp_micros();
        let version_check = if expected_version.is_some() {
            " AND version = ?"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE {table} SET body = ?, version = version + 1, updated_at = ? \
             WHERE id = ? AND {LIVE}{version_check} RETURNING {META}"
        );
        let mut q = sqlx::query_as::<_, Meta>(AssertSqlSafe(sql))
            .bind(serde_json::to_string(&body)?)
            .bind(now)
            .bind(id)
            .bind(now);
        if let Some(v) = expected_version {
            q = q.bind(v);
        }
        let row = q
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))?;
        if let Some(meta) = row {
            return Ok(meta.with_body(body));
        }
        // Nothing updated: tell "gone" from "moved on".
        let found = Self::get(conn, coll, id).await?;
        match (found, expected_version) {
            (Some(doc), Some(expected)) => Err(StoreError::Conflict {
                expected,
                found: doc.version,
            }),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn delete(conn: &mut SqliteConnection, coll: Collection, id: &str) -> Result<bool> {
        let table = table_name(coll.0)?;
        let sql = format!("DELETE FROM {table} WHERE id = ? AND {LIVE}");
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(now_micros().timestamp_micros())
            .execute(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn find(
        conn: &mut SqliteConnection,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> Result<Vec<Document>> {
        let mut qb = filtered(&format!("SELECT {COLS}"), coll, filter)?;
        push_order_and_page(&mut qb, opts)?;
        let rows: Vec<Row> = qb
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))?;
        rows.into_iter().map(Row::into_doc).collect()
    }

    async fn count(conn: &mut SqliteConnection, coll: Collection, filter: &Filter) -> Result<u64> {
        let mut qb = filtered("SELECT COUNT(*)", coll, filter)?;
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn delete_many(
        conn: &mut SqliteConnection,
        coll: Collection,
        filter: &Filter,
    ) -> Result<u64> {
        let mut qb = filtered("DELETE", coll, filter)?;
        let done = qb
            .build()
            .execute(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))?;
        Ok(done.rows_affected())
    }

    /// Physically removes the expired documents of one collection.
    async fn purge_expired(
        conn: &mut SqliteConnection,
        coll: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let table = table_name(coll)?;
        let sql = format!("DELETE FROM {table} WHERE expires_at IS NOT NULL AND expires_at <= ?");
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(now.timestamp_micros())
            .execute(&mut *conn)
            .await
            .map_err(|e| map_err(coll, e))?;
        Ok(done.rows_affected())
    }

    async fn collections(conn: &mut SqliteConnection) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM oih_collections ORDER BY name")
                .fetch_all(&mut *conn)
                .await?,
        )
    }
}

/// `<head> FROM <table> WHERE <live> AND <filter>`, ready for more clauses.
fn filtered(head: &str, coll: Collection, filter: &Filter) -> Result<QueryBuilder<Sqlite>> {
    let table = table_name(coll.0)?;
    let mut qb = QueryBuilder::new(format!(
        "{head} FROM {table} WHERE (expires_at IS NULL OR expires_at > "
    ));
    qb.push_bind(now_micros().timestamp_micros());
    qb.push(") AND ");
    push_filter(&mut qb, &SYNTAX, filter, 0)?;
    Ok(qb)
}
