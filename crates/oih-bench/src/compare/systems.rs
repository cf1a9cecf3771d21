//! Starting each system fresh (new data directory, free port), creating the benchmark flow in
//! it through its own API or flow file, and timing how long until it answers correctly. The
//! flow is scenario (a)'s (replies with its result) or scenario (b)'s (answers at once, POSTs
//! its result to the harness's sink): [`Flow`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::{Value, json};
use tempfile::TempDir;

use super::ingest::Ingest;
use super::load::Generator;
use super::n8n;
use super::peers::Peers;
use super::process::{Process, free_port};
use super::procs::{Monitor, Units};
use super::workload::Replies;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `oih serve`, embedded backend (SQLite + embedded bus).
    Oih,
    /// `oih serve` on PostgreSQL and RabbitMQ (needs --database-url and --amqp-url).
    OihPg,
    /// As oih-pg, with the transform step an OIH Node.js component run by OIH's Ferryman as
    /// a process (`bench/components/ferryman-transform`): OIH's own per-step runtime.
    OihFerryman,
    NodeRed,
    N8n,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Oih => "oih",
            Kind::OihPg => "oih-pg",
            Kind::OihFerryman => "oih-ferryman",
            Kind::NodeRed => "node-red",
            Kind::N8n => "n8n",
        }
    }

    pub fn is_oih(self) -> bool {
        matches!(self, Kind::Oih | Kind::OihPg | Kind::OihFerryman)
    }

    /// Runs on PostgreSQL and RabbitMQ.
    pub fn is_external(self) -> bool {
        matches!(self, Kind::OihPg | Kind::OihFerryman)
    }
}

/// What starting a system needs.
pub struct Context {
    pub oih_bin: PathBuf,
    pub peers: Peers,
    pub flows_dir: PathBuf,
    pub units: Units,
    pub database_url: Option<String>,
    pub amqp_url: Option<String>,
}

/// Which benchmark flow a system gets, with the load that checks its first answer.
#[derive(Clone, Copy)]
pub enum Flow<'a> {
    /// Scenario (a): `bench/flows/<system>.json`, replying with the result.
    Reply(&'a Generator<Replies>),
    /// Scenario (b): `bench/flows/<system>-async.json`, answering at once and POSTing the
    /// result to the sink of this load.
    Ingest(&'a Generator<Ingest>),
}

/// Where the asynchronous flow files name the sink.
const SINK_URL: &str = "@SINK_URL@";

impl Flow<'_> {
    /// The flow file of `system` (`oih`, `node-red`, `n8n`), the sink's URL filled in.
    fn read(&self, ctx: &Context, system: &str) -> Result<Value> {
        let (file, sink) = match self {
            Flow::Reply(_) => (format!("{system}.json"), None),
            Flow::Ingest(load) => (
                format!("{system}-async.json"),
                Some(load.script().sink_url()),
            ),
        };
        let file = ctx.flows_dir.join(file);
        let mut text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        if let Some(sink) = sink {
            ensure!(
                text.contains(SINK_URL),
                "{} does not name the sink ({SINK_URL})",
                file.display()
            );
            text = text.replace(SINK_URL, sink);
        }
        serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))
    }

    /// Ok once the flow at `url` does its work: (a) the right reply to the first body; (b) a
    /// kept order accepted and its result at the sink.
    async fn first_answer(&self, url: &str) -> Result<()> {
        match self {
            Flow::Reply(load) => load.try_once(url, &load.cases()[0]).await,
            Flow::Ingest(load) => load.first_result(url).await,
        }
    }
}

/// A started system with the benchmark flow active.
pub struct Running {
    pub kind: Kind,
    /// Where the load generator POSTs: one URL per flow.
    pub urls: Vec<String>,
    /// From spawning the process to its health endpoint answering.
    pub ready: Duration,
    /// From spawning the process to the first correct answer of the flow (the flow created
    /// through the API in between, where the system needs that); scenario (b): to the first
    /// result at the sink.
    pub first_reply: Duration,
    /// Resident memory once the flow is ready, before any load.
    pub idle_rss_bytes: u64,
    pub monitor: Monitor,
    // Dropped in this order: the processes stop before their data goes.
    process: Process,
    _pg: Option<oih_store::testing::PgSchema>,
    _dir: TempDir,
}

impl Running {
    /// The process's log, for error messages.
    pub fn log(&self) -> &Path {
        &self.process.log
    }
}

