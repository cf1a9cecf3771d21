//! Flows running through the real binary, each scenario on both backends: SQLite with the
//! embedded bus, and PostgreSQL with RabbitMQ (`OIH_TEST_DATABASE_URL`, `OIH_TEST_AMQP_URL`;
//! skipped with the reason printed without them). A Ferryman component runs on RabbitMQ only,
//! as in OIH.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::hub::{Backend, Hub, wait_execution, wait_execution_where, wait_for_hook};

/// Each scenario as two tests, `embedded::<name>` and `pg_rabbitmq::<name>`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::Backend::Embedded).await;
                }
            )*
        }
        mod pg_rabbitmq {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(backend) = super::Backend::external().await else { return };
                    super::$name(&backend).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_webhook_flow_fans_out_to_every_target,
    a_router_sends_each_message_one_way,
    a_webhook_caller_gets_the_flows_reply,
    a_webhook_caller_gets_the_flows_reply_over_the_bus,
    a_cron_flow_runs_on_its_schedule,
    a_failing_call_is_retried_then_dead_lettered,
    an_execution_cut_by_a_crash_finishes_after_the_restart,
);

/// `hook → double → (left, right)`: one call, both branches run.
async fn a_webhook_flow_fans_out_to_every_target(backend: &Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path(), backend).await;
    let flow = json!({
        "name": "fan-out",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "double", "componentId": hub.builtin("jsonata").await, "function": "transform",
                 "fields": {"expression": "{\"doubled\": n * 2}"}},
                {"id": "left", "componentId": hub.builtin("log").await, "function": "log"},
                {"id": "right", "componentId": hub.builtin("noop").await, "function": "noop"}
            ],
            "edges": [
                {"source": "hook", "target": "double"},
                {"source": "double", "target": "left"},
                {"source": "double", "target": "right"}
            ]
        }
    });
    let id = hub.started(&flow).await;
    let accepted = wait_for_hook(&hub, &id, &json!({"n": 21})).await;
    assert_eq!(accepted["data"]["message"], "thank you", "{accepted}");
    let execution = wait_execution(&hub, &id, "succeeded").await;
    for step in ["left", "right"] {
        let record = &execution["steps"][step];
        assert_eq!(record["status"], "succeeded", "{execution}");
        assert_eq!(record["input"], json!({"doubled": 42}), "{execution}");
    }
    assert_eq!(execution["started"], 4, "{execution}");
    assert_eq!(execution["succeeded"], 4, "{execution}");
}

/// `hook → route → (big | small)`, each branch answering the caller: the first route whose
/// condition holds is taken, `otherwise` when none does, and never both.
async fn a_router_sends_each_message_one_way(backend: &Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path(), backend).await;
    let reply = hub.builtin("webhook-reply").await;
    let flow = json!({
        "name": "router",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "route", "componentId": hub.builtin("router").await, "function": "route",
                 "fields": {"routes": [{"condition": "amount > 100", "to": ["big"]}], "otherwise": ["small"]}},
                {"id": "big", "componentId": reply, "function": "reply",
                 "fields": {"body": "{\"branch\": \"big\", \"amount\": amount}"}},
                {"id": "small", "componentId": reply, "function": "reply",
                 "fields": {"body": "{\"branch\": \"small\", \"amount\": amount}"}}
            ],
            "edges": [
                {"source": "hook", "target": "route"},
                {"source": "route", "target": "big"},
                {"source": "route", "target": "small"}
            ]
        }
    });
    let id = hub.started(&flow).await;
    let big = wait_for_hook(&hub, &id, &json!({"amount": 500})).await;
    assert_eq!(big, json!({"branch": "big", "amount": 500}));
    let small = wait_for_hook(&hub, &id, &json!({"amount": 5})).await;
    assert_eq!(small, json!({"branch": "small", "amount": 5}));
    let took_small = |e: &Value| e["steps"].get("small").is_some();
    let execution = wait_execution_where(&hub, &id, "succeeded", took_small).await;
    assert_eq!(execution["steps"]["small"]["in"], 1, "{execution}");
    assert!(
        execution["steps"].get("big").is_none(),
        "the big branch got nothing: {execution}"
    );
}

