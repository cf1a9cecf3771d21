//! The scheduling loop (runtime.md §6.2–§6.3), due-time driven instead of OIH's 20 s poll:
//! it sleeps until the earliest planned run (at most [`MAX_SLEEP`], so runs planned by another
//! replica are seen promptly), then fires every due run.
//!
//! Firing a run first moves the flow's next run on with a compare-and-set on the document
//! version; only the replica whose write succeeds publishes `flow.execute`. Replicas sharing
//! one database therefore never fire the same run twice. A run whose publish fails is handed
//! back (its due time restored) so that the next round fires it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oih_bus::EventBus;
use oih_core::Event;
use oih_store::StoreError;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::CatchUp;
use crate::schedule::{Schedule, iso};
use crate::store::{FlowStore, ScheduledFlow};

pub const FLOW_EXECUTE: &str = "flow.execute";

/// The longest the loop sleeps without looking at the store.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// What the loop needs besides the store and the bus.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub catch_up: CatchUp,
    /// A run fired later than this after its due time counts as missed.
    pub missed_after: chrono::Duration,
    /// Most runs fired per round (OIH's `FLOWS_PER_TICK_LIMIT`).
    pub batch: u64,
}

pub struct Runner {
    flows: FlowStore,
    bus: EventBus,
    policy: Policy,
    planned: Arc<Notify>,
}

impl Runner {
    pub fn new(flows: FlowStore, bus: EventBus, policy: Policy, planned: Arc<Notify>) -> Self {
        Self {
            flows,
            bus,
            policy,
            planned,
        }
    }

    /// Fires due runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            let pause = match self.round(Utc::now()).await {
                Ok(pause) => pause,
                Err(err) => {
                    tracing::warn!(error = %err, "scheduler round failed; will retry");
                    MAX_SLEEP
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.planned.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
            if cancel.is_cancelled() {
                return;
            }
        }
    }

    /// Fires what is due at `now`; returns how long to sleep before the next round.
    async fn round(&self, now: DateTime<Utc>) -> Result<Duration, StoreError> {
        let due = self.flows.due(now, self.policy.batch).await?;
        let full = due.len() as u64 >= self.policy.batch;
        futures::future::join_all(due.iter().map(|flow| self.fire(flow, now))).await;
        if full {
            // More may be waiting behind this batch.
            return Ok(Duration::ZERO);
        }
        let pause = match self.flows.earliest_run().await? {
            None => MAX_SLEEP,
            // Due already at the start of this round, yet still there: firing it failed
            // (logged); try again after a pause rather than in a busy loop.
            Some(next) if next <= now => MAX_SLEEP,
            // Became due while this round ran: go again at once.
            Some(next) => (next - Utc::now()).to_std().unwrap_or(Duration::ZERO),
        };
        Ok(pause.min(MAX_SLEEP))
    }

    /// Fires one due run, unless another replica already did or the catch-up policy skips it.
    async fn fire(&self, flow: &ScheduledFlow, now: DateTime<Utc>) {
        let Some(due) = flow.next_run_at() else {
            return;
        };
        // A pattern that cannot say when the next run is leaves the flow without one.
        let next = match Schedule::parse(flow.cron()).and_then(|s| s.next_after(now)) {
            Ok(next) => Some(next),
            Err(err) => {
                tracing::warn!(flow = flow.id(), error = %err, "flow has no further run");
                None
            }
        };
        // Missed runs collapse into one: the next run is planned after now, not after `due`.
        let claimed = match self.flows.reschedule(flow, next).await {
            Ok(claimed) => claimed,
            Err(StoreError::Conflict { .. } | StoreError::NotFound) => return,
            Err(err) => {
                tracing::warn!(flow = flow.id(), error = %err, "could not claim a due run");
                return;
            }
        };
        if self.policy.catch_up == CatchUp::Skip && now - due > self.policy.missed_after {
            tracing::info!(flow = flow.id(), due = %iso(due), "missed run skipped");
            return;
        }
        let event = execute_event(flow, due, now, next);
        if let Err(err) = self.bus.publish(event).await {
            tracing::warn!(flow = flow.id(), error = %err, "could not publish flow.execute");
            // Hand the run back (unless the flow changed meanwhile) so a later round fires it.
            if let Err(err) = self.flows.reschedule(&claimed, Some(due)).await {
                tracing::warn!(flow = flow.id(), error = %err, "could not hand a run back");
            }
        }
    }
}

/// OIH's `flow.execute` from the scheduler: header `type: "scheduler"`, the scheduler's flow
/// document (`_id, graph, cron, dueExecution, __v`) and a message carrying the run's times
/// under OIH's misspelt names. The execution id is 32 random hex digits, as OIH's.
fn execute_event(
    flow: &ScheduledFlow,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
) -> Event {
    let mut doc = serde_json::Map::new();
    doc.insert("_id".into(), json!(flow.id()));
    if let Some(graph) = flow.graph() {
        doc.insert("graph".into(), graph.clone());
    }
    doc.insert("cron".into(), json!(flow.cron()));
    doc.insert("dueExecution".into(), json!(iso(due)));
    // Mongoose's version key; the scheduler's documents never reach a second version.
    doc.insert("__v".into(), json!(0));
    let payload = json!({
        "flow": Value::Object(doc),
        "msg": {
            "data": {
                "sheduledTimestamp": iso(now),
                "nextSheduledTimestamp": next.map(iso),
            },
            "metadata": {
                "source": {
                    "name": "scheduler",
                    "type": "scheduler",
                    "externalExecId": format!("{:032x}", rand::random::<u128>()),
                },
            },
        },
    });
    Event::new(FLOW_EXECUTE, payload).with_header("type", json!("scheduler"))
}
