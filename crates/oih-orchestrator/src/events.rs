//! The workers: OIH's event-bus handlers of the `component-orchestrator` queue
//! (`flow.starting`, `flow.stopping`, `flow.execute`), and the backchannel consumer with its
//! lanes.
//!
//! An event or backchannel message is acknowledged once handled; retried after a pause when the
//! store or the bus failed (nothing accepted is lost); dead-lettered when it is malformed.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use oih_bus::{Consumer, Delivery, EventStream, ReceivedEvent};
use oih_core::Event;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::dataflow::{Dataflow, DataflowError};
use crate::lifecycle::{Lifecycle, LifecycleError};
use crate::model::Flow;

pub const FLOW_STARTING: &str = "flow.starting";
pub const FLOW_STOPPING: &str = "flow.stopping";
pub const FLOW_EXECUTE: &str = "flow.execute";

/// The topics the service's queue is bound to.
pub const CONSUMED: &[&str] = &[FLOW_STARTING, FLOW_STOPPING, FLOW_EXECUTE];

/// How long a failed message waits before it is handed back to its queue.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// How handling one message ended.
enum Outcome {
    Done,
    Malformed(String),
    Retry(String),
}

impl From<LifecycleError> for Outcome {
    fn from(err: LifecycleError) -> Self {
        Self::Retry(err.to_string())
    }
}

impl From<DataflowError> for Outcome {
    fn from(err: DataflowError) -> Self {
        match err {
            DataflowError::Malformed(why) => Self::Malformed(why),
            err @ DataflowError::Token(_) => Self::Malformed(err.to_string()),
            other => Self::Retry(other.to_string()),
        }
    }
}

fn outcome<E: Into<Outcome>>(result: Result<(), E>) -> Outcome {
    result.map_or_else(Into::into, |()| Outcome::Done)
}

/// Deploys the flows deployed before a restart, retrying while the store or bus is down;
/// false when `cancel` fired first.
pub async fn restore(lifecycle: &Lifecycle, cancel: &CancellationToken) -> bool {
    loop {
        match lifecycle.restore().await {
            Ok(()) => return true,
            Err(err) => {
                tracing::warn!(error = %err, "restoring deployed flows failed; will retry");
                pause(cancel).await;
                if cancel.is_cancelled() {
                    return false;
                }
            }
        }
    }
}

/// Handles the control-plane events until `cancel` fires or the bus closes. `flow.execute`
/// events are handled concurrently (at most the stream's prefetch at once), since each only
/// creates its own execution. Starts and stops go to [`CONTROL_LANES`] lanes by flow id: one
/// flow's are handled one at a time, in order, while different flows start side by side (a
/// start waits on the broker many times; a thousand of them in a row would hold up the
/// `flow.execute` events queued behind them for minutes).
pub async fn run_events(
    mut stream: EventStream,
    lifecycle: Arc<Lifecycle>,
    dataflow: Dataflow,
    cancel: CancellationToken,
) {
    let mut executing = JoinSet::new();
    let mut lanes = JoinSet::new();
    let senders: Vec<_> = (0..CONTROL_LANES)
        .map(|_| {
            let (tx, rx) = mpsc::channel(LANE_DEPTH);
            lanes.spawn(run_control_lane(rx, lifecycle.clone(), cancel.clone()));
            tx
        })
        .collect();
    loop {
        let received: ReceivedEvent = tokio::select! {
            () = cancel.cancelled() => break,
            Some(done) = executing.join_next(), if !executing.is_empty() => {
                log_panic(done);
                continue;
            }
            next = stream.next() => match next {
                Some(received) => received,
                None => break,
            },
        };
        if received.event.name() == FLOW_EXECUTE {
            let (dataflow, cancel) = (dataflow.clone(), cancel.clone());
            executing.spawn(async move {
                let mut received = received;
                let payload = received.event.payload.take();
                let result = outcome(dataflow.execute(payload).await);
                settle_event(received, result, &cancel).await;
            });
        } else {
            let lane = flow_lane(&received.event.payload, senders.len());
            if senders[lane].send(received).await.is_err() {
                break;
            }
        }
    }
    drop(senders);
    while let Some(done) = lanes.join_next().await {
        log_panic(done);
    }
    while let Some(done) = executing.join_next().await {
        log_panic(done);
    }
}

/// How many flows start or stop at once.
const CONTROL_LANES: usize = 8;

/// The lane of a start or stop: a hash of the flow id, the same for every event of one flow.
fn flow_lane(payload: &Value, lanes: usize) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    payload.get("id").and_then(Value::as_str).hash(&mut hasher);
    usize::try_from(hasher.finish() % lanes as u64).unwrap_or(0)
}

