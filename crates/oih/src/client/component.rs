//! `oih component apply|list|get`.

use std::path::Path;

use serde_json::Value;

use super::flow::owners;
use super::http::{Api, list_all};
use super::output::{self, Field, Output, text};

const COLUMNS: &[Field] = &[
    ("id", |v| text(v, "id")),
    ("name", |v| text(v, "name")),
    ("distribution", distribution),
    ("access", |v| text(v, "access")),
    ("global", |v| text(v, "isGlobal")),
];

const FIELDS: &[Field] = &[
    ("id", |v| text(v, "id")),
    ("name", |v| text(v, "name")),
    ("description", |v| text(v, "description")),
    ("distribution", distribution),
    ("access", |v| text(v, "access")),
    ("isGlobal", |v| text(v, "isGlobal")),
    ("active", |v| text(v, "active")),
    ("artifactId", |v| text(v, "artifactId")),
    ("version", |v| text(v, "version")),
    ("tenant", |v| text(v, "tenant")),
    ("owners", owners),
    ("createdAt", |v| text(v, "createdAt")),
    ("updatedAt", |v| text(v, "updatedAt")),
];

/// `type:what` — the image, slug URL, program or builtin name it runs.
fn distribution(v: &Value) -> String {
    let Some(d) = v.get("distribution") else {
        return String::new();
    };
    let kind = text(d, "type");
    let what = match kind.as_str() {
        "docker" => text(d, "image"),
        "slug" => text(d, "slugUrl"),
        "builtin" => text(d, "name"),
        "process" => d
            .get("command")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    match what.is_empty() {
        true => kind,
        false => format!("{kind}:{what}"),
    }
}

pub async fn apply(api: &Api, out: Output, file: &Path) -> anyhow::Result<()> {
    let body = super::read_object(file)?;
    let (saved, created) = super::apply(api, "components", body).await?;
    super::print_applied(out, "component", &saved, created)
}

pub async fn list(api: &Api, out: Output) -> anyhow::Result<()> {
    let components = list_all(api, &["components"]).await?;
    output::print_list(out, &components, COLUMNS);
    Ok(())
}

pub async fn get(api: &Api, out: Output, id: &str) -> anyhow::Result<()> {
    let body = api.get(&["components", id], &[]).await?;
    output::print_object(out, output::data(&body), FIELDS);
    Ok(())
}
