//! Drivers run a flow's nodes. The [`BuiltinDriver`] runs builtin components in process: one
//! task per node consumes the node's `:messages` queue, runs the step and answers on the
//! backchannel exactly as a Ferryman container would (runtime.md §2.6), so the orchestrator
//! cannot tell the difference. [`Drivers`] picks the driver by the component's distribution:
//! builtin, or [`ProcessDriver`] for `process` components; a Kubernetes driver would plug in
//! there too.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use oih_bus::{BusError, ConsumeOptions, Delivery, Message, MessageBus};
use oih_runtime::{Catalogue, Emit, Step, StepContext, StepHeaders, StepMessage, run_step};
use serde_json::{Value, json};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::model::Node;
use crate::process::ProcessDriver;
use crate::resolve::{Distribution, ResolvedComponent};
use crate::topology::{BACKCHANNEL, COLLECTOR, ERROR_KEY, FlowNames, OUTPUT_KEY, STATE_KEY};
use crate::wire::{self, DEAD_LETTERED, PROTOCOL_VERSION, ROUTE_TO};

/// Why a node cannot run; the text goes into `flow.failed`'s `reason`.
pub type PrepareError = String;

/// Turns a flow node into something that processes its input queue.
pub trait Driver: Send + Sync {
    /// Checks the node's component and configuration, without starting anything.
    fn prepare(
        &self,
        flow_id: &str,
        node: &Node,
        component: &ResolvedComponent,
    ) -> Result<Box<dyn Runner>, PrepareError>;
}

/// A prepared node.
pub trait Runner: Send {
    /// The node ids the step may route to by name (checked against the graph's edges).
    fn route_targets(&self) -> Vec<String>;
    /// True when the step answers waiting webhook callers (`httpReply`).
    fn replies(&self) -> bool;
    /// True when the step's inputs need OIH's `orchestratorToken` header (Ferryman reads its
    /// configuration and credentials from it); in-process steps do not.
    fn needs_token(&self) -> bool {
        false
    }
    /// The step, when the dataflow may run it in place of a queue hop ([`Step::inline`]).
    fn inline(&self) -> Option<InlineStep> {
        None
    }
    /// Starts consuming; the task ends once `cancel` fired and the messages in hand are done.
    fn start(self: Box<Self>, cancel: CancellationToken) -> JoinHandle<()>;
}

/// Runs the runtime's builtin components in process.
pub struct BuiltinDriver {
    bus: Arc<dyn MessageBus>,
    catalogue: Catalogue,
    ctx: StepContext,
    prefetch: u16,
    timeout: Duration,
    inline: bool,
}

impl BuiltinDriver {
    /// `prefetch`: how many messages one node processes at once; `timeout`: how long one
    /// message may take.
    pub fn new(
        bus: Arc<dyn MessageBus>,
        http: reqwest::Client,
        prefetch: u16,
        timeout: Duration,
    ) -> Self {
        Self {
            bus,
            catalogue: oih_runtime::catalogue(),
            ctx: StepContext::new(http),
            prefetch: prefetch.max(1),
            timeout,
            inline: true,
        }
    }

    /// Whether the dataflow may run the steps that allow it in place ([`Step::inline`]).
    #[must_use]
    pub fn inline(mut self, inline: bool) -> Self {
        self.inline = inline;
        self
    }
}

impl Driver for BuiltinDriver {
    fn prepare(
        &self,
        flow_id: &str,
        node: &Node,
        component: &ResolvedComponent,
    ) -> Result<Box<dyn Runner>, PrepareError> {
        let Distribution::Builtin { name } = &component.distribution else {
            return Err(format!(
                "component {} is not a builtin component",
                component.id
            ));
        };
        let builtin = self.catalogue.get(name).ok_or_else(|| {
            format!(
                "component {} names the builtin {name:?}, which this hub does not have",
                component.id
            )
        })?;
        let step = builtin.prepare(&node.fields).map_err(|e| e.to_string())?;
        let prefetch = node.prefetch()?.unwrap_or(self.prefetch);
        let names = FlowNames::new(flow_id);
        Ok(Box::new(BuiltinRunner {
            shared: Arc::new(Shared {
                bus: self.bus.clone(),
                step,
                ctx: self.ctx.clone(),
                snapshot_key: names.key(&node.id, "snapshot"),
                timeout: self.timeout,
            }),
            queue: names.messages_queue(&node.id),
            prefetch,
            inline: self.inline,
        }))
    }
}

