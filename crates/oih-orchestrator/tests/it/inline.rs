//! Steps run in place (the default): the same counts, samples, errors and replies as when every
//! step goes through its queue, without the queue traffic; and mixed with a queued step.

use std::time::Duration;

use oih_bus::{ConsumeOptions, QueueOptions};
use oih_orchestrator::topology::{BACKCHANNEL, COLLECTOR, FlowNames};
use serde_json::{Value, json};

use crate::engines;
use crate::support::{Hub, TENANT, announced, caller, failing_flow, flow, linear_flow, node};

engines!(
    config = oih_orchestrator::Config::default();
    inline_steps_are_counted_as_queued_steps_are,
    inline_fan_out_and_routing_reach_only_the_chosen_steps,
    an_inline_step_error_fails_the_execution_and_keeps_the_input,
    an_inline_reply_answers_the_caller_once,
    a_filtered_message_tells_the_caller_the_outcome,
    inline_and_queued_steps_mix_in_one_execution,
    what_an_earlier_run_left_in_an_inline_steps_queue_is_processed,
    an_execution_run_in_place_is_announced_without_snapshots,
);

const WAIT: Duration = Duration::from_secs(10);

async fn inline_steps_are_counted_as_queued_steps_are(mut hub: Hub) {
    let mut flow = linear_flow(TENANT, "userId");
    flow["graphVersion"] = json!(3);
    let id = flow["id"].as_str().expect("id").to_owned();
    hub.started(&flow).await;
    // What the queued path would publish: step inputs on the flow's exchange (bound into the
    // collector) and step outputs on the backchannel.
    let tap = format!("test-tap-{id}");
    hub.bus
        .declare_queue(&tap, &QueueOptions::default())
        .await
        .expect("queue");
    hub.bus
        .bind_queue(&tap, COLLECTOR, &format!("flow-{id}.*.input"))
        .await
        .expect("bind");
    hub.bus
        .bind_queue(&tap, BACKCHANNEL, "orchestrator_backchannel.#")
        .await
        .expect("bind");

    let exec = hub.execute(&flow, json!({"n": 21})).await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["flowExecId"], exec.as_str());
    assert_eq!(execution["tenant"], TENANT);
    assert_eq!(execution["graphVersion"], 3, "the graph version that ran");
    assert_eq!(
        (
            execution["started"].as_u64(),
            execution["succeeded"].as_u64()
        ),
        (Some(3), Some(3))
    );
    let samples: Vec<_> = ["step_1", "step_2", "step_3"]
        .iter()
        .map(|step| {
            let s = &execution["steps"][step];
            assert_eq!(s["status"], "succeeded", "{step}: {s}");
            assert_eq!(
                (s["in"].as_u64(), s["out"].as_u64(), s["emitted"].as_u64()),
                (Some(1), Some(1), Some(1)),
                "{step}"
            );
            (s["input"].clone(), s["output"].clone())
        })
        .collect();
    assert_eq!(
        samples,
        [
            (json!({"n": 21}), json!({"n": 21})),
            (json!({"n": 21}), json!({"doubled": 42})),
            (json!({"doubled": 42}), json!({"doubled": 42})),
        ]
    );
    assert_eq!(
        hub.bus.queue_len(&tap).await.expect("tap"),
        0,
        "no step message travelled"
    );
    hub.bus.delete_queue(&tap).await.expect("delete");
    hub.shutdown().await;
}

async fn inline_fan_out_and_routing_reach_only_the_chosen_steps(mut hub: Hub) {
    let flow = flow(
        TENANT,
        "userId",
        vec![
            node("start", "noop", json!({})),
            node(
                "route",
                "router",
                json!({"routes": [{"condition": "n > 5", "to": ["big"]}], "otherwise": ["small"]}),
            ),
            node("copy", "jsonata", json!({"expression": "{\"copy\": n}"})),
            node("big", "noop", json!({})),
            node("small", "noop", json!({})),
        ],
        &[
            ("start", "route"),
            ("start", "copy"),
            ("route", "big"),
            ("route", "small"),
        ],
    );
    hub.started(&flow).await;
    let exec = hub.execute(&flow, json!({"n": 9})).await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(
        execution["started"], 4,
        "start, route, copy, big: {execution}"
    );
    assert_eq!(execution["steps"]["start"]["emitted"], 1);
    assert_eq!(execution["steps"]["copy"]["output"], json!({"copy": 9}));
    assert_eq!(execution["steps"]["big"]["in"], 1);
    assert!(execution["steps"].get("small").is_none(), "{execution}");
    hub.shutdown().await;
}

