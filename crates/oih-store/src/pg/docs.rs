//! Document operations on one PostgreSQL connection. The store calls them on a pooled
//! connection, a transaction on its own; so each is written once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection, Postgres, QueryBuilder};

use super::PgStore;
use super::filter::{SYNTAX, jsonb_expr, push_order_and_page};
use crate::engine::{Engine, duplicate};
use crate::sql::{
    Target, index_name, map_err, now_micros, parse_json_path, parse_target, push_filter,
    table_name, truncate_micros,
};
use crate::{
    Collection, CollectionSpec, Document, Filter, FindOptions, NewDocument, Result, StoreError,
};

const COLS: &str = "id, version, body, created_at, updated_at, expires_at";

/// Serialises `ensure_collection` across processes: concurrent `CREATE TABLE IF NOT EXISTS`
/// of the same table can otherwise fail on PostgreSQL's catalog unique index.
const DDL_LOCK: i64 = 0x6f69_685f_6464_6c00; // "oih_ddl\0"

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    version: i64,
    body: Json<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

/// What an update returns: everything but the body, which the caller just gave.
const META: &str = "id, version, created_at, updated_at, expires_at";

#[derive(sqlx::FromRow)]
struct Meta {
    id: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

impl Meta {
    fn with_body(self, body: Value) -> Document {
        Document {
            id: self.id,
            version: self.version,
            body,
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
        }
    }
}

impl Row {
    fn into_doc(self) -> Document {
        Document {
            id: self.id,
            version: self.version,
            body: self.body.0,
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
        }
    }
}

#[async_trait]
impl Engine for PgStore {
    type Db = Postgres;
    const NAME: &'static str = "postgres";

