//! Purges from the event bus: a finished execution loses its snapshots, a deleted flow all of
//! its own, also those arriving late; bad events are dead-lettered.

use oih_snapshots::ingest::QUEUE;
use oih_snapshots::{ExecutionPurge, SERVICE_NAME};
use serde_json::{Value, json};

use crate::support::{FLOW, Hub, OTHER_FLOW, data, persistent, scoped, steps_uri};

crate::engines!(
    a_finished_execution_loses_its_snapshots,
    an_execution_known_to_have_no_snapshots_is_not_purged,
    a_deleted_flow_loses_its_snapshots,
    a_malformed_purge_event_is_dead_lettered,
);

/// `(flowExecId or null, snapshot)` of every snapshot of `flow`, sorted.
async fn contents(hub: &Hub, flow: &str) -> Vec<(Value, Value)> {
    let (_, body) = hub.get(&steps_uri(flow), "adminToken").await;
    let mut out: Vec<(Value, Value)> = data(&body)
        .iter()
        .map(|s| {
            (
                s.get("flowExecId").cloned().unwrap_or(Value::Null),
                s["snapshot"].clone(),
            )
        })
        .collect();
    // Persistent (no execution) first, then by execution and content.
    out.sort_by_key(|(e, s)| (e.as_str().map(str::to_owned), s.to_string()));
    out
}

async fn a_finished_execution_loses_its_snapshots(hub: Hub) {
    hub.seed(
        FLOW,
        &[
            (persistent(FLOW, "step_1"), b"0"),
            (scoped(FLOW, "step_1", "e1"), b"1"),
            (scoped(FLOW, "step_2", "e1"), b"2"),
            (scoped(FLOW, "step_1", "e2"), b"3"),
        ],
    )
    .await;
    // As the orchestrator publishes it.
    hub.publish_event(
        "component-orchestrator",
        "flow.execution.finished",
        json!({"flowExecId": "e1", "flowId": FLOW, "status": "succeeded"}),
    )
    .await;
    hub.wait_for(&steps_uri(FLOW), "the purge", |b| data(b).len() == 2)
        .await;
    assert_eq!(
        contents(&hub, FLOW).await,
        [(Value::Null, json!(0)), (json!("e2"), json!(3))]
    );
    // A snapshot of the finished execution that arrives late is not kept; the queue is
    // consumed in order, so once the next one is served the late one was handled.
    hub.publish_snapshot(scoped(FLOW, "step_3", "e1"), b"4")
        .await;
    hub.publish_snapshot(scoped(FLOW, "step_3", "e2"), b"5")
        .await;
    hub.wait_for(&steps_uri(FLOW), "the next snapshot", |b| {
        data(b).iter().any(|s| s["snapshot"] == 5)
    })
    .await;
    assert_eq!(
        contents(&hub, FLOW).await,
        [
            (Value::Null, json!(0)),
            (json!("e2"), json!(3)),
            (json!("e2"), json!(5))
        ]
    );
    assert_eq!(hub.queue_len(QUEUE).await, 0);
    hub.shutdown().await;
}

/// An execution whose steps all ran in place without a snapshot costs the service no purge
/// (here the service is told so of one that has a snapshot, to see that it trusts it).
async fn an_execution_known_to_have_no_snapshots_is_not_purged(hub: Hub) {
    hub.seed(
        FLOW,
        &[
            (scoped(FLOW, "step_1", "e3"), b"1"),
            (scoped(FLOW, "step_1", "e4"), b"2"),
        ],
    )
    .await;
    let finished = |exec: &str, may_have: bool| json!({"flowExecId": exec, "flowId": FLOW, "status": "succeeded", "mayHaveSnapshots": may_have});
    hub.publish_event(
        "component-orchestrator",
        "flow.execution.finished",
        finished("e3", false),
    )
    .await;
    hub.publish_event(
        "component-orchestrator",
        "flow.execution.finished",
        finished("e4", true),
    )
    .await;
    // Handled in order: once e4 is purged, e3's event was handled.
    hub.wait_for(&steps_uri(FLOW), "the purge of e4", |b| data(b).len() == 1)
        .await;
    assert_eq!(contents(&hub, FLOW).await, [(json!("e3"), json!(1))]);
    assert_eq!(hub.queue_len(QUEUE).await, 0);
    hub.shutdown().await;
}

