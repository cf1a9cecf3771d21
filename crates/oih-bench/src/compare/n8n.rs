//! n8n: started on its default SQLite with its default execution saving; the workflow is
//! created and activated through the REST API the editor uses, as the owner set up on first
//! start.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use super::systems::call;

const OWNER: &str = "bench@example.com";
const PASSWORD: &str = "Oih-bench-0wner";
/// n8n ties its login cookie to this header.
const BROWSER_ID: &str = "oih-bench";

/// `n8n start` on Node.js `node`, data in `dir`, on `port`.
pub fn command(node: &Path, script: &Path, dir: &Path, port: u16) -> Command {
    let mut command = Command::new(node);
    command
        .arg(script)
        .arg("start")
        .env("N8N_USER_FOLDER", dir)
        .env("N8N_PORT", port.to_string())
        .env("N8N_LISTEN_ADDRESS", "127.0.0.1")
        .env("N8N_DIAGNOSTICS_ENABLED", "false")
        .env("N8N_VERSION_NOTIFICATIONS_ENABLED", "false")
        .env("N8N_TEMPLATES_ENABLED", "false")
        .env("N8N_SECURE_COOKIE", "false");
    // n8n finds its Node.js through the PATH for the processes it starts (task runners).
    if let Some(bin) = node.parent() {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if let Ok(joined) = std::env::join_paths(
            std::iter::once(bin.to_owned()).chain(std::env::split_paths(&path)),
        ) {
            command.env("PATH", joined);
        }
    }
    command
}

/// Sets up the owner, creates `workflow` and activates it; returns its production webhook
/// URL.
pub async fn create_flow(http: &reqwest::Client, base: &str, workflow: &Value) -> Result<String> {
    let res = http
        .post(format!("{base}/rest/owner/setup"))
        .header("browser-id", BROWSER_ID)
        .json(&json!({"email": OWNER, "firstName": "Bench", "lastName": "Owner", "password": PASSWORD}))
        .send()
        .await?;
    let status = res.status();
    let cookie = res
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next().filter(|c| c.starts_with("n8n-auth=")))
        .map(str::to_owned);
    let body = res.text().await?;
    let cookie =
        cookie.with_context(|| format!("owner setup gave no login cookie: {status} {body}"))?;
    let authed = |request: reqwest::RequestBuilder| {
        request
            .header(reqwest::header::COOKIE, &cookie)
            .header("browser-id", BROWSER_ID)
    };
    let created = call(authed(http.post(format!("{base}/rest/workflows"))).json(workflow)).await?;
    let id = created["data"]["id"].as_str().context("a workflow id")?;
    let version = created["data"]["versionId"]
        .as_str()
        .context("a workflow versionId")?;
    call(
        authed(http.post(format!("{base}/rest/workflows/{id}/activate")))
            .json(&json!({"versionId": version})),
    )
    .await
    .context("activating the workflow")?;
    let path = workflow["nodes"][0]["parameters"]["path"]
        .as_str()
        .context("the webhook node's path")?;
    Ok(format!("{base}/webhook/{path}"))
}
