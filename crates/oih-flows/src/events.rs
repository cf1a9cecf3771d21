//! The service's side of OIH's event bus (data-services.md §1.6, runtime.md §1.3).
//!
//! Publishes `flowrepo.flow.created|modified|deleted` (`{tenant, user, flowId}`), and
//! `flow.starting` / `flow.stopping` carrying the whole formatted flow (`startedBy` on start).
//!
//! Consumes `flow.started` (→ `active`), `flow.stopped` (→ `inactive`), `flow.failed`
//! (→ `stopping`, `flow.stopping` re-published) and `iam.user.deleted` (the user is removed
//! from every flow's owners; flows left without owner are deleted, after being stopped if
//! they run). An event is acknowledged once its store writes succeeded, retried when the store
//! or the bus failed (so nothing is lost), and dead-lettered when its payload is malformed.

use oih_bus::{BusError, EventBus, EventFailure, EventHandler};
use oih_core::{Event, ObjectId};
use oih_store::StoreError;
use serde_json::{Value, json};

use crate::model::{STATUS_ACTIVE, STATUS_INACTIVE, STATUS_STARTING, STATUS_STOPPING};
use crate::store::{FlowStore, StoredFlow};

pub const FLOW_CREATED: &str = "flowrepo.flow.created";
pub const FLOW_MODIFIED: &str = "flowrepo.flow.modified";
pub const FLOW_DELETED: &str = "flowrepo.flow.deleted";
pub const FLOW_STARTING: &str = "flow.starting";
pub const FLOW_STOPPING: &str = "flow.stopping";
pub const FLOW_STARTED: &str = "flow.started";
pub const FLOW_STOPPED: &str = "flow.stopped";
pub const FLOW_FAILED: &str = "flow.failed";
pub const USER_DELETED: &str = "iam.user.deleted";

/// The topics the service's queue is bound to.
pub const CONSUMED: &[&str] = &[FLOW_STARTED, FLOW_STOPPED, FLOW_FAILED, USER_DELETED];

/// Publishes the service's events.
#[derive(Clone)]
pub struct Publisher {
    bus: EventBus,
}

impl Publisher {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    /// `flowrepo.flow.*`: who did what to which flow (`tenant` is `''` when there is none, as
    /// in OIH).
    pub async fn audit(
        &self,
        name: &str,
        tenant: Option<&str>,
        user: &str,
        flow_id: &str,
    ) -> Result<(), BusError> {
        let payload = json!({"tenant": tenant.unwrap_or(""), "user": user, "flowId": flow_id});
        self.bus.publish(Event::new(name, payload)).await
    }

    /// `flow.starting` with the whole flow and the caller as `startedBy`.
    pub async fn starting(&self, flow: &StoredFlow, started_by: &str) -> Result<(), BusError> {
        let mut payload = flow.to_json();
        if let Value::Object(obj) = &mut payload {
            obj.insert("startedBy".into(), Value::String(started_by.into()));
        }
        self.bus.publish(Event::new(FLOW_STARTING, payload)).await
    }

    /// `flow.stopping` with the whole flow.
    pub async fn stopping(&self, flow: &StoredFlow) -> Result<(), BusError> {
        self.bus
            .publish(Event::new(FLOW_STOPPING, flow.to_json()))
            .await
    }
}

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The event will never be handled: dead-letter it.
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
    /// The store or the bus failed; handling it again later may succeed.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Applies the lifecycle and GDPR events to the flows.
pub struct Consumer {
    flows: FlowStore,
    publisher: Publisher,
}

impl Consumer {
    pub fn new(flows: FlowStore, publisher: Publisher) -> Self {
        Self { flows, publisher }
    }

    /// The orchestrator deployed the flow. Only a starting flow becomes active: a flow
    /// stopped meanwhile stays stopping until `flow.stopped`.
    async fn started(&self, id: &str) -> Result<(), HandleError> {
        let Some(flow) = self.known(id).await? else {
            return Ok(());
        };
        if flow.status() == STATUS_STARTING {
            self.flows.set_status(&flow, STATUS_ACTIVE).await?;
        } else {
            tracing::info!(flow = id, status = flow.status(), "flow.started ignored");
        }
        Ok(())
    }

