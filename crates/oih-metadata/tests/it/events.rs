//! `iam.tenant.deleted`: the tenant's domains and schemas go, whichever key names the tenant.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::engines;
use crate::support::{Hub, OTHER_TENANT, TENANT, schema_path};

engines!(
    tenant_deleted_removes_its_domains,
    malformed_tenant_event_is_dead_lettered
);

async fn wait_until_gone(hub: &Hub, domain: &str) {
    for _ in 0..100 {
        let (status, _) = hub.get(&format!("/api/v1/domains/{domain}"), "admin").await;
        if status == StatusCode::NOT_FOUND {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("domain {domain} was not removed");
}

async fn tenant_deleted_removes_its_domains(mut hub: Hub) {
    let a = hub.domain("user1", "a").await;
    let s = json!({"$id": "https://x.org/s.json", "type": "object"});
    assert_eq!(hub.schema("user1", &a, s).await.0, StatusCode::OK);
    let c = hub.domain("other", "c").await;
    // IAM's payload key.
    hub.publish("iam", "iam.tenant.deleted", json!({"id": TENANT}))
        .await;
    wait_until_gone(&hub, &a).await;
    let deleted = hub.expect_event("metadata.domain.deleted").await;
    assert_eq!(deleted["schema"], a.as_str());
    assert_eq!(
        hub.get(&schema_path(&a, "s.json"), "admin").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        hub.get(&format!("/api/v1/domains/{c}"), "admin").await.0,
        StatusCode::OK
    );
    // OIH's handler read `tenant`.
    hub.publish("iam", "iam.tenant.deleted", json!({"tenant": OTHER_TENANT}))
        .await;
    wait_until_gone(&hub, &c).await;
    hub.shutdown().await;
}

async fn malformed_tenant_event_is_dead_lettered(hub: Hub) {
    let a = hub.domain("user1", "a").await;
    hub.publish("iam", "iam.tenant.deleted", json!({"name": "?"}))
        .await;
    let mut dead = 0;
    for _ in 0..100 {
        dead = hub
            .bus
            .queue_len("meta-data-repository.deadletter")
            .await
            .expect("queue length");
        if dead > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead, 1);
    assert_eq!(
        hub.get(&format!("/api/v1/domains/{a}"), "user1").await.0,
        StatusCode::OK
    );
    hub.shutdown().await;
}
