//! The flow-state projection (runtime.md §5.5): the `webhooks` queue receives the flow
//! lifecycle events and keeps `webhooks_flows` in step. `flow.starting` stores the flow as
//! `starting`, `flow.started` makes it `active` (hookable), `flow.stopping` and `flow.stopped`
//! remove it. An event is acknowledged after its store write, retried after a pause when the
//! store failed, and dead-lettered when its payload is malformed.

use oih_bus::{EventFailure, EventHandler};
use oih_core::{Event, ObjectId};
use oih_store::StoreError;
use serde_json::{Map, Value, json};

use crate::store::{KEPT_FIELDS, STATUS_STARTING, Store};

pub const FLOW_STARTING: &str = "flow.starting";
pub const FLOW_STARTED: &str = "flow.started";
pub const FLOW_STOPPING: &str = "flow.stopping";
pub const FLOW_STOPPED: &str = "flow.stopped";
pub const FLOW_EXECUTE: &str = "flow.execute";

/// The topics the `webhooks` queue is bound to.
pub const CONSUMED: &[&str] = &[FLOW_STARTING, FLOW_STARTED, FLOW_STOPPING, FLOW_STOPPED];

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Consumer {
    store: Store,
    allow_scheduled: bool,
}

impl Consumer {
    /// `allow_scheduled`: OIH's `ALLOW_RUN_SCHEDULED_FLOWS`; when false, flows with a `cron`
    /// are not hookable.
    pub fn new(store: Store, allow_scheduled: bool) -> Self {
        Self {
            store,
            allow_scheduled,
        }
    }

    async fn starting(&self, id: &str, payload: &Value) -> Result<(), HandleError> {
        let scheduled = payload
            .get("cron")
            .is_some_and(|cron| cron.as_str().is_some_and(|c| !c.is_empty()));
        if scheduled && !self.allow_scheduled {
            // A scheduled flow is run by the scheduler, not by hooks.
            return Ok(self.store.remove_flow(id).await?);
        }
        if !payload.get("graph").is_some_and(Value::is_object) {
            return Err(HandleError::Malformed("payload.graph must be an object"));
        }
        let mut body = Map::new();
        for field in KEPT_FIELDS {
            if let Some(value) = payload.get(*field) {
                body.insert((*field).into(), value.clone());
            }
        }
        body.insert("status".into(), json!(STATUS_STARTING));
        Ok(self.store.put_flow(id, Value::Object(body)).await?)
    }
}

impl EventHandler for Consumer {
    type Error = HandleError;

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let id = event
            .payload
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| ObjectId::is_valid(id))
            .ok_or(HandleError::Malformed("payload.id must be a flow id"))?;
        match event.name() {
            FLOW_STARTING => self.starting(id, &event.payload).await,
            FLOW_STARTED => {
                let sync_reply = event.payload.get("syncReply").and_then(Value::as_bool);
                if !self.store.activate(id, sync_reply == Some(true)).await? {
                    tracing::info!(flow = id, "flow.started for an unknown flow ignored");
                }
                Ok(())
            }
            FLOW_STOPPING | FLOW_STOPPED => Ok(self.store.remove_flow(id).await?),
            _ => Err(HandleError::Malformed("event not handled by this service")),
        }
    }
}

impl EventFailure for HandleError {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}
