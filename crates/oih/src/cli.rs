//! Command line: `oih serve` and its flags. Every flag has an environment variable; where OIH
//! has its own name for a setting (`PORT`, `RABBITMQ_URI`) that name is read too.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::services::{Service, ServiceConfigs};

#[derive(Debug, Parser)]
#[command(
    name = "oih",
    version,
    about = "The Open Integration Hub in one binary."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log line format. The level is set with RUST_LOG (default: info).
    #[arg(
        long,
        env = "OIH_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub: every service (or those given with --only) on one HTTP listener.
    Serve(Box<ServeArgs>),
    /// Secret Service maintenance: re-encrypt, re-wrap keys, import an OIH secret store.
    #[command(alias = "secret")]
    Secrets(crate::admin::SecretsArgs),
    /// Meta Data Repository maintenance: import a set of JSON Schemas.
    Metadata(crate::admin::MetadataArgs),
    /// Log in to a running hub; prints a token for --token / OIH_TOKEN.
    Login(crate::client::LoginArgs),
    /// Accounts and tokens on a running hub.
    Iam(crate::client::IamArgs),
    /// Flows on a running hub: apply, list, get, start, stop.
    Flow(crate::client::FlowArgs),
    /// Components on a running hub: apply, list, get.
    Component(crate::client::ComponentArgs),
}

/// Where the hub keeps its data; shared by `serve` and the maintenance commands.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Directory for the SQLite database (oih.db) and other local state. Created if missing.
    #[arg(
        long,
        env = "OIH_DATA_DIR",
        value_name = "DIR",
        default_value = "./oih-data"
    )]
    pub data_dir: PathBuf,

    /// PostgreSQL URL (postgres://user:pass@host/db). Unset: SQLite in the data directory.
    #[arg(
        long,
        env = "OIH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, host:port [default: 127.0.0.1:3000]. When it is not given but
    /// OIH's PORT is set, listens on 0.0.0.0:$PORT.
    #[arg(long, env = "OIH_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// OIH's PORT variable (see --listen).
    #[arg(long, env = "PORT", hide = true)]
    pub port: Option<u16>,

    #[command(flatten)]
    pub storage: StorageArgs,

    /// RabbitMQ URL (amqp://user:pass@host:5672/vhost); OIH's RABBITMQ_URI is read when this
    /// is not given. Unset: the embedded bus, persisted in the database.
    #[arg(long, env = "OIH_AMQP_URL", value_name = "URL", hide_env_values = true)]
    pub amqp_url: Option<String>,

    /// OIH's RABBITMQ_URI variable (see --amqp-url).
    #[arg(long, env = "RABBITMQ_URI", hide = true, hide_env_values = true)]
    pub rabbitmq_uri: Option<String>,

    /// Run only these services (comma-separated), e.g. `--only flow-repository`. Default: all.
    #[arg(
        long,
        env = "OIH_ONLY",
        value_enum,
        value_delimiter = ',',
        value_name = "SERVICE"
    )]
    pub only: Vec<Service>,

    /// Largest accepted request body: bytes, or a number with kb/mb/gb (as OIH's
    /// PAYLOAD_SIZE_LIMIT). Larger bodies get 413.
    #[arg(long, env = "OIH_BODY_LIMIT", value_name = "SIZE", default_value = "10mb", value_parser = parse_size)]
    pub body_limit: usize,

    /// Seconds to let in-flight requests and workers finish after SIGTERM/SIGINT before they
    /// are cut off.
    #[arg(
        long,
        env = "OIH_SHUTDOWN_GRACE",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    pub shutdown_grace: u64,

    /// Browser origins allowed to call the API (comma-separated; `*` for any), as OIH's
    /// ORIGINWHITELIST. Default: none, so browsers may only call from the hub's own origin.
    #[arg(
        long,
        env = "ORIGINWHITELIST",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,

    /// Production mode: refuse insecure defaults instead of generating them (e.g. the Secret
    /// Service's master key must be given).
    #[arg(long, env = "OIH_PRODUCTION")]
    pub production: bool,

    /// Key that signs step tokens and OIH's `orchestratorToken` (at least 32 characters; the
    /// same on every process of a split deployment). Unset: generated into the data directory
    /// (`orchestrator-token.key`), refused with --production. OIH defaulted to `foo`.
    #[arg(
        long,
        env = "ORCHESTRATOR_TOKEN_SECRET",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub orchestrator_token_secret: Option<String>,

    /// Seconds a step token stays valid: how long a message may wait in a step's queue and
    /// still reach its secret.
    #[arg(
        long,
        env = "STEP_TOKEN_LIFETIME_SECS",
        value_name = "SECONDS",
        default_value_t = 86_400
    )]
    pub step_token_lifetime_secs: u64,

    #[command(flatten)]
    pub services_config: ServiceConfigs,
}

