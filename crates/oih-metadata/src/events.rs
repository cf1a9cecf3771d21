//! Events: what the service publishes on OIH's `event-bus`, and the worker that removes a
//! deleted tenant's domains.

use std::time::Duration;

use oih_bus::{BusError, EventBus, EventFailure, EventHandler};
use oih_core::Event;
use oih_store::StoreError;
use serde_json::{Value, json};

use crate::model::Schema;
use crate::store::MetaStore;

pub const DOMAIN_CREATED: &str = "metadata.domain.created";
pub const DOMAIN_MODIFIED: &str = "metadata.domain.modified";
pub const DOMAIN_DELETED: &str = "metadata.domain.deleted";
pub const SCHEMA_CREATED: &str = "metadata.schema.created";
pub const SCHEMA_MODIFIED: &str = "metadata.schema.modified";
pub const SCHEMA_DELETED: &str = "metadata.schema.deleted";
pub const TENANT_DELETED: &str = "iam.tenant.deleted";

/// The topics the service's queue is bound to.
pub const CONSUMED: &[&str] = &[TENANT_DELETED];

#[derive(Clone)]
pub struct Publisher {
    bus: EventBus,
}

impl Publisher {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    /// `metadata.domain.created` / `.modified`: `{id}` (OIH emits neither).
    pub async fn domain(&self, name: &'static str, id: &str) -> Result<(), BusError> {
        self.bus.publish(Event::new(name, json!({"id": id}))).await
    }

    /// OIH's payload names the domain id `schema`; `id` is added with the same value.
    pub async fn domain_deleted(&self, id: &str) -> Result<(), BusError> {
        let payload = json!({"schema": id, "id": id});
        self.bus.publish(Event::new(DOMAIN_DELETED, payload)).await
    }

    /// `metadata.schema.created` / `.modified`: OIH's `{id}`, plus `uri` and `domainId`.
    pub async fn schema(&self, name: &'static str, schema: &Schema) -> Result<(), BusError> {
        let payload = json!({"id": schema.id, "uri": schema.uri, "domainId": schema.domain_id});
        self.bus.publish(Event::new(name, payload)).await
    }

    /// OIH's `{schema: uri}`, plus `id` and `domainId`.
    pub async fn schema_deleted(&self, schema: &Schema) -> Result<(), BusError> {
        let payload = json!({"schema": schema.uri, "id": schema.id, "domainId": schema.domain_id});
        self.bus.publish(Event::new(SCHEMA_DELETED, payload)).await
    }
}

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The event will never be handled: dead-letter it.
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Removes the domains (and schemas) of deleted tenants.
pub struct Consumer {
    store: MetaStore,
    publisher: Publisher,
}

impl Consumer {
    pub fn new(store: MetaStore, publisher: Publisher) -> Self {
        Self { store, publisher }
    }
}

impl EventHandler for Consumer {
    /// Pause before a failed event is handed back for another attempt.
    const RETRY_DELAY: Duration = Duration::from_secs(2);
    type Error = HandleError;

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        if event.name() != TENANT_DELETED {
            return Err(HandleError::Malformed("event not handled by this service"));
        }
        // IAM sends `{id}`; OIH's handler read `tenant`. Either is accepted.
        let tenant = ["id", "tenant"]
            .iter()
            .find_map(|k| event.payload.get(*k).and_then(Value::as_str))
            .filter(|t| !t.is_empty())
            .ok_or(HandleError::Malformed("payload.id must name the tenant"))?;
        for domain in self.store.tenant_domain_ids(tenant).await? {
            self.store.delete_domain(&domain).await?;
            tracing::info!(tenant, domain = %domain, "domain of a deleted tenant removed");
            // The deletion is done; a lost notification is logged, not retried.
            if let Err(err) = self.publisher.domain_deleted(&domain).await {
                tracing::warn!(domain = %domain, error = %err, "metadata.domain.deleted not published");
            }
        }
        Ok(())
    }
}

impl EventFailure for HandleError {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}