/// Hands each node to the driver of its component's distribution type.
pub struct Drivers {
    pub builtin: BuiltinDriver,
    pub process: ProcessDriver,
}

impl Driver for Drivers {
    fn prepare(
        &self,
        flow_id: &str,
        node: &Node,
        component: &ResolvedComponent,
    ) -> Result<Box<dyn Runner>, PrepareError> {
        match &component.distribution {
            Distribution::Builtin { .. } => self.builtin.prepare(flow_id, node, component),
            Distribution::Process(_) => self.process.prepare(flow_id, node, component),
            Distribution::Other { kind } => Err(format!(
                "component {} has distribution type {kind:?}, which this hub cannot run yet",
                component.id
            )),
        }
    }
}

struct BuiltinRunner {
    shared: Arc<Shared>,
    queue: String,
    prefetch: u16,
    inline: bool,
}

/// What the message handlers of one node share.
struct Shared {
    bus: Arc<dyn MessageBus>,
    step: Box<dyn Step>,
    ctx: StepContext,
    snapshot_key: String,
    timeout: Duration,
}

impl Runner for BuiltinRunner {
    fn route_targets(&self) -> Vec<String> {
        self.shared
            .step
            .targets()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    fn replies(&self) -> bool {
        self.shared.step.replies()
    }

    fn inline(&self) -> Option<InlineStep> {
        (self.inline && self.shared.step.inline()).then(|| InlineStep(self.shared.clone()))
    }

    fn start(self: Box<Self>, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.run(cancel))
    }
}

impl BuiltinRunner {
    async fn run(self, cancel: CancellationToken) {
        // A step the dataflow runs in place gets nothing through its queue; it is consumed
        // only to finish what an earlier run (with inline steps off) left there. So a hub with
        // many flows does not hold a consumer (on RabbitMQ, a channel) per step.
        if self.inline && self.shared.step.inline() {
            match self.shared.bus.queue_len(&self.queue).await {
                Ok(0) => return,
                Ok(left) => {
                    tracing::info!(queue = %self.queue, left, "consuming what an earlier run left")
                }
                Err(err) => {
                    tracing::warn!(queue = %self.queue, error = %err, "queue length unknown; consuming it")
                }
            }
        }
        let opts = ConsumeOptions {
            prefetch: self.prefetch,
        };
        let mut consumer = match self.shared.bus.consume(&self.queue, opts).await {
            Ok(consumer) => consumer,
            Err(err) => {
                tracing::error!(queue = %self.queue, error = %err, "step runner could not consume");
                return;
            }
        };
        // The bus hands out at most `prefetch` unsettled deliveries, which bounds this set.
        let mut in_flight = JoinSet::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => log_panic(done),
                next = consumer.next() => match next {
                    Some(delivery) => {
                        in_flight.spawn(self.shared.clone().handle(delivery));
                    }
                    None => break,
                },
            }
        }
        // Let the messages in hand finish before the consumer goes (dropping it requeues what
        // it has not settled).
        while let Some(done) = in_flight.join_next().await {
            log_panic(done);
        }
        drop(consumer);
    }
}

/// A builtin step that the dataflow runs itself, without the queue hop to its runner (which
/// still consumes the step's queue, for messages that arrive there).
#[derive(Clone)]
pub struct InlineStep(Arc<Shared>);

impl InlineStep {
    /// The step's emits for `msg`, the last one its `end`; a failure, panic or overrun is an
    /// error, as when the runner runs it.
    pub async fn run(&self, msg: StepMessage) -> Vec<Emit> {
        self.0.run(msg).await
    }

    /// The routing key of the step's snapshots on the collector exchange.
    pub fn snapshot_key(&self) -> &str {
        &self.0.snapshot_key
    }
}

