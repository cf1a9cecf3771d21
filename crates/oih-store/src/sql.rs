//! Engine-neutral pieces of the SQL both backends generate: validation of the names and paths
//! that end up *inside* SQL text (values never do; they are always bound), index naming,
//! timestamps, and error mapping.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sqlx::{Database, QueryBuilder};

use crate::{Filter, Result, StoreError, StoredMessage, TopologyRecord};

/// Longest collection name; keeps derived table and index names under PostgreSQL's 63-byte
/// identifier limit (`ux_` + name + `_` + 8 hex digits = 60).
const MAX_COLLECTION_LEN: usize = 48;
/// Generous bounds on JSON paths: long enough for any real document, short enough that a
/// hostile filter cannot make us build huge SQL.
const MAX_PATH_LEN: usize = 256;
const MAX_PATH_DEPTH: usize = 16;
/// Bounds on filter trees for the same reason.
pub(crate) const MAX_FILTER_DEPTH: usize = 32;

/// The table that holds a collection. The prefix keeps collections out of the namespace of
/// the store's own tables (`bus_messages`, `oih_collections`, `_sqlx_migrations`).
pub(crate) fn table_name(coll: &str) -> Result<String> {
    validate_collection(coll)?;
    Ok(format!("doc_{coll}"))
}

pub(crate) fn validate_collection(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && name.len() <= MAX_COLLECTION_LEN {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "collection name {name:?} must match [a-z][a-z0-9_]* and be at most \
             {MAX_COLLECTION_LEN} characters"
        )))
    }
}

/// A document column reachable through a pseudo-path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Id,
    CreatedAt,
    UpdatedAt,
}

impl Column {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::CreatedAt => "created_at",
            Column::UpdatedAt => "updated_at",
        }
    }
}

/// A parsed filter or sort path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Column(Column),
    /// Validated segments of a dotted JSON path; each matches `[A-Za-z0-9_$-]+`, so it can be
    /// placed inside a quoted SQL literal without escaping.
    Json(Vec<String>),
}

pub(crate) fn parse_target(path: &str) -> Result<Target> {
    match path {
        "_id" => return Ok(Target::Column(Column::Id)),
        "_createdAt" => return Ok(Target::Column(Column::CreatedAt)),
        "_updatedAt" => return Ok(Target::Column(Column::UpdatedAt)),
        _ => {}
    }
    parse_json_path(path).map(Target::Json)
}

/// Splits and validates a dotted JSON path. Segments are embedded in SQL text (so that the
/// filter expression matches the index expression textually and the planner can use it),
/// which is why the allowed alphabet is small and quote-free.
pub(crate) fn parse_json_path(path: &str) -> Result<Vec<String>> {
    let invalid = |why: &str| StoreError::Invalid(format!("path {path:?}: {why}"));
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return Err(invalid("must be 1 to 256 characters"));
    }
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.len() > MAX_PATH_DEPTH {
        return Err(invalid("too deep"));
    }
    for seg in &segments {
        let ok = !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-'));
        if !ok {
            return Err(invalid("segments must match [A-Za-z0-9_$-]+"));
        }
    }
    Ok(segments)
}

/// Deterministic name of an index over `paths`: same spec, same name, in every process and
/// every release (FNV-1a, not `DefaultHasher`, whose output may change between Rust versions).
pub(crate) fn index_name(kind: &str, coll: &str, paths: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("v1|{kind}|{}", paths.join("|")).bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Fold to 32 bits: plenty for the handful of indexes per collection, and it keeps the
    // name within PostgreSQL's identifier limit.
    let short = (hash >> 32) ^ (hash & 0xffff_ffff);
    format!("{kind}_{coll}_{short:08x}")
}

/// Timestamps are kept at microsecond precision: that is what PostgreSQL stores, and
/// truncating up front means the document an insert returns equals the one a later get reads.
pub(crate) fn now_micros() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

pub(crate) fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    from_micros(t.timestamp_micros())
}

pub(crate) fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Filter values for `_createdAt` / `_updatedAt`: an RFC 3339 string or milliseconds since
/// the epoch.
pub(crate) fn time_value(path: &str, value: &Value) -> Result<DateTime<Utc>> {
    let parsed = match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        _ => None,
    };
    parsed.ok_or_else(|| {
        StoreError::Invalid(format!(
            "{path} compares with an RFC 3339 timestamp or epoch milliseconds, not {value}"
        ))
    })
}

/// How a JSON number is bound: as an integer when it is one (exact), else as a double.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

