//! Executions along the graph: inputs, fan-out, routing, errors and the counters.

use oih_bus::{ConsumeOptions, QueueOptions};
use oih_orchestrator::Config;
use oih_orchestrator::executions::{Execution, Status};
use oih_orchestrator::topology::{COLLECTOR, FlowNames};
use oih_store::StoreError;
use serde_json::json;

use crate::engines;
use crate::support::{Hub, TENANT, failing_flow, flow, linear_flow, node};

engines!(
    a_linear_flow_runs_every_step_and_succeeds,
    data_fans_out_to_every_edge_target,
    a_router_sends_only_along_the_chosen_edges,
    a_step_error_fails_the_execution,
    a_reused_external_id_gets_its_own_execution,
    step_inputs_carry_oihs_headers_and_reach_the_collector,
    records_written_together_each_get_their_own_outcome,
);

/// Records queued at one moment are written in one transaction, new ones in one insert; each
/// caller still learns its own outcome: a taken id is a duplicate, a change lands on its
/// record.
async fn records_written_together_each_get_their_own_outcome(hub: Hub) {
    let running = |id: &str| {
        let mut execution = Execution::new(id.into(), "flow".into(), None, Vec::new());
        execution.inputs(&["a"]);
        execution
    };
    let store = &hub.executions;
    for id in ["taken-0", "taken-1", "taken-2"] {
        store.insert(&running(id)).await.expect("insert");
    }
    let mut inserts = tokio::task::JoinSet::new();
    for n in 0..120 {
        let (store, id) = (store.clone(), format!("new-{n}"));
        inserts.spawn(async move { (id.clone(), store.insert(&running(&id)).await) });
    }
    for n in 0..3 {
        let (again, id) = (store.clone(), format!("taken-{n}"));
        inserts.spawn(async move { (id.clone(), again.insert(&running(&id)).await) });
        let store = store.clone();
        inserts.spawn(async move {
            let id = format!("taken-{n}");
            let ended = store.modify(&id, |e| e.ended("a")).await.map(|_| ());
            (format!("ended {id}"), ended)
        });
    }
    let (mut inserted, mut duplicates, mut ended) = (0, 0, 0);
    while let Some(joined) = inserts.join_next().await {
        match joined.expect("task") {
            (id, Ok(())) if id.starts_with("new-") => inserted += 1,
            (id, Ok(())) if id.starts_with("ended ") => ended += 1,
            (id, Err(StoreError::Duplicate(_))) if id.starts_with("taken-") => duplicates += 1,
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!((inserted, duplicates, ended), (120, 3, 3));
    for n in [0, 57, 119] {
        let stored = store.get(&format!("new-{n}")).await.expect("get");
        assert_eq!(stored.map(|e| e.status), Some(Status::Running));
    }
    for n in 0..3 {
        let stored = store.get(&format!("taken-{n}")).await.expect("get");
        assert_eq!(stored.map(|e| e.status), Some(Status::Succeeded));
    }
    hub.shutdown().await;
}

async fn a_linear_flow_runs_every_step_and_succeeds(mut hub: Hub) {
    let flow = linear_flow(TENANT, "userId");
    hub.started(&flow).await;
    let exec = hub.execute(&flow, json!({"n": 21})).await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["flowId"], flow["id"]);
    assert_eq!(execution["tenant"], TENANT);
    assert_eq!(
        (
            execution["started"].as_u64(),
            execution["succeeded"].as_u64()
        ),
        (Some(3), Some(3))
    );
    for step in ["step_1", "step_2", "step_3"] {
        let s = &execution["steps"][step];
        assert_eq!(s["status"], "succeeded", "{step}: {s}");
        assert_eq!(
            (s["in"].as_u64(), s["out"].as_u64(), s["emitted"].as_u64()),
            (Some(1), Some(1), Some(1)),
            "{step}"
        );
        assert!(s["finishedAt"].is_string(), "{step}");
    }
    // What each step received and produced, for users to see under /executions.
    let samples: Vec<_> = ["step_1", "step_2", "step_3"]
        .iter()
        .map(|s| {
            let record = &execution["steps"][s];
            (record["input"].clone(), record["output"].clone())
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
    let outputs = hub.outputs(3).await;
    let data: Vec<_> = outputs
        .iter()
        .map(|(step, body)| (step.as_str(), body["data"].clone()))
        .collect();
    assert_eq!(
        data,
        [
            ("step_1", json!({"n": 21})),
            ("step_2", json!({"doubled": 42})),
            ("step_3", json!({"doubled": 42})),
        ]
    );
    // The webhook request travelled with the message (OIH copies it when there is a method);
    // the source message's own id did not.
    let first = &outputs[0].1;
    assert_eq!(first["method"], "POST");
    assert_eq!(first["metadata"]["source"]["externalExecId"], exec);
    assert!(first.get("id").is_none());
    hub.shutdown().await;
}

async fn data_fans_out_to_every_edge_target(mut hub: Hub) {
    let flow = flow(
        TENANT,
        "userId",
        vec![
            node("start", "noop", json!({})),
            node(
                "left",
                "jsonata",
                json!({"expression": "{\"side\": \"left\", \"n\": n}"}),
            ),
            node(
                "right",
                "jsonata",
                json!({"expression": "{\"side\": \"right\", \"n\": n}"}),
            ),
        ],
        &[("start", "left"), ("start", "right")],
    );
    hub.started(&flow).await;
    let exec = hub.execute(&flow, json!({"n": 7})).await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["started"], 3);
    assert_eq!(execution["steps"]["start"]["emitted"], 1);
    let outputs = hub.outputs(3).await;
    assert_eq!(outputs[0].0, "left");
    assert_eq!(outputs[1].0, "right");
    assert_eq!(outputs[0].1["data"], json!({"side": "left", "n": 7}));
    assert_eq!(outputs[1].1["data"], json!({"side": "right", "n": 7}));
    assert_eq!(outputs[2].0, "start");
    hub.shutdown().await;
}

async fn a_router_sends_only_along_the_chosen_edges(mut hub: Hub) {
    let flow = flow(
        TENANT,
        "userId",
        vec![
            node(
                "route",
                "router",
                json!({"routes": [{"condition": "n > 5", "to": ["big"]}], "otherwise": ["small"]}),
            ),
            node("big", "noop", json!({})),
            node("small", "noop", json!({})),
        ],
        &[("route", "big"), ("route", "small")],
    );
    hub.started(&flow).await;
    let exec = hub.execute(&flow, json!({"n": 9})).await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["started"], 2);
    assert_eq!(execution["steps"]["big"]["in"], 1);
    assert!(execution["steps"].get("small").is_none(), "{execution}");
    hub.shutdown().await;
}

async fn a_step_error_fails_the_execution(mut hub: Hub) {
    let flow = failing_flow();
    hub.started(&flow).await;
    let exec = hub.execute(&flow, json!({"n": 1})).await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    assert_eq!(execution["error"]["stepId"], "step_2");
    assert!(
        execution["error"]["message"]
            .as_str()
            .expect("message")
            .contains("bad input"),
        "{execution}"
    );
    assert_eq!(execution["steps"]["step_2"]["status"], "failed");
    assert_eq!(execution["steps"]["step_2"]["deadLettered"], 1);
    assert_eq!(execution["steps"]["step_1"]["status"], "succeeded");
    assert!(execution["steps"].get("step_3").is_none());
    // The input the step failed on is kept in the flow's dead-letter queue (moved there
    // once the step's answers were published, so a moment after the execution ended).
    let queue = FlowNames::new(flow["id"].as_str().expect("id")).deadletter_queue();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let kept = hub
            .bus
            .queue_len(&queue)
            .await
            .expect("the dead-letter queue");
        if kept == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{kept} dead letters");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    hub.shutdown().await;
}

/// OIH drops the second execution when a webhook caller reuses its `x-request-id`.
async fn a_reused_external_id_gets_its_own_execution(mut hub: Hub) {
    let flow = linear_flow(TENANT, "userId");
    hub.started(&flow).await;
    let exec = hub.execute(&flow, json!({"n": 1})).await;
    hub.finished(&exec).await;
    let payload = json!({
        "flow": {"_id": flow["id"]},
        "msg": {"data": {"n": 2}, "metadata": {"source": {"externalExecId": exec}}},
    });
    hub.publish("webhooks", "flow.execute", payload).await;
    let flow_id = flow["id"].as_str().expect("id");
    let wait = async {
        loop {
            let (_, body) = hub
                .get(
                    &format!("/executions?filter[flowId]={flow_id}"),
                    Some("adminToken"),
                )
                .await;
            let list = body["data"].as_array().expect("list").clone();
            if list.len() == 2 && list.iter().all(|e| e["status"] == "succeeded") {
                return list;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let list = tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .expect("second execution");
    assert_ne!(list[0]["flowExecId"], list[1]["flowExecId"]);
    hub.shutdown().await;
}

/// Step inputs (runtime.md §2.5) go through the flow's exchange, which is bound into the
/// collector: a queue on the collector sees them with their headers.
async fn step_inputs_carry_oihs_headers_and_reach_the_collector(mut hub: Hub) {
    let flow = linear_flow(TENANT, "userId");
    hub.started(&flow).await;
    let id = flow["id"].as_str().expect("id");
    hub.bus
        .declare_queue("test-inputs", &QueueOptions::default())
        .await
        .expect("queue");
    hub.bus
        .bind_queue("test-inputs", COLLECTOR, &format!("flow-{id}.*.input"))
        .await
        .expect("bind");
    let mut inputs = hub
        .bus
        .consume("test-inputs", ConsumeOptions::default())
        .await
        .expect("consume");
    let exec = hub.execute(&flow, json!({"n": 3})).await;
    hub.finished(&exec).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let delivery = tokio::time::timeout(std::time::Duration::from_secs(5), inputs.next())
            .await
            .expect("input in time")
            .expect("open");
        let props = &delivery.message.properties;
        assert_eq!(props.content_type.as_deref(), Some("text/json"));
        let h = &props.headers;
        let step = h["stepId"].as_str().expect("stepId").to_owned();
        assert_eq!(delivery.routing_key, format!("flow-{id}.{step}.input"));
        assert_eq!(h["taskId"], id);
        assert_eq!(h["flowExecId"], exec.as_str());
        assert_eq!(h["userId"], "userId");
        assert_eq!(h["tenant"], TENANT);
        assert!(h["execId"].is_string());
        let body: serde_json::Value = serde_json::from_slice(delivery.body()).expect("json");
        for key in ["data", "attachments", "metadata", "passthrough"] {
            assert!(body[key].is_object(), "{step}: {key} in {body}");
        }
        delivery.ack().await.expect("ack");
        seen.push(step);
    }
    seen.sort();
    assert_eq!(seen, ["step_1", "step_2", "step_3"]);
    hub.shutdown().await;
}

/// A step that overruns the step timeout fails its input, which is dead-lettered, and the
/// step goes on with its next input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_past_its_timeout_fails_and_dead_letters_its_input() {
    // A server that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = silent.local_addr().expect("address");
    let _server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let mut hub = Hub::start_with(Config {
        step_timeout_secs: 1,
        ..crate::support::queued()
    })
    .await;
    let flow = flow(
        TENANT,
        "userId",
        vec![
            node("step_1", "noop", json!({})),
            node(
                "step_2",
                "http-request",
                json!({"url": format!("'http://{addr}/slow'"), "timeout": 60000, "retries": 0}),
            ),
            node("step_3", "log", json!({})),
        ],
        &[("step_1", "step_2"), ("step_2", "step_3")],
    );
    hub.started(&flow).await;
    for n in 1..=2 {
        let exec = hub.execute(&flow, json!({"n": n})).await;
        let execution = hub.finished(&exec).await;
        assert_eq!(execution["status"], "failed", "{execution}");
        let message = execution["error"]["message"].as_str().expect("message");
        assert!(message.contains("did not finish within 1 s"), "{message}");
        assert_eq!(
            execution["steps"]["step_2"]["deadLettered"], 1,
            "{execution}"
        );
        assert!(execution["steps"].get("step_3").is_none(), "{execution}");
    }
    hub.shutdown().await;
}
