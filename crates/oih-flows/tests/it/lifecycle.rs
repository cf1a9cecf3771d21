//! Start/stop through the event bus, the orchestrator's answers, and GDPR deletion.

use axum::http::StatusCode;
use serde_json::json;

use std::sync::atomic::Ordering;

use crate::support::{Hub, UNKNOWN_ID, messages, sample_flow};

crate::engines!(
    start_and_stop_through_the_bus,
    start_and_stop_errors,
    multiple_start_and_stop,
    failed_flows_are_stopped,
    malformed_events_are_dead_lettered_and_unknown_flows_ignored,
    deleted_users_lose_their_flows
);

const ORCHESTRATOR: &str = "component-orchestrator";

async fn start_and_stop_through_the_bus(mut hub: Hub) {
    let id = hub.create("controlToken", sample_flow("runner")).await;

    let (status, res) = hub
        .post(&format!("/flows/{id}/start"), "controlToken", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(
        res,
        json!({"data": {"id": id, "status": "starting"}, "meta": {}})
    );
    let starting = hub.expect_event("flow.starting").await;
    assert_eq!(starting["id"], id.as_str());
    assert_eq!(starting["status"], "starting");
    assert_eq!(starting["startedBy"], "controlId");
    assert_eq!(starting["graph"]["nodes"][0]["id"], "NodeOne");
    assert_eq!(starting["graphVersion"], 1);
    assert!(starting["owners"].is_array() && starting["createdAt"].is_string());

    // Editing, deleting or starting again is refused while it runs.
    let (status, res) = hub
        .patch(
            &format!("/flows/{id}"),
            "controlToken",
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        messages(&res),
        ["Flow is not inactive. Current status: starting"]
    );
    let (status, res) = hub.delete(&format!("/flows/{id}"), "controlToken").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(res["errors"][0]["code"], 409);
    let (status, res) = hub
        .post(&format!("/flows/{id}/start"), "controlToken", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(messages(&res), ["Flow is already starting"]);
    // OIH reported this 409 in the bulk answer but updated the flow anyway.
    let (status, res) = hub
        .patch(
            "/flows/bulk",
            "adminToken",
            json!([{"id": id, "name": "x"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        res["data"][0],
        json!({"errors": [{"message": format!("Flow {id} is not inactive. Current status: starting"), "code": 409}]})
    );
    let (_, flow) = hub.get(&format!("/flows/{id}"), "controlToken").await;
    assert_eq!(flow["data"]["name"], "runner");

    hub.publish(ORCHESTRATOR, "flow.started", json!({"id": id}))
        .await;
    hub.wait_for_status(&id, "active").await;
    let (status, res) = hub
        .post(&format!("/flows/{id}/start"), "controlToken", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(messages(&res), ["Flow is already active"]);

    let (status, res) = hub
        .post(&format!("/flows/{id}/stop"), "controlToken", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res["data"], json!({"id": id, "status": "stopping"}));
    let stopping = hub.expect_event("flow.stopping").await;
    assert_eq!(stopping["id"], id.as_str());
    assert_eq!(stopping["status"], "stopping");
    let (status, res) = hub
        .post(&format!("/flows/{id}/stop"), "controlToken", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(messages(&res), ["Flow is already stopping"]);
    let (status, res) = hub
        .post(&format!("/flows/{id}/start"), "controlToken", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        messages(&res),
        ["Flow cannot be started while it is stopping"]
    );

    hub.publish(ORCHESTRATOR, "flow.stopped", json!({"id": id}))
        .await;
    hub.wait_for_status(&id, "inactive").await;
    let (status, res) = hub
        .post(&format!("/flows/{id}/stop"), "controlToken", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(messages(&res), ["Flow is already inactive"]);
    let (status, _) = hub
        .patch(
            &format!("/flows/{id}"),
            "controlToken",
            json!({"name": "edited"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "inactive again, so editable");
    hub.shutdown().await;
}

async fn start_and_stop_errors(hub: Hub) {
    for action in ["start", "stop"] {
        let (status, res) = hub
            .post(
                &format!("/flows/{UNKNOWN_ID}/{action}"),
                "controlToken",
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            res,
            json!({"errors": [{"message": "No flow with this ID found", "code": 404}]})
        );
        let (status, res) = hub
            .post(&format!("/flows/nope/{action}"), "controlToken", json!({}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(messages(&res), ["Invalid id"]);
    }
    hub.shutdown().await;
}

async fn multiple_start_and_stop(mut hub: Hub) {
    let a = hub.create("controlToken", sample_flow("a")).await;
    let b = hub.create("controlToken", sample_flow("b")).await;
    let (status, res) = hub
        .post(
            "/flows/multiple/start",
            "controlToken",
            json!([a, "bad", UNKNOWN_ID, b, a, 7]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(
        res,
        json!([
            {"data": {"id": a, "status": "starting"}, "meta": {}},
            {"errors": [{"message": "Invalid id", "flowId": "bad", "code": 400}]},
            {"errors": [{"message": "No flow with this ID found", "flowId": UNKNOWN_ID, "code": 404}]},
            {"data": {"id": b, "status": "starting"}, "meta": {}},
            {"errors": [{"message": "Flow is already starting", "flowId": a, "code": 409}]},
            {"errors": [{"message": "Invalid id", "flowId": 7, "code": 400}]},
        ])
    );
    assert_eq!(hub.expect_event("flow.starting").await["id"], a.as_str());
    assert_eq!(hub.expect_event("flow.starting").await["id"], b.as_str());

    let (status, res) = hub
        .post("/flows/multiple/stop", "controlToken", json!([a, b]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        res[1],
        json!({"data": {"id": b, "status": "stopping"}, "meta": {}})
    );
    assert_eq!(hub.expect_event("flow.stopping").await["id"], a.as_str());

    for body in [json!({"ids": [a]}), json!(a)] {
        let (status, res) = hub.post("/flows/multiple/stop", "controlToken", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            messages(&res),
            ["No flow ids given. Expecting an array of flow ids"]
        );
    }
    hub.shutdown().await;
}

async fn failed_flows_are_stopped(mut hub: Hub) {
    let id = hub.create("controlToken", sample_flow("fails")).await;
    hub.post(&format!("/flows/{id}/start"), "controlToken", json!({}))
        .await;
    hub.expect_event("flow.starting").await;

    hub.publish(ORCHESTRATOR, "flow.failed", json!({"id": id}))
        .await;
    let stopping = hub.expect_event("flow.stopping").await;
    assert_eq!(stopping["id"], id.as_str());
    assert_eq!(stopping["status"], "stopping");
    hub.wait_for_status(&id, "stopping").await;

    // A late flow.started does not revive a flow being stopped.
    hub.publish(ORCHESTRATOR, "flow.started", json!({"id": id}))
        .await;
    hub.publish(ORCHESTRATOR, "flow.stopped", json!({"id": id}))
        .await;
    hub.wait_for_status(&id, "inactive").await;
    hub.shutdown().await;
}

async fn malformed_events_are_dead_lettered_and_unknown_flows_ignored(hub: Hub) {
    let id = hub.create("controlToken", sample_flow("steady")).await;
    hub.publish(ORCHESTRATOR, "flow.started", json!({"id": 42}))
        .await;
    hub.publish(ORCHESTRATOR, "flow.stopped", json!({})).await;
    hub.publish("iam", "iam.user.deleted", json!({"user": "x"}))
        .await;
    // Well-formed but about nothing we know: acknowledged, not dead-lettered.
    hub.publish(ORCHESTRATOR, "flow.started", json!({"id": UNKNOWN_ID}))
        .await;
    let mut dead = 0;
    for _ in 0..100 {
        dead = hub.queue_len("flow-repository.deadletter").await;
        if dead == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(dead, 3);
    let (_, flow) = hub.get(&format!("/flows/{id}"), "controlToken").await;
    assert_eq!(flow["data"]["status"], "inactive");
    hub.shutdown().await;
}

async fn deleted_users_lose_their_flows(mut hub: Hub) {
    // Shared with the tenant: survives with the tenant as owner.
    let shared = hub.create("controlToken", sample_flow("shared")).await;
    // Owned by the user alone: deleted.
    let mut solo_flow = sample_flow("solo");
    solo_flow["owners"] = json!([{"id": "dude", "type": "user"}]);
    let solo = hub.create("adminToken", solo_flow.clone()).await;
    // Running and owned by the user alone: stopped, then deleted once stopped.
    let running = hub.create("adminToken", solo_flow).await;
    hub.post(&format!("/flows/{running}/start"), "adminToken", json!({}))
        .await;
    hub.publish(ORCHESTRATOR, "flow.started", json!({"id": running}))
        .await;
    hub.wait_for_status(&running, "active").await;
    // The admin owns these too; remove the admin, keep "dude".
    hub.publish("iam", "iam.user.deleted", json!({"id": "adminId"}))
        .await;
    hub.wait_for(&solo, "admin removed", |_, body| {
        body["data"]["owners"] == json!([{"id": "dude", "type": "user"}])
    })
    .await;

    hub.publish("iam", "iam.user.deleted", json!({"id": "dude"}))
        .await;
    hub.wait_for(&solo, "deleted", |status, _| {
        status == StatusCode::NOT_FOUND
    })
    .await;
    let stopping = hub.expect_event("flow.stopping").await;
    assert_eq!(stopping["id"], running.as_str());
    hub.wait_for_status(&running, "stopping").await;
    hub.publish(ORCHESTRATOR, "flow.stopped", json!({"id": running}))
        .await;
    hub.wait_for(&running, "deleted", |status, _| {
        status == StatusCode::NOT_FOUND
    })
    .await;

    hub.publish("iam", "iam.user.deleted", json!({"id": "controlId"}))
        .await;
    let body = hub
        .wait_for(&shared, "controlId removed", |_, body| {
            body["data"]["owners"]
                .as_array()
                .is_some_and(|o| o.len() == 1)
        })
        .await;
    assert_eq!(
        body["data"]["owners"],
        json!([{"id": "testTenant1", "type": "tenant"}])
    );
    hub.shutdown().await;
}

/// Not one of the engine-parametrised tests: it needs a store that fails on purpose.
#[tokio::test]
async fn events_are_retried_while_the_store_fails() {
    let (mut hub, store) = Hub::start_flaky().await;
    let id = hub.create("controlToken", sample_flow("flaky")).await;
    hub.post(&format!("/flows/{id}/start"), "controlToken", json!({}))
        .await;
    hub.expect_event("flow.starting").await;

    store.fail_updates.store(2, Ordering::SeqCst);
    hub.publish(ORCHESTRATOR, "flow.started", json!({"id": id}))
        .await;
    hub.wait_for_status(&id, "active").await;
    assert_eq!(
        store.fail_updates.load(Ordering::SeqCst),
        0,
        "both failures were hit"
    );
    assert_eq!(
        hub.queue_len("flow-repository.deadletter").await,
        0,
        "nothing was lost"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn a_start_nobody_heard_of_is_undone() {
    let hub = Hub::start().await;
    let id = hub.create("controlToken", sample_flow("unheard")).await;
    hub.bus.close().await;
    let (status, res) = hub
        .post(&format!("/flows/{id}/start"), "controlToken", json!({}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{res}");
    let (_, flow) = hub.get(&format!("/flows/{id}"), "controlToken").await;
    assert_eq!(flow["data"]["status"], "inactive");
    hub.shutdown().await;
}
