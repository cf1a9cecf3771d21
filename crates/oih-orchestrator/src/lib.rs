//! OIH's component-orchestrator (`services/component-orchestrator`), first slice: flows of
//! builtin components are deployed on `flow.starting` (OIH's AMQP topology, one in-process
//! runner per node), executed on `flow.execute` with every hop through the orchestrator's
//! backchannel, torn down on `flow.stopping`, and their executions served under `/executions`.
//!
//! - [`resolve`]: which component a node runs ([`ComponentResolver`], [`BuiltinIdResolver`]);
//! - [`model`]: the flow and its graph;
//! - [`topology`]: exchange, queue and routing-key names and declarations;
//! - [`driver`]: the [`Driver`] seam, the builtin driver (step runners) and [`Drivers`];
//! - [`process`]: the driver running `process` components (Ferryman) as child processes;
//! - [`lifecycle`]: start/stop; [`dataflow`]: executions along the graph edges;
//! - [`executions`]: the execution records; [`events`]: the workers; [`http`]: the API.

pub mod dataflow;
pub mod deployed;
pub mod driver;
pub mod events;
pub mod executions;
pub mod http;
mod inline;
pub mod lifecycle;
pub mod model;
pub mod process;
pub mod resolve;
pub mod testing;
pub mod token;
pub mod topology;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use oih_bus::{ConsumeOptions, EventBus, MessageBus};
use oih_http::step_token::StepTokens;
use oih_http::{ErrorShape, ServiceModule, Worker};
use oih_store::DocStore;
use tokio_util::sync::CancellationToken;

pub use driver::{BuiltinDriver, Driver, Drivers, Runner};
pub use process::{ProcessConfig, ProcessDriver};
pub use resolve::{
    BuiltinIdResolver, ComponentDocuments, ComponentResolver, Distribution, RepositoryResolver,
    ResolvedComponent,
};

use crate::dataflow::Dataflow;
use crate::deployed::Deployed;
use crate::executions::ExecutionStore;
use crate::lifecycle::{Lifecycle, Registry};
use crate::topology::BACKCHANNEL_MESSAGES;

/// The service name: event-bus queue, `serviceName` header, module name.
pub const SERVICE_NAME: &str = "component-orchestrator";

/// Configuration. Database, queue URLs and port belong to `oih serve`; OIH's Kubernetes,
/// RabbitMQ-management and token settings belong to drivers not built yet.
/// A node's `nodeSettings.prefetch` overrides the prefetch of its driver.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "component-orchestrator")]
pub struct Config {
    /// How many messages one process (Ferryman) step takes at once: OIH's per-container
    /// `ELASTICIO_RABBITMQ_PREFETCH_SAILOR`. Ferryman keeps per-message state on its
    /// instance, so keep 1 unless the component is known to cope.
    #[arg(
        long = "orchestrator-component-prefetch",
        env = "COMPONENT_PREFETCH_COUNT",
        default_value_t = 1
    )]
    pub component_prefetch: u16,
    /// How many messages one builtin step processes at once. With more than one, a step's
    /// outputs may leave in another order than its inputs came (set a node's
    /// `nodeSettings.prefetch` to 1 where order matters).
    #[arg(
        long = "orchestrator-builtin-prefetch",
        env = "BUILTIN_PREFETCH_COUNT",
        default_value_t = 32
    )]
    pub builtin_prefetch: u16,
    /// Run builtin steps without effects beyond their messages (`jsonata`, `filter`,
    /// `router`, `splitter`, `webhook-reply`, triggers…) in place, without a queue between
    /// them: an execution of such steps costs one record write instead of a write and two
    /// bus hops per step. Off: every step's input and output goes through the bus, where
    /// tools bound to the flow's exchange or the backchannel can see them.
    #[arg(
        long = "orchestrator-inline-steps",
        env = "ORCHESTRATOR_INLINE_STEPS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub inline_steps: bool,
    /// Seconds one builtin step may work on one message; past it the message fails (an
    /// error on the execution, the message dead-lettered).
    #[arg(
        long = "orchestrator-step-timeout-secs",
        env = "STEP_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub step_timeout_secs: u64,
    /// How many control-plane events the orchestrator takes from the bus before acknowledging;
    /// also how many `flow.execute` events it handles at once.
    #[arg(
        long = "orchestrator-event-prefetch",
        env = "ORCHESTRATOR_EVENT_PREFETCH",
        default_value_t = 64
    )]
    pub event_prefetch: u16,
    /// How many backchannel messages are handed to the orchestrator ahead of processing.
    #[arg(
        long = "orchestrator-backchannel-prefetch",
        env = "ORCHESTRATOR_BACKCHANNEL_PREFETCH",
        default_value_t = 256
    )]
    pub backchannel_prefetch: u16,
    /// How many executions' backchannel messages are handled at once (each execution's own
    /// messages are always handled one at a time, in order).
    #[arg(
        long = "orchestrator-backchannel-lanes",
        env = "ORCHESTRATOR_BACKCHANNEL_LANES",
        default_value_t = 32
    )]
    pub backchannel_lanes: u16,
    /// Largest step input or output (serialised `data`, in bytes) kept on an execution for
    /// users to see; larger ones are noted by size. 0 keeps none.
    #[arg(
        long = "orchestrator-capture-bytes",
        env = "ORCHESTRATOR_CAPTURE_BYTES",
        default_value_t = 16_384
    )]
    pub capture_bytes: usize,
    /// Seconds an execution record is kept after it started (0: for ever).
    #[arg(
        long = "orchestrator-execution-retention-secs",
        env = "EXECUTION_RETENTION_SECS",
        default_value_t = 604_800
    )]
    pub execution_retention_secs: u64,
    #[command(flatten)]
    pub process: ProcessConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            component_prefetch: 1,
            builtin_prefetch: 32,
            inline_steps: true,
            step_timeout_secs: 300,
            event_prefetch: 64,
            backchannel_prefetch: 256,
            backchannel_lanes: 32,
            capture_bytes: 16_384,
            execution_retention_secs: 604_800,
            process: ProcessConfig::default(),
        }
    }
}

