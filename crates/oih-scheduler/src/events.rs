//! Keeps `scheduler_flows` in step with the flow lifecycle (runtime.md §6.1):
//!
//! - `flow.starting` (the whole flow): a flow with a `cron` is remembered, not yet running (a
//!   restart forgets its planned run); a flow without one is forgotten.
//! - `flow.started` (`{id}`): a remembered flow gets its first run, the next cron occurrence.
//! - `flow.stopping` / `flow.stopped` (`{id}`): the flow is forgotten. (OIH listens to
//!   `flow.stopping` only; `flow.stopped` also arrives when a start failed.)
//!
//! An event is acknowledged once its store write succeeded, retried when the store failed, and
//! dead-lettered when its payload is malformed (no flow id, a `cron` that is not a string or
//! never occurs).

use std::sync::Arc;

use chrono::Utc;
use oih_bus::{EventFailure, EventHandler};
use oih_core::{Event, ObjectId};
use oih_store::StoreError;
use serde_json::Value;
use tokio::sync::Notify;

use crate::schedule::Schedule;
use crate::store::{self, FlowStore};

pub const FLOW_STARTING: &str = "flow.starting";
pub const FLOW_STARTED: &str = "flow.started";
pub const FLOW_STOPPING: &str = "flow.stopping";
pub const FLOW_STOPPED: &str = "flow.stopped";

/// The topics the service's queue is bound to.
pub const CONSUMED: &[&str] = &[FLOW_STARTING, FLOW_STARTED, FLOW_STOPPING, FLOW_STOPPED];

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The event will never be handled: dead-letter it.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The store failed, or the flow changed under us; handling it again may succeed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies the lifecycle events to the scheduler's flows.
pub struct Consumer {
    flows: FlowStore,
    /// Wakes this replica's runner when a flow got a run, so a run due sooner than the
    /// runner's next wake-up is not late.
    planned: Arc<Notify>,
}

impl Consumer {
    pub fn new(flows: FlowStore, planned: Arc<Notify>) -> Self {
        Self { flows, planned }
    }

    async fn starting(&self, id: &str, flow: &Value) -> Result<(), HandleError> {
        let cron = match flow.get("cron") {
            // As OIH: any falsy cron means "not scheduled".
            None | Some(Value::Null) => None,
            Some(Value::String(cron)) if cron.trim().is_empty() => None,
            Some(Value::String(cron)) => Some(cron.as_str()),
            Some(_) => {
                // Whatever ran before under this id is over: the flow is starting anew.
                self.flows.remove(id).await?;
                return Err(HandleError::Malformed(
                    "payload.cron must be a string".into(),
                ));
            }
        };
        let Some(cron) = cron else {
            self.flows.remove(id).await?;
            return Ok(());
        };
        // A cron that never fires is refused now rather than at `flow.started`.
        if let Err(err) = Schedule::parse(cron).and_then(|s| s.next_after(Utc::now())) {
            self.flows.remove(id).await?;
            return Err(HandleError::Malformed(err.to_string()));
        }
        let tenant = flow.get("tenant").and_then(Value::as_str);
        let body = store::starting_body(cron, flow.get("graph"), tenant);
        self.flows.put(id, body).await?;
        Ok(())
    }

    /// The flow is deployed: plan its first run. Unknown flows (no cron, or stopped
    /// meanwhile) are ignored.
    async fn started(&self, id: &str) -> Result<(), HandleError> {
        let Some(flow) = self.flows.get(id).await? else {
            return Ok(());
        };
        let next = match Schedule::parse(flow.cron()).and_then(|s| s.next_after(Utc::now())) {
            Ok(next) => next,
            // Checked at `flow.starting`; only a pattern that ran out of years gets here.
            Err(err) => {
                tracing::warn!(flow = id, error = %err, "flow has no future run");
                return Ok(());
            }
        };
        // A conflict means the flow changed since it was read: retrying re-reads it.
        self.flows.reschedule(&flow, Some(next)).await?;
        self.planned.notify_one();
        Ok(())
    }
}

impl EventHandler for Consumer {
    type Error = HandleError;

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let id = flow_id(event)?;
        match event.name() {
            FLOW_STARTING => self.starting(id, &event.payload).await,
            FLOW_STARTED => self.started(id).await,
            FLOW_STOPPING | FLOW_STOPPED => {
                self.flows.remove(id).await?;
                Ok(())
            }
            // The queue is bound to nothing else; a stray event is not ours to keep.
            _ => Err(HandleError::Malformed(
                "event not handled by this service".into(),
            )),
        }
    }
}

impl EventFailure for HandleError {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}

/// The flow id every consumed event carries as `payload.id`.
fn flow_id(event: &Event) -> Result<&str, HandleError> {
    event
        .payload
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| ObjectId::is_valid(id))
        .ok_or_else(|| HandleError::Malformed("payload.id must be a flow id".into()))
}
