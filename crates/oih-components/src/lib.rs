//! OIH's Component Repository (`component-repository`, data-services.md §2): components
//! (`/components`), global component start/stop, enrichment from GitHub, virtual components
//! with versions and per-tenant configs (`/virtual-components`), and the catalogue of built-in
//! components.
//!
//! Events: publishes `component.starting` / `component.stopping`; consumes `iam.user.deleted`
//! (drop the owner), and `flow.starting`, `flow.stopped`, `flowrepo.flow.deleted` to know which
//! components active flows use, so such a component cannot be deleted.

mod access;
mod builtin;
mod config;
mod enrich;
mod events;
mod model;
mod restart;
mod routes;
mod store;

use std::sync::Arc;

use oih_bus::{BusError, EventBus, MessageBus};
use oih_http::{ErrorShape, ServiceModule};
use oih_store::{DocStore, StoreError};

pub use builtin::{BuiltinDescriptor, BuiltinFunction, builtin_id};
pub use config::{ByteSize, Config, ParseByteSizeError};

/// OIH's service name: the event-bus queue and `serviceName` of published events.
pub const SERVICE_NAME: &str = "component-repository";

/// How many events the consumer may hold unacknowledged.
const EVENT_PREFETCH: u16 = 16;

/// What the service needs from the process.
#[derive(Clone)]
pub struct Deps {
    /// Where the `components_*` collections live.
    pub docs: Arc<dyn DocStore>,
    /// Carries the event bus (published and consumed events).
    pub bus: Arc<dyn MessageBus>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("component repository storage: {0}")]
    Store(#[from] StoreError),
    #[error("component repository event bus: {0}")]
    Bus(#[from] BusError),
    #[error("component repository HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("built-in component {name:?} cannot be listed: {reason}")]
    InvalidBuiltin { name: String, reason: String },
}

/// Prepares the collections, installs the built-in catalogue, subscribes to the events it
/// consumes and returns the routes and workers.
pub async fn module(config: Config, deps: Deps) -> Result<ServiceModule, Error> {
    store::ensure_collections(deps.docs.as_ref()).await?;
    let repo = store::Repo { docs: deps.docs };
    let catalogue = builtin::install(&repo, &config.builtins).await?;
    let fetcher = enrich::Fetcher::new(&config.github_raw_url)?;
    let events = EventBus::new(deps.bus, SERVICE_NAME).await?;
    // Subscribing here, not in the worker, so the queue is bound before this returns and no
    // event published from now on is missed.
    let stream = events.subscribe(events::TOPICS, EVENT_PREFETCH).await?;
    let (restarts, restart_worker) = restart::worker(repo.clone(), events.clone());
    let state = routes::AppState::new(routes::Inner {
        repo: repo.clone(),
        events,
        config,
        catalogue,
        restarts,
        fetcher,
    });
    Ok(ServiceModule::new(
        SERVICE_NAME,
        ErrorShape::ErrorsNoCode,
        routes::router(state),
    )
    .with_openapi(routes::openapi())
    .with_worker(events::worker(repo, stream))
    .with_worker(restart_worker))
}

/// Reads components by id for a peer in the same process (the orchestrator resolving the
/// nodes of a flow it starts), without an HTTP round trip.
#[derive(Clone)]
pub struct ComponentReader(store::Repo);

impl ComponentReader {
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self, StoreError> {
        store::ensure_collections(docs.as_ref()).await?;
        Ok(Self(store::Repo { docs }))
    }

    /// The component as `GET /components/{id}` renders it; `None` when there is none.
    pub async fn component(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let found = self
            .0
            .get::<model::component::Component>(store::COMPONENTS, id)
            .await?;
        Ok(found.map(|c| serde_json::Value::Object(c.render("id"))))
    }
}
