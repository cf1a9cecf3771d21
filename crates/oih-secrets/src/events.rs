//! The events secret-service publishes (data-services.md §3.9) and the IAM deletions it
//! consumes. Payloads carry ids and names only, never a value.

use std::time::Duration;

use oih_bus::{BusError, EventBus, EventFailure, EventHandler, EventStream};
use oih_core::{Event, Owner, OwnerType};
use oih_http::Worker;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::service::Service;
use crate::store::SecretsError;

pub const SECRET_CREATED: &str = "secrets.secret.created";
pub const SECRET_DELETED: &str = "secrets.secret.deleted";
pub const TOKEN_GET: &str = "secrets.token.get";
pub const OWNER_ADDED: &str = "secrets.secret.ownerAdded";
pub const OWNER_REMOVED: &str = "secrets.secret.ownerRemoved";
pub const CLIENT_CREATED: &str = "secrets.authclient.created";
pub const CLIENT_DELETED: &str = "secrets.authclient.deleted";

pub const USER_DELETED: &str = "iam.user.deleted";
pub const TENANT_DELETED: &str = "iam.tenant.deleted";

/// Publishing side.
#[derive(Clone)]
pub struct Events {
    bus: EventBus,
}

impl Events {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    /// Publishes after the change it reports has been stored. A bus failure is logged rather
    /// than turned into an error: the change happened and the caller must learn that.
    pub async fn emit(&self, name: &str, payload: Value) {
        if let Err(err) = self.bus.publish(Event::new(name, payload)).await {
            tracing::warn!(event = name, error = %err, "could not publish event");
        }
    }
}

/// Subscribes to IAM's deletions. Done when the module is built, so that the queue and its
/// bindings exist before `serve` starts and nothing published meanwhile is missed.
pub async fn subscribe_iam_deletions(bus: &EventBus) -> Result<EventStream, BusError> {
    bus.subscribe(&[USER_DELETED, TENANT_DELETED], 10).await
}

/// Removes a deleted IAM user's or tenant's ownerships of secrets and (unlike OIH) of auth
/// clients; what they owned alone is deleted. IAM publishes `{id}`; OIH's
/// secret-service read `payload.user` / `payload.tenant`, which IAM never sent. Both are
/// accepted.
pub fn iam_deletions(stream: EventStream, service: Service) -> Worker {
    Worker::new(
        "secret-service-iam-deletions",
        move |cancel: CancellationToken| async move {
            stream.consume_with(IamDeletions { service }, cancel).await;
            Ok(())
        },
    )
}

struct IamDeletions {
    service: Service,
}

impl EventHandler for IamDeletions {
    const RETRY_DELAY: Duration = Duration::from_secs(1);
    type Error = DeletionError;

    async fn handle(&self, event: &Event) -> Result<(), DeletionError> {
        let (kind, legacy_key) = match event.name() {
            USER_DELETED => (OwnerType::User, "user"),
            _ => (OwnerType::Tenant, "tenant"),
        };
        let id = ["id", legacy_key]
            .iter()
            .find_map(|k| event.payload.get(*k).and_then(Value::as_str))
            .ok_or(DeletionError::NoId)?;
        let owner = Owner {
            id: id.to_owned(),
            kind,
        };
        self.service.remove_owner_everywhere(&owner).await?;
        self.service.remove_client_owner_everywhere(&owner).await?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
enum DeletionError {
    #[error("deletion event without an id")]
    NoId,
    #[error("could not apply an IAM deletion: {0}")]
    Store(#[from] SecretsError),
}

impl EventFailure for DeletionError {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::NoId)
    }
}