    /// The orchestrator tore the flow down. A flow that lost its last owner while running is
    /// deleted now.
    async fn stopped(&self, id: &str) -> Result<(), HandleError> {
        let Some(flow) = self.known(id).await? else {
            return Ok(());
        };
        if !flow.has_owners() {
            return self.delete_orphan(&flow).await;
        }
        if flow.status() != STATUS_INACTIVE {
            self.flows.set_status(&flow, STATUS_INACTIVE).await?;
        }
        Ok(())
    }

    /// The orchestrator could not deploy the flow: have it torn down.
    async fn failed(&self, id: &str) -> Result<(), HandleError> {
        let Some(flow) = self.known(id).await? else {
            return Ok(());
        };
        if flow.status() == STATUS_INACTIVE {
            tracing::info!(flow = id, "flow.failed for an inactive flow ignored");
            return Ok(());
        }
        let flow = if flow.status() == STATUS_STOPPING {
            flow
        } else {
            self.flows.set_status(&flow, STATUS_STOPPING).await?
        };
        self.publisher.stopping(&flow).await?;
        Ok(())
    }

    /// GDPR: the user is no longer an owner of anything. Orphans are cleaned up on every
    /// delivery (not only those this user left), so a retried event finishes what a failed
    /// attempt started.
    async fn user_deleted(&self, user: &str) -> Result<(), HandleError> {
        for flow in self.flows.owned(user).await? {
            self.flows.remove_owner(&flow, user).await?;
        }
        // Versions of deleted flows stay readable by their owners; the user is not one any more.
        for record in self.flows.deleted_owned(user).await? {
            self.flows.remove_deleted_owner(&record, user).await?;
        }
        for orphan in self.flows.orphans().await? {
            match orphan.status() {
                STATUS_INACTIVE => self.delete_orphan(&orphan).await?,
                // Deleted on `flow.stopped`.
                STATUS_STOPPING => {}
                _ => {
                    let stopping = self.flows.set_status(&orphan, STATUS_STOPPING).await?;
                    self.publisher.stopping(&stopping).await?;
                }
            }
        }
        Ok(())
    }

    async fn delete_orphan(&self, flow: &StoredFlow) -> Result<(), HandleError> {
        match self.flows.delete(flow).await {
            Ok(()) => {}
            // Deleted meanwhile: nothing left to do.
            Err(StoreError::NotFound) => return Ok(()),
            Err(err) => return Err(err.into()),
        }
        tracing::info!(flow = flow.id(), "flow without owner deleted");
        self.publisher
            .audit(FLOW_DELETED, flow.tenant(), "", flow.id())
            .await?;
        Ok(())
    }

    async fn known(&self, id: &str) -> Result<Option<StoredFlow>, HandleError> {
        let flow = self.flows.get(id).await?;
        if flow.is_none() {
            tracing::info!(flow = id, "event for an unknown flow ignored");
        }
        Ok(flow)
    }
}

impl EventHandler for Consumer {
    type Error = HandleError;

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        match event.name() {
            FLOW_STARTED => self.started(flow_id(event)?).await,
            FLOW_STOPPED => self.stopped(flow_id(event)?).await,
            FLOW_FAILED => self.failed(flow_id(event)?).await,
            USER_DELETED => {
                let user = event
                    .payload
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .ok_or(HandleError::Malformed("payload.id must name the user"))?;
                self.user_deleted(user).await
            }
            // The queue is bound to nothing else; a stray event is not ours to keep.
            _ => Err(HandleError::Malformed("event not handled by this service")),
        }
    }
}

impl EventFailure for HandleError {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}

/// The `{id}` payload of the orchestrator's flow events.
fn flow_id(event: &Event) -> Result<&str, HandleError> {
    event
        .payload
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| ObjectId::is_valid(id))
        .ok_or(HandleError::Malformed("payload.id must be a flow id"))
}
