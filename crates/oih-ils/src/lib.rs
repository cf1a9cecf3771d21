//! OIH's integration-layer-service (`services/ils`): chunks of data shared by cooperating
//! flows on one "integration layer adapter" channel (`ilaId`), merged by a common id and
//! validated against a JSON schema, living one hour after their last write.
//!
//! - [`model`]: the chunk document, OIH's input rules and messages;
//! - [`schema`]: where schemas come from ([`SchemaSource`], [`HttpSchemaSource`]) and the
//!   short-lived cache of compiled validators;
//! - [`store`]: the `ils_chunks` collection, tenant scoping and race-free create-or-merge;
//! - [`http`]: the router and handlers.

pub mod http;
pub mod model;
pub mod schema;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use oih_http::{ErrorShape, ServiceModule};
use oih_store::DocStore;

pub use schema::{Caller, HttpSchemaSource, SchemaError, SchemaSource};

/// The service name: module name in `oih serve`.
pub const SERVICE_NAME: &str = "integration-layer-service";

/// Configuration. OIH has no settings for these (its repository host and the one-hour
/// lifetime are hard-coded); the port and database belong to `oih serve`.
#[derive(Debug, Clone, clap::Args)]
// Each service's settings are one clap group in `oih serve`; the id must be unique there.
#[group(id = "integration-layer-service")]
pub struct Config {
    /// Seconds a chunk lives after its last write (OIH: 3600, fixed).
    #[arg(long, env = "ILS_CHUNK_TTL", default_value_t = 3600)]
    pub ils_chunk_ttl: u64,
    /// Base URL of the meta-data repository, for [`HttpSchemaSource`] (OIH hard-coded
    /// `http://metadata.openintegrationhub.com`). Unused when `oih serve` hands the service an
    /// in-process schema source.
    #[arg(
        long,
        env = "METADATA_REPOSITORY_URL",
        default_value = "http://127.0.0.1:3000"
    )]
    pub ils_metadata_repository_url: String,
    /// Seconds to wait for the meta-data repository.
    #[arg(long, env = "ILS_METADATA_TIMEOUT", default_value_t = 10)]
    pub ils_metadata_timeout: u64,
    /// Seconds a compiled repository schema is reused before it is fetched again.
    #[arg(long, env = "ILS_SCHEMA_CACHE_TTL", default_value_t = 60)]
    pub ils_schema_cache_ttl: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ils_chunk_ttl: 3600,
            ils_metadata_repository_url: "http://127.0.0.1:3000".into(),
            ils_metadata_timeout: 10,
            ils_schema_cache_ttl: 60,
        }
    }
}

impl Config {
    /// The repository over HTTP, as configured.
    pub fn http_schema_source(&self) -> Result<HttpSchemaSource, SchemaError> {
        HttpSchemaSource::new(
            &self.ils_metadata_repository_url,
            Duration::from_secs(self.ils_metadata_timeout),
        )
    }
}

/// Shared infrastructure the service runs on. ILS publishes and consumes no events, so it
/// needs no bus.
#[derive(Clone)]
pub struct Deps {
    /// Document store; the service owns the `ils_chunks` collection.
    pub docs: Arc<dyn DocStore>,
    /// Where the schemas named by `def.domainId` + `def.schemaUri` come from:
    /// [`Config::http_schema_source`] in a split deployment, an in-process reader of the
    /// meta-data repository when everything runs in one process.
    pub schemas: Arc<dyn SchemaSource>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("integration-layer-service storage: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("integration-layer-service chunk lifetime {0} s is out of range")]
    Ttl(u64),
}

/// Builds the service: declares its collection and returns its routes. Expired chunks are
/// hidden by the store at once and removed by the app's periodic purge.
pub async fn module(config: Config, deps: Deps) -> Result<ServiceModule, Error> {
    let ttl = i64::try_from(config.ils_chunk_ttl)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .filter(|d| *d > chrono::Duration::zero())
        .ok_or(Error::Ttl(config.ils_chunk_ttl))?;
    let chunks = store::ChunkStore::open(deps.docs, ttl).await?;
    let validators = schema::Validators::new(Duration::from_secs(config.ils_schema_cache_ttl));
    let router = http::router(http::AppState::new(chunks, deps.schemas, validators));
    Ok(ServiceModule::new(SERVICE_NAME, ErrorShape::Errors, router).with_openapi(http::openapi()))
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
        assert_eq!(parsed.ils_chunk_ttl, default.ils_chunk_ttl);
        assert_eq!(
            parsed.ils_metadata_repository_url,
            default.ils_metadata_repository_url
        );
        assert_eq!(parsed.ils_metadata_timeout, default.ils_metadata_timeout);
        assert_eq!(parsed.ils_schema_cache_ttl, default.ils_schema_cache_ttl);
        let custom = Cli::try_parse_from(["oih", "--ils-chunk-ttl", "60"])
            .expect("parse")
            .config;
        assert_eq!(custom.ils_chunk_ttl, 60);
    }

    #[test]
    fn openapi_lists_the_four_routes() {
        let doc = crate::http::openapi();
        for path in [
            "/chunks",
            "/chunks/validate",
            "/chunks/split",
            "/chunks/{ilaId}",
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path}");
        }
    }
}
