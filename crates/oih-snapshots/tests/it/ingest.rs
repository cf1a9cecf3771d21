//! Snapshots from the bus: what steps publish is served, a later snapshot replaces the earlier
//! one, nothing is lost while the store is away, and bad messages do not stop the worker.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use oih_bus::ExchangeKind;
use oih_snapshots::ingest::{COLLECTOR, DEAD_LETTER_QUEUE, QUEUE};
use serde_json::json;

use crate::support::{FLOW, Hub, STARTER, TENANT, data, persistent, scoped, step_uri, steps_uri};

crate::engines!(
    a_snapshot_published_by_a_step_is_served,
    a_snapshot_sent_through_the_flow_exchange_is_served,
    a_later_snapshot_replaces_the_earlier_one,
    malformed_messages_are_dead_lettered_and_the_worker_goes_on,
    a_snapshot_the_database_refuses_is_dead_lettered,
);

async fn a_snapshot_published_by_a_step_is_served(hub: Hub) {
    hub.publish_snapshot(persistent(FLOW, "step_1"), br#"{"lastId": 7}"#)
        .await;
    let body = hub
        .wait_for(&steps_uri(FLOW), "the snapshot", |b| data(b).len() == 1)
        .await;
    let item = &data(&body)[0];
    assert_eq!(item["snapshot"], json!({"lastId": 7}));
    assert_eq!(item["flowId"], FLOW);
    assert_eq!(item["stepId"], "step_1");
    // A persistent snapshot has no execution; OIH's view shows only these fields.
    assert!(item.get("flowExecId").is_none(), "{item}");
    let mut keys: Vec<&str> = item
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["flowId", "id", "snapshot", "stepId"]);
    // What Ferryman fetches before each message, with the starter's token.
    let (status, one) = hub.get(&step_uri(FLOW, "step_1"), "starterToken").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, json!({"data": {"lastId": 7}}));
    // A step without a snapshot starts from `{}`.
    let (status, none) = hub.get(&step_uri(FLOW, "step_2"), "starterToken").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(none, json!({"data": {}}));
    assert_eq!(hub.queue_len(QUEUE).await, 0);
    hub.shutdown().await;
}

async fn a_snapshot_sent_through_the_flow_exchange_is_served(hub: Hub) {
    // The orchestrator's topology: the flow exchange is bound into the collector with `#`.
    let exchange = format!("flow-{FLOW}");
    hub.bus
        .declare_exchange(&exchange, ExchangeKind::Topic)
        .await
        .expect("exchange");
    hub.bus
        .bind_exchange(COLLECTOR, &exchange, "#")
        .await
        .expect("binding");
    // Other traffic of the flow is not a snapshot.
    hub.publish_raw(
        &exchange,
        &format!("{exchange}.step_1.input"),
        persistent(FLOW, "step_1"),
        br#"{"data": {}}"#,
    )
    .await;
    hub.publish_raw(
        &exchange,
        &format!("{exchange}.step_1.snapshot"),
        persistent(FLOW, "step_1"),
        b"[1, 2]",
    )
    .await;
    let body = hub
        .wait_for(&steps_uri(FLOW), "the snapshot", |b| data(b).len() == 1)
        .await;
    assert_eq!(data(&body)[0]["snapshot"], json!([1, 2]));
    hub.wait_queue_len(QUEUE, 0).await;
    assert_eq!(hub.queue_len(DEAD_LETTER_QUEUE).await, 0);
    hub.shutdown().await;
}

