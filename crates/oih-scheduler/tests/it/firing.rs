//! Started cron flows fire on time with OIH's `flow.execute`; stopped ones stop firing.

use std::time::Duration;

use chrono::{Timelike, Utc};
use oih_scheduler::Config;
use serde_json::json;

use crate::engines;
use crate::support::{EVERY_SECOND, Hub, flow, iso_date};

engines!(
    fires_on_time_with_oihs_payload,
    five_field_crons_are_planned_on_the_minute,
    stopping_stops_firing,
);

async fn fires_on_time_with_oihs_payload(mut hub: Hub) {
    hub.start_replica(Config::default()).await;
    let flow = flow(Some(EVERY_SECOND));
    let id = hub.start_flow(&flow).await;

    let first = hub.next_execution(Duration::from_secs(3)).await;
    assert_eq!(first.name(), "flow.execute");
    assert_eq!(first.headers.service_name, "scheduler");
    assert_eq!(first.headers.extra.get("type"), Some(&json!("scheduler")));
    assert_eq!(first.headers.extra.len(), 1, "{:?}", first.headers);

    let payload = &first.payload;
    let exec_id = payload["msg"]["metadata"]["source"]["externalExecId"]
        .as_str()
        .expect("externalExecId");
    assert!(
        exec_id.len() == 32
            && exec_id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{exec_id}"
    );
    let due = payload["flow"]["dueExecution"].clone();
    let fired = payload["msg"]["data"]["sheduledTimestamp"].clone();
    let next = payload["msg"]["data"]["nextSheduledTimestamp"].clone();
    // Exactly OIH's shape: the scheduler's flow document (with the graph as flow-repository
    // sent it, no tenant, owners or status), the misspelt timestamps, no msgOpts.
    assert_eq!(
        payload,
        &json!({
            "flow": {
                "_id": id,
                "graph": flow["graph"],
                "cron": EVERY_SECOND,
                "dueExecution": due,
                "__v": 0
            },
            "msg": {
                "data": {"sheduledTimestamp": fired, "nextSheduledTimestamp": next},
                "metadata": {
                    "source": {"name": "scheduler", "type": "scheduler", "externalExecId": exec_id}
                }
            }
        })
    );
    let (due, fired, next) = (iso_date(&due), iso_date(&fired), iso_date(&next));
    assert_eq!(due.nanosecond(), 0, "runs are due on whole seconds");
    let late = fired - due;
    assert!(
        late >= chrono::Duration::zero() && late < chrono::Duration::seconds(3),
        "fired {late} after its due time"
    );
    assert!(next > fired && next <= fired + chrono::Duration::seconds(1));

    // The next run follows, with its own due time and execution id.
    let second = hub.next_execution(Duration::from_secs(3)).await;
    assert!(iso_date(&second.payload["flow"]["dueExecution"]) > due);
    assert_ne!(
        second.payload["msg"]["metadata"]["source"]["externalExecId"],
        json!(exec_id)
    );
    hub.shutdown().await;
}

async fn five_field_crons_are_planned_on_the_minute(mut hub: Hub) {
    hub.start_replica(Config::default()).await;
    let before = Utc::now();
    let id = hub.start_flow(&flow(Some("*/5 * * * *"))).await;
    let next = hub.next_run_at(&id).await;
    assert!(next > before && next <= before + chrono::Duration::minutes(5));
    assert_eq!(
        (next.second(), next.nanosecond(), next.minute() % 5),
        (0, 0, 0)
    );
    hub.shutdown().await;
}

async fn stopping_stops_firing(mut hub: Hub) {
    hub.start_replica(Config::default()).await;
    // flow-repository's stop, and the orchestrator's report of a teardown, both end the runs.
    for event in ["flow.stopping", "flow.stopped"] {
        let flow = flow(Some(EVERY_SECOND));
        let id = hub.start_flow(&flow).await;
        hub.next_execution(Duration::from_secs(3)).await;

        let payload = if event == "flow.stopping" {
            let mut stopping = flow.clone();
            stopping["status"] = json!("stopping");
            stopping
        } else {
            json!({"id": id})
        };
        hub.publish("flow-repository", event, payload).await;
        hub.wait_for_doc(&id, "forgotten", |doc| doc.is_none())
            .await;
        // A run published just before the stop may still be on its way.
        hub.executions_within(Duration::from_millis(300)).await;
        let after = hub.executions_within(Duration::from_millis(2500)).await;
        assert!(after.is_empty(), "{event}: fired after the stop: {after:?}");
    }
    hub.shutdown().await;
}
