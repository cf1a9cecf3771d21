//! OIH's audit-log (`services/audit-log`): audit entries recorded from the event bus and pushed
//! with `POST /logs`, read with `GET /logs` (OIH's paths, permissions and envelopes). Beyond
//! OIH: entries are hash-chained per tenant and `GET /logs/verify` recomputes the chains;
//! retention keeps each chain within an age and size limit (a default, and per-tenant
//! overrides an admin sets with `/logs/retention`); GDPR anonymisation keeps chains verifiable.
//!
//! - [`model`]: the entry, the rules for pushed entries, the client view;
//! - [`chain`]: the hashing scheme (pure);
//! - [`store`]: the `audit_logs` / `audit_chains` collections, serialised appends, GDPR;
//! - [`verify`]: chain verification; [`retention`]: per-tenant limits, pruning with
//!   checkpoints;
//! - [`events`]: the ingest worker; [`http`]: the router.

pub mod chain;
pub mod events;
pub mod http;
pub mod model;
pub mod retention;
pub mod store;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use oih_bus::{EventBus, MessageBus};
use oih_http::{ErrorShape, ServiceModule, Worker};
use oih_store::DocStore;

/// The service name: event-bus queue, `serviceName` header, module name.
pub const SERVICE_NAME: &str = "audit-log";

fn default_topics() -> Vec<String> {
    events::DEFAULT_TOPICS
        .iter()
        .map(|t| (*t).to_owned())
        .collect()
}

/// Configuration, with OIH's environment variable names where it has them. The port, database
/// and queue URLs belong to `oih serve`.
#[derive(Debug, Clone, clap::Args)]
// Each service's settings are one clap group in `oih serve`; the id must be unique there.
#[group(id = "audit-log")]
pub struct Config {
    /// Permission needed to read entries and verify chains.
    #[arg(long, env = "LOG_READ_PERMISSION", default_value = "logs.read")]
    pub log_read_permission: String,
    /// Permission needed to push entries with `POST /logs`.
    #[arg(long, env = "LOG_PUSH_PERMISSION", default_value = "logs.push")]
    pub log_push_permission: String,
    /// Event-name patterns (RabbitMQ topic syntax, comma-separated) the audit queue is bound to.
    #[arg(long, env = "AUDIT_EVENT_TOPICS", value_delimiter = ',', default_values_t = default_topics())]
    pub audit_event_topics: Vec<String>,
    /// How many events the ingest worker takes from the bus before acknowledging.
    #[arg(long, env = "AUDIT_EVENT_PREFETCH", default_value_t = 50)]
    pub audit_event_prefetch: u16,
    /// Entries recorded longer ago than this many seconds are pruned (unset: kept forever). The
    /// default: `PUT /logs/retention/{tenantId}` overrides it per tenant.
    #[arg(long, env = "AUDIT_RETENTION_MAX_AGE_SECS")]
    pub audit_retention_max_age_secs: Option<u64>,
    /// Each tenant's chain keeps at most this many entries (unset: unlimited). The default:
    /// `PUT /logs/retention/{tenantId}` overrides it per tenant.
    #[arg(long, env = "AUDIT_RETENTION_MAX_ENTRIES")]
    pub audit_retention_max_entries: Option<u64>,
    /// Seconds between two retention rounds.
    #[arg(long, env = "AUDIT_RETENTION_INTERVAL_SECS", default_value_t = 3600)]
    pub audit_retention_interval_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            log_read_permission: "logs.read".into(),
            log_push_permission: "logs.push".into(),
            audit_event_topics: default_topics(),
            audit_event_prefetch: 50,
            audit_retention_max_age_secs: None,
            audit_retention_max_entries: None,
            audit_retention_interval_secs: 3600,
        }
    }
}

impl Config {
    pub fn retention(&self) -> retention::Policy {
        retention::Policy {
            max_age: self.audit_retention_max_age_secs.map(Duration::from_secs),
            max_entries: self.audit_retention_max_entries,
        }
    }
}

/// Shared infrastructure the service runs on.
#[derive(Clone)]
pub struct Deps {
    /// Document store; the service owns the `audit_*` collections.
    pub docs: Arc<dyn DocStore>,
    /// Message bus carrying OIH's `event-bus` exchange.
    pub bus: Arc<dyn MessageBus>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("audit-log storage: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("audit-log event bus: {0}")]
    Bus(#[from] oih_bus::BusError),
}

/// Builds the service: declares its collections and binds its queue (events published from
/// now on are kept even before the worker runs), and returns its routes, the ingest worker
/// and the retention worker (it runs even without a default limit, since an admin can set a
/// tenant's limit at any time).
pub async fn module(config: Config, deps: Deps) -> Result<ServiceModule, Error> {
    let logs = store::LogStore::open(deps.docs).await?;
    let bus = EventBus::new(deps.bus, SERVICE_NAME).await?;
    let topics: Vec<&str> = config
        .audit_event_topics
        .iter()
        .map(String::as_str)
        .collect();
    let stream = bus
        .subscribe(&topics, config.audit_event_prefetch.max(1))
        .await?;
    let ingest = events::Ingest::new(logs.clone());
    let interval = Duration::from_secs(config.audit_retention_interval_secs.max(1));
    let pruner = retention::Pruner::new(logs.clone(), config.retention());
    let router = http::router(http::AppState::new(config, logs));
    Ok(ServiceModule::new(SERVICE_NAME, ErrorShape::Errors, router)
        .with_openapi(http::openapi())
        .with_worker(Worker::new("audit-log-ingest", move |cancel| async move {
            stream.consume_with(ingest, cancel).await;
            Ok(())
        }))
        .with_worker(Worker::new(
            "audit-log-retention",
            move |cancel| async move {
                pruner.run(interval, cancel).await;
                Ok(())
            },
        )))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn command_line_defaults_match_default() {
        let parsed = Cli::try_parse_from(["oih"]).expect("parse").config;
        let default = Config::default();
        assert_eq!(parsed.log_read_permission, default.log_read_permission);
        assert_eq!(parsed.log_push_permission, default.log_push_permission);
        assert_eq!(parsed.audit_event_topics, default.audit_event_topics);
        assert_eq!(parsed.audit_event_prefetch, default.audit_event_prefetch);
        assert_eq!(parsed.retention(), default.retention());
        let custom = Cli::try_parse_from([
            "oih",
            "--audit-event-topics",
            "iam.#,x.y",
            "--audit-retention-max-entries",
            "5",
        ])
        .expect("parse")
        .config;
        assert_eq!(custom.audit_event_topics, ["iam.#", "x.y"]);
        assert_eq!(custom.retention().max_entries, Some(5));
    }
}