/// `hook → shape → filter → reply`: the caller waits for the reply step's answer; a message
/// the filter drops answers 204 once its execution has ended. The webhooks hand the flow to
/// the orchestrator of their process.
/// As nothing would run the flow again after a crash, the caller is answered only once the
/// execution is recorded.
async fn a_webhook_caller_gets_the_flows_reply(backend: &Backend) {
    webhook_caller_gets_the_flows_reply(backend, &[]).await;
}

/// The same with `flow.execute` and the reply through the bus, as between separate processes
/// (the reply may come before the record: `flow.execute` is redelivered after a crash).
async fn a_webhook_caller_gets_the_flows_reply_over_the_bus(backend: &Backend) {
    webhook_caller_gets_the_flows_reply(backend, &[("WEBHOOKS_IN_PROCESS", "false")]).await;
}

async fn webhook_caller_gets_the_flows_reply(backend: &Backend, env: &[(&str, &str)]) {
    let in_process = env.is_empty();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start_with(dir.path(), backend, env).await;
    let flow = json!({
        "name": "e2e-reply",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "shape", "componentId": hub.builtin("jsonata").await, "function": "transform",
                 "fields": {"expression": "{\"name\": first & \" \" & last, \"total\": price * qty}"}},
                {"id": "big", "componentId": hub.builtin("filter").await, "function": "filter",
                 "fields": {"condition": "total >= 10"}},
                {"id": "answer", "componentId": hub.builtin("webhook-reply").await, "function": "reply",
                 "fields": {"statusCode": 201}}
            ],
            "edges": [
                {"source": "hook", "target": "shape"},
                {"source": "shape", "target": "big"},
                {"source": "big", "target": "answer"}
            ]
        }
    });
    let id = hub.started(&flow).await;

    let order = json!({"first": "Ada", "last": "Lovelace", "price": 4, "qty": 3});
    let replied = wait_for_hook(&hub, &id, &order).await;
    assert_eq!(replied, json!({"name": "Ada Lovelace", "total": 12}));

    // In process, a caller that had its answer finds the execution recorded at once.
    let res = hub
        .http
        .post(format!("{}/hook/{id}", hub.base))
        .json(&json!({"first": "Grace", "last": "Hopper", "price": 5, "qty": 2}))
        .send()
        .await
        .expect("POST /hook");
    assert_eq!(res.status(), StatusCode::CREATED);
    let execution = res.headers()["x-oih-execution-id"]
        .to_str()
        .expect("execution id")
        .to_owned();
    let record = if in_process {
        hub.get(&format!("/executions/{execution}")).await["data"].clone()
    } else {
        let this_one = |e: &Value| e["flowExecId"] == execution.as_str();
        wait_execution_where(&hub, &id, "succeeded", this_one).await
    };
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(
        record["steps"]["answer"]["input"],
        json!({"name": "Grace Hopper", "total": 10}),
        "{record}"
    );

    // Filtered out before the reply step: the caller hears that the execution ended.
    let res = hub
        .http
        .post(format!("{}/hook/{id}", hub.base))
        .json(&json!({"first": "A", "last": "B", "price": 1, "qty": 1}))
        .send()
        .await
        .expect("POST /hook");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let execution = res.headers()["x-oih-execution-id"]
        .to_str()
        .expect("execution id")
        .to_owned();
    let record = hub.get(&format!("/executions/{execution}")).await;
    assert_eq!(record["data"]["status"], "succeeded", "{record}");
}

