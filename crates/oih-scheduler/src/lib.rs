//! OIH's scheduler (`services/scheduler` + `lib/scheduler`): fires `flow.execute` for every
//! started flow that has a `cron`, with OIH's payload.
//!
//! Beyond OIH: runs fire on their due second rather than on a 20 s poll, each run is fired by
//! one replica only (a compare-and-set lease on the flow's next run), and runs missed while no
//! scheduler ran are fired once or skipped, as configured.
//!
//! - [`schedule`]: cron expressions and their occurrences;
//! - [`store`]: the `scheduler_flows` collection;
//! - [`events`]: the worker that follows `flow.starting|started|stopping|stopped`;
//! - [`runner`]: the loop that fires due runs.
//!
//! OIH's scheduler serves no API besides `/healthcheck`, which the app provides, so the router
//! is empty.

pub mod events;
pub mod runner;
pub mod schedule;
pub mod store;

use std::sync::Arc;

use axum::Router;
use oih_bus::{EventBus, MessageBus};
use oih_http::{ErrorShape, ServiceModule, Worker};
use oih_store::DocStore;
use tokio::sync::Notify;

/// The service name: event-bus queue, `serviceName` header, module name.
pub const SERVICE_NAME: &str = "scheduler";

/// What to do with a run that could not be fired in time (no scheduler was running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CatchUp {
    /// Fire it once, however many runs were missed.
    Once,
    /// Do not fire it; wait for the next run (OIH's behaviour).
    Skip,
}

/// Configuration. The port, database and queue URLs belong to `oih serve`, not to this
/// service. OIH's `POLLING_INTERVAL` has no counterpart: runs fire when due.
#[derive(Debug, Clone, clap::Args)]
// Each service's settings are one clap group in `oih serve`; the id must be unique there.
#[group(id = "scheduler")]
pub struct Config {
    /// Runs missed while no scheduler was running: fire each flow's once (`once`) or not at
    /// all (`skip`).
    #[arg(
        long,
        env = "SCHEDULER_CATCH_UP",
        value_enum,
        default_value_t = CatchUp::Once
    )]
    pub scheduler_catch_up: CatchUp,
    /// Seconds after its due time from which a run counts as missed (for `skip`).
    #[arg(
        long,
        env = "SCHEDULER_MISSED_AFTER_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub scheduler_missed_after_secs: u32,
    /// Most runs fired at once (OIH's `FLOWS_PER_TICK_LIMIT`); more due runs wait for the
    /// next round, which follows at once.
    #[arg(
        long,
        env = "FLOWS_PER_TICK_LIMIT",
        default_value_t = 20,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub scheduler_flows_per_tick: u16,
    /// How many events the consumer takes from the bus before acknowledging.
    #[arg(long, env = "SCHEDULER_EVENT_PREFETCH", default_value_t = 10)]
    pub scheduler_event_prefetch: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            scheduler_catch_up: CatchUp::Once,
            scheduler_missed_after_secs: 60,
            scheduler_flows_per_tick: 20,
            scheduler_event_prefetch: 10,
        }
    }
}

/// Shared infrastructure the service runs on.
#[derive(Clone)]
pub struct Deps {
    /// Document store; the service owns the `scheduler_flows` collection. Replicas sharing it
    /// share the runs (each fired once).
    pub docs: Arc<dyn DocStore>,
    /// Message bus carrying OIH's `event-bus` exchange.
    pub bus: Arc<dyn MessageBus>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("scheduler storage: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("scheduler event bus: {0}")]
    Bus(#[from] oih_bus::BusError),
}

/// Builds the service: declares its collection and its event-bus queue (so events published
/// from now on are kept even before the workers run), and returns an empty router with two
/// workers: the lifecycle event consumer and the scheduling loop.
pub async fn module(config: Config, deps: Deps) -> Result<ServiceModule, Error> {
    let flows = store::FlowStore::open(deps.docs).await?;
    let bus = EventBus::new(deps.bus, SERVICE_NAME).await?;
    let stream = bus
        .subscribe(events::CONSUMED, config.scheduler_event_prefetch.max(1))
        .await?;
    let planned = Arc::new(Notify::new());
    let consumer = events::Consumer::new(flows.clone(), planned.clone());
    let policy = runner::Policy {
        catch_up: config.scheduler_catch_up,
        missed_after: chrono::Duration::seconds(i64::from(config.scheduler_missed_after_secs)),
        batch: u64::from(config.scheduler_flows_per_tick.max(1)),
    };
    let runner = runner::Runner::new(flows, bus, policy, planned);
    let events_worker = Worker::new("scheduler-events", move |cancel| async move {
        stream.consume_with(consumer, cancel).await;
        Ok(())
    });
    let loop_worker = Worker::new("scheduler-loop", move |cancel| async move {
        runner.run(cancel).await;
        Ok(())
    });
    Ok(
        ServiceModule::new(SERVICE_NAME, ErrorShape::Errors, Router::new())
            .with_worker(events_worker)
            .with_worker(loop_worker),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{CatchUp, Config};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn command_line_defaults_match_default() {
        let parsed = Cli::try_parse_from(["oih"]).expect("parse").config;
        let default = Config::default();
        assert_eq!(parsed.scheduler_catch_up, default.scheduler_catch_up);
        assert_eq!(
            parsed.scheduler_missed_after_secs,
            default.scheduler_missed_after_secs
        );
        assert_eq!(
            parsed.scheduler_flows_per_tick,
            default.scheduler_flows_per_tick
        );
        assert_eq!(
            parsed.scheduler_event_prefetch,
            default.scheduler_event_prefetch
        );
    }

    #[test]
    fn catch_up_policy_and_limits_are_validated() {
        let skip = Cli::try_parse_from(["oih", "--scheduler-catch-up", "skip"])
            .expect("parse")
            .config;
        assert_eq!(skip.scheduler_catch_up, CatchUp::Skip);
        assert!(Cli::try_parse_from(["oih", "--scheduler-catch-up", "twice"]).is_err());
        assert!(Cli::try_parse_from(["oih", "--scheduler-flows-per-tick", "0"]).is_err());
        assert!(Cli::try_parse_from(["oih", "--scheduler-missed-after-secs", "0"]).is_err());
    }
}
