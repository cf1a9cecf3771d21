//! `Filter` → PostgreSQL SQL over JSONB.
//!
//! Equality compares `jsonb` values (`body #> '{a,b}' = $1`), which is already type-aware:
//! `1 = 1.0`, `"1" <> 1`, booleans and null are their own types. That expression is also the
//! one the unique and secondary indexes are built on, so equality filters can use them.
//! String ranges compare the text form under `COLLATE "C"` (code-point order, as SQLite does),
//! so ISO timestamps order correctly whatever the database's collation.
//!
//! Leaves may evaluate to NULL when the path is missing (NULL is "no match" in WHERE); only
//! `Not` needs care, and it wraps its operand in `COALESCE(.., FALSE)`.

use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};

use crate::sql::{
    Column, FilterSyntax, Target, check_range_value, parse_json_path, parse_target, range_op,
    time_value,
};
use crate::{Filter, FindOptions, Result, SortOrder, StoreError};

/// The PostgreSQL spelling of a filter's leaves, for [`push_filter`](crate::sql::push_filter).
pub(super) const SYNTAX: FilterSyntax<Postgres> = FilterSyntax {
    true_literal: "TRUE",
    false_literal: "FALSE",
    column: push_column,
    json: push_json,
};

/// `'{a,b}'`: segments are validated to `[A-Za-z0-9_$-]+`, so nothing needs escaping.
fn path_literal(segments: &[String]) -> String {
    format!("'{{{}}}'", segments.join(","))
}

/// The JSONB value at the path: what indexes are built on and equality compares.
pub(super) fn jsonb_expr(segments: &[String]) -> String {
    format!("(body #> {})", path_literal(segments))
}

/// The text form of the value at the path (strings unquoted).
fn text_expr(segments: &[String]) -> String {
    format!("(body #>> {})", path_literal(segments))
}

fn push_jsonb(qb: &mut QueryBuilder<Postgres>, v: &Value) {
    qb.push_bind(Json(v.clone()));
}

fn push_range(qb: &mut QueryBuilder<Postgres>, segments: &[String], op: &str, v: &Value) {
    let j = jsonb_expr(segments);
    match v {
        // jsonb orders numbers numerically among themselves.
        Value::Number(_) => {
            qb.push(format_args!("(jsonb_typeof({j}) = 'number' AND {j} {op} "));
            push_jsonb(qb, v);
            qb.push(")");
        }
        Value::String(s) => {
            qb.push(format_args!(
                "(jsonb_typeof({j}) = 'string' AND {} COLLATE \"C\" {op} ",
                text_expr(segments)
            ));
            qb.push_bind(s.clone());
            qb.push(")");
        }
        // Rejected by `check_range_value` before we get here.
        _ => {
            qb.push("FALSE");
        }
    }
}

/// Rewrites dotted keys (`{"owner.id": "u1"}`) into nested objects so that `@>` means the
/// same as on SQLite, where each key is a path into the element.
fn nest_fields(fields: &Map<String, Value>) -> Result<Value> {
    let mut out = Map::new();
    for (key, value) in fields {
        let segments = parse_json_path(key)?;
        let mut node = &mut out;
        let (last, parents) = segments
            .split_last()
            .ok_or_else(|| StoreError::Invalid("empty field name".into()))?;
        for seg in parents {
            let entry = node
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            node = match entry {
                Value::Object(map) => map,
                _ => return Err(StoreError::Invalid(format!("conflicting field {key:?}"))),
            };
        }
        node.insert(last.clone(), value.clone());
    }
    Ok(Value::Object(out))
}

/// Comparisons against the id / timestamp columns.
fn push_column(qb: &mut QueryBuilder<Postgres>, col: Column, path: &str, f: &Filter) -> Result<()> {
    let c = col.sql();
    // Pushes `(col op $n)`, or FALSE when the value can never equal the column (`_id == 5`).
    let cmp = |qb: &mut QueryBuilder<Postgres>, op: &str, v: &Value| -> Result<()> {
        match col {
            Column::Id => match v.as_str() {
                Some(s) => {
                    qb.push(format_args!("({c} {op} "));
                    qb.push_bind(s.to_owned());
                    qb.push(")");
                }
                None => {
                    qb.push("FALSE");
                }
            },
            Column::CreatedAt | Column::UpdatedAt => {
                let t = time_value(path, v)?;
                qb.push(format_args!("({c} {op} "));
                qb.push_bind(t);
                qb.push(")");
            }
        }
        Ok(())
    };
    match f {
        Filter::Eq(_, v) => cmp(qb, "=", v)?,
        Filter::Gt(_, v) | Filter::Gte(_, v) | Filter::Lt(_, v) | Filter::Lte(_, v) => {
            check_range_value(path, v)?;
            cmp(qb, range_op(f), v)?;
        }
        Filter::In(_, values) => {
            qb.push("(FALSE");
            for v in values {
                qb.push(" OR ");
                cmp(qb, "=", v)?;
            }
            qb.push(")");
        }
        Filter::Exists(_, present) => {
            qb.push(if *present { "TRUE" } else { "FALSE" });
        }
        Filter::ContainsText(_, needle) if col == Column::Id => {
            qb.push("(strpos(lower(id), lower(");
            qb.push_bind(needle.clone());
            qb.push(")) > 0)");
        }
        _ => {
            return Err(StoreError::Invalid(format!(
                "{path} does not support this kind of filter"
            )));
        }
    }
    Ok(())
}