impl ServeArgs {
    /// `--listen`, else `0.0.0.0:$PORT`, else the default.
    pub fn listen_addr(&self) -> String {
        match (&self.listen, self.port) {
            (Some(listen), _) => listen.clone(),
            (None, Some(port)) => format!("0.0.0.0:{port}"),
            (None, None) => DEFAULT_LISTEN.to_owned(),
        }
    }

    pub fn amqp(&self) -> Option<&str> {
        self.amqp_url.as_deref().or(self.rabbitmq_uri.as_deref())
    }

    /// The selected services in registry order, without duplicates.
    pub fn services(&self) -> Vec<Service> {
        Service::ALL
            .into_iter()
            .filter(|s| self.only.is_empty() || self.only.contains(s))
            .collect()
    }
}

/// `1048576`, `512kb`, `10mb`, `1gb` (1024-based, case-insensitive, as body-parser's `bytes`).
pub fn parse_size(raw: &str) -> Result<usize, String> {
    let s = raw.trim().to_ascii_lowercase();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a size (e.g. 1048576, 512kb, 10mb)"))?;
    let factor: usize = match unit.trim() {
        "" | "b" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use b, kb, mb or gb)")),
    };
    n.checked_mul(factor)
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| format!("{raw:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let cli = Cli::try_parse_from(["oih", "serve"].iter().chain(args))?;
        match cli.command {
            Command::Serve(args) => Ok(*args),
            other => panic!("parsed as another command: {other:?}"),
        }
    }

    #[test]
    fn the_issues_secret_command_names_parse() {
        for args in [
            ["oih", "secret", "rotate-key"],
            ["oih", "secret", "import-oih"],
            ["oih", "secrets", "rewrap"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parse");
            assert!(
                matches!(cli.command, Command::Secrets(_)),
                "{args:?}: {:?}",
                cli.command
            );
        }
        assert!(Cli::try_parse_from(["oih", "secret", "rotate"]).is_err());
    }

    /// Every flag `serve` shows in its help can also be set by an environment variable (how
    /// OIH's services, and containers, are configured). Hidden flags are aliases of shown
    /// ones; help and version are clap's own.
    #[test]
    fn every_serve_flag_has_an_env_var() {
        use clap::{ArgAction, CommandFactory};
        let mut cli = Cli::command();
        cli.build();
        let serve = cli.find_subcommand("serve").expect("a serve command");
        let mut checked = 0;
        let mut missing = Vec::new();
        for arg in serve.get_arguments() {
            if arg.is_hide_set()
                || matches!(
                    arg.get_action(),
                    ArgAction::Help
                        | ArgAction::HelpShort
                        | ArgAction::HelpLong
                        | ArgAction::Version
                )
            {
                continue;
            }
            checked += 1;
            if arg.get_env().is_none() {
                missing.push(arg.get_long().unwrap_or(arg.get_id().as_str()).to_owned());
            }
        }
        assert!(
            checked > 20,
            "only {checked} flags seen: global and flattened ones count"
        );
        assert!(missing.is_empty(), "flags without an env var: {missing:?}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10mb"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("512KB"), Ok(512 * 1024));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert!(parse_size("0").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5tb").is_err());
    }

    #[test]
    fn only_is_validated_and_ordered() {
        let args = serve(&["--only", "secret-service,flow-repository"]).expect("parse");
        assert_eq!(
            args.services(),
            vec![Service::FlowRepository, Service::SecretService]
        );
        assert!(serve(&["--only", "flows"]).is_err());
        assert_eq!(serve(&[]).expect("parse").services().len(), 11);
    }

    #[test]
    fn listen_precedence() {
        let mut args = serve(&[]).expect("parse");
        args.port = None;
        args.listen = None;
        assert_eq!(args.listen_addr(), "127.0.0.1:3000");
        args.port = Some(3001);
        assert_eq!(args.listen_addr(), "0.0.0.0:3001");
        args.listen = Some("[::1]:4000".into());
        assert_eq!(args.listen_addr(), "[::1]:4000");
    }
}