async fn run_control_lane(
    mut events: mpsc::Receiver<ReceivedEvent>,
    lifecycle: Arc<Lifecycle>,
    cancel: CancellationToken,
) {
    while let Some(received) = events.recv().await {
        if cancel.is_cancelled() {
            return;
        }
        let result = handle_event(&received.event, &lifecycle).await;
        settle_event(received, result, &cancel).await;
    }
}

async fn settle_event(received: ReceivedEvent, result: Outcome, cancel: &CancellationToken) {
    let name = received.event.name().to_owned();
    let settled = match result {
        Outcome::Done => received.ack().await,
        Outcome::Malformed(why) => {
            tracing::warn!(event = %name, %why, "malformed event dead-lettered");
            received.nack().await
        }
        Outcome::Retry(why) => {
            tracing::warn!(event = %name, %why, "event handling failed; will retry");
            pause(cancel).await;
            received.retry().await
        }
    };
    if let Err(err) = settled {
        tracing::warn!(event = %name, error = %err, "could not settle an event");
    }
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(err) = done {
        tracing::error!(error = %err, "a message handler panicked; its message is redelivered");
    }
}

async fn handle_event(event: &Event, lifecycle: &Lifecycle) -> Outcome {
    match event.name() {
        FLOW_STARTING => match serde_json::from_value::<Flow>(event.payload.clone()) {
            Ok(flow) => outcome(lifecycle.start(flow).await),
            Err(err) => Outcome::Malformed(format!("flow: {err}")),
        },
        FLOW_STOPPING => {
            let Some(id) = event.payload.get("id").and_then(Value::as_str) else {
                return Outcome::Malformed("payload.id must name the flow".into());
            };
            let steps = event
                .payload
                .pointer("/graph/nodes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|n| n.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect();
            outcome(lifecycle.stop(id, steps).await)
        }
        _ => Outcome::Malformed("event not handled by this service".into()),
    }
}

/// Consumes the backchannel in `lanes` parallel lanes. `lane_of` picks a message's lane (by
/// its execution), so the messages of one execution are handled one at a time, in queue order
/// (see [`crate::dataflow`]), while different executions proceed side by side. Each lane holds
/// at most [`LANE_DEPTH`] messages ahead; a full lane holds up the queue, not memory.
pub async fn run_backchannel<L, F, Fut>(
    mut consumer: Consumer,
    lanes: usize,
    cancel: CancellationToken,
    lane_of: L,
    handle: F,
) where
    L: Fn(&Delivery) -> u64,
    F: Fn(Delivery) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Delivery, Result<(), DataflowError>)> + Send + 'static,
{
    let lanes = lanes.max(1);
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = JoinSet::new();
    for _ in 0..lanes {
        let (tx, rx) = mpsc::channel(LANE_DEPTH);
        senders.push(tx);
        workers.spawn(run_lane(rx, cancel.clone(), handle.clone()));
    }
    loop {
        let delivery = tokio::select! {
            () = cancel.cancelled() => break,
            next = consumer.next() => match next {
                Some(delivery) => delivery,
                None => break,
            },
        };
        let lane = usize::try_from(lane_of(&delivery) % lanes as u64).unwrap_or(0);
        if senders[lane].send(delivery).await.is_err() {
            break;
        }
    }
    // Lanes finish the message in hand; what is still queued goes back to the queue with
    // the consumer.
    drop(senders);
    while let Some(done) = workers.join_next().await {
        log_panic(done);
    }
    drop(consumer);
}

/// How many messages a backchannel lane holds ahead of the one it handles.
const LANE_DEPTH: usize = 16;

async fn run_lane<F, Fut>(
    mut deliveries: mpsc::Receiver<Delivery>,
    cancel: CancellationToken,
    handle: F,
) where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = (Delivery, Result<(), DataflowError>)>,
{
    while let Some(delivery) = deliveries.recv().await {
        if cancel.is_cancelled() {
            return;
        }
        let (delivery, result) = handle(delivery).await;
        let settled = match outcome(result) {
            Outcome::Done => delivery.ack().await,
            Outcome::Malformed(why) => {
                tracing::warn!(routing_key = %delivery.routing_key, %why, "malformed backchannel message rejected");
                delivery.reject().await
            }
            Outcome::Retry(why) => {
                tracing::warn!(routing_key = %delivery.routing_key, %why, "backchannel handling failed; will retry");
                pause(&cancel).await;
                delivery.requeue().await
            }
        };
        if let Err(err) = settled {
            tracing::warn!(error = %err, "could not settle a backchannel message");
        }
    }
}

async fn pause(cancel: &CancellationToken) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(RETRY_DELAY) => {}
    }
}