async fn an_inline_step_error_fails_the_execution_and_keeps_the_input(mut hub: Hub) {
    let flow = failing_flow();
    let queue = FlowNames::new(flow["id"].as_str().expect("id")).deadletter_queue();
    hub.started(&flow).await;
    let exec = hub.execute(&flow, json!({"n": 1})).await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    assert_eq!(execution["error"]["stepId"], "step_2");
    assert!(
        execution["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bad input")),
        "{execution}"
    );
    assert_eq!(execution["steps"]["step_2"]["deadLettered"], 1);
    assert_eq!(execution["steps"]["step_1"]["status"], "succeeded");
    assert!(execution["steps"].get("step_3").is_none(), "{execution}");
    // The failed input is kept in the flow's dead-letter queue, as the queued step keeps it.
    let mut kept = hub
        .bus
        .consume(&queue, ConsumeOptions::default())
        .await
        .expect("consume");
    let delivery = tokio::time::timeout(WAIT, kept.next())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(delivery.headers()["stepId"], "step_2");
    assert_eq!(delivery.headers()["flowExecId"], exec.as_str());
    let body: Value = serde_json::from_slice(delivery.body()).expect("json");
    assert_eq!(body["data"], json!({"n": 1}));
    delivery.ack().await.expect("ack");
    hub.shutdown().await;
}

fn replying_flow(filter: &str) -> Value {
    flow(
        TENANT,
        "userId",
        vec![
            node("trigger", "noop", json!({})),
            node("keep", "filter", json!({"condition": filter})),
            node("reply", "webhook-reply", json!({"statusCode": 201})),
        ],
        &[("trigger", "keep"), ("keep", "reply")],
    )
}

async fn an_inline_reply_answers_the_caller_once(mut hub: Hub) {
    let flow = replying_flow("n > 0");
    hub.started(&flow).await;
    let mut caller = caller(&hub, "test.inline.reply").await;
    let exec = hub
        .execute_replying(&flow, json!({"n": 4}), Some("test.inline.reply"))
        .await;
    let reply = tokio::time::timeout(WAIT, caller.next())
        .await
        .expect("reply in time")
        .expect("open");
    let body: Value = serde_json::from_slice(reply.body()).expect("json");
    assert_eq!(body["statusCode"], 201, "{body}");
    assert_eq!(body["body"], json!({"n": 4}));
    assert_eq!(reply.headers()["flowExecId"], exec.as_str());
    reply.ack().await.expect("ack");
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["replied"], true);
    assert_eq!(execution["replyTo"], "test.inline.reply");
    // The caller had its answer: no outcome note follows it.
    let more = tokio::time::timeout(Duration::from_millis(300), caller.next()).await;
    assert!(more.is_err(), "nothing after the reply");
    hub.shutdown().await;
}

async fn a_filtered_message_tells_the_caller_the_outcome(mut hub: Hub) {
    let flow = replying_flow("n > 0");
    hub.started(&flow).await;
    let mut caller = caller(&hub, "test.inline.dropped").await;
    let exec = hub
        .execute_replying(&flow, json!({"n": -1}), Some("test.inline.dropped"))
        .await;
    let note = tokio::time::timeout(WAIT, caller.next())
        .await
        .expect("note in time")
        .expect("open");
    let body: Value = serde_json::from_slice(note.body()).expect("json");
    note.ack().await.expect("ack");
    assert_eq!(
        body["executionFinished"]["flowExecId"],
        exec.as_str(),
        "{body}"
    );
    assert_eq!(body["executionFinished"]["status"], "succeeded");
    let execution = hub.finished(&exec).await;
    assert!(execution.get("replied").is_none(), "{execution}");
    assert!(execution["steps"].get("reply").is_none(), "{execution}");
    hub.shutdown().await;
}