pub(crate) fn num(n: &serde_json::Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Range comparisons are defined for numbers and strings only.
pub(crate) fn check_range_value(path: &str, value: &Value) -> Result<()> {
    match value {
        Value::Number(_) | Value::String(_) => Ok(()),
        _ => Err(StoreError::Invalid(format!(
            "range comparison on {path} needs a number or a string, not {value}"
        ))),
    }
}

pub(crate) fn too_deep() -> StoreError {
    StoreError::Invalid(format!(
        "filter nested deeper than {MAX_FILTER_DEPTH} levels"
    ))
}

/// An engine's SQL for the leaves of a [`Filter`]; [`push_filter`] writes the boolean structure
/// around them, which is the same on both engines but for the spelling of true and false.
pub(crate) struct FilterSyntax<DB: Database> {
    pub(crate) true_literal: &'static str,
    pub(crate) false_literal: &'static str,
    /// A test on the id or a timestamp column (`path` is the caller's, for messages).
    pub(crate) column: fn(&mut QueryBuilder<DB>, Column, &str, &Filter) -> Result<()>,
    /// A test on the body's JSON value at the validated path segments.
    pub(crate) json: fn(&mut QueryBuilder<DB>, &[String], &str, &Filter) -> Result<()>,
}

/// Appends the SQL for `f` (one parenthesised boolean expression) to `qb`.
pub(crate) fn push_filter<DB: Database>(
    qb: &mut QueryBuilder<DB>,
    syntax: &FilterSyntax<DB>,
    f: &Filter,
    depth: usize,
) -> Result<()> {
    if depth > MAX_FILTER_DEPTH {
        return Err(too_deep());
    }
    let path = match f {
        Filter::All => {
            qb.push(syntax.true_literal);
            return Ok(());
        }
        Filter::And(parts) | Filter::Or(parts) => {
            let (op, empty) = if matches!(f, Filter::And(_)) {
                (" AND ", syntax.true_literal)
            } else {
                (" OR ", syntax.false_literal)
            };
            if parts.is_empty() {
                qb.push(empty);
                return Ok(());
            }
            qb.push("(");
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    qb.push(op);
                }
                push_filter(qb, syntax, part, depth + 1)?;
            }
            qb.push(")");
            return Ok(());
        }
        Filter::Not(inner) => {
            // A leaf on a missing path is NULL: NOT must still make it a match.
            qb.push("(NOT COALESCE(");
            push_filter(qb, syntax, inner, depth + 1)?;
            qb.push(format_args!(", {}))", syntax.false_literal));
            return Ok(());
        }
        Filter::Ne(path, v) => {
            // "Not equal, or missing" is exactly the negation of Eq.
            let eq = Filter::Eq(path.clone(), v.clone());
            return push_filter(qb, syntax, &Filter::Not(Box::new(eq)), depth + 1);
        }
        Filter::Eq(p, _)
        | Filter::In(p, _)
        | Filter::Gt(p, _)
        | Filter::Gte(p, _)
        | Filter::Lt(p, _)
        | Filter::Lte(p, _)
        | Filter::Exists(p, _)
        | Filter::ArrayContains(p, _)
        | Filter::ContainsText(p, _) => p,
    };
    match parse_target(path)? {
        Target::Column(col) => (syntax.column)(qb, col, path, f),
        Target::Json(segments) => (syntax.json)(qb, &segments, path, f),
    }
}

/// The SQL operator of a range filter.
pub(crate) fn range_op(f: &Filter) -> &'static str {
    match f {
        Filter::Gt(..) => ">",
        Filter::Gte(..) => ">=",
        Filter::Lt(..) => "<",
        _ => "<=",
    }
}

/// Clamps paging values into the signed range SQL takes.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Maps "no such table" to a message that names the real mistake: the collection was never
/// declared with `ensure_collection`.
pub(crate) fn map_err(coll: &str, err: sqlx::Error) -> StoreError {
    if let Some(db) = err.as_database_error() {
        let missing_table =
            db.code().as_deref() == Some("42P01") || db.message().starts_with("no such table");
        if missing_table {
            return StoreError::Invalid(format!(
                "collection {coll:?} has not been created; call ensure_collection first"
            ));
        }
        if db.is_unique_violation() {
            return StoreError::Duplicate(format!("{coll}: {}", db.message()));
        }
    }
    err.into()
}

/// A `bus_messages` row; the derive is generic over the row type, so both engines use it.
#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: i64,
    queue: String,
    exchange: String,
    routing_key: String,
    props: Vec<u8>,
    body: Vec<u8>,
    enqueued_at: i64,
    expires_at: Option<i64>,
    delivery_count: i32,
}

impl From<MessageRow> for StoredMessage {
    fn from(r: MessageRow) -> Self {
        StoredMessage {
            id: r.id,
            queue: r.queue,
            exchange: r.exchange,
            routing_key: r.routing_key,
            props: r.props,
            body: r.body,
            enqueued_at: r.enqueued_at,
            expires_at: r.expires_at,
            delivery_count: r.delivery_count,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TopologyRow {
    kind: String,
    name: String,
    spec: Vec<u8>,
}

impl From<TopologyRow> for TopologyRecord {
    fn from(r: TopologyRow) -> Self {
        TopologyRecord {
            kind: r.kind,
            name: r.name,
            spec: r.spec,
        }
    }
}

/// Hooks registered with `Transaction::after_commit`, run in order once the commit is in.
pub(crate) type Hook = Box<dyn FnOnce() + Send>;

pub(crate) fn run_hooks(hooks: Vec<Hook>) {
    for hook in hooks {
        hook();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_target("owner.id").ok(),
            Some(Target::Json(vec!["owner".into(), "id".into()]))
        );
        assert_eq!(
            parse_target("_createdAt").ok(),
            Some(Target::Column(Column::CreatedAt))
        );
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "a'b",
            "a\"b",
            "a b",
            "a}b",
            "a[0]",
            "x') OR 1=1 --",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn index_names_are_stable_and_short() {
        let coll = "abcdefghijklmnopqrstuvwxyz_abcdefghijklmnopqrstu";
        assert!(validate_collection(coll).is_ok());
        assert!(validate_collection(&format!("{coll}v")).is_err());
        let a = index_name("ux", coll, &["tenant", "name"]);
        assert_eq!(a, index_name("ux", coll, &["tenant", "name"]));
        assert_ne!(a, index_name("ux", coll, &["tenant"]));
        assert_ne!(a, index_name("ix", coll, &["tenant", "name"]));
        assert!(a.len() <= 63, "{a}");
    }
}
