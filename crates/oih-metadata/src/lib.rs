//! OIH's meta-data-repository (`services/meta-data-repository`): domains of JSON Schemas under
//! `/api/v1/domains`, with OIH's paths, bodies, messages and permissions.
//!
//! - [`model`]: the domain and schema documents and their JSON views;
//! - [`access`]: OIH's `hasReadAccess` / `domainOwnerOrAllowed` rules;
//! - [`store`]: the `metadata_domains` and `metadata_schemas` collections;
//! - [`processing`]: meta-schema validation, `$id` rewriting, `$ref` resolution from the store;
//! - [`archive`]: unpacking `.zip` / `.tgz` uploads (and directories) with size limits;
//! - [`write`]: creating, changing and importing schemas (one transaction each);
//! - [`validation`]: validation as a service with a cache of compiled validators;
//! - [`events`]: what the service publishes and the `iam.tenant.deleted` worker;
//! - [`http`]: the router and handlers.

pub mod access;
pub mod archive;
pub mod events;
pub mod http;
pub mod model;
pub mod processing;
mod reader;
pub mod store;
pub mod validation;
pub mod write;

use std::path::Path;
use std::sync::Arc;

use oih_bus::{EventBus, MessageBus};
use oih_http::{ErrorShape, ServiceModule, Worker};
use oih_store::DocStore;

pub use archive::Limits;
pub use reader::SchemaReader;
pub use write::{ImportReport, WriteError};

/// The service name: event-bus queue, `serviceName` header, module name.
pub const SERVICE_NAME: &str = "meta-data-repository";

/// OIH's `API_BASE`: the prefix of every route and of every schema `uri`.
pub const API_BASE: &str = "/api/v1";

/// Configuration, with OIH's environment variable names where OIH has one.
#[derive(Debug, Clone, clap::Args)]
// Each service's settings are one clap group in `oih serve`; the id must be unique there.
#[group(id = "meta-data-repository")]
pub struct Config {
    /// Public base URL of this service as clients reach it, used in every schema `$id` and
    /// rewritten `$ref` (`<BASE_URL>/api/v1/domains/<id>/schemas/<path>`). Unlike OIH there is
    /// no `URLS_WITH_PORT`: put the port into the URL when it is needed.
    #[arg(
        id = "metadata_base_url",
        long = "metadata-base-url",
        env = "BASE_URL",
        default_value = "http://localhost:3000"
    )]
    pub base_url: String,
    /// Largest archive accepted by `POST /domains/{id}/schemas/import`, in bytes.
    #[arg(long, env = "METADATA_IMPORT_MAX_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub metadata_import_max_bytes: u64,
    /// Largest total of unpacked bytes an import may produce (guards against zip bombs).
    #[arg(long, env = "METADATA_IMPORT_MAX_UNPACKED_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub metadata_import_max_unpacked_bytes: u64,
    /// Largest single schema file in an import, in bytes.
    #[arg(long, env = "METADATA_IMPORT_MAX_FILE_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub metadata_import_max_file_bytes: u64,
    /// Most entries (files and directories) an imported archive may hold.
    #[arg(long, env = "METADATA_IMPORT_MAX_ENTRIES", default_value_t = 2000)]
    pub metadata_import_max_entries: usize,
    /// How many events the consumer takes from the bus before acknowledging.
    #[arg(long, env = "METADATA_EVENT_PREFETCH", default_value_t = 10)]
    pub metadata_event_prefetch: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            base_url: "http://localhost:3000".into(),
            metadata_import_max_bytes: 8 * 1024 * 1024,
            metadata_import_max_unpacked_bytes: 64 * 1024 * 1024,
            metadata_import_max_file_bytes: 2 * 1024 * 1024,
            metadata_import_max_entries: 2000,
            metadata_event_prefetch: 10,
        }
    }
}

impl Config {
    /// The archive limits this configuration sets.
    pub fn limits(&self) -> Limits {
        Limits {
            max_archive_bytes: self.metadata_import_max_bytes,
            max_unpacked_bytes: self.metadata_import_max_unpacked_bytes,
            max_file_bytes: self.metadata_import_max_file_bytes,
            max_entries: self.metadata_import_max_entries,
        }
    }

    /// `BASE_URL` without a trailing slash.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}

/// Shared infrastructure the service runs on.
#[derive(Clone)]
pub struct Deps {
    /// Document store; the service owns the `metadata_*` collections.
    pub docs: Arc<dyn DocStore>,
    /// Message bus carrying OIH's `event-bus` exchange.
    pub bus: Arc<dyn MessageBus>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("meta-data-repository storage: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("meta-data-repository event bus: {0}")]
    Bus(#[from] oih_bus::BusError),
    #[error("meta-data-repository import: {0}")]
    Write(#[from] WriteError),
}

/// Builds the service: declares its collections and its event-bus queue, and returns its
/// routes and the `iam.tenant.deleted` worker.
pub async fn module(config: Config, deps: Deps) -> Result<ServiceModule, Error> {
    let store = store::MetaStore::open(deps.docs).await?;
    let bus = EventBus::new(deps.bus, SERVICE_NAME).await?;
    let publisher = events::Publisher::new(bus.clone());
    let stream = bus
        .subscribe(events::CONSUMED, config.metadata_event_prefetch.max(1))
        .await?;
    let consumer = events::Consumer::new(store.clone(), publisher.clone());
    let router = http::router(http::AppState::new(config, store, publisher));
    let worker = Worker::new("meta-data-repository-events", move |cancel| async move {
        stream.consume_with(consumer, cancel).await;
        Ok(())
    });
    Ok(
        ServiceModule::new(SERVICE_NAME, ErrorShape::Message, router)
            .with_openapi(http::openapi())
            .with_worker(worker),
    )
}

/// For `oih metadata import <dir|archive> --domain <name>`: imports every `*.json` file of a
/// directory, or of a `.zip` / `.tgz` / `.tar.gz` archive, into the domain named `domain`,
/// creating it (public, without owners or tenant: an operator's shared set) when no domain has
/// that name. All schemas are created in one transaction; no events are published (the CLI
/// runs without the bus).
pub async fn import_dir_or_archive(
    docs: Arc<dyn DocStore>,
    config: &Config,
    path: &Path,
    domain: &str,
) -> Result<ImportReport, Error> {
    let store = store::MetaStore::open(docs).await?;
    let files = archive::read_path(path, &config.limits()).map_err(WriteError::from)?;
    let domain = store.domain_by_name_or_create(domain).await?;
    let created = write::import_files(&store, config.base(), &domain, files, None).await?;
    Ok(ImportReport {
        domain_id: domain.id.clone(),
        schemas: created.into_iter().map(|s| s.uri).collect(),
    })
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
        assert_eq!(parsed.base_url, default.base_url);
        assert_eq!(parsed.limits(), default.limits());
        assert_eq!(
            parsed.metadata_event_prefetch,
            default.metadata_event_prefetch
        );
        let custom = Cli::try_parse_from(["oih", "--metadata-base-url", "http://x/"])
            .expect("parse")
            .config;
        assert_eq!(custom.base(), "http://x");
    }
}