/// A flow with a six-field `cron` (every second) runs without a call, with the scheduler's
/// tick (OIH's `sheduledTimestamp` spelling) as its data, and stops running when stopped.
async fn a_cron_flow_runs_on_its_schedule(backend: &Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path(), backend).await;
    let flow = json!({
        "name": "cron",
        "cron": "* * * * * *",
        "graph": {
            "nodes": [
                {"id": "tick", "componentId": hub.builtin("scheduler").await, "function": "tick"},
                {"id": "note", "componentId": hub.builtin("log").await, "function": "log"}
            ],
            "edges": [{"source": "tick", "target": "note"}]
        }
    });
    let id = hub.started(&flow).await;
    let execution = wait_execution(&hub, &id, "succeeded").await;
    let tick = &execution["steps"]["note"]["input"];
    assert!(tick["sheduledTimestamp"].is_string(), "{execution}");
    assert!(tick["nextSheduledTimestamp"].is_string(), "{execution}");

    hub.post(&format!("/flows/{id}/stop"), &json!({})).await;
    hub.wait_status(&id, "inactive").await;
    let count = || async {
        hub.get(&format!("/executions?filter%5BflowId%5D={id}"))
            .await["data"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let stopped_at = count().await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(count().await, stopped_at, "no run after the stop");
}

/// `hook → call → done` where the remote answers 503: the step retries, then fails the
/// execution and keeps the input in the flow's dead-letter queue.
async fn a_failing_call_is_retried_then_dead_lettered(backend: &Backend) {
    let remote = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&remote)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path(), backend).await;
    let flow = json!({
        "name": "dead-letter",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "call", "componentId": hub.builtin("http-request").await, "function": "request",
                 "fields": {"method": "POST", "url": format!("'{}/orders'", remote.uri()),
                            "retries": 2, "retryDelay": 10}},
                {"id": "done", "componentId": hub.builtin("log").await, "function": "log"}
            ],
            "edges": [{"source": "hook", "target": "call"}, {"source": "call", "target": "done"}]
        }
    });
    let id = hub.started(&flow).await;
    wait_for_hook(&hub, &id, &json!({"order": 7})).await;
    let execution = wait_execution(&hub, &id, "failed").await;
    let call = &execution["steps"]["call"];
    assert_eq!(call["errors"], 1, "{execution}");
    assert_eq!(call["deadLettered"], 1, "{execution}");
    assert_eq!(execution["error"]["stepId"], "call", "{execution}");
    assert!(
        execution["steps"].get("done").is_none(),
        "nothing went on: {execution}"
    );
    let calls = remote.received_requests().await.unwrap_or_default();
    assert_eq!(calls.len(), 3, "the first attempt and two retries");

    if let Some(url) = backend.amqp_url() {
        use oih_bus::MessageBus;
        let bus = oih_bus::amqp::AmqpBus::connect(url, Default::default())
            .await
            .expect("RabbitMQ");
        // Moved there once the step's answers were out: a moment after the execution ended.
        let queue = format!("flow-{id}:deadletter");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let kept = bus.queue_len(&queue).await.expect("the dead-letter queue");
            if kept == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{kept} dead letters, not 1");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bus.close().await;
    }
}

/// A 2xx from a hook means the message is kept: the hub killed while a step works on it
/// finishes the execution after a restart (the step's input is delivered again).
async fn an_execution_cut_by_a_crash_finishes_after_the_restart(backend: &Backend) {
    let remote = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"stored": true}))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&remote)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut running, hub) = Hub::start(dir.path(), backend).await;
    let flow = json!({
        "name": "e2e-crash",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "call", "componentId": hub.builtin("http-request").await, "function": "request",
                 "fields": {"method": "POST", "url": format!("'{}/orders'", remote.uri()), "timeout": 10000}},
                {"id": "done", "componentId": hub.builtin("log").await, "function": "log"}
            ],
            "edges": [{"source": "hook", "target": "call"}, {"source": "call", "target": "done"}]
        }
    });
    let id = hub.started(&flow).await;
    wait_for_hook(&hub, &id, &json!({"order": 7})).await;

    // Kill the hub while the remote call is in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while remote
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the step never called out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.0.kill().expect("SIGKILL");
    running.0.wait().expect("reaped");
    drop(running);

    let (_running, hub) = Hub::start(dir.path(), backend).await;
    let execution = wait_execution(&hub, &id, "succeeded").await;
    assert_eq!(
        execution["steps"]["done"]["status"], "succeeded",
        "{execution}"
    );
    let calls = remote.received_requests().await.unwrap_or_default();
    assert!(
        calls.len() >= 2,
        "the step ran again: {} calls",
        calls.len()
    );
}

