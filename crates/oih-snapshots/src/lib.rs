//! OIH's snapshots-service (`services/snapshots-service`): the state steps keep between messages.
//! Steps publish snapshots to the `component-events-collector` exchange; this service consumes
//! them from OIH's `flow-snapshots` queue, keeps one per (flow, step, execution) and serves them
//! at OIH's `/snapshots` paths. Beyond OIH: reads are limited to the flow's starter, its tenant
//! admins and admins; execution-scoped snapshots are purged when the execution finishes
//! (`flow.execution.finished`, or the orchestrator's direct call when it runs in the same
//! process: [`Finished`]) and all of a flow's when it is deleted (`flowrepo.flow.deleted`).
//!
//! - [`model`]: a snapshot message, its scope and the client view;
//! - [`store`]: the `snapshots_*` collections;
//! - [`ingest`]: the `flow-snapshots` topology and its consumer;
//! - [`events`]: the purge worker on the event bus; [`http`]: the router.

pub mod events;
pub mod http;
pub mod ingest;
pub mod model;
pub mod store;

use std::sync::Arc;

use oih_bus::{EventBus, MessageBus};
use oih_http::{ErrorShape, ServiceModule, Worker};
use oih_store::DocStore;

/// The service name: event-bus queue, `serviceName` header, module name (OIH's `NAME`).
pub const SERVICE_NAME: &str = "snapshots-service";

/// Configuration, with OIH's environment variable names where it has them. The port, database
/// and queue URLs belong to `oih serve`.
#[derive(Debug, Clone, clap::Args)]
// Each service's settings are one clap group in `oih serve`; the id must be unique there.
#[group(id = "snapshots")]
pub struct Config {
    /// How many snapshot messages the consumer of `flow-snapshots` takes before acknowledging
    /// (OIH leaves it unlimited when unset).
    #[arg(long, env = "PREFETCH_COUNT", default_value_t = 20)]
    pub snapshots_prefetch: u16,
    /// How many purge events (`flow.execution.finished`, `flowrepo.flow.deleted`; only the
    /// latter beside the orchestrator) the service takes from the event bus before
    /// acknowledging.
    #[arg(long, env = "SNAPSHOTS_EVENT_PREFETCH", default_value_t = 10)]
    pub snapshots_event_prefetch: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            snapshots_prefetch: 20,
            snapshots_event_prefetch: 10,
        }
    }
}

/// Shared infrastructure the service runs on.
#[derive(Clone)]
pub struct Deps {
    /// Document store; the service owns the `snapshots_*` collections.
    pub docs: Arc<dyn DocStore>,
    /// Message bus carrying the collector exchange and OIH's `event-bus`.
    pub bus: Arc<dyn MessageBus>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("snapshots-service storage: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("snapshots-service message bus: {0}")]
    Bus(#[from] oih_bus::BusError),
}

/// Where the service learns that an execution finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// From `flow.execution.finished` on the event bus: the orchestrator runs elsewhere.
    FromEvents,
    /// From the orchestrator of this process, through [`ExecutionPurge`]: the service's queue
    /// is not bound to `flow.execution.finished`, so the event (published all the same, for
    /// other observers) costs no queue write per execution.
    BesideOrchestrator,
}

/// Purges a finished execution's snapshots, for the orchestrator of the same process.
#[derive(Clone)]
pub struct ExecutionPurge {
    store: store::SnapshotStore,
}

impl ExecutionPurge {
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self, Error> {
        Ok(Self {
            store: store::SnapshotStore::open(docs).await?,
        })
    }

    /// Deletes the snapshots of execution `flow_exec_id` (and those that arrive late); how
    /// many there were.
    pub async fn purge(&self, flow_exec_id: &str) -> Result<u64, Error> {
        Ok(self.store.purge_execution(flow_exec_id).await?)
    }
}

/// Builds the service: declares its collections, its queue on the collector exchange and its
/// event-bus queue (snapshots and events published from now on are kept even before the
/// workers run), and returns its routes, the ingest worker and the purge worker.
pub async fn module(
    config: Config,
    deps: Deps,
    finished: Finished,
) -> Result<ServiceModule, Error> {
    let store = store::SnapshotStore::open(deps.docs).await?;
    let snapshots = ingest::consume(deps.bus.as_ref(), config.snapshots_prefetch.max(1)).await?;
    let event_bus = EventBus::new(deps.bus, SERVICE_NAME).await?;
    let topics = match finished {
        Finished::FromEvents => events::TOPICS,
        Finished::BesideOrchestrator => events::TOPICS_BESIDE_ORCHESTRATOR,
    };
    let events = event_bus
        .subscribe(topics, config.snapshots_event_prefetch.max(1))
        .await?;
    if finished == Finished::BesideOrchestrator {
        // A binding from a start with the orchestrator elsewhere outlives it.
        event_bus.unsubscribe(&[events::EXECUTION_FINISHED]).await?;
    }
    let ingest = ingest::Ingest::new(store.clone());
    let purge = events::Purge::new(store.clone());
    let router = http::router(http::AppState::new(store));
    Ok(
        ServiceModule::new(SERVICE_NAME, ErrorShape::ErrorsNoCode, router)
            .with_openapi(http::openapi())
            .with_worker(Worker::new("snapshots-ingest", move |cancel| async move {
                ingest.run(snapshots, cancel).await;
                Ok(())
            }))
            .with_worker(Worker::new("snapshots-purge", move |cancel| async move {
                events.consume_with(purge, cancel).await;
                Ok(())
            })),
    )
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
        assert_eq!(parsed.snapshots_prefetch, default.snapshots_prefetch);
        assert_eq!(
            parsed.snapshots_event_prefetch,
            default.snapshots_event_prefetch
        );
        let custom = Cli::try_parse_from(["oih", "--snapshots-prefetch", "3"])
            .expect("parse")
            .config;
        assert_eq!(custom.snapshots_prefetch, 3);
    }

    #[test]
    fn openapi_lists_oih_paths() {
        let doc = crate::http::openapi();
        for path in [
            "/snapshots",
            "/snapshots/flows/{flowId}/steps",
            "/snapshots/flows/{flowId}/steps/{stepId}",
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path}");
        }
    }
}
