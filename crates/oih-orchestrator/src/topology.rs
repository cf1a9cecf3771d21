//! OIH's data-plane names and declarations (runtime.md §2.1–§2.3): the backchannel the steps
//! answer on, and per flow a topic exchange with a `messages` and a `rebounds` queue per step.

use std::time::Duration;

use futures::future::{try_join, try_join_all};
use oih_bus::{BusError, ExchangeKind, MessageBus, QueueOptions};

pub const BACKCHANNEL: &str = "orchestrator_backchannel";
pub const BACKCHANNEL_MESSAGES: &str = "orchestrator_backchannel:messages";
/// OIH's separate error queue. We no longer use it: see [`declare_backchannel`].
const LEGACY_BACKCHANNEL_ERRORS: &str = "orchestrator_backchannel:error";
pub const OUTPUT_KEY: &str = "orchestrator_backchannel.input";
pub const ERROR_KEY: &str = "orchestrator_backchannel.error";
pub const STATE_KEY: &str = "orchestrator_backchannel.step_state";
pub const REBOUND_KEY: &str = "orchestrator_backchannel.rebound";
const DEADLETTER_KEY: &str = "orchestrator_backchannel.deadletter";
/// Where snapshots go; every flow exchange is bound into it.
pub const COLLECTOR: &str = "component-events-collector";
/// How long a rebounded message waits before it is retried (OIH's 10 minutes).
const REBOUND_TTL: Duration = Duration::from_millis(600_000);

/// The names of one flow's exchange, and of one step's queues and routing keys in it.
pub struct FlowNames {
    pub exchange: String,
}

impl FlowNames {
    pub fn new(flow_id: &str) -> Self {
        Self {
            exchange: format!("flow-{flow_id}"),
        }
    }

    pub fn messages_queue(&self, step: &str) -> String {
        format!("{}:{step}:messages", self.exchange)
    }

    pub fn rebounds_queue(&self, step: &str) -> String {
        format!("{}:{step}:rebounds", self.exchange)
    }

    /// Where the inputs the flow's steps rejected are kept (OIH binds nothing to the
    /// dead-letter keys, so they vanish). It outlives the flow's stop, for inspection.
    pub fn deadletter_queue(&self) -> String {
        format!("{}:deadletter", self.exchange)
    }

    /// `flow-<flowId>.<stepId>.<suffix>` (`input`, `requeue`, `rebound`, `snapshot`, …).
    pub fn key(&self, step: &str, suffix: &str) -> String {
        format!("{}.{step}.{suffix}", self.exchange)
    }

    fn messages_options(&self, step: &str) -> QueueOptions {
        QueueOptions {
            dead_letter_exchange: Some(self.exchange.clone()),
            dead_letter_routing_key: Some(self.key(step, "deadletter")),
            message_ttl: None,
        }
    }
}

/// The backchannel exchange, its queue and the snapshot collector, declared once at start.
///
/// OIH splits errors onto a queue of their own; then a step's error can be counted after the
/// `end` it sent later, and its execution reads "succeeded" for a while. A step publishes its
/// error before its end, in order, so one queue consumed in order never sees them reversed.
/// The error queue an OIH installation left on the broker is removed, or it would fill up.
pub async fn declare_backchannel(bus: &dyn MessageBus) -> Result<(), BusError> {
    bus.declare_exchange(BACKCHANNEL, ExchangeKind::Topic)
        .await?;
    bus.declare_exchange(COLLECTOR, ExchangeKind::Topic).await?;
    let opts = QueueOptions {
        dead_letter_exchange: Some(BACKCHANNEL.into()),
        dead_letter_routing_key: Some(DEADLETTER_KEY.into()),
        message_ttl: None,
    };
    bus.declare_queue(BACKCHANNEL_MESSAGES, &opts).await?;
    for key in [OUTPUT_KEY, STATE_KEY, ERROR_KEY, REBOUND_KEY] {
        bus.bind_queue(BACKCHANNEL_MESSAGES, BACKCHANNEL, key)
            .await?;
    }
    bus.delete_queue(LEGACY_BACKCHANNEL_ERRORS).await.map(drop)
}

/// A flow's exchange (bound into the collector) and both queues of each step. The
/// declarations go out side by side (on RabbitMQ each is a round trip): first the exchange
/// and the queues, then the bindings between them.
pub async fn declare_flow(
    bus: &dyn MessageBus,
    flow_id: &str,
    steps: &[&str],
) -> Result<(), BusError> {
    let names = FlowNames::new(flow_id);
    let deadletter = names.deadletter_queue();
    let mut queues = vec![(deadletter.clone(), QueueOptions::default())];
    let mut bindings = vec![
        // Each rebound is an input to come: the backchannel hears of it, so the execution
        // stays running until the rebounded message has ended too.
        (BACKCHANNEL_MESSAGES.to_owned(), names.key("*", "rebound")),
        (deadletter, names.key("*", "deadletter")),
    ];
    for step in steps {
        let messages = names.messages_queue(step);
        queues.push((messages.clone(), names.messages_options(step)));
        for suffix in ["input", "requeue"] {
            bindings.push((messages.clone(), names.key(step, suffix)));
        }
        let rebounds = names.rebounds_queue(step);
        let opts = QueueOptions {
            dead_letter_exchange: Some(names.exchange.clone()),
            dead_letter_routing_key: Some(names.key(step, "requeue")),
            message_ttl: Some(REBOUND_TTL),
        };
        queues.push((rebounds.clone(), opts));
        bindings.push((rebounds, names.key(step, "rebound")));
    }
    let declared = try_join_all(
        queues
            .iter()
            .map(|(queue, opts)| bus.declare_queue(queue, opts)),
    );
    try_join(
        bus.declare_exchange(&names.exchange, ExchangeKind::Topic),
        declared,
    )
    .await?;
    let bound = try_join_all(
        bindings
            .iter()
            .map(|(queue, key)| bus.bind_queue(queue, &names.exchange, key)),
    );
    try_join(bus.bind_exchange(COLLECTOR, &names.exchange, "#"), bound).await?;
    Ok(())
}

/// Removes what [`declare_flow`] created but the dead-letter queue (messages still queued
/// for the steps are dropped, as in OIH; rejected ones are kept).
pub async fn delete_flow(
    bus: &dyn MessageBus,
    flow_id: &str,
    steps: &[&str],
) -> Result<(), BusError> {
    let names = FlowNames::new(flow_id);
    let queues: Vec<String> = steps
        .iter()
        .flat_map(|step| [names.messages_queue(step), names.rebounds_queue(step)])
        .collect();
    try_join_all(queues.iter().map(|queue| bus.delete_queue(queue))).await?;
    bus.delete_exchange(&names.exchange).await
}
