//! Ingest from OIH's event bus: every audit-worthy event the other services publish becomes an
//! entry of its tenant's chain; `iam.user.deleted` also anonymises that user's entries.
//!
//! The queue is bound to name *patterns* (`iam.#`, `flowrepo.#`, …), so an event a service
//! starts publishing later is recorded without a code change (OIH bound to fixed names, several
//! of which nobody publishes). An event is acknowledged once stored, retried after a pause when
//! the store failed (nothing is lost while the database is briefly away), and dead-lettered
//! only when it cannot be stored faithfully. Redeliveries are recognised by the entry id, which
//! is derived from the event's content.

use oih_bus::{EventFailure, EventHandler};
use oih_core::Event;
use oih_store::StoreError;
use serde_json::Value;

use crate::model::NewEntry;
use crate::store::{LogStore, event_id};

/// The GDPR event.
pub const USER_DELETED: &str = "iam.user.deleted";

/// Default bindings: IAM, secrets (both OIH spellings), meta-data, flow and template
/// repositories, the flow lifecycle (not `flow.execute`, which carries step data), components.
pub const DEFAULT_TOPICS: &[&str] = &[
    "iam.#",
    "secrets.#",
    "secret-service.#",
    "metadata.#",
    "flowrepo.#",
    "templaterepo.#",
    "flow.starting",
    "flow.stopping",
    "flow.started",
    "flow.stopped",
    "flow.failed",
    "component.#",
];

/// Records events until cancelled.
pub struct Ingest {
    logs: LogStore,
}

impl Ingest {
    pub fn new(logs: LogStore) -> Self {
        Self { logs }
    }
}

impl EventHandler for Ingest {
    type Error = Failure;

    /// Stores one event (and anonymises on `iam.user.deleted`).
    async fn handle(&self, event: &Event) -> Result<(), Failure> {
        let entry = NewEntry::from_event(event).map_err(Failure::Malformed)?;
        self.logs.append(&event_id(&entry), &entry).await?;
        if event.name() == USER_DELETED {
            match event.payload.get("id").and_then(Value::as_str) {
                Some(user) if !user.is_empty() => {
                    let changed = self.logs.anonymise(user).await?;
                    tracing::info!(entries = changed, "audit entries anonymised");
                }
                // Recorded, nothing to anonymise (OIH warns and acks too).
                _ => tracing::warn!("iam.user.deleted without payload.id"),
            }
        }
        Ok(())
    }
}

impl EventFailure for Failure {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// It never will be: dead-letter it.
    #[error("malformed event: {0}")]
    Malformed(&'static str),
    /// The store failed; a later attempt may succeed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        match err {
            // The store refused the entry itself (not its availability): retrying cannot help.
            StoreError::Invalid(_) => Self::Malformed("the store refused the entry"),
            other => Self::Store(other),
        }
    }
}