    /// Creates the table and its indexes and records the collection (for `purge_expired`). Runs
    /// in the caller's transaction, under an advisory lock.
    async fn ensure_collection(
        conn: &mut PgConnection,
        coll: Collection,
        spec: &CollectionSpec,
    ) -> Result<()> {
        let table = table_name(coll.0)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DDL_LOCK)
            .execute(&mut *conn)
            .await?;
        // `id COLLATE "C"`: byte order, as on SQLite, and the primary key index serves
        // `ORDER BY id` (the paging tie-break).
        let mut ddl = vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                    id TEXT COLLATE \"C\" PRIMARY KEY, \
                    version BIGINT NOT NULL, \
                    body JSONB NOT NULL, \
                    created_at TIMESTAMPTZ NOT NULL, \
                    updated_at TIMESTAMPTZ NOT NULL, \
                    expires_at TIMESTAMPTZ)"
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
            let mut present = Vec::new();
            for path in paths {
                let segments = parse_json_path(path)?;
                // Over jsonb values, so uniqueness is type-aware as on SQLite (`1` = `1.0`,
                // `"1"` <> `1`). `#>>` is NULL for a missing path and for JSON null, which both
                // leave the document unconstrained (sparse).
                exprs.push(jsonb_expr(&segments));
                present.push(format!(
                    "(body #>> '{{{}}}') IS NOT NULL",
                    segments.join(",")
                ));
            }
            ddl.push(format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {table} ({}) WHERE {}",
                index_name("ux", coll.0, paths),
                exprs.join(", "),
                present.join(" AND ")
            ));
        }
        for path in &spec.indexed {
            let expr = match parse_target(path)? {
                Target::Column(col) => col.sql().to_owned(),
                Target::Json(segments) => jsonb_expr(&segments),
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
        sqlx::query("INSERT INTO oih_collections (name) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(coll.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn insert(
        conn: &mut PgConnection,
        coll: Collection,
        id: &str,
        body: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<Document> {
        let table = table_name(coll.0)?;
        let now = now_micros();
        let expires_at = expires_at.map(truncate_micros);
        // DO NOTHING instead of an error (which would also abort an enclosing transaction): on a
        // collision we first drop expired documents, which must not hold ids or unique values,
        // then retry once.
        let sql = format!(
            "INSERT INTO {table} ({COLS}) VALUES ($1, 1, $2, $3, $3, $4) ON CONFLICT DO NOTHING"
        );
        for attempt in 0..2 {
            let done = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(Json(&body))
                .bind(now)
                .bind(expires_at)
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

    /// One statement for any number of documents: the columns go as arrays, unnested.
    async fn insert_new(
        conn: &mut PgConnection,
        coll: Collection,
        docs: &[NewDocument],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let table = table_name(coll.0)?;
        let sql = format!(
            "INSERT INTO {table} ({COLS}) \
             SELECT id, 1, body, $4, $4, expires_at \
             FROM UNNEST($1::text[], $2::jsonb[], $3::timestamptz[]) AS n(id, body, expires_at) \
             ON CONFLICT DO NOTHING RETURNING id"
        );
        let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        let bodies: Vec<Json<&Value>> = docs.iter().map(|d| Json(&d.body)).collect();
        let expiries: Vec<Option<DateTime<Utc>>> = docs
            .iter()
            .map(|d| d.expires_at.map(truncate_micros))
            .collect();
        sqlx::query_scalar::<_, String>(AssertSqlSafe(sql))
            .bind(ids)
            .bind(bodies)
            .bind(expiries)
            .bind(now)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))
    }

    async fn get(conn: &mut PgConnection, coll: Collection, id: &str) -> Result<Option<Document>> {
        let table = table_name(coll.0)?;
        let sql = format!(
            "SELECT {COLS} FROM {table} WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)"
        );
        let row: Option<Row> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(id)
            .bind(now_micros())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))?;
        Ok(row.map(Row::into_doc))
    }

    async fn update(
        conn: &mut PgConnection,
        coll: Collection,
        id: &str,
        expected_version: Option<i64>,
        body: Value,
    ) -> Result<Document> {
        let table = table_name(coll.0)?;
        let version_check = if expected_version.is_some() {
            " AND version = $4"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE {table} SET body = $1, version = version + 1, updated_at = $2 \
             WHERE id = $3 AND (expires_at IS NULL OR expires_at > $2){version_check} \
             RETURNING {META}"
        );
        let mut q = sqlx::query_as::<_, Meta>(AssertSqlSafe(sql))
            .bind(Json(&body))
            .bind(now_micros())
            .bind(id);
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
        match (Self::get(conn, coll, id).await?, expected_version) {
            (Some(doc), Some(expected)) => Err(StoreError::Conflict {
                expected,
                found: doc.version,
            }),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn delete(conn: &mut PgConnection, coll: Collection, id: &str) -> Result<bool> {
        let table = table_name(coll.0)?;
        let sql = format!(
            "DELETE FROM {table} WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(now_micros())
            .execute(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn find(
        conn: &mut PgConnection,
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
        Ok(rows.into_iter().map(Row::into_doc).collect())
    }

    async fn count(conn: &mut PgConnection, coll: Collection, filter: &Filter) -> Result<u64> {
        let mut qb = filtered("SELECT COUNT(*)", coll, filter)?;
        let n: i64 = qb
            .build_query_scalar()
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| map_err(coll.0, e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn delete_many(
        conn: &mut PgConnection,
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
    async fn purge_expired(conn: &mut PgConnection, coll: &str, now: DateTime<Utc>) -> Result<u64> {
        let table = table_name(coll)?;
        let sql = format!("DELETE FROM {table} WHERE expires_at IS NOT NULL AND expires_at <= $1");
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(|e| map_err(coll, e))?;
        Ok(done.rows_affected())
    }

    async fn collections(conn: &mut PgConnection) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM oih_collections ORDER BY name")
                .fetch_all(&mut *conn)
                .await?,
        )
    }
}

/// `<head> FROM <table> WHERE <live> AND <filter>`, ready for more clauses.
fn filtered(head: &str, coll: Collection, filter: &Filter) -> Result<QueryBuilder<Postgres>> {
    let table = table_name(coll.0)?;
    let mut qb = QueryBuilder::new(format!(
        "{head} FROM {table} WHERE (expires_at IS NULL OR expires_at > "
    ));
    qb.push_bind(now_micros());
    qb.push(") AND ");
    push_filter(&mut qb, &SYNTAX, filter, 0)?;
    Ok(qb)
}
