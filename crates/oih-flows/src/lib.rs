//! OIH's flow-repository (`services/flow-repository`): flows under `/flows` with OIH's paths,
//! bodies, messages and permissions; the start/stop lifecycle over the event bus; and, beyond
//! OIH, immutable graph versions (`/flows/{id}/versions`).
//!
//! - [`model`]: the flow document, OIH's validation rules and messages;
//! - [`store`]: the `flows_flows`, `flows_versions` and `flows_deleted` collections, ownership
//!   scoping;
//! - [`events`]: what the service publishes, and the worker that consumes `flow.started`,
//!   `flow.stopped`, `flow.failed` and `iam.user.deleted`;
//! - [`http`]: the router and handlers.

pub mod events;
pub mod http;
pub mod model;
pub mod store;

use std::sync::Arc;

use oih_bus::{EventBus, MessageBus};
use oih_http::{ErrorShape, ServiceModule, Worker};
use oih_store::DocStore;

/// The service name: event-bus queue, `serviceName` header, module name.
pub const SERVICE_NAME: &str = "flow-repository";

/// Configuration, with OIH's environment variable names. The port, database and queue URLs
/// belong to `oih serve`, not to this service.
#[derive(Debug, Clone, clap::Args)]
// Each service's settings are one clap group in `oih serve`; the id must be unique there.
#[group(id = "flow-repository")]
pub struct Config {
    /// Permission needed to list and read flows (and their versions).
    #[arg(long, env = "FLOW_READ_PERMISSION", default_value = "flows.read")]
    pub flow_read_permission: String,
    /// Permission needed to create, modify and delete flows.
    #[arg(long, env = "FLOW_WRITE_PERMISSION", default_value = "flows.write")]
    pub flow_write_permission: String,
    /// Permission needed to start and stop flows.
    #[arg(long, env = "FLOW_CONTROL_PERMISSION", default_value = "flows.control")]
    pub flow_control_permission: String,
    /// Permission needed for bulk create (`POST /flows` with an array) and `PATCH /flows/bulk`.
    #[arg(long, env = "FLOW_BULK_PERMISSION", default_value = "flows.bulk")]
    pub flow_bulk_permission: String,
    /// How many events the consumer takes from the bus before acknowledging.
    #[arg(long, env = "FLOW_EVENT_PREFETCH", default_value_t = 10)]
    pub flow_event_prefetch: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            flow_read_permission: "flows.read".into(),
            flow_write_permission: "flows.write".into(),
            flow_control_permission: "flows.control".into(),
            flow_bulk_permission: "flows.bulk".into(),
            flow_event_prefetch: 10,
        }
    }
}

/// Shared infrastructure the service runs on.
#[derive(Clone)]
pub struct Deps {
    /// Document store; the service owns the `flows_*` collections.
    pub docs: Arc<dyn DocStore>,
    /// Message bus carrying OIH's `event-bus` exchange.
    pub bus: Arc<dyn MessageBus>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("flow-repository storage: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("flow-repository event bus: {0}")]
    Bus(#[from] oih_bus::BusError),
}

/// Builds the service: declares its collections and its event-bus queue (so events published
/// from now on are kept even before the worker runs), and returns its routes and its event
/// worker. (Store and bus health are the app's own checks.)
pub async fn module(config: Config, deps: Deps) -> Result<ServiceModule, Error> {
    let flows = store::FlowStore::open(deps.docs).await?;
    let bus = EventBus::new(deps.bus, SERVICE_NAME).await?;
    let publisher = events::Publisher::new(bus.clone());
    let stream = bus
        .subscribe(events::CONSUMED, config.flow_event_prefetch.max(1))
        .await?;
    let consumer = events::Consumer::new(flows.clone(), publisher.clone());
    let router = http::router(http::AppState::new(config, flows, publisher));
    let worker = Worker::new("flow-repository-events", move |cancel| async move {
        stream.consume_with(consumer, cancel).await;
        Ok(())
    });
    Ok(ServiceModule::new(SERVICE_NAME, ErrorShape::Errors, router)
        .with_openapi(http::openapi())
        .with_worker(worker))
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
        assert_eq!(parsed.flow_read_permission, default.flow_read_permission);
        assert_eq!(parsed.flow_write_permission, default.flow_write_permission);
        assert_eq!(
            parsed.flow_control_permission,
            default.flow_control_permission
        );
        assert_eq!(parsed.flow_bulk_permission, default.flow_bulk_permission);
        assert_eq!(parsed.flow_event_prefetch, default.flow_event_prefetch);
        let custom = Cli::try_parse_from(["oih", "--flow-read-permission", "x.read"])
            .expect("parse")
            .config;
        assert_eq!(custom.flow_read_permission, "x.read");
    }
}
