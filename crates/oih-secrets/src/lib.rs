//! OIH's secret-service ("Lynx"): credentials that flows use, with their owners, at OIH's
//! paths under `/api/v1` (data-services.md §3): `/secrets`, `/auth-clients` with the OAuth2
//! code flow and the OAuth 1.0a flows (`start-flow`, `/callback`), and token refresh on read
//! and ahead of expiry.
//!
//! Values are encrypted at rest with AES-256-GCM under a data key per tenant, each wrapped by
//! one master key (`keys.rs`, `crypto.rs`). Unlike OIH, whose default key was random at every
//! start (so secrets became unreadable after a restart), the embedded default generates a key
//! once into the data directory and keeps using it, and `--production` refuses to start
//! without a configured one.

mod admin;
mod client_http;
mod client_model;
pub mod crypto;
mod events;
mod flows;
mod hmac;
mod http;
pub mod keys;
mod mask;
mod model;
mod oauth;
mod oauth1;
mod openapi;
mod refresh;
mod sealing;
mod service;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use oih_bus::{EventBus, MessageBus};
use oih_http::{ErrorShape, ServiceModule};
use oih_store::DocStore;

pub use admin::{
    ImportReport, ReencryptReport, import_oih, import_oih_auth_clients, reencrypt_all,
};
pub use events::{
    OWNER_ADDED, OWNER_REMOVED, SECRET_CREATED, SECRET_DELETED, TENANT_DELETED, TOKEN_GET,
    USER_DELETED,
};
pub use hmac::WebhookHmac;
pub use keys::{KeyError, KeyRing, MASTER_KEY_FILE_NAME, MasterKey, MasterKeySource};
pub use mask::mask_string;
pub use model::{SENSITIVE_FIELDS, SecretType};

/// The service's name: its queue on the event bus and `serviceName` on its events.
pub const SERVICE_NAME: &str = "secret-service";

/// secret-service settings. `data_dir` and `production` are not flags of their own: the
/// binary fills them from `serve`'s `--data-dir` and `--production`.
#[derive(Clone, clap::Args)]
// Each service's settings are one clap group in `oih serve`; the id must be unique there.
#[group(id = "secret-service")]
pub struct Config {
    /// Master key that wraps the per-tenant data keys (any string; at least 16 random
    /// characters). Changing it makes stored secrets unreadable unless the old one is given
    /// as --previous-master-key for one start.
    #[arg(
        long,
        env = "OIH_MASTER_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub master_key: Option<String>,

    /// OIH's CRYPTO_KEY, used as the master key when OIH_MASTER_KEY is not set.
    #[arg(
        long = "crypto-key",
        env = "CRYPTO_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub crypto_key: Option<String>,

    /// File holding the master key (read when no key is given directly; keep it mode 0600).
    #[arg(long, env = "OIH_MASTER_KEY_FILE", value_name = "PATH")]
    pub master_key_file: Option<PathBuf>,

    /// The master key being rotated out: data keys still wrapped by it are re-wrapped with
    /// the current master key at start-up (no secret is re-encrypted).
    #[arg(
        long,
        env = "OIH_PREVIOUS_MASTER_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub previous_master_key: Option<String>,

    /// Default page size of `GET /secrets` (OIH's PAGINATION_PAGE_SIZE).
    #[arg(
        long = "secrets-page-size",
        env = "PAGINATION_PAGE_SIZE",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub page_size: u64,

    /// How long a started OAuth flow waits for its callback: seconds, or a number with
    /// s, m or h (OIH's TTL_AUTHFLOW).
    #[arg(
        long = "secrets-auth-flow-ttl",
        env = "TTL_AUTHFLOW",
        default_value = "10m",
        value_parser = parse_duration
    )]
    pub auth_flow_ttl: Duration,

    /// Milliseconds a token-refresh lock counts as held (OIH's REFRESH_TIMEOUT). The provider
    /// call is cut off after half of it.
    #[arg(
        long = "secrets-refresh-timeout",
        env = "REFRESH_TIMEOUT",
        default_value_t = 10_000
    )]
    pub refresh_timeout_ms: u64,

    /// Milliseconds before expiry at which a token is refreshed (OIH's EXPIRATION_OFFSET).
    #[arg(
        long = "secrets-expiration-offset",
        env = "EXPIRATION_OFFSET",
        default_value_t = 900_000
    )]
    pub expiration_offset_ms: u64,

    /// How often tokens about to expire are refreshed ahead of any read: seconds, or a
    /// number with s, m or h; 0 turns it off (OIH refreshed only on read).
    #[arg(
        long = "secrets-refresh-interval",
        env = "OIH_SECRETS_REFRESH_INTERVAL",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub refresh_interval: Duration,

    /// Where a master key is generated on first start when none is configured.
    #[arg(skip)]
    pub data_dir: PathBuf,

    /// Refuse to start without a configured master key.
    #[arg(skip)]
    pub production: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("master_key", &set(&self.master_key))
            .field("crypto_key", &set(&self.crypto_key))
            .field("master_key_file", &self.master_key_file)
            .field("previous_master_key", &set(&self.previous_master_key))
            .field("page_size", &self.page_size)
            .field("auth_flow_ttl", &self.auth_flow_ttl)
            .field("refresh_timeout_ms", &self.refresh_timeout_ms)
            .field("expiration_offset_ms", &self.expiration_offset_ms)
            .field("refresh_interval", &self.refresh_interval)
            .field("data_dir", &self.data_dir)
            .field("production", &self.production)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            master_key: None,
            crypto_key: None,
            master_key_file: None,
            previous_master_key: None,
            page_size: 30,
            auth_flow_ttl: Duration::from_secs(600),
            refresh_timeout_ms: 10_000,
            expiration_offset_ms: 900_000,
            refresh_interval: Duration::from_secs(60),
            data_dir: PathBuf::new(),
            production: false,
        }
    }
}