async fn a_deleted_flow_loses_its_snapshots(hub: Hub) {
    hub.seed(
        FLOW,
        &[
            (persistent(FLOW, "step_1"), b"0"),
            (scoped(FLOW, "step_1", "e1"), b"1"),
        ],
    )
    .await;
    hub.seed(OTHER_FLOW, &[(persistent(OTHER_FLOW, "step_1"), b"2")])
        .await;
    // As the flow repository publishes it.
    hub.publish_event(
        "flow-repository",
        "flowrepo.flow.deleted",
        json!({"tenant": "TestTenant", "user": "starterId", "flowId": FLOW}),
    )
    .await;
    hub.wait_for(&steps_uri(FLOW), "the purge", |b| data(b).is_empty())
        .await;
    // A late snapshot of the deleted flow is not kept either.
    hub.publish_snapshot(persistent(FLOW, "step_2"), b"3").await;
    hub.publish_snapshot(persistent(OTHER_FLOW, "step_2"), b"4")
        .await;
    hub.wait_for(&steps_uri(OTHER_FLOW), "the next snapshot", |b| {
        data(b).len() == 2
    })
    .await;
    assert!(contents(&hub, FLOW).await.is_empty());
    hub.shutdown().await;
}

async fn a_malformed_purge_event_is_dead_lettered(hub: Hub) {
    hub.seed(FLOW, &[(scoped(FLOW, "step_1", "e1"), b"1")])
        .await;
    hub.publish_event(
        "component-orchestrator",
        "flow.execution.finished",
        json!({"flowId": FLOW, "status": "failed"}),
    )
    .await;
    hub.publish_event("flow-repository", "flowrepo.flow.deleted", json!({}))
        .await;
    hub.wait_queue_len(&format!("{SERVICE_NAME}.deadletter"), 2)
        .await;
    // The worker goes on.
    hub.publish_event(
        "component-orchestrator",
        "flow.execution.finished",
        json!({"flowExecId": "e1", "flowId": FLOW, "status": "failed"}),
    )
    .await;
    hub.wait_for(&steps_uri(FLOW), "the purge", |b| data(b).is_empty())
        .await;
    hub.shutdown().await;
}

/// Beside the orchestrator the service is not bound to `flow.execution.finished` (an earlier
/// binding is removed): the orchestrator purges through `ExecutionPurge` instead, and the
/// event, still published for other observers, costs the service nothing.
#[tokio::test]
async fn beside_the_orchestrator_executions_are_purged_without_the_event() {
    let hub = Hub::start_beside_orchestrator().await;
    hub.seed(
        FLOW,
        &[
            (persistent(FLOW, "step_1"), b"0"),
            (scoped(FLOW, "step_1", "e1"), b"1"),
        ],
    )
    .await;
    hub.seed(OTHER_FLOW, &[(persistent(OTHER_FLOW, "step_1"), b"2")])
        .await;
    hub.publish_event(
        "component-orchestrator",
        "flow.execution.finished",
        json!({"flowExecId": "e1", "flowId": FLOW, "status": "succeeded", "mayHaveSnapshots": true}),
    )
    .await;
    // Still bound to flow deletions; handled in order, so once the other flow is purged an
    // execution event would have been too.
    hub.publish_event(
        "flow-repository",
        "flowrepo.flow.deleted",
        json!({"tenant": "TestTenant", "user": "starterId", "flowId": OTHER_FLOW}),
    )
    .await;
    hub.wait_for(&steps_uri(OTHER_FLOW), "the flow's purge", |b| {
        data(b).is_empty()
    })
    .await;
    assert_eq!(
        contents(&hub, FLOW).await,
        [(Value::Null, json!(0)), (json!("e1"), json!(1))],
        "the event reached the service"
    );
    assert_eq!(hub.queue_len(SERVICE_NAME).await, 0);

    let purge = ExecutionPurge::open(hub.docs.clone()).await.expect("purge");
    assert_eq!(purge.purge("e1").await.expect("purged"), 1);
    assert_eq!(contents(&hub, FLOW).await, [(Value::Null, json!(0))]);
    // A late snapshot of the purged execution is not kept.
    hub.publish_snapshot(scoped(FLOW, "step_2", "e1"), b"3")
        .await;
    hub.publish_snapshot(persistent(FLOW, "step_2"), b"4").await;
    hub.wait_for(&steps_uri(FLOW), "the next snapshot", |b| {
        data(b).len() == 2
    })
    .await;
    assert_eq!(
        contents(&hub, FLOW).await,
        [(Value::Null, json!(0)), (Value::Null, json!(4))]
    );
    hub.shutdown().await;
}
