//! Printing: an aligned table for lists, `key: value` lines for one object, or the API's
//! `data` as pretty JSON.

use clap::ValueEnum;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for lists, `key: value` lines for one object.
    Table,
    /// The API's `data`, pretty-printed.
    Json,
}

/// One column or field: its header and how to render it from an item.
pub type Field = (&'static str, fn(&Value) -> String);

/// A top-level field as text: strings bare, null/absent empty, anything else compact JSON.
pub fn text(item: &Value, key: &str) -> String {
    match item.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// The `data` of an envelope, or the body itself when it has none.
pub fn data(body: &Value) -> &Value {
    body.get("data").unwrap_or(body)
}

pub fn print_list(output: Output, items: &[Value], columns: &[Field]) {
    match output {
        Output::Json => print_json(&Value::Array(items.to_vec())),
        Output::Table => print!("{}", table(items, columns)),
    }
}

pub fn print_object(output: Output, item: &Value, fields: &[Field]) {
    match output {
        Output::Json => print_json(item),
        Output::Table => print!("{}", key_values(item, fields)),
    }
}

/// Newlines and tabs would break the alignment.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub fn table(items: &[Value], columns: &[Field]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|(_, f)| one_line(&f(item))).collect())
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = columns.iter().map(|(h, _)| h.to_uppercase()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `key: value` lines for the fields that have a value.
pub fn key_values(item: &Value, fields: &[Field]) -> String {
    let mut out = String::new();
    for (key, f) in fields {
        let value = f(item);
        if !value.is_empty() {
            out.push_str(&format!("{key}: {}\n", one_line(&value)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COLUMNS: &[Field] = &[
        ("id", |v| text(v, "id")),
        ("name", |v| text(v, "name")),
        ("n", |v| text(v, "n")),
    ];

    #[test]
    fn tables_align_and_trim() {
        let items = [
            json!({"id": "a1", "name": "long name", "n": 3}),
            json!({"id": "b", "name": "x\ny"}),
        ];
        assert_eq!(
            table(&items, COLUMNS),
            "ID  NAME       N\na1  long name  3\nb   x y\n"
        );
        assert_eq!(table(&[], COLUMNS), "ID  NAME  N\n");
    }

    #[test]
    fn key_values_skip_empty_fields() {
        assert_eq!(
            key_values(&json!({"id": "a", "n": null}), COLUMNS),
            "id: a\n"
        );
    }
}
