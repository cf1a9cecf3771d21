//! Purges driven by the event bus: `flow.execution.finished` (published by the orchestrator,
//! `{flowExecId, flowId, status, mayHaveSnapshots}`) removes that execution's snapshots
//! unless it says there can be none; `flowrepo.flow.deleted`
//! (`{tenant, user, flowId}`) removes all of the flow's. OIH purged executions with an HTTP
//! call from the orchestrator that could fire early or never, and kept a deleted flow's
//! snapshots forever.
//!
//! An event is acknowledged once its purge is done, retried after a pause when the store failed,
//! and dead-lettered when it names nothing to purge. Purges are idempotent, so redeliveries
//! are harmless.

use oih_bus::{EventFailure, EventHandler};
use oih_core::Event;
use oih_store::StoreError;
use serde_json::Value;

use crate::store::SnapshotStore;

pub const EXECUTION_FINISHED: &str = "flow.execution.finished";
pub const FLOW_DELETED: &str = "flowrepo.flow.deleted";
/// The event names the service's queue is bound to.
pub const TOPICS: &[&str] = &[EXECUTION_FINISHED, FLOW_DELETED];
/// Bound to instead when the orchestrator runs in the same process: it purges finished
/// executions through [`crate::ExecutionPurge`].
pub const TOPICS_BESIDE_ORCHESTRATOR: &[&str] = &[FLOW_DELETED];

/// Purges until cancelled.
pub struct Purge {
    store: SnapshotStore,
}

impl Purge {
    pub fn new(store: SnapshotStore) -> Self {
        Self { store }
    }
}

impl EventHandler for Purge {
    type Error = Failure;

    /// Purges what one event names.
    async fn handle(&self, event: &Event) -> Result<(), Failure> {
        let payload = &event.payload;
        match event.name() {
            EXECUTION_FINISHED => {
                let exec = text(payload, "flowExecId")?;
                // The orchestrator knows an execution whose steps all ran in place and took
                // none: nothing to purge, and none can arrive late.
                if payload.get("mayHaveSnapshots") == Some(&Value::Bool(false)) {
                    tracing::debug!(flow_exec_id = exec, "execution without snapshots");
                    return Ok(());
                }
                let removed = self.store.purge_execution(exec).await?;
                tracing::debug!(flow_exec_id = exec, removed, "execution snapshots purged");
            }
            FLOW_DELETED => {
                let flow = text(payload, "flowId")?;
                let removed = self.store.purge_flow(flow).await?;
                tracing::debug!(flow_id = flow, removed, "flow snapshots purged");
            }
            other => return Err(Failure::Malformed(format!("unexpected event {other}"))),
        }
        Ok(())
    }
}

impl EventFailure for Failure {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}

/// A string field that must be present.
fn text<'a>(payload: &'a Value, key: &str) -> Result<&'a str, Failure> {
    payload
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Failure::Malformed(format!("no `{key}` string")))
}

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// It never will be: dead-letter it.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// The store failed; a later attempt may succeed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