/// Polls `probe` every 50 ms until it is Ok, the process dies or `limit` passes.
async fn wait_for<F, Fut>(
    process: &mut Process,
    limit: Duration,
    what: &str,
    mut probe: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let last = probe().await;
        if last.is_ok() {
            return Ok(());
        }
        process
            .check_alive()
            .with_context(|| format!("waiting for {what}"))?;
        if Instant::now() > deadline {
            bail!(
                "{what}: none within {limit:?} ({last:?}); end of the log {}:\n{}",
                process.log.display(),
                process.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_ok(http: &reqwest::Client, url: &str) -> Result<()> {
    let res = http.get(url).send().await?;
    ensure!(res.status().is_success(), "{}", res.status());
    Ok(())
}

/// Starts `kind` with `flows` copies of the benchmark flow, each active and answering.
pub async fn start(kind: Kind, ctx: &Context, flow: Flow<'_>, flows: usize) -> Result<Running> {
    ensure!(flows > 0, "at least one flow");
    ensure!(
        flows == 1 || kind != Kind::N8n,
        "n8n is measured with one workflow only"
    );
    let dir = tempfile::Builder::new()
        .prefix(&format!("oih-bench-{}-", kind.name()))
        .tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let log = dir.path().join("system.log");
    let mut pg = None;
    let (mut process, health) = match kind {
        Kind::Oih | Kind::OihPg | Kind::OihFerryman => {
            let mut command = oih_command(ctx, dir.path(), port);
            if kind.is_external() {
                let (Some(db), Some(amqp)) = (&ctx.database_url, &ctx.amqp_url) else {
                    bail!("{} needs --database-url and --amqp-url", kind.name());
                };
                let schema = oih_store::testing::PgSchema::create(db).await?;
                command.args(["--database-url", schema.url(), "--amqp-url", amqp]);
                // Process components reach RabbitMQ themselves; they know the hub's API at
                // its real port.
                command
                    .env("RABBITMQ_URI_FLOWS", amqp)
                    .env("SELF_API_URI", &base);
                pg = Some(schema);
            }
            (
                Process::spawn(command, &log)?,
                format!("{base}/healthcheck"),
            )
        }
        Kind::NodeRed => {
            let red = ctx.peers.node_red()?;
            let template = flow.read(ctx, "node-red")?;
            std::fs::write(
                dir.path().join("flows.json"),
                node_red_flows(&template, flows)?.to_string(),
            )?;
            let mut command = Command::new("node");
            command
                .arg(red)
                .args(["--port", &port.to_string(), "--userDir"])
                .arg(dir.path())
                .arg("flows.json");
            // Node-RED has no health endpoint: it is ready when its editor answers.
            (Process::spawn(command, &log)?, format!("{base}/"))
        }
        Kind::N8n => {
            let (node, script) = ctx.peers.n8n()?;
            let command = n8n::command(&node, &script, dir.path(), port);
            (
                Process::spawn(command, &log)?,
                format!("{base}/healthz/readiness"),
            )
        }
    };
    let started = process.started;
    let (ready, urls) = match kind {
        Kind::Oih | Kind::OihPg | Kind::OihFerryman => {
            wait_for(
                &mut process,
                Duration::from_secs(60),
                "oih's health check",
                || get_ok(&http, &health),
            )
            .await?;
            let ready = started.elapsed();
            let token = oih_login(&http, &base).await?;
            let mut graph = flow.read(ctx, "oih")?;
            if kind == Kind::OihFerryman {
                let component = ferryman_component(ctx, &http, &base, &token).await?;
                let transform = graph["graph"]["nodes"]
                    .as_array_mut()
                    .and_then(|nodes| nodes.iter_mut().find(|n| n["id"] == "transform"))
                    .context("oih's flow file has a transform node")?;
                transform["componentId"] = json!(component);
                transform["fields"] = json!({});
            }
            (ready, oih_flows(&http, &base, &token, &graph, flows).await?)
        }
        Kind::NodeRed => {
            wait_for(
                &mut process,
                Duration::from_secs(60),
                "Node-RED's editor",
                || get_ok(&http, &health),
            )
            .await?;
            let urls = (0..flows)
                .map(|i| format!("{base}{}", node_red_path(i)))
                .collect();
            (started.elapsed(), urls)
        }
        Kind::N8n => {
            wait_for(
                &mut process,
                Duration::from_secs(180),
                "n8n's /healthz/readiness",
                || get_ok(&http, &health),
            )
            .await?;
            let ready = started.elapsed();
            let workflow = flow.read(ctx, "n8n")?;
            (
                ready,
                vec![n8n::create_flow(&http, &base, &workflow).await?],
            )
        }
    };
    let mut first_reply = None;
    // A flow answers once the system has seen it start (oih: over its event bus).
    for url in &urls {
        wait_for(
            &mut process,
            Duration::from_secs(60),
            "the flow's first correct answer",
            || flow.first_answer(url),
        )
        .await?;
        first_reply.get_or_insert_with(|| started.elapsed());
    }
    let first_reply = first_reply.context("no flow")?;
    let monitor = Monitor::start(process.pid(), ctx.units);
    let idle_rss_bytes = monitor.rss_bytes();
    Ok(Running {
        kind,
        urls,
        ready,
        first_reply,
        idle_rss_bytes,
        monitor,
        process,
        _pg: pg,
        _dir: dir,
    })
}

/// `oih serve` on the embedded backend in `dir`, listening on `port`.
fn oih_command(ctx: &Context, dir: &Path, port: u16) -> Command {
    let mut command = Command::new(&ctx.oih_bin);
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env("IAM_ACC_ADMIN_USERNAME", OIH_ADMIN)
        .env("IAM_ACC_ADMIN_PASSWORD", OIH_PASSWORD);
    for var in [
        "OIH_DATABASE_URL",
        "OIH_AMQP_URL",
        "RABBITMQ_URI",
        "OIH_ONLY",
        "OIH_LISTEN",
        "PORT",
    ] {
        command.env_remove(var);
    }
    command
}

/// How long a process idles after its first answer before its memory is read.
const SETTLE: Duration = Duration::from_secs(3);

/// Resident memory of a fresh `oih serve` (every service, no flow), idle.
pub async fn idle_oih(ctx: &Context) -> Result<u64> {
    let dir = tempfile::Builder::new()
        .prefix("oih-bench-idle-")
        .tempdir()?;
    let port = free_port()?;
    let command = oih_command(ctx, dir.path(), port);
    idle_rss(
        ctx,
        command,
        &dir.path().join("system.log"),
        &format!("http://127.0.0.1:{port}/healthcheck"),
    )
    .await
}

/// Resident memory of one Node.js process serving one express route, idle: the floor under
/// each of OIH's Node.js services. Express comes with Node-RED (the same major version as
/// OIH's services use), so nothing more is installed.
pub async fn idle_express(ctx: &Context) -> Result<u64> {
    let express = ctx
        .peers
        .node_red()?
        .parent()
        .and_then(Path::parent)
        .context("node-red layout")?
        .join("express");
    let dir = tempfile::Builder::new()
        .prefix("oih-bench-express-")
        .tempdir()?;
    let port = free_port()?;
    let mut command = Command::new("node");
    command.arg("-e").arg(format!(
        "const app = require({:?})(); app.get('/', (req, res) => res.json({{status: 'ok'}})); app.listen({port}, '127.0.0.1');",
        express.display().to_string()
    ));
    idle_rss(
        ctx,
        command,
        &dir.path().join("express.log"),
        &format!("http://127.0.0.1:{port}/"),
    )
    .await
}

async fn idle_rss(ctx: &Context, command: Command, log: &Path, probe: &str) -> Result<u64> {
    let mut process = Process::spawn(command, log)?;
    let http = reqwest::Client::new();
    wait_for(&mut process, Duration::from_secs(60), probe, || {
        get_ok(&http, probe)
    })
    .await?;
    tokio::time::sleep(SETTLE).await;
    Ok(super::procs::read(process.pid(), ctx.units.page_size).rss_bytes)
}

const OIH_ADMIN: &str = "bench@example.com";
const OIH_PASSWORD: &str = "oih-bench-admin-password";

/// The benchmark admin's token.
async fn oih_login(http: &reqwest::Client, base: &str) -> Result<String> {
    let login = call(
        http.post(format!("{base}/login"))
            .json(&json!({"username": OIH_ADMIN, "password": OIH_PASSWORD})),
    )
    .await?;
    Ok(login["token"].as_str().context("a login token")?.to_owned())
}

/// `bench/components/ferryman-transform`: the transform step as an OIH Node.js component.
pub fn ferryman_component_dir(ctx: &Context) -> Result<PathBuf> {
    Ok(ctx
        .flows_dir
        .parent()
        .context("the bench directory")?
        .join("components/ferryman-transform"))
}

/// Registers the Ferryman transform component (run with node by the process driver);
/// returns its id.
async fn ferryman_component(
    ctx: &Context,
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<String> {
    let run_global = ctx.peers.ferryman()?;
    let dir = ferryman_component_dir(ctx)?;
    let created = call(
        http.post(format!("{base}/components"))
            .bearer_auth(token)
            .json(&json!({
                "name": "oih-bench transform (Ferryman)",
                "distribution": {
                    "type": "process",
                    "command": ["node", run_global],
                    "workingDirectory": dir,
                },
            })),
    )
    .await?;
    Ok(created["data"]["id"]
        .as_str()
        .context("a component id")?
        .to_owned())
}

/// Creates `copies` copies of `flow` and starts them; returns their webhook URLs.
async fn oih_flows(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    flow: &Value,
    copies: usize,
) -> Result<Vec<String>> {
    let mut urls = Vec::with_capacity(copies);
    for i in 0..copies {
        let mut flow = flow.clone();
        flow["name"] = json!(format!("oih-bench {i}"));
        let created = call(
            http.post(format!("{base}/flows"))
                .bearer_auth(token)
                .json(&flow),
        )
        .await?;
        let id = created["data"]["id"]
            .as_str()
            .context("a flow id")?
            .to_owned();
        call(
            http.post(format!("{base}/flows/{id}/start"))
                .bearer_auth(token)
                .json(&json!({})),
        )
        .await?;
        urls.push(format!("{base}/hook/{id}"));
    }
    Ok(urls)
}

/// The path of the `i`th copy of Node-RED's flow.
fn node_red_path(i: usize) -> String {
    if i == 0 {
        "/bench".to_owned()
    } else {
        format!("/bench-{i}")
    }
}

/// `copies` copies of Node-RED's flow file (an array of nodes): copy `i` has its ids
/// suffixed with `-i` and listens on [`node_red_path`]`(i)`.
fn node_red_flows(template: &Value, copies: usize) -> Result<Value> {
    let nodes = template
        .as_array()
        .context("a Node-RED flow file is an array")?;
    let rename = |id: &Value, i: usize| match (id.as_str(), i) {
        (Some(id), i) if i > 0 => json!(format!("{id}-{i}")),
        _ => id.clone(),
    };
    let mut out = Vec::with_capacity(nodes.len() * copies);
    for i in 0..copies {
        for node in nodes {
            let mut node = node.clone();
            for key in ["id", "z"] {
                if let Some(v) = node.get(key) {
                    node[key] = rename(v, i);
                }
            }
            if let Some(outputs) = node.get("wires").and_then(Value::as_array) {
                let wires: Vec<Value> = outputs
                    .iter()
                    .map(|targets| {
                        let targets = targets.as_array().map(Vec::as_slice).unwrap_or_default();
                        Value::Array(targets.iter().map(|t| rename(t, i)).collect())
                    })
                    .collect();
                node["wires"] = Value::Array(wires);
            }
            if node["type"] == "http in" {
                node["url"] = json!(node_red_path(i));
            }
            out.push(node);
        }
    }
    Ok(Value::Array(out))
}

/// Sends a request; its JSON answer, or an error with the status and body.
pub async fn call(request: reqwest::RequestBuilder) -> Result<Value> {
    let res = request.send().await?;
    let status = res.status();
    let text = res.text().await?;
    ensure!(status.is_success(), "{status}: {text}");
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_red_copies_have_their_own_ids_wires_and_paths() {
        let template = json!([
            {"id": "t", "type": "tab"},
            {"id": "a", "z": "t", "type": "http in", "url": "/bench", "wires": [["b"]]},
            {"id": "b", "z": "t", "type": "switch", "wires": [["c"], []]},
        ]);
        let one = node_red_flows(&template, 1).expect("flows");
        assert_eq!(one, template);
        let three = node_red_flows(&template, 3).expect("flows");
        let nodes = three.as_array().expect("array");
        assert_eq!(nodes.len(), 9);
        assert_eq!(
            nodes[7],
            json!({"id": "a-2", "z": "t-2", "type": "http in", "url": "/bench-2", "wires": [["b-2"]]})
        );
        assert_eq!(nodes[8]["wires"], json!([["c-2"], []]));
        let ids: std::collections::HashSet<_> = nodes.iter().map(|n| n["id"].clone()).collect();
        assert_eq!(ids.len(), 9);
    }
}