/// Runs `step` on one input so that a step that panics or overruns `timeout` fails this input
/// (an error, then the end) and nothing else. In the caller's task: a task of its own would
/// isolate nothing more (an overrun is cut at the step's next await either way) and cost a
/// spawn per message.
async fn run_guarded(
    step: &dyn Step,
    msg: StepMessage,
    ctx: &StepContext,
    timeout: Duration,
) -> Vec<Emit> {
    let work = AssertUnwindSafe(run_step(step, msg, ctx)).catch_unwind();
    let failure = match tokio::time::timeout(timeout, work).await {
        Ok(Ok(emits)) => return emits,
        Ok(Err(panic)) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %why, "a step panicked on its input");
            "the step failed unexpectedly (it panicked)".to_owned()
        }
        Err(_) => format!("the step did not finish within {} s", timeout.as_secs_f64()),
    };
    vec![Emit::Error(failure), Emit::End]
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(err) = done {
        tracing::error!(error = %err, "a step message handler panicked; its input is requeued");
    }
}

impl Shared {
    /// Processes one input and answers on the backchannel. Once every answer is confirmed the
    /// input is acknowledged, or, when the step failed on it, dead-lettered into the flow's
    /// kept `:deadletter` queue; it is requeued when publishing failed.
    async fn handle(self: Arc<Self>, delivery: Delivery) {
        let input = from_delivery(&delivery);
        let emits = match input.clone() {
            Ok(msg) => self.run(msg).await,
            Err(why) => vec![Emit::Error(why), Emit::End],
        };
        let failed = emits.iter().any(|e| matches!(e, Emit::Error(_)));
        let headers = input.map_or_else(|_| wire::from_headers(delivery.headers()), |m| m.headers);
        let answered = self.answer(&headers, delivery.body(), emits).await;
        let settled = match answered {
            Ok(()) if failed => delivery.reject().await,
            Ok(()) => delivery.ack().await,
            Err(err) => {
                tracing::warn!(error = %err, "step answer not published; input requeued");
                delivery.requeue().await
            }
        };
        if let Err(err) = settled {
            tracing::warn!(error = %err, "could not settle a step input");
        }
    }

    async fn run(&self, msg: StepMessage) -> Vec<Emit> {
        run_guarded(self.step.as_ref(), msg, &self.ctx, self.timeout).await
    }

    async fn answer(
        &self,
        input: &StepHeaders,
        input_body: &[u8],
        emits: Vec<Emit>,
    ) -> Result<(), BusError> {
        let headers = StepHeaders {
            thread_id: input.thread_id.clone().or_else(|| Some(wire::new_id())),
            parent_message_id: input.message_id.clone(),
            message_id: None,
            ..input.clone()
        };
        // Consecutive answers to one exchange go out in one confirm round; the order of
        // answers is kept (data before its end, on one queue).
        let mut batch: Vec<(String, Message)> = Vec::new();
        let mut batch_exchange = BACKCHANNEL;
        for emit in emits {
            let (exchange, key, message) = match emit {
                Emit::Data(msg) => (
                    BACKCHANNEL,
                    OUTPUT_KEY.to_owned(),
                    data(&headers, &msg, None)?,
                ),
                Emit::Routed { to, msg } => (
                    BACKCHANNEL,
                    OUTPUT_KEY.to_owned(),
                    data(&headers, &msg, Some(to))?,
                ),
                Emit::Error(text) => {
                    let error = json!({"name": "Error", "message": text}).to_string();
                    let body =
                        json!({"error": error, "errorInput": String::from_utf8_lossy(input_body)});
                    let msg = message(&headers, &body).with_header(DEAD_LETTERED, true);
                    (BACKCHANNEL, ERROR_KEY.to_owned(), msg)
                }
                Emit::End => {
                    let msg = message(&headers, &json!("function complete"))
                        .with_header(PROTOCOL_VERSION, 1);
                    (BACKCHANNEL, STATE_KEY.to_owned(), msg)
                }
                Emit::Reply {
                    status,
                    headers: reply_headers,
                    body,
                } => {
                    let Some(reply_to) = input.reply_to.clone() else {
                        tracing::warn!(step = ?input.step_id, "httpReply without reply_to dropped");
                        continue;
                    };
                    let msg = reply_message(&headers, status, reply_headers, body);
                    (BACKCHANNEL, reply_to, msg)
                }
                Emit::Snapshot(state) => (
                    COLLECTOR,
                    self.snapshot_key.clone(),
                    snapshot_message(&headers, &state),
                ),
            };
            if exchange != batch_exchange && !batch.is_empty() {
                self.bus
                    .publish_batch(batch_exchange, std::mem::take(&mut batch))
                    .await?;
            }
            batch_exchange = exchange;
            batch.push((key, message));
        }
        if !batch.is_empty() {
            self.bus.publish_batch(batch_exchange, batch).await?;
        }
        Ok(())
    }
}