/// A test on the JSON value at `segments` (`path` is the caller's, for messages).
fn push_json(
    qb: &mut QueryBuilder<Postgres>,
    segments: &[String],
    path: &str,
    f: &Filter,
) -> Result<()> {
    let j = jsonb_expr(segments);
    match f {
        Filter::Eq(_, v) => {
            qb.push(format_args!("({j} = "));
            push_jsonb(qb, v);
            qb.push(")");
        }
        Filter::In(_, values) => {
            if values.is_empty() {
                qb.push("FALSE");
            } else {
                qb.push(format_args!("({j} IN ("));
                let mut sep = qb.separated(", ");
                for v in values {
                    sep.push_bind(Json(v.clone()));
                }
                qb.push("))");
            }
        }
        Filter::Gt(_, v) | Filter::Gte(_, v) | Filter::Lt(_, v) | Filter::Lte(_, v) => {
            check_range_value(path, v)?;
            push_range(qb, segments, range_op(f), v);
        }
        Filter::Exists(_, present) => {
            let test = if *present { "IS NOT NULL" } else { "IS NULL" };
            qb.push(format_args!("({j} {test})"));
        }
        Filter::ArrayContains(_, v) => {
            let element = match v {
                Value::Object(fields) => nest_fields(fields)?,
                scalar => scalar.clone(),
            };
            // `[x] @> [elem]`: some element of the array equals (scalar) or contains
            // (object) `elem`.
            qb.push(format_args!("(jsonb_typeof({j}) = 'array' AND {j} @> "));
            push_jsonb(qb, &Value::Array(vec![element]));
            qb.push(")");
        }
        Filter::ContainsText(_, needle) => {
            // strpos() rather than LIKE: no wildcards to escape.
            qb.push(format_args!(
                "(jsonb_typeof({j}) = 'string' AND strpos(lower({}), lower(",
                text_expr(segments)
            ));
            qb.push_bind(needle.clone());
            qb.push(")) > 0)");
        }
        // The boolean structure, written by `push_filter`.
        Filter::All | Filter::And(_) | Filter::Or(_) | Filter::Not(_) | Filter::Ne(..) => {}
    }
    Ok(())
}

/// Appends `ORDER BY ... LIMIT ... OFFSET ...`, ordering JSON values as SQLite does: missing
/// and null first, then numbers (numerically; booleans as 0/1), then strings (code-point
/// order), then objects and arrays. Ties always break on id so paging is stable.
pub(super) fn push_order_and_page(
    qb: &mut QueryBuilder<Postgres>,
    opts: &FindOptions,
) -> Result<()> {
    qb.push(" ORDER BY ");
    for (path, order) in &opts.sort {
        let dir = match order {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        };
        match parse_target(path)? {
            Target::Column(col) => {
                qb.push(format_args!("{} {dir}, ", col.sql()));
            }
            Target::Json(segments) => {
                let j = jsonb_expr(&segments);
                let t = text_expr(&segments);
                qb.push(format_args!(
                    "(CASE jsonb_typeof({j}) WHEN 'number' THEN 1 WHEN 'boolean' THEN 1 \
                     WHEN 'string' THEN 2 WHEN 'object' THEN 3 WHEN 'array' THEN 3 ELSE 0 END) {dir}, \
                     (CASE jsonb_typeof({j}) WHEN 'number' THEN ({j})::numeric \
                     WHEN 'boolean' THEN ({j})::boolean::int END) {dir}, \
                     (CASE WHEN jsonb_typeof({j}) <> 'number' THEN {t} END) COLLATE \"C\" {dir}, "
                ));
            }
        }
    }
    qb.push("id ASC");
    if opts.limit.is_some() || opts.skip > 0 {
        qb.push(" LIMIT ");
        // LIMIT NULL is "no limit".
        qb.push_bind(opts.limit.map(crate::sql::to_i64));
        qb.push(" OFFSET ");
        qb.push_bind(crate::sql::to_i64(opts.skip));
    }
    Ok(())
}