async fn a_later_snapshot_replaces_the_earlier_one(hub: Hub) {
    for n in 1..=3 {
        hub.publish_snapshot(
            persistent(FLOW, "step_1"),
            json!({"n": n}).to_string().as_bytes(),
        )
        .await;
    }
    for n in 1..=2 {
        hub.publish_snapshot(
            scoped(FLOW, "step_1", "exec-1"),
            json!({"e": n}).to_string().as_bytes(),
        )
        .await;
    }
    let body = hub
        .wait_for(&steps_uri(FLOW), "the last snapshots", |b| {
            let d = data(b);
            d.len() == 2
                && d.iter().any(|s| s["snapshot"] == json!({"n": 3}))
                && d.iter().any(|s| s["snapshot"] == json!({"e": 2}))
        })
        .await;
    let scoped_one = data(&body)
        .iter()
        .find(|s| s["snapshot"] == json!({"e": 2}))
        .expect("scoped");
    assert_eq!(scoped_one["flowExecId"], "exec-1");
    // One execution's snapshots, as a logic gateway reads them.
    let (_, of_exec) = hub
        .get(
            &format!("{}?flowExecId=exec-1", steps_uri(FLOW)),
            "starterToken",
        )
        .await;
    assert_eq!(data(&of_exec).len(), 1);
    assert_eq!(data(&of_exec)[0]["snapshot"], json!({"e": 2}));
    // The step's snapshot is the one written last, whichever execution it belongs to.
    let (_, newest) = hub.get(&step_uri(FLOW, "step_1"), "starterToken").await;
    assert_eq!(newest, json!({"data": {"e": 2}}));
    hub.publish_snapshot(persistent(FLOW, "step_1"), br#"{"n": 4}"#)
        .await;
    hub.wait_for(&step_uri(FLOW, "step_1"), "the newest", |b| {
        b["data"] == json!({"n": 4})
    })
    .await;
    hub.shutdown().await;
}

async fn malformed_messages_are_dead_lettered_and_the_worker_goes_on(hub: Hub) {
    hub.publish_snapshot(persistent(FLOW, "step_1"), b"not json")
        .await;
    hub.publish_snapshot(json!({"stepId": "step_1", "userId": STARTER}), b"{}")
        .await;
    hub.publish_snapshot(
        json!({"taskId": FLOW, "stepId": 5, "tenant": TENANT}),
        b"{}",
    )
    .await;
    hub.publish_snapshot(persistent(FLOW, "step_2"), br#"{"ok": true}"#)
        .await;
    let body = hub
        .wait_for(&steps_uri(FLOW), "the good snapshot", |b| {
            data(b).len() == 1
        })
        .await;
    assert_eq!(data(&body)[0]["stepId"], "step_2");
    hub.wait_queue_len(DEAD_LETTER_QUEUE, 3).await;
    assert_eq!(hub.queue_len(QUEUE).await, 0);
    hub.shutdown().await;
}

#[tokio::test]
async fn nothing_is_lost_while_the_store_is_away() {
    let (hub, flaky) = Hub::start_flaky().await;
    flaky.fail_updates.store(3, Ordering::SeqCst);
    hub.publish_snapshot(persistent(FLOW, "step_1"), br#"{"n": 1}"#)
        .await;
    hub.publish_snapshot(persistent(FLOW, "step_1"), br#"{"n": 2}"#)
        .await;
    // Retried in place, in order: the later snapshot still wins.
    hub.wait_for(&step_uri(FLOW, "step_1"), "the retried snapshot", |b| {
        b["data"] == json!({"n": 2})
    })
    .await;
    assert_eq!(flaky.fail_updates.load(Ordering::SeqCst), 0);
    hub.wait_queue_len(QUEUE, 0).await;
    assert_eq!(hub.queue_len(DEAD_LETTER_QUEUE).await, 0);
    hub.shutdown().await;
}

/// PostgreSQL refuses `\u0000` in JSON text (SQLite keeps it): after a few attempts the
/// message is dead-lettered rather than blocking the queue, and nothing is lost.
async fn a_snapshot_the_database_refuses_is_dead_lettered(hub: Hub) {
    hub.publish_snapshot(persistent(FLOW, "step_1"), br#"{"s": "a\u0000b"}"#)
        .await;
    hub.publish_snapshot(persistent(FLOW, "step_2"), br#"{"ok": 1}"#)
        .await;
    let body = hub
        .wait_for(&steps_uri(FLOW), "the next snapshot", |b| {
            data(b).iter().any(|s| s["stepId"] == "step_2")
        })
        .await;
    let stored = data(&body).iter().any(|s| s["stepId"] == "step_1");
    hub.wait_queue_len(DEAD_LETTER_QUEUE, u64::from(!stored))
        .await;
    hub.shutdown().await;
}