/// The step message of a delivery, with its headers; `Err` says why it is not one.
fn from_delivery(delivery: &Delivery) -> Result<StepMessage, String> {
    let body: Value = serde_json::from_slice(delivery.body())
        .map_err(|e| format!("the input is not JSON: {e}"))?;
    let mut msg =
        wire::parse_body(body).map_err(|e| format!("the input is not an OIH message: {e}"))?;
    msg.headers = wire::from_headers(delivery.headers());
    Ok(msg)
}

/// A JSON backchannel message with a fresh message id (Ferryman's outgoing headers).
fn message(headers: &StepHeaders, body: &Value) -> Message {
    let headers = StepHeaders {
        message_id: Some(wire::new_id()),
        ..headers.clone()
    };
    let mut message = Message::json(body);
    message.properties.headers = wire::to_headers(&headers);
    message
}

/// A step's answer to the waiting webhook caller, as Ferryman's `httpReply` sends it.
pub(crate) fn reply_message(
    headers: &StepHeaders,
    status: u16,
    reply_headers: Vec<(String, String)>,
    body: Value,
) -> Message {
    let headers_map: serde_json::Map<String, Value> = reply_headers
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let body = json!({"statusCode": status, "headers": headers_map, "body": body});
    message(headers, &body).with_header(PROTOCOL_VERSION, 1)
}

/// A step's snapshot for the collector exchange.
pub(crate) fn snapshot_message(headers: &StepHeaders, state: &Value) -> Message {
    message(headers, state).with_header("snapshotEvent", "snapshot")
}

fn data(
    headers: &StepHeaders,
    msg: &StepMessage,
    to: Option<Vec<String>>,
) -> Result<Message, BusError> {
    let body = serde_json::to_value(msg).map_err(|e| BusError::Invalid(e.to_string()))?;
    let mut message = message(headers, &body).with_header(PROTOCOL_VERSION, 1);
    if let Some(to) = to {
        message = message.with_header(ROUTE_TO, json!(to));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oih_runtime::StepError;

    /// Panics on an input whose `data` is `"panic"`, else passes it on.
    struct Fragile;

    #[async_trait::async_trait]
    impl Step for Fragile {
        async fn process(&self, msg: StepMessage, _: &StepContext) -> Result<Vec<Emit>, StepError> {
            assert_ne!(msg.data, json!("panic"), "the step gave up");
            Ok(vec![Emit::Data(msg)])
        }
    }

    fn input(data: Value) -> StepMessage {
        wire::parse_body(json!({ "data": data })).expect("a step message")
    }

    #[tokio::test]
    async fn a_step_that_panics_fails_that_input_only() {
        let ctx = StepContext::new(reqwest::Client::new());
        let timeout = Duration::from_secs(5);
        let failed = run_guarded(&Fragile, input(json!("panic")), &ctx, timeout).await;
        assert!(
            matches!(&failed[..], [Emit::Error(why), Emit::End] if why.contains("panicked")),
            "{failed:?}"
        );
        let passed = run_guarded(&Fragile, input(json!({"n": 1})), &ctx, timeout).await;
        assert!(
            matches!(&passed[..], [Emit::Data(out), Emit::End] if out.data == json!({"n": 1})),
            "{passed:?}"
        );
    }
}
