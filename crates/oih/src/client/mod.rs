//! Client commands: `oih login`, `oih iam …`, `oih flow …`, `oih component …` talk to a
//! running hub's HTTP API with a token, for scripts and people.

mod component;
mod flow;
mod http;
mod iam;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use self::http::Api;
pub use self::output::Output;

pub const DEFAULT_URL: &str = "http://127.0.0.1:3000";

/// Where the hub is and how to print its answers.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The hub's base URL.
    #[arg(long, env = "OIH_URL", value_name = "URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,

    /// Output format: a table (or `key: value` lines for one object), or the API's JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

/// [`Target`] and the bearer token every command but `login` needs.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    #[command(flatten)]
    pub target: Target,

    /// Bearer token (from `oih login`). Required.
    #[arg(
        long,
        env = "OIH_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
}

impl Conn {
    fn api(&self) -> anyhow::Result<Api> {
        let Some(token) = self.token.as_deref().filter(|t| !t.trim().is_empty()) else {
            bail!("no token: pass --token or set OIH_TOKEN (get one with `oih login`)");
        };
        Api::new(&self.target.url, Some(token.trim().to_owned()))
    }

    fn output(&self) -> Output {
        self.target.output
    }
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(long, value_name = "USERNAME")]
    pub username: String,

    /// The password; OIH_PASSWORD keeps it out of the process list.
    #[arg(
        long,
        env = "OIH_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub password: String,

    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct IamArgs {
    #[command(flatten)]
    pub conn: Conn,

    #[command(subcommand)]
    pub command: IamCommand,
}

#[derive(Debug, Subcommand)]
pub enum IamCommand {
    /// Create an account (POST /api/v1/users); prints its id.
    CreateUser(iam::CreateUserArgs),
    /// Mint a token for an account (POST /api/v1/tokens); prints the token.
    CreateToken(iam::CreateTokenArgs),
}

#[derive(Debug, Args)]
pub struct FlowArgs {
    #[command(flatten)]
    pub conn: Conn,

    #[command(subcommand)]
    pub command: FlowCommand,
}

#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Create a flow from a JSON file, or update it when the file has the id of an existing
    /// flow; prints the flow's id.
    Apply(ApplyArgs),
    /// List the flows the token may see.
    List,
    /// Show one flow.
    Get { id: String },
    /// Start a flow (it becomes `starting`).
    Start { id: String },
    /// Stop a flow (it becomes `stopping`).
    Stop { id: String },
}

#[derive(Debug, Args)]
pub struct ComponentArgs {
    #[command(flatten)]
    pub conn: Conn,

    #[command(subcommand)]
    pub command: ComponentCommand,
}

#[derive(Debug, Subcommand)]
pub enum ComponentCommand {
    /// Create a component from a JSON file, or update it when the file has the id of an
    /// existing component; prints the component's id.
    Apply(ApplyArgs),
    /// List the components the token may see, the builtin ones included.
    List,
    /// Show one component.
    Get { id: String },
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// JSON file with one object (`-` reads standard input).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs a client command; errors go to stderr and make the exit status non-zero.
pub async fn run(command: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    match command.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.target.url, None)?;
    let body = api
        .post(
            &["login"],
            &json!({"username": args.username, "password": args.password}),
        )
        .await?;
    match args.target.output {
        Output::Json => output::print_json(&body),
        Output::Table => println!("{}", token_of(&body)?),
    }
    Ok(())
}

fn token_of(body: &Value) -> anyhow::Result<&str> {
    body.get("token")
        .and_then(Value::as_str)
        .with_context(|| format!("unexpected answer from the hub: no token in {body}"))
}

pub async fn iam(args: IamArgs) -> anyhow::Result<()> {
    let api = args.conn.api()?;
    let out = args.conn.output();
    match args.command {
        IamCommand::CreateUser(a) => iam::create_user(&api, out, a).await,
        IamCommand::CreateToken(a) => iam::create_token(&api, out, a).await,
    }
}

pub async fn flow(args: FlowArgs) -> anyhow::Result<()> {
    let api = args.conn.api()?;
    let out = args.conn.output();
    match args.command {
        FlowCommand::Apply(a) => flow::apply(&api, out, &a.file).await,
        FlowCommand::List => flow::list(&api, out).await,
        FlowCommand::Get { id } => flow::get(&api, out, &id).await,
        FlowCommand::Start { id } => flow::control(&api, out, &id, "start").await,
        FlowCommand::Stop { id } => flow::control(&api, out, &id, "stop").await,
    }
}

pub async fn component(args: ComponentArgs) -> anyhow::Result<()> {
    let api = args.conn.api()?;
    let out = args.conn.output();
    match args.command {
        ComponentCommand::Apply(a) => component::apply(&api, out, &a.file).await,
        ComponentCommand::List => component::list(&api, out).await,
        ComponentCommand::Get { id } => component::get(&api, out, &id).await,
    }
}

/// The JSON object in `path` (`-`: standard input).
fn read_object(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    match serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))? {
        Value::Object(map) => Ok(map),
        _ => bail!("{} must hold one JSON object", path.display()),
    }
}

/// Create-or-update of one document at `collection`: PATCH `collection/{id}` when the body's
/// `id` names an existing document, else POST `collection`. Returns the saved document and
/// whether it was created.
async fn apply(
    api: &Api,
    collection: &str,
    mut body: Map<String, Value>,
) -> anyhow::Result<(Value, bool)> {
    let id = match body.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id),
        Some(other) => bail!("`id` must be a string, not {other}"),
    };
    let body = Value::Object(body);
    if let Some(id) = id {
        match api.get(&[collection, &id], &[]).await {
            Ok(_) => {
                let saved = api.patch(&[collection, &id], &body).await?;
                return Ok((output::data(&saved).clone(), false));
            }
            Err(e) if http::is_status(&e, reqwest::StatusCode::NOT_FOUND) => {}
            Err(e) => return Err(e),
        }
    }
    let saved = api.post(&[collection], &body).await?;
    Ok((output::data(&saved).clone(), true))
}

/// Prints the outcome of an apply: the id (and a note on stderr), or the saved document.
fn print_applied(out: Output, kind: &str, saved: &Value, created: bool) -> anyhow::Result<()> {
    let id = saved
        .get("id")
        .and_then(Value::as_str)
        .with_context(|| format!("unexpected answer from the hub: no id in {saved}"))?;
    eprintln!(
        "{kind} {id} {}",
        if created { "created" } else { "updated" }
    );
    match out {
        Output::Json => output::print_json(saved),
        Output::Table => println!("{id}"),
    }
    Ok(())
}
