//! `Filter` → SQLite SQL over the JSON1 functions.
//!
//! SQLite's `json_extract` maps JSON `true` to 1 and returns objects as JSON text, so value
//! equality alone would make `true == 1` and `{"a":1} == '{"a":1}'`. Every comparison is
//! therefore paired with a `json_type` check. The `json_extract(...) = ?` half is written
//! exactly like the index expressions in `docs.rs`, so the planner can use those indexes.
//!
//! Leaves may evaluate to NULL when the path is missing (NULL is "no match" in WHERE); only
//! `Not` needs care, and it wraps its operand in `COALESCE(.., 0)`.

use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite};

use crate::sql::{
    Column, FilterSyntax, Num, Target, check_range_value, num, parse_json_path, parse_target,
    range_op, time_value,
};
use crate::{Filter, FindOptions, Result, SortOrder, StoreError};

/// The SQLite spelling of a filter's leaves, for [`push_filter`](crate::sql::push_filter).
pub(super) const SYNTAX: FilterSyntax<Sqlite> = FilterSyntax {
    true_literal: "1",
    false_literal: "0",
    column: push_column,
    json: push_json,
};

/// A place holding a JSON value: its SQL type expression and its SQL value expression.
pub(super) struct Slot {
    ty: String,
    val: String,
}

/// `'$."a"."b"'`: segments are validated quote-free, and quoting them lets `$` and `-` through.
pub(super) fn json_path_literal(segments: &[String]) -> String {
    let mut p = String::from("'$");
    for seg in segments {
        p.push_str(".\"");
        p.push_str(seg);
        p.push('"');
    }
    p.push('\'');
    p
}

/// The expression indexes are built on and values are compared with.
pub(super) fn extract_expr(src: &str, segments: &[String]) -> String {
    format!("json_extract({src}, {})", json_path_literal(segments))
}

fn slot(src: &str, segments: &[String]) -> Slot {
    let p = json_path_literal(segments);
    Slot {
        ty: format!("json_type({src}, {p})"),
        val: format!("json_extract({src}, {p})"),
    }
}

/// The current element of `json_each(...) AS je`.
fn element_slot() -> Slot {
    Slot {
        ty: "je.type".into(),
        val: "je.value".into(),
    }
}

fn bind_num(qb: &mut QueryBuilder<Sqlite>, n: &serde_json::Number) {
    match num(n) {
        Num::Int(i) => qb.push_bind(i),
        Num::Float(f) => qb.push_bind(f),
    };
}

fn push_eq(qb: &mut QueryBuilder<Sqlite>, s: &Slot, v: &Value) {
    match v {
        Value::String(text) => {
            qb.push(format_args!("({} = ", s.val));
            qb.push_bind(text.clone());
            qb.push(format_args!(" AND {} = 'text')", s.ty));
        }
        Value::Number(n) => {
            qb.push(format_args!("({} = ", s.val));
            bind_num(qb, n);
            qb.push(format_args!(" AND {} IN ('integer', 'real'))", s.ty));
        }
        Value::Bool(b) => {
            qb.push(format_args!("({} = '{b}')", s.ty));
        }
        Value::Null => {
            qb.push(format_args!("({} = 'null')", s.ty));
        }
        // Objects and arrays compare by their minified text (key order matters here; on
        // PostgreSQL it does not). Rarely used; `ArrayContains` is the usual tool.
        Value::Object(_) | Value::Array(_) => {
            let kind = if v.is_object() { "object" } else { "array" };
            qb.push(format_args!("({} = json(", s.val));
            qb.push_bind(v.to_string());
            qb.push(format_args!(") AND {} = '{kind}')", s.ty));
        }
    }
}

