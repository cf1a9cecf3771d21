//! Events published (payloads consumers can read, never a value) and IAM deletions consumed.

use std::time::Duration;

use anyhow::Result;
use axum::http::StatusCode;
use oih_bus::EventBus;
use oih_core::Event;
use serde_json::json;

use crate::support::{Infra, config, simple};

#[tokio::test]
async fn lifecycle_events_carry_ids_not_values() -> Result<()> {
    let infra = Infra::new().await?;
    let mut listener = infra.listen().await?;
    let app = infra.app(config(infra.dir.path())).await?;

    let id = app.create("u1", simple("db", "bob", "hunter2")).await?;
    let created = listener.expect("secrets.secret.created").await?;
    assert_eq!(created.payload, json!({"id": id, "name": "db"}));
    assert_eq!(created.headers.service_name, "secret-service");

    let path = format!("/api/v1/secrets/{id}");
    app.get(&path, "u1raw").await?;
    let got = listener.expect("secrets.token.get").await?;
    assert_eq!(
        got.payload,
        json!({"message": "requested RAW Token", "id": id, "requester": "u1"})
    );

    app.post(
        &format!("{path}/owners"),
        "u1",
        json!({"id": "t1", "type": "TENANT"}),
    )
    .await?;
    let added = listener.expect("secrets.secret.ownerAdded").await?;
    assert_eq!(
        added.payload,
        json!({"id": id, "ownerId": "t1", "type": "TENANT"})
    );

    app.delete(&format!("{path}/owners?id=t1&type=TENANT"), "u1")
        .await?;
    let removed = listener.expect("secrets.secret.ownerRemoved").await?;
    assert_eq!(
        removed.payload,
        json!({"id": id, "ownerId": "t1", "type": "TENANT"})
    );

    assert_eq!(
        app.delete(&path, "u1").await?.status,
        StatusCode::NO_CONTENT
    );
    let deleted = listener.expect("secrets.secret.deleted").await?;
    assert_eq!(deleted.payload, json!({"id": id}));

    // Nothing on the bus ever carried a value.
    let rest = listener.drain().await;
    for event in [created, got, added, removed, deleted].iter().chain(&rest) {
        let wire = serde_json::to_string(event)?;
        assert!(!wire.contains("hunter2") && !wire.contains("bob"), "{wire}");
    }
    app.shutdown().await
}

async fn publish(infra: &Infra, name: &str, payload: serde_json::Value) -> Result<()> {
    let iam = EventBus::new(infra.bus.clone(), "iam").await?;
    iam.publish(Event::new(name, payload)).await?;
    Ok(())
}

/// Waits until `done` holds (the consumer runs in the background).
async fn eventually<F, Fut>(mut done: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    for _ in 0..50 {
        if done().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("condition not reached")
}

#[tokio::test]
async fn iam_user_and_tenant_deletions_remove_ownerships() -> Result<()> {
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let sole = app.create("u2", simple("sole", "a", "b")).await?;
    let shared = app
        .create("u1", json!({"name": "shared", "type": "SIMPLE", "owners": [{"id": "u2", "type": "USER"}, {"id": "t1", "type": "TENANT"}], "value": {"username": "a", "passphrase": "b"}}))
        .await?;

    let client = crate::support::oa2_client(&app, "u2", "https://provider.example/token").await?;

    // IAM's actual payload is {id}. The sole owner's secret goes, the shared one loses u2,
    // and u2's auth client goes too.
    publish(&infra, "iam.user.deleted", json!({"id": "u2"})).await?;
    eventually(|| async {
        let client_gone = app
            .get(&format!("/api/v1/auth-clients/{client}"), "u2")
            .await?
            .status
            == StatusCode::NOT_FOUND;
        let sole_gone = app
            .get(&format!("/api/v1/secrets/{sole}"), "u1")
            .await?
            .status
            == StatusCode::NOT_FOUND;
        let kept = app.get(&format!("/api/v1/secrets/{shared}"), "u1").await?;
        Ok(sole_gone
            && client_gone
            && kept.body["data"]["owners"]
                == json!([{"id": "u1", "type": "USER"}, {"id": "t1", "type": "TENANT"}]))
    })
    .await?;

    // OIH's own handler read payload.tenant; that form works too.
    publish(&infra, "iam.tenant.deleted", json!({"tenant": "t1"})).await?;
    eventually(|| async {
        let reply = app.get(&format!("/api/v1/secrets/{shared}"), "u1").await?;
        Ok(reply.body["data"]["owners"] == json!([{"id": "u1", "type": "USER"}]))
    })
    .await?;
    app.shutdown().await
}
