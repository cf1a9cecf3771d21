//! How the scheduler follows the flow lifecycle: flows without cron are ignored, a restart
//! waits for `flow.started`, malformed events are dead-lettered.

use std::time::Duration;

use oih_core::ObjectId;
use oih_scheduler::Config;
use serde_json::json;

use crate::engines;
use crate::support::{EVERY_SECOND, Hub, flow};

const DEAD_LETTERS: &str = "scheduler.deadletter";

engines!(
    flows_without_cron_are_ignored,
    a_restarted_flow_waits_for_started,
    malformed_events_are_dead_lettered,
);

async fn flows_without_cron_are_ignored(mut hub: Hub) {
    hub.start_replica(Config::default()).await;
    let plain = flow(None);
    let plain_id = plain["id"].as_str().expect("id").to_owned();
    hub.starting(&plain).await;
    hub.started(&plain_id).await;
    // Events are handled in order: once this cron flow runs, the others were handled.
    let scheduled = hub.start_flow(&flow(Some(EVERY_SECOND))).await;
    assert_eq!(hub.doc(&plain_id).await, None);

    // Restarted without a cron, a scheduled flow is forgotten.
    let mut unscheduled = flow(None);
    unscheduled["id"] = json!(scheduled);
    unscheduled["cron"] = json!("");
    hub.starting(&unscheduled).await;
    hub.wait_for_doc(&scheduled, "forgotten", |doc| doc.is_none())
        .await;
    hub.started(&scheduled).await;
    hub.executions_within(Duration::from_millis(300)).await;
    let after = hub.executions_within(Duration::from_secs(2)).await;
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(hub.queue_len(DEAD_LETTERS).await, 0);
    hub.shutdown().await;
}

async fn a_restarted_flow_waits_for_started(mut hub: Hub) {
    hub.start_replica(Config::default()).await;
    let flow = flow(Some(EVERY_SECOND));
    let id = hub.start_flow(&flow).await;
    hub.next_execution(Duration::from_secs(3)).await;

    // flow.starting again (a restart with a new graph): no runs until it is deployed.
    let mut restarted = flow.clone();
    restarted["graph"]["nodes"][0]["function"] = json!("getOrganizations");
    hub.starting(&restarted).await;
    hub.wait_for_doc(&id, "runs paused", |doc| {
        doc.is_some_and(|d| d.get("nextRunAt").is_none())
    })
    .await;
    hub.executions_within(Duration::from_millis(300)).await;
    let paused = hub.executions_within(Duration::from_millis(1500)).await;
    assert!(paused.is_empty(), "{paused:?}");

    hub.started(&id).await;
    let run = hub.next_execution(Duration::from_secs(3)).await;
    assert_eq!(run.payload["flow"]["graph"], restarted["graph"]);
    hub.shutdown().await;
}

async fn malformed_events_are_dead_lettered(mut hub: Hub) {
    hub.start_replica(Config::default()).await;
    let malformed = [
        ("flow.starting", json!({"cron": EVERY_SECOND})),
        ("flow.started", json!({"id": 42})),
        ("flow.stopping", json!({"id": "not-an-id"})),
        ("flow.stopped", json!("just a string")),
        ("flow.starting", flow(Some("not a cron"))),
        (
            "flow.starting",
            json!({"id": ObjectId::new().to_string(), "cron": 5}),
        ),
        // Parses, but February has no 30th.
        ("flow.starting", flow(Some("0 0 30 2 *"))),
    ];
    for (name, payload) in &malformed {
        hub.publish("flow-repository", name, payload.clone()).await;
    }
    hub.wait_for_queue_len(DEAD_LETTERS, malformed.len() as u64)
        .await;
    for (_, payload) in &malformed {
        if let Some(id) = payload.get("id").and_then(|id| id.as_str()) {
            assert_eq!(hub.doc(id).await, None, "{payload}");
        }
    }

    // A well-formed event about a flow the scheduler does not know is not an error.
    hub.started(&ObjectId::new().to_string()).await;
    hub.start_flow(&flow(Some(EVERY_SECOND))).await;
    assert_eq!(hub.queue_len(DEAD_LETTERS).await, malformed.len() as u64);
    hub.shutdown().await;
}