/// `http-request` reaches outside, so it keeps its queue; the inline steps before and after it
/// share the execution with it.
async fn inline_and_queued_steps_mix_in_one_execution(mut hub: Hub) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new().route(
        "/double/{n}",
        axum::routing::get(
            |axum::extract::Path(n): axum::extract::Path<i64>| async move {
                axum::Json(json!({"doubled": n * 2}))
            },
        ),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let flow = flow(
        TENANT,
        "userId",
        vec![
            node("start", "noop", json!({})),
            node(
                "call",
                "http-request",
                json!({"url": format!("\"http://{address}/double/\" & $string(n)")}),
            ),
            node(
                "pick",
                "jsonata",
                json!({"expression": "{\"result\": body.doubled}"}),
            ),
            node("side", "jsonata", json!({"expression": "{\"side\": n}"})),
        ],
        &[("start", "call"), ("start", "side"), ("call", "pick")],
    );
    hub.started(&flow).await;
    for n in 1..=3 {
        let exec = hub.execute(&flow, json!({"n": n})).await;
        let execution = hub.finished(&exec).await;
        assert_eq!(execution["status"], "succeeded", "{execution}");
        assert_eq!(
            (
                execution["started"].as_u64(),
                execution["succeeded"].as_u64()
            ),
            (Some(4), Some(4)),
            "{execution}"
        );
        assert_eq!(
            execution["steps"]["pick"]["output"],
            json!({"result": n * 2})
        );
        assert_eq!(execution["steps"]["side"]["output"], json!({"side": n}));
        assert_eq!(execution["steps"]["call"]["out"], 1);
    }
    server.abort();
    hub.shutdown().await;
}

/// With inline steps off, inputs wait in the steps' queues; after a restart with them on, an
/// inline step's runner still takes what was left there (and holds no consumer otherwise).
async fn what_an_earlier_run_left_in_an_inline_steps_queue_is_processed(mut hub: Hub) {
    let flow = linear_flow(TENANT, "userId");
    let id = flow["id"].as_str().expect("id").to_owned();
    let names = FlowNames::new(&id);
    oih_orchestrator::topology::declare_flow(
        hub.bus.as_ref(),
        &id,
        &["step_1", "step_2", "step_3"],
    )
    .await
    .expect("topology");
    let mut left = oih_bus::Message::json(&json!({"data": {"n": 5}, "metadata": {}}));
    for (name, value) in [
        ("taskId", id.as_str()),
        ("stepId", "step_2"),
        ("flowExecId", "left-over"),
    ] {
        left = left.with_header(name, value);
    }
    hub.bus
        .publish(&names.exchange, &names.key("step_2", "input"), left)
        .await
        .expect("publish");
    let queue = names.messages_queue("step_2");
    assert_eq!(hub.bus.queue_len(&queue).await.expect("len"), 1);
    hub.started(&flow).await;
    let deadline = std::time::Instant::now() + WAIT;
    while hub.bus.queue_len(&queue).await.expect("len") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the left-over input was not taken"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its output went on as the queued path sends it: to the backchannel, whose handler
    // forwards it to step_3 (run in place).
    let exec = hub.execute(&flow, json!({"n": 1})).await;
    assert_eq!(hub.finished(&exec).await["status"], "succeeded");
    hub.shutdown().await;
}

/// No step of it reached a queue and none took a snapshot: the Snapshots service is told it
/// has nothing to purge.
async fn an_execution_run_in_place_is_announced_without_snapshots(mut hub: Hub) {
    let flow = linear_flow(TENANT, "userId");
    let (exec, payload) = announced(&mut hub, &flow, json!({"n": 1})).await;
    assert_eq!(payload["flowExecId"], exec.as_str(), "{payload}");
    assert_eq!(payload["status"], "succeeded");
    assert_eq!(payload["mayHaveSnapshots"], false, "{payload}");
    assert!(hub.purged.ids().is_empty(), "nothing to purge");
    hub.shutdown().await;
}
