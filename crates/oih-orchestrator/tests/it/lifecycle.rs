//! Starting and stopping flows over the event bus.

use oih_orchestrator::topology::FlowNames;
use serde_json::json;

use crate::engines;
use crate::support::{Hub, TENANT, flow, linear_flow, node};

engines!(
    starting_declares_the_topology_and_answers_started,
    bad_fields_fail_the_flow_naming_node_and_field,
    unknown_components_and_stray_routes_fail_the_flow,
    stopping_removes_the_queues_and_answers_stopped,
    malformed_events_are_dead_lettered,
    a_restarted_orchestrator_runs_its_flows_again,
);

async fn starting_declares_the_topology_and_answers_started(mut hub: Hub) {
    let flow = linear_flow(TENANT, "userId");
    hub.started(&flow).await;
    let names = FlowNames::new(flow["id"].as_str().expect("id"));
    for step in ["step_1", "step_2", "step_3"] {
        // Both queues exist (and are empty: nothing was sent yet).
        assert_eq!(
            hub.bus
                .queue_len(&names.messages_queue(step))
                .await
                .expect("messages"),
            0
        );
        assert_eq!(
            hub.bus
                .queue_len(&names.rebounds_queue(step))
                .await
                .expect("rebounds"),
            0
        );
    }
    // A redelivered flow.starting is answered again without a second deployment.
    hub.started(&flow).await;
    hub.shutdown().await;
}

async fn bad_fields_fail_the_flow_naming_node_and_field(mut hub: Hub) {
    let flow = flow(
        TENANT,
        "userId",
        vec![
            node("step_1", "noop", json!({})),
            node("step_2", "jsonata", json!({"expression": "$$$ (("})),
        ],
        &[("step_1", "step_2")],
    );
    let (name, payload) = hub.start_flow(&flow).await;
    assert_eq!(name, "flow.failed");
    let reason = payload["reason"].as_str().expect("reason");
    assert!(
        reason.contains("step_2") && reason.contains("expression"),
        "{reason}"
    );
    // Nothing was deployed.
    let names = FlowNames::new(flow["id"].as_str().expect("id"));
    assert!(
        hub.bus
            .queue_len(&names.messages_queue("step_1"))
            .await
            .is_err()
    );

    let misspelt = crate::support::flow(
        TENANT,
        "userId",
        vec![node("step_1", "log", json!({"levle": "info"}))],
        &[],
    );
    let (name, payload) = hub.start_flow(&misspelt).await;
    assert_eq!(name, "flow.failed");
    assert!(
        payload["reason"]
            .as_str()
            .expect("reason")
            .contains("step_1"),
        "{payload}"
    );

    // A node's own prefetch must be a sensible count.
    let mut greedy = linear_flow(TENANT, "userId");
    greedy["graph"]["nodes"][2]["nodeSettings"] = json!({"prefetch": 0});
    let (name, payload) = hub.start_flow(&greedy).await;
    assert_eq!(name, "flow.failed");
    let reason = payload["reason"].as_str().expect("reason");
    assert!(
        reason.contains("step_3") && reason.contains("nodeSettings.prefetch"),
        "{reason}"
    );
    hub.shutdown().await;
}

async fn unknown_components_and_stray_routes_fail_the_flow(mut hub: Hub) {
    let mut unknown = linear_flow(TENANT, "userId");
    unknown["graph"]["nodes"][1]["componentId"] = json!("5f1ad0d2ad7a2a4e91234567");
    let (name, payload) = hub.start_flow(&unknown).await;
    assert_eq!(name, "flow.failed");
    let reason = payload["reason"].as_str().expect("reason");
    assert!(
        reason.contains("step_2") && reason.contains("not found"),
        "{reason}"
    );

    // A router naming a node that is not behind one of its edges.
    let stray = flow(
        TENANT,
        "userId",
        vec![
            node(
                "step_1",
                "router",
                json!({"routes": [{"condition": "true", "to": ["step_3"]}]}),
            ),
            node("step_2", "noop", json!({})),
            node("step_3", "noop", json!({})),
        ],
        &[("step_1", "step_2")],
    );
    let (name, payload) = hub.start_flow(&stray).await;
    assert_eq!(name, "flow.failed");
    assert!(
        payload["reason"]
            .as_str()
            .expect("reason")
            .contains("step_3"),
        "{payload}"
    );
    hub.shutdown().await;
}

async fn stopping_removes_the_queues_and_answers_stopped(mut hub: Hub) {
    let flow = linear_flow(TENANT, "userId");
    hub.started(&flow).await;
    let id = flow["id"].as_str().expect("id");
    let mut stopping = flow.clone();
    stopping["status"] = json!("stopping");
    hub.publish("flow-repository", "flow.stopping", stopping)
        .await;
    let (name, _) = hub.next_flow_event(id).await;
    assert_eq!(name, "flow.stopped");
    let names = FlowNames::new(id);
    for step in ["step_1", "step_2", "step_3"] {
        assert!(
            hub.bus
                .queue_len(&names.messages_queue(step))
                .await
                .is_err(),
            "{step}"
        );
        assert!(
            hub.bus
                .queue_len(&names.rebounds_queue(step))
                .await
                .is_err(),
            "{step}"
        );
    }
    // What the steps rejected is kept beyond the stop.
    assert_eq!(
        hub.bus
            .queue_len(&names.deadletter_queue())
            .await
            .expect("the dead-letter queue is kept"),
        0
    );
    // The flow no longer runs: an execution for it is ignored.
    let exec = hub.execute(&flow, json!({"n": 1})).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(hub.executions.get(&exec).await.expect("store").is_none());
    hub.shutdown().await;
}

async fn malformed_events_are_dead_lettered(mut hub: Hub) {
    hub.publish(
        "flow-repository",
        "flow.starting",
        json!({"id": "x", "graph": "not a graph"}),
    )
    .await;
    hub.publish("webhooks", "flow.execute", json!({"msg": {}}))
        .await;
    // Handled in order: once a valid flow has started, both were settled.
    hub.started(&linear_flow(TENANT, "userId")).await;
    assert_eq!(
        hub.bus
            .queue_len("component-orchestrator.deadletter")
            .await
            .expect("dead letters"),
        2
    );
    hub.shutdown().await;
}

async fn a_restarted_orchestrator_runs_its_flows_again(mut hub: Hub) {
    let running = linear_flow(TENANT, "userId");
    let stopped = linear_flow(TENANT, "userId");
    hub.started(&running).await;
    hub.started(&stopped).await;
    let id = stopped["id"].as_str().expect("id");
    hub.publish(
        "flow-repository",
        "flow.stopping",
        json!({"id": id, "graph": stopped["graph"]}),
    )
    .await;
    assert_eq!(hub.next_flow_event(id).await.0, "flow.stopped");
    assert_eq!(hub.deployed().await, [running["id"].as_str().expect("id")]);

    // No flow.starting after the restart: the flow runs because it was deployed.
    let hub = hub.restart().await;
    let exec = hub.execute(&running, json!({"n": 2})).await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(hub.deployed().await.len(), 1);
    hub.shutdown().await;
}