/// `600`, `600s`, `10m`, `1h`.
fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration (e.g. 600, 10m, 1h)"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        other => return Err(format!("unknown duration unit {other:?} (use s, m or h)")),
    };
    Ok(Duration::from_secs(n.saturating_mul(factor)))
}

impl Config {
    /// Where the master key comes from: OIH_MASTER_KEY, else CRYPTO_KEY, else the key file,
    /// else (not in production) a key generated into the data directory.
    pub fn master_key_source(&self) -> MasterKeySource {
        MasterKeySource {
            secret: self.master_key.clone().or_else(|| self.crypto_key.clone()),
            file: self.master_key_file.clone(),
            data_dir: self.data_dir.clone(),
            production: self.production,
        }
    }
}

/// What the service needs from `serve`.
#[derive(Clone)]
pub struct Deps {
    pub docs: Arc<dyn DocStore>,
    pub bus: Arc<dyn MessageBus>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] oih_store::StoreError),
    #[error(transparent)]
    Bus(#[from] oih_bus::BusError),
    #[error(transparent)]
    Secrets(#[from] store::SecretsError),
    #[error("import: {0}")]
    Import(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// Loads the master key and opens the key ring, re-wrapping the data keys of the previous
/// master key; also returns how many were re-wrapped.
async fn open_keys_counting(
    config: &Config,
    docs: Arc<dyn DocStore>,
) -> Result<(Arc<KeyRing>, u64), Error> {
    let master = config.master_key_source().load()?;
    let previous = config
        .previous_master_key
        .as_deref()
        .map(MasterKey::from_secret)
        .transpose()?;
    let ring = KeyRing::open(docs, master, previous).await?;
    let rewrapped = ring.rewrap().await?;
    Ok((Arc::new(ring), rewrapped))
}

async fn open_keys(config: &Config, docs: Arc<dyn DocStore>) -> Result<Arc<KeyRing>, Error> {
    Ok(open_keys_counting(config, docs).await?.0)
}

/// Master-key rotation without starting the service: re-wraps every data key wrapped by
/// `previous_master_key` with the configured master key (no secret is re-encrypted); returns
/// how many. Fails if a data key is wrapped by neither key.
pub async fn rewrap_data_keys(config: &Config, docs: Arc<dyn DocStore>) -> Result<u64, Error> {
    Ok(open_keys_counting(config, docs).await?.1)
}

/// The secret-service module: routes under `/api/v1/secrets` (error shape `{message}`) and a
/// worker that applies IAM's user and tenant deletions, and one that refreshes tokens before
/// they expire.
pub async fn module(config: Config, deps: Deps) -> Result<ServiceModule, Error> {
    let keys = open_keys(&config, deps.docs.clone()).await?;
    tracing::info!(master_key_id = %keys.master_key_id(), "secret-service keys ready");
    let secrets = Arc::new(store::Secrets::open(deps.docs.clone(), keys.clone()).await?);
    let clients = Arc::new(store::Clients::open(deps.docs, keys).await?);
    let bus = EventBus::new(deps.bus, SERVICE_NAME).await?;
    flows::ensure_collection(clients.docs().as_ref()).await?;
    let refresh_timeout = Duration::from_millis(config.refresh_timeout_ms.max(1));
    let http = reqwest::Client::builder()
        .timeout(refresh_timeout)
        .build()
        .map_err(|e| Error::Http(e.to_string()))?;
    let service = service::Service {
        secrets,
        clients,
        events: events::Events::new(bus.clone()),
        page_size: config.page_size,
        settings: Arc::new(service::Settings {
            flow_ttl: chrono::Duration::from_std(config.auth_flow_ttl)
                .unwrap_or(chrono::Duration::MAX),
            refresh_timeout,
            expiration_offset: Duration::from_millis(config.expiration_offset_ms),
        }),
        http,
        refresh_gates: Arc::default(),
    };
    let stream = events::subscribe_iam_deletions(&bus).await?;
    let worker = events::iam_deletions(stream, service.clone());
    let mut module = ServiceModule::new(
        SERVICE_NAME,
        ErrorShape::Message,
        http::router(service.clone()),
    )
    .with_openapi(openapi::document())
    .with_worker(worker);
    if !config.refresh_interval.is_zero() {
        module = module.with_worker(refresh::proactive(service, config.refresh_interval));
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Ok(Cli::try_parse_from(std::iter::once("oih").chain(args.iter().copied()))?.config)
    }

    #[test]
    fn flags_and_defaults() {
        let config =
            parse(&["--crypto-key", "legacy", "--secrets-auth-flow-ttl", "2m"]).expect("parse");
        assert_eq!(config.master_key_source().secret.as_deref(), Some("legacy"));
        assert_eq!(config.auth_flow_ttl, Duration::from_secs(120));
        assert_eq!(config.page_size, 30);
        let both = parse(&["--master-key", "new", "--crypto-key", "legacy"]).expect("parse");
        assert_eq!(both.master_key_source().secret.as_deref(), Some("new"));
        assert!(parse(&["--secrets-page-size", "0"]).is_err());
        assert!(parse(&["--secrets-auth-flow-ttl", "10 parsecs"]).is_err());
    }

    #[test]
    fn debug_never_shows_keys() {
        let config = parse(&[
            "--master-key",
            "super-secret-master",
            "--previous-master-key",
            "old-secret",
        ])
        .expect("parse");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("super-secret") && !shown.contains("old-secret"),
            "{shown}"
        );
    }
}