/// Shared infrastructure the service runs on.
#[derive(Clone)]
pub struct Deps {
    /// Document store; the service owns the `orchestrator_*` collections.
    pub docs: Arc<dyn DocStore>,
    /// Message bus carrying `event-bus` and the data plane.
    pub bus: Arc<dyn MessageBus>,
    /// Looks up nodes' components: [`RepositoryResolver`] when the Component Repository's
    /// documents can be read, else [`BuiltinIdResolver`].
    pub components: Arc<dyn ComponentResolver>,
    /// The HTTP client builtin steps (e.g. `http-request`) use.
    pub http: reqwest::Client,
    /// Signs step inputs' `orchestratorToken` and the step tokens in it; the hub's
    /// authenticator checks those with the same key.
    pub step_tokens: Arc<StepTokens>,
    /// The snapshots service of this process, if it runs here: told of each finished
    /// execution that may have snapshots. Without it, it learns from `flow.execution.finished`.
    pub snapshots: Option<Arc<dyn FinishedExecutions>>,
}

/// A snapshots service in the same process, purging a finished execution's snapshots.
#[async_trait::async_trait]
pub trait FinishedExecutions: Send + Sync {
    async fn purge(&self, flow_exec_id: &str) -> Result<(), String>;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("component-orchestrator storage: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("component-orchestrator bus: {0}")]
    Bus(#[from] oih_bus::BusError),
}

/// The built service, and its door for the webhooks of the same process.
pub struct Orchestrator {
    pub module: ServiceModule,
    pub in_process: InProcess,
}

/// Starts executions in this process, for webhook callers waiting on a reply when the
/// webhooks run beside the orchestrator: the execution's first steps run in place without
/// `flow.execute` crossing the bus, and their reply comes back without it too.
///
/// Nothing the caller is answered is lost: the answer is handed over only after the
/// execution record and any queued step input are stored. A crash before that leaves the
/// caller without an answer, so it retries, as with any HTTP request that got none.
#[derive(Clone)]
pub struct InProcess {
    dataflow: Dataflow,
}

/// What [`InProcess::execute`] did with a message.
#[derive(Debug)]
pub enum Local {
    /// It ran the execution as far as its steps run in place: what they sent the caller's
    /// `reply_to`, as `(routing key, message)`.
    Ran(Vec<dataflow::ToCaller>),
    /// This process does not run the flow: the message, untouched, to be published as
    /// `flow.execute` for the one that does.
    NotHere(serde_json::Value),
}

impl InProcess {
    /// Runs an execution of flow `flow_id` with `msg` (`flow.execute`'s `msg`) for a caller
    /// waiting at `reply_to`. The message is handed over as it is: nothing of the flow
    /// travels with it, and it is neither copied nor serialised.
    pub async fn execute(
        &self,
        flow_id: &str,
        msg: serde_json::Value,
        reply_to: String,
    ) -> Result<Local, dataflow::DataflowError> {
        let Some(running) = self.dataflow.registry.get(flow_id) else {
            return Ok(Local::NotHere(msg));
        };
        let dataflow = self.dataflow.clone();
        let (answers, answered) = tokio::sync::oneshot::channel();
        // A task of its own: a caller that goes away must not cut an execution in half
        // (stored, but its queued steps' inputs not published). It goes on after handing the
        // answers over, to announce the execution's end.
        let run = tokio::spawn(async move {
            let answers = dataflow::Answers::Here(Some(answers));
            let outcome = dataflow.start(&running, msg, Some(reply_to), answers).await;
            if let Err(err) = &outcome {
                tracing::warn!(error = %err, "an execution started in process failed");
            }
            outcome
        });
        if let Ok(answers) = answered.await {
            return Ok(Local::Ran(answers));
        }
        // No answers: the execution failed before it stored what it did.
        match run.await {
            Ok(Ok(())) => Ok(Local::Ran(Vec::new())),
            Ok(Err(err)) => Err(err),
            Err(err) => Err(dataflow::DataflowError::Aborted(err.to_string())),
        }
    }
}

/// Builds the service: declares its collection, its event-bus queue and the backchannel (so
/// nothing published from now on is lost), and returns the executions routes and two
/// workers (events and the backchannel). Step runners are started by the events worker and
/// stop with it.
pub async fn module(config: Config, deps: Deps) -> Result<Orchestrator, Error> {
    let deployed = Deployed::open(deps.docs.clone()).await?;
    let retention = (config.execution_retention_secs > 0)
        .then(|| Duration::from_secs(config.execution_retention_secs));
    let executions = ExecutionStore::open(deps.docs, retention).await?;
    topology::declare_backchannel(deps.bus.as_ref()).await?;
    let events = EventBus::new(deps.bus.clone(), SERVICE_NAME).await?;
    let stream = events
        .subscribe(events::CONSUMED, config.event_prefetch.max(1))
        .await?;
    let opts = ConsumeOptions {
        prefetch: config.backchannel_prefetch.max(1),
    };
    let messages = deps.bus.consume(BACKCHANNEL_MESSAGES, opts).await?;

    let registry = Registry::default();
    let dataflow = Dataflow {
        bus: deps.bus.clone(),
        events: events.clone(),
        registry: registry.clone(),
        executions: executions.clone(),
        tokens: deps.step_tokens,
        capture_bytes: config.capture_bytes,
        snapshots: deps.snapshots,
    };
    let driver = Drivers {
        builtin: BuiltinDriver::new(
            deps.bus.clone(),
            deps.http,
            config.builtin_prefetch,
            Duration::from_secs(config.step_timeout_secs.max(1)),
        )
        .inline(config.inline_steps),
        process: ProcessDriver::new(
            config.process,
            deps.bus.backend(),
            config.component_prefetch,
        ),
    };
    let in_process = InProcess {
        dataflow: dataflow.clone(),
    };
    let on_message = dataflow.clone();
    let lanes = usize::from(config.backchannel_lanes);
    // Step output is handled only once the deployed flows are running again: before that it
    // would find no flow to forward to.
    let (restored_tx, mut restored) = tokio::sync::watch::channel(false);

    let events_worker = Worker::new(
        "component-orchestrator-events",
        move |cancel: CancellationToken| async move {
            let lifecycle = Arc::new(Lifecycle {
                bus: deps.bus,
                events,
                resolver: deps.components,
                driver: Arc::new(driver),
                registry,
                deployed,
                shutdown: cancel.clone(),
            });
            if events::restore(&lifecycle, &cancel).await {
                let _ = restored_tx.send(true);
                events::run_events(stream, lifecycle.clone(), dataflow, cancel).await;
            }
            lifecycle.shutdown().await;
            Ok(())
        },
    );
    let messages_worker = Worker::new(
        "component-orchestrator-backchannel",
        move |cancel: CancellationToken| async move {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                ready = restored.wait_for(|done| *done) => if ready.is_err() {
                    // The events worker ended before restoring: the module is stopping.
                    return Ok(());
                },
            }
            let router = on_message.clone();
            let lane_of = move |d: &oih_bus::Delivery| router.lane_of(d);
            events::run_backchannel(messages, lanes, cancel, lane_of, move |d| {
                let df = on_message.clone();
                async move {
                    let result = df.on_message(&d).await;
                    (d, result)
                }
            })
            .await;
            Ok(())
        },
    );
    let module = ServiceModule::new(SERVICE_NAME, ErrorShape::Errors, http::router(executions))
        .with_openapi(http::openapi())
        .with_worker(events_worker)
        .with_worker(messages_worker);
    Ok(Orchestrator { module, in_process })
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
        assert_eq!(parsed.component_prefetch, default.component_prefetch);
        assert_eq!(parsed.builtin_prefetch, default.builtin_prefetch);
        assert_eq!(parsed.step_timeout_secs, default.step_timeout_secs);
        assert_eq!(parsed.event_prefetch, default.event_prefetch);
        assert_eq!(parsed.backchannel_prefetch, default.backchannel_prefetch);
        assert_eq!(parsed.backchannel_lanes, default.backchannel_lanes);
        let (parsed, default) = (parsed.process, default.process);
        assert_eq!(parsed.api_uri, default.api_uri);
        assert_eq!(parsed.component_log_level, default.component_log_level);
        assert_eq!(parsed.stop_grace_secs, default.stop_grace_secs);
        assert_eq!(parsed.restart_max_secs, default.restart_max_secs);
        let custom = Cli::try_parse_from(["oih", "--orchestrator-component-prefetch", "4"])
            .expect("parse")
            .config;
        assert_eq!(custom.component_prefetch, 4);
    }
}
