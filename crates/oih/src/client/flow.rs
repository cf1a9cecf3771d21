//! `oih flow apply|list|get|start|stop`.

use std::path::Path;

use serde_json::Value;

use super::http::{Api, list_all};
use super::output::{self, Field, Output, text};

const COLUMNS: &[Field] = &[
    ("id", |v| text(v, "id")),
    ("name", |v| text(v, "name")),
    ("status", |v| text(v, "status")),
    ("nodes", nodes),
    ("cron", |v| text(v, "cron")),
    ("updated", |v| text(v, "updatedAt")),
];

const FIELDS: &[Field] = &[
    ("id", |v| text(v, "id")),
    ("name", |v| text(v, "name")),
    ("description", |v| text(v, "description")),
    ("status", |v| text(v, "status")),
    ("type", |v| text(v, "type")),
    ("tenant", |v| text(v, "tenant")),
    ("cron", |v| text(v, "cron")),
    ("nodes", nodes),
    ("edges", |v| count(v, "/graph/edges")),
    ("owners", owners),
    ("createdAt", |v| text(v, "createdAt")),
    ("updatedAt", |v| text(v, "updatedAt")),
];

fn count(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| a.len().to_string())
        .unwrap_or_default()
}

fn nodes(v: &Value) -> String {
    count(v, "/graph/nodes")
}

/// `type:id, …`.
pub(super) fn owners(v: &Value) -> String {
    v.get("owners")
        .and_then(Value::as_array)
        .map(|owners| {
            owners
                .iter()
                .map(|o| format!("{}:{}", text(o, "type"), text(o, "id")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub async fn apply(api: &Api, out: Output, file: &Path) -> anyhow::Result<()> {
    let body = super::read_object(file)?;
    let (saved, created) = super::apply(api, "flows", body).await?;
    super::print_applied(out, "flow", &saved, created)
}

pub async fn list(api: &Api, out: Output) -> anyhow::Result<()> {
    let flows = list_all(api, &["flows"]).await?;
    output::print_list(out, &flows, COLUMNS);
    Ok(())
}

pub async fn get(api: &Api, out: Output, id: &str) -> anyhow::Result<()> {
    let body = api.get(&["flows", id], &[]).await?;
    output::print_object(out, output::data(&body), FIELDS);
    Ok(())
}

/// `action`: `start` or `stop`.
pub async fn control(api: &Api, out: Output, id: &str, action: &str) -> anyhow::Result<()> {
    let body = api
        .post(&["flows", id, action], &Value::Object(Default::default()))
        .await?;
    output::print_object(out, output::data(&body), FIELDS);
    Ok(())
}
