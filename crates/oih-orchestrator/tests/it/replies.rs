//! Answers for waiting webhook callers: the flag on `flow.started`, the `httpReply` on the
//! caller's `reply_to`, and the execution's outcome told to the caller and to the event bus.

use std::time::Duration;

use oih_bus::Consumer;
use serde_json::{Value, json};

use crate::engines;
use crate::support::{Hub, TENANT, announced, caller, flow, linear_flow, node};

engines!(
    flow_started_says_whether_callers_wait,
    the_reply_then_the_outcome_reach_the_caller,
    a_failure_before_the_reply_is_told_to_the_caller,
    every_finished_execution_is_announced,
);

const WAIT: Duration = Duration::from_secs(10);

fn replying_flow(failing: bool) -> Value {
    let transform = if failing {
        "$error('no reply for you')"
    } else {
        "{'sum': a + b}"
    };
    flow(
        TENANT,
        "userId",
        vec![
            node("trigger", "noop", json!({})),
            node("transform", "jsonata", json!({"expression": transform})),
            node(
                "reply",
                "webhook-reply",
                json!({"statusCode": 201, "headers": {"x-sum": "$string(sum)"}}),
            ),
        ],
        &[("trigger", "transform"), ("transform", "reply")],
    )
}

async fn next(consumer: &mut Consumer) -> (String, Value) {
    let delivery = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("an answer in time")
        .expect("consumer open");
    let body = serde_json::from_slice(delivery.body()).expect("JSON");
    let key = delivery.routing_key.clone();
    delivery.ack().await.expect("ack");
    (key, body)
}

async fn flow_started_says_whether_callers_wait(mut hub: Hub) {
    let (name, payload) = hub.start_flow(&replying_flow(false)).await;
    assert_eq!(name, "flow.started");
    assert_eq!(payload["syncReply"], true, "{payload}");
    let (name, payload) = hub.start_flow(&linear_flow(TENANT, "userId")).await;
    assert_eq!(name, "flow.started");
    assert_eq!(payload["syncReply"], false, "{payload}");
    hub.shutdown().await;
}

async fn the_reply_then_the_outcome_reach_the_caller(mut hub: Hub) {
    let flow = replying_flow(false);
    hub.started(&flow).await;
    let mut caller = caller(&hub, "test.reply").await;
    let exec = hub
        .execute_replying(&flow, json!({"a": 2, "b": 3}), Some("test.reply.one"))
        .await;
    let (key, reply) = next(&mut caller).await;
    assert_eq!(key, "test.reply.one");
    assert_eq!(reply["statusCode"], 201, "{reply}");
    assert_eq!(reply["body"], json!({"sum": 5}));
    assert_eq!(reply["headers"]["x-sum"], "5");
    let (_, outcome) = next(&mut caller).await;
    let finished = &outcome["executionFinished"];
    assert_eq!(finished["flowExecId"], exec.as_str(), "{outcome}");
    assert_eq!(finished["status"], "succeeded");
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["replyTo"], "test.reply.one");
    hub.shutdown().await;
}

async fn a_failure_before_the_reply_is_told_to_the_caller(mut hub: Hub) {
    let flow = replying_flow(true);
    hub.started(&flow).await;
    let mut caller = caller(&hub, "test.fail").await;
    let exec = hub
        .execute_replying(&flow, json!({"a": 1}), Some("test.fail.one"))
        .await;
    let (_, outcome) = next(&mut caller).await;
    let finished = &outcome["executionFinished"];
    assert_eq!(finished["flowExecId"], exec.as_str(), "{outcome}");
    assert_eq!(finished["status"], "failed");
    assert_eq!(finished["error"]["stepId"], "transform");
    assert!(
        finished["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no reply for you")),
        "{outcome}"
    );
    hub.shutdown().await;
}

async fn every_finished_execution_is_announced(mut hub: Hub) {
    let flow = linear_flow(TENANT, "userId");
    let (exec, payload) = announced(&mut hub, &flow, json!({"n": 1})).await;
    assert_eq!(payload["flowExecId"], exec.as_str(), "{payload}");
    assert_eq!(payload["flowId"], flow["id"]);
    assert_eq!(payload["status"], "succeeded");
    assert_eq!(payload["tenant"], TENANT);
    assert_eq!(
        payload["mayHaveSnapshots"], true,
        "queued steps snapshot directly"
    );
    // The snapshots service of this process was told before the event went out.
    assert_eq!(hub.purged.ids(), [exec]);
    hub.shutdown().await;
}
