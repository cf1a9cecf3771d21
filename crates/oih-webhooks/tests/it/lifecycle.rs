//! The flow projection fed by `flow.starting` / `flow.started` / `flow.stopping` /
//! `flow.stopped` (runtime.md §5.5).

use std::time::Duration;

use axum::http::StatusCode;
use oih_webhooks::Config;
use oih_webhooks::store::Store;
use serde_json::json;

use crate::support::{Hub, config, flow_payload, hook_uri, open_flow};

async fn head(hub: &Hub, uri: &str) -> StatusCode {
    hub.hook("HEAD", uri, None, "").await.0
}

async fn lifecycle(hub: Hub) {
    let flow = flow_payload(json!({}));
    let uri = hook_uri(&flow);
    let id = flow["id"].as_str().expect("id");
    assert_eq!(head(&hub, &uri).await, StatusCode::NOT_FOUND);

    hub.starting(&flow).await;
    // Starting is not yet hookable.
    assert_eq!(head(&hub, &uri).await, StatusCode::NOT_FOUND);
    let stored = hub
        .docs
        .get(oih_webhooks::store::FLOWS, id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.body["graph"], flow["graph"]);
    assert_eq!(stored.body["flowSettings"], flow["flowSettings"]);
    assert_eq!(stored.body["tenant"], "tenant1");
    assert_eq!(stored.body["owners"], flow["owners"]);
    assert_eq!(stored.body["startedBy"], "ownerId");

    hub.publish("flow.started", json!({"id": id})).await;
    hub.wait_for_status(id, Some("active")).await;
    assert_eq!(head(&hub, &uri).await, StatusCode::OK);

    hub.publish("flow.stopping", flow.clone()).await;
    hub.wait_for_status(id, None).await;
    assert_eq!(head(&hub, &uri).await, StatusCode::NOT_FOUND);

    // flow.stopped removes too (a flow re-started and stopped by the orchestrator).
    hub.activate(&flow).await;
    hub.publish("flow.stopped", json!({"id": id})).await;
    hub.wait_for_status(id, None).await;
    hub.shutdown().await;
}

#[tokio::test]
async fn starting_started_stopping_stopped() {
    lifecycle(Hub::start().await).await;
}

#[tokio::test]
async fn starting_started_stopping_stopped_postgres() {
    if let Some(hub) = Hub::start_postgres().await {
        lifecycle(hub).await;
    }
}

#[tokio::test]
async fn started_for_an_unknown_flow_stores_nothing() {
    let hub = Hub::start().await;
    let unknown = flow_payload(json!({}));
    let id = unknown["id"].as_str().expect("id");
    hub.publish("flow.started", json!({"id": id})).await;
    // Processed in order: once a later flow is active, the earlier event was handled.
    let flow = open_flow(&hub).await;
    assert_eq!(head(&hub, &hook_uri(&flow)).await, StatusCode::OK);
    assert_eq!(hub.stored_status(id).await, None);
    assert_eq!(hub.queue_len("webhooks.deadletter").await, 0);
    hub.shutdown().await;
}

#[tokio::test]
async fn scheduled_flows_are_hookable_only_when_allowed() {
    let hub = Hub::start().await;
    let mut scheduled = flow_payload(json!({}));
    scheduled["cron"] = json!("*/5 * * * *");
    let id = scheduled["id"].as_str().expect("id").to_owned();
    hub.publish("flow.starting", scheduled.clone()).await;
    let open = open_flow(&hub).await;
    assert_eq!(head(&hub, &hook_uri(&open)).await, StatusCode::OK);
    assert_eq!(hub.stored_status(&id).await, None);
    hub.shutdown().await;

    let hub = Hub::start_with(Config {
        allow_run_scheduled_flows: true,
        ..config()
    })
    .await;
    hub.activate(&scheduled).await;
    assert_eq!(head(&hub, &hook_uri(&scheduled)).await, StatusCode::OK);
    hub.shutdown().await;
}

#[tokio::test]
async fn malformed_events_are_dead_lettered() {
    let hub = Hub::start().await;
    hub.publish("flow.started", json!({"id": "not-an-id"}))
        .await;
    let mut no_graph = flow_payload(json!({}));
    no_graph["graph"] = json!("nope");
    hub.publish("flow.starting", no_graph).await;
    for _ in 0..100 {
        if hub.queue_len("webhooks.deadletter").await == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(hub.queue_len("webhooks.deadletter").await, 2);
    hub.shutdown().await;
}

#[tokio::test]
async fn a_store_failure_is_retried_not_lost() {
    let (hub, flaky) = Hub::start_flaky().await;
    flaky
        .fail_updates
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let flow = flow_payload(json!({}));
    hub.publish("flow.starting", flow.clone()).await;
    let id = flow["id"].as_str().expect("id");
    hub.wait_for_status(id, Some("starting")).await;
    assert_eq!(
        flaky.fail_updates.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(hub.queue_len("webhooks.deadletter").await, 0);
    hub.shutdown().await;
}

/// A hub whose active flow was hooked (so it is in memory, for `cache_ms`) and then removed
/// through another replica, which this one does not hear of; and the flow's hook.
async fn removed_by_another_replica(cache_ms: u64) -> (Hub, String) {
    let hub = Hub::start_with(Config {
        webhooks_flow_cache_ms: cache_ms,
        ..config()
    })
    .await;
    let flow = open_flow(&hub).await;
    let uri = hook_uri(&flow);
    assert_eq!(head(&hub, &uri).await, StatusCode::OK);
    let other_replica = Store::open(hub.docs.clone(), Duration::ZERO)
        .await
        .expect("store");
    other_replica
        .remove_flow(flow["id"].as_str().expect("id"))
        .await
        .expect("remove");
    (hub, uri)
}

/// A replica keeps an active flow in memory for `WEBHOOKS_FLOW_CACHE_MS`: a change another
/// replica made (its lifecycle events went there) shows here once that copy expires.
#[tokio::test]
async fn another_replicas_change_shows_once_the_copy_in_memory_expires() {
    let (hub, uri) = removed_by_another_replica(60_000).await;
    assert_eq!(head(&hub, &uri).await, StatusCode::OK, "served from memory");
    hub.shutdown().await;

    let (hub, uri) = removed_by_another_replica(0).await;
    assert_eq!(head(&hub, &uri).await, StatusCode::NOT_FOUND, "no cache");
    hub.shutdown().await;

    let (hub, uri) = removed_by_another_replica(50).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(head(&hub, &uri).await, StatusCode::NOT_FOUND, "expired");
    hub.shutdown().await;
}