fn push_in(qb: &mut QueryBuilder<Sqlite>, s: &Slot, values: &[Value]) {
    let strings: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    let numbers: Vec<&serde_json::Number> = values
        .iter()
        .filter_map(|v| match v {
            Value::Number(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut any = false;
    qb.push("(");
    let mut or = |qb: &mut QueryBuilder<Sqlite>| {
        if any {
            qb.push(" OR ");
        }
        any = true;
    };
    if !strings.is_empty() {
        or(qb);
        qb.push(format_args!("({} IN (", s.val));
        let mut sep = qb.separated(", ");
        for text in strings {
            sep.push_bind(text.to_owned());
        }
        qb.push(format_args!(") AND {} = 'text')", s.ty));
    }
    if !numbers.is_empty() {
        or(qb);
        qb.push(format_args!("({} IN (", s.val));
        for (i, n) in numbers.into_iter().enumerate() {
            if i > 0 {
                qb.push(", ");
            }
            bind_num(qb, n);
        }
        qb.push(format_args!(") AND {} IN ('integer', 'real'))", s.ty));
    }
    for v in values.iter().filter(|v| !v.is_string() && !v.is_number()) {
        or(qb);
        push_eq(qb, s, v);
    }
    if !any {
        qb.push("0");
    }
    qb.push(")");
}

fn push_range(qb: &mut QueryBuilder<Sqlite>, s: &Slot, op: &str, v: &Value) {
    match v {
        Value::Number(n) => {
            qb.push(format_args!("({} {op} ", s.val));
            bind_num(qb, n);
            qb.push(format_args!(" AND {} IN ('integer', 'real'))", s.ty));
        }
        Value::String(text) => {
            qb.push(format_args!("({} {op} ", s.val));
            qb.push_bind(text.clone());
            qb.push(format_args!(" AND {} = 'text')", s.ty));
        }
        // Rejected by `check_range_value` before we get here.
        _ => {
            qb.push("0");
        }
    }
}

fn push_contains_text(qb: &mut QueryBuilder<Sqlite>, s: &Slot, needle: &str) {
    // instr() rather than LIKE: no wildcards to escape. lower() folds ASCII only.
    qb.push(format_args!(
        "({} = 'text' AND instr(lower({}), lower(",
        s.ty, s.val
    ));
    qb.push_bind(needle.to_owned());
    qb.push(")) > 0)");
}

fn push_array_contains(
    qb: &mut QueryBuilder<Sqlite>,
    segments: &[String],
    v: &Value,
) -> Result<()> {
    let s = slot("body", segments);
    qb.push(format_args!(
        "({} = 'array' AND EXISTS (SELECT 1 FROM json_each(body, {}) AS je WHERE ",
        s.ty,
        json_path_literal(segments)
    ));
    match v {
        Value::Object(fields) => {
            qb.push("je.type = 'object'");
            for (key, want) in fields {
                let field = parse_json_path(key)?;
                qb.push(" AND ");
                push_eq(qb, &slot("je.value", &field), want);
            }
        }
        scalar => push_eq(qb, &element_slot(), scalar),
    }
    qb.push("))");
    Ok(())
}

/// What a column is compared with: the id string or microseconds since the epoch. `Never`
/// when the value can never equal the column (e.g. `_id == 5`).
enum ColumnValue {
    Text(String),
    Micros(i64),
    Never,
}

fn column_value(col: Column, path: &str, v: &Value) -> Result<ColumnValue> {
    Ok(match col {
        Column::Id => v
            .as_str()
            .map_or(ColumnValue::Never, |s| ColumnValue::Text(s.to_owned())),
        Column::CreatedAt | Column::UpdatedAt => {
            ColumnValue::Micros(time_value(path, v)?.timestamp_micros())
        }
    })
}

fn push_column_cmp(qb: &mut QueryBuilder<Sqlite>, col: Column, op: &str, v: ColumnValue) {
    match v {
        ColumnValue::Text(s) => {
            qb.push(format_args!("({} {op} ", col.sql()));
            qb.push_bind(s);
            qb.push(")");
        }
        ColumnValue::Micros(m) => {
            qb.push(format_args!("({} {op} ", col.sql()));
            qb.push_bind(m);
            qb.push(")");
        }
        ColumnValue::Never => {
            qb.push("0");
        }
    }
}

/// Comparisons against the id / timestamp columns.
fn push_column(qb: &mut QueryBuilder<Sqlite>, col: Column, path: &str, f: &Filter) -> Result<()> {
    match f {
        Filter::Eq(_, v) => push_column_cmp(qb, col, "=", column_value(col, path, v)?),
        Filter::Gt(_, v) | Filter::Gte(_, v) | Filter::Lt(_, v) | Filter::Lte(_, v) => {
            check_range_value(path, v)?;
            push_column_cmp(qb, col, range_op(f), column_value(col, path, v)?);
        }
        Filter::In(_, values) => {
            qb.push("(0");
            for v in values {
                qb.push(" OR ");
                push_column_cmp(qb, col, "=", column_value(col, path, v)?);
            }
            qb.push(")");
        }
        Filter::Exists(_, present) => {
            qb.push(if *present { "1" } else { "0" });
        }
        Filter::ContainsText(_, needle) if col == Column::Id => {
            qb.push("(instr(lower(id), lower(");
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
    qb: &mut QueryBuilder<Sqlite>,
    segments: &[String],
    path: &str,
    f: &Filter,
) -> Result<()> {
    let s = slot("body", segments);
    match f {
        Filter::Eq(_, v) => push_eq(qb, &s, v),
        Filter::In(_, values) => push_in(qb, &s, values),
        Filter::Gt(_, v) | Filter::Gte(_, v) | Filter::Lt(_, v) | Filter::Lte(_, v) => {
            check_range_value(path, v)?;
            push_range(qb, &s, range_op(f), v);
        }
        Filter::Exists(_, present) => {
            let test = if *present { "IS NOT NULL" } else { "IS NULL" };
            qb.push(format_args!("({} {test})", s.ty));
        }
        Filter::ArrayContains(_, v) => push_array_contains(qb, segments, v)?,
        Filter::ContainsText(_, needle) => push_contains_text(qb, &s, needle),
        // The boolean structure, written by `push_filter`.
        Filter::All | Filter::And(_) | Filter::Or(_) | Filter::Not(_) | Filter::Ne(..) => {}
    }
    Ok(())
}

/// Appends `ORDER BY ... LIMIT ... OFFSET ...`. Ties always break on id so paging is stable.
/// SQLite orders NULL (missing) < numbers (numerically) < strings, which is what we want.
pub(super) fn push_order_and_page(qb: &mut QueryBuilder<Sqlite>, opts: &FindOptions) -> Result<()> {
    qb.push(" ORDER BY ");
    for (path, order) in &opts.sort {
        let dir = match order {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        };
        match parse_target(path)? {
            Target::Column(col) => qb.push(format_args!("{} {dir}, ", col.sql())),
            Target::Json(segments) => {
                qb.push(format_args!("{} {dir}, ", extract_expr("body", &segments)))
            }
        };
    }
    qb.push("id ASC");
    if opts.limit.is_some() || opts.skip > 0 {
        qb.push(" LIMIT ");
        // SQLite spells "no limit" as a negative LIMIT.
        qb.push_bind(opts.limit.map_or(-1, crate::sql::to_i64));
        qb.push(" OFFSET ");
        qb.push_bind(crate::sql::to_i64(opts.skip));
    }
    Ok(())
}