/// `hook → OIH's Ferryman running our test component as a process → reply`, on RabbitMQ: the
/// caller gets the component's data; the component's error fails the execution (502).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ferryman_component_runs_as_a_flow_step() {
    let Some(backend) = Backend::external().await else {
        return;
    };
    let Some(run_global) = oih_orchestrator::testing::ferryman() else {
        return;
    };
    let amqp_url = backend.amqp_url().expect("RabbitMQ").to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) =
        Hub::start_with(dir.path(), &backend, &[("RABBITMQ_URI_FLOWS", &amqp_url)]).await;
    let component = hub
        .post(
            "/components",
            &json!({
                "name": "ferryman test component",
                "distribution": {
                    "type": "process",
                    "command": ["node", run_global],
                    "workingDirectory": oih_orchestrator::testing::ferryman_component_dir(),
                },
            }),
        )
        .await;
    let component = component["data"]["id"].as_str().expect("component id");
    let flow = json!({
        "name": "ferryman",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "ferry", "componentId": component, "function": "transform"},
                {"id": "answer", "componentId": hub.builtin("webhook-reply").await, "function": "reply"}
            ],
            "edges": [{"source": "hook", "target": "ferry"}, {"source": "ferry", "target": "answer"}]
        }
    });
    let id = hub.started(&flow).await;
    let replied = wait_for_hook(&hub, &id, &json!({"n": 21})).await;
    assert_eq!(replied, json!({"doubled": 42, "reboundIteration": 0}));

    let failed = hub
        .http
        .post(format!("{}/hook/{id}", hub.base))
        .json(&json!({"fail": "no such order"}))
        .send()
        .await
        .expect("POST /hook");
    assert_eq!(failed.status(), StatusCode::BAD_GATEWAY);
    let execution = wait_execution(&hub, &id, "failed").await;
    assert_eq!(
        execution["error"]["message"], "no such order",
        "{execution}"
    );
    assert_eq!(execution["steps"]["ferry"]["errors"], 1, "{execution}");

    hub.post(&format!("/flows/{id}/stop"), &json!({})).await;
    hub.wait_status(&id, "inactive").await;
}

/// `oih serve` runs the orchestrator and the snapshots service together, so a finished
/// execution's snapshots are purged by a direct call (the service no longer consumes
/// `flow.execution.finished`): a snapshot of the execution that arrives afterwards is dropped,
/// while one of the flow is kept. On RabbitMQ, where the test can publish as a step does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_executions_snapshots_are_purged_in_process() {
    let Some(backend) = Backend::external().await else {
        return;
    };
    let url = backend.amqp_url().expect("RabbitMQ").to_owned();
    let remote = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&remote)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path(), &backend).await;
    // The call is a queued step, so the execution may have snapshots.
    let flow = json!({
        "name": "snapshots purged",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "call", "componentId": hub.builtin("http-request").await, "function": "request",
                 "fields": {"method": "POST", "url": format!("'{}/orders'", remote.uri())}}
            ],
            "edges": [{"source": "hook", "target": "call"}]
        }
    });
    let id = hub.started(&flow).await;
    wait_for_hook(&hub, &id, &json!({"order": 8})).await;
    let execution = wait_execution(&hub, &id, "succeeded").await;
    let exec = execution["flowExecId"]
        .as_str()
        .expect("flowExecId")
        .to_owned();

    use oih_bus::MessageBus;
    let bus = oih_bus::amqp::AmqpBus::connect(&url, Default::default())
        .await
        .expect("RabbitMQ");
    let snapshot = |scope: Value, body: &str| {
        let mut message = oih_bus::Message::new(body.as_bytes().to_vec());
        let mut headers = json!({
            "taskId": id, "stepId": "call", "userId": "u1", "tenant": "t1",
        });
        headers
            .as_object_mut()
            .expect("object")
            .extend(scope.as_object().expect("object").clone());
        message.properties.headers = headers
            .as_object()
            .expect("object")
            .clone()
            .into_iter()
            .collect();
        message
    };
    let key = format!("flow-{id}.call.snapshot");
    // Late, of the finished execution: dropped. Then one of the flow: kept.
    let late = snapshot(
        json!({"snapshotEvent": "updateSnapshot", "flowExecId": exec}),
        r#"{"late": true}"#,
    );
    bus.publish("component-events-collector", &key, late)
        .await
        .expect("publish");
    let kept = snapshot(json!({"snapshotEvent": "snapshot"}), r#"{"kept": true}"#);
    bus.publish("component-events-collector", &key, kept)
        .await
        .expect("publish");
    bus.close().await;

    // The purge comes a moment after the record shows the execution succeeded, so the late
    // snapshot is either dropped on arrival or stored and purged: either way it goes, and
    // only the flow's stays. Were nobody purging, it would stay.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = hub.get(&format!("/snapshots/flows/{id}/steps")).await;
        let shown: Vec<&Value> = list["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|s| &s["snapshot"])
            .collect();
        if shown == [&json!({"kept": true})] {
            break;
        }
        assert!(Instant::now() < deadline, "not purged: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
