//! IAM's events on OIH's event bus (iam-ils.md §14). Payloads carry OIH's `id` and also
//! `user` / `tenant`, which is what the consumers (secret-service, meta-data-repository,
//! app-directory) actually read.

use oih_bus::EventBus;
use oih_core::Event;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Events {
    bus: EventBus,
}

impl Events {
    pub fn new(bus: EventBus) -> Self {
        Self { bus }
    }

    /// Publishes after the write it reports has committed. A bus failure is logged, not
    /// returned: the change is done, and answering 500 would invite a retry that conflicts.
    pub async fn publish(&self, name: &str, payload: Value) {
        if let Err(err) = self.bus.publish(Event::new(name, payload)).await {
            tracing::warn!(event = name, error = %err, "could not publish IAM event");
        }
    }

    pub async fn user_created(&self, id: &str, username: &str) {
        self.publish(
            "iam.user.created",
            json!({"id": id, "user": id, "username": username}),
        )
        .await;
    }

    pub async fn user_modified(&self, id: &str, username: &str) {
        self.publish(
            "iam.user.modified",
            json!({"id": id, "user": id, "username": username}),
        )
        .await;
    }

    pub async fn user_deleted(&self, id: &str) {
        self.publish("iam.user.deleted", json!({"id": id, "user": id}))
            .await;
    }

    pub async fn login_failed(&self, username: &str, reason: &str) {
        self.publish(
            "iam.user.loginFailed",
            json!({"user": username, "reason": reason}),
        )
        .await;
    }

    pub async fn tenant_created(&self, id: &str, name: &str) {
        self.publish(
            "iam.tenant.created",
            json!({"id": id, "tenant": id, "name": name}),
        )
        .await;
    }

    pub async fn tenant_modified(&self, id: &str) {
        self.publish("iam.tenant.modified", json!({"id": id, "tenant": id}))
            .await;
    }

    pub async fn tenant_deleted(&self, id: &str) {
        self.publish("iam.tenant.deleted", json!({"id": id, "tenant": id}))
            .await;
    }

    /// `iam.role.created` / `deleted`: `{id, role, tenant}`.
    pub async fn role(&self, action: &str, role_id: &str, tenant: Option<&str>) {
        self.publish(
            &format!("iam.role.{action}"),
            json!({"id": role_id, "role": role_id, "tenant": tenant}),
        )
        .await;
    }

    /// `iam.role.modified` also carries the role's permissions after the change, as OIH's.
    pub async fn role_modified(&self, role_id: &str, tenant: Option<&str>, permissions: &[String]) {
        self.publish(
            "iam.role.modified",
            json!({"id": role_id, "role": role_id, "tenant": tenant, "permissions": permissions}),
        )
        .await;
    }

    /// `{id, user}`: `user` is the token's account, so the audit log can attribute it.
    pub async fn token_created(&self, id: &str, account_id: &str) {
        self.publish("iam.token.created", json!({"id": id, "user": account_id}))
            .await;
    }

    pub async fn token_deleted(&self, payload: Value) {
        self.publish("iam.token.deleted", payload).await;
    }
}
