//! Executions started in process ([`oih_orchestrator::InProcess`]), as the webhooks of the
//! same process start those whose caller waits for a reply: the steps run in place, the
//! answer comes back as the call's result (not over the bus), and only once the execution
//! record is stored.

use std::time::Duration;

use oih_orchestrator::Local;
use oih_orchestrator::dataflow::{DataflowError, ToCaller};
use serde_json::{Value, json};

use crate::engines;
use crate::support::{Hub, TENANT, caller, execute_payload, flow, node};

engines!(
    config = oih_orchestrator::Config::default();
    the_reply_is_returned_once_the_execution_is_stored,
    a_message_that_reaches_no_reply_returns_the_outcome,
    a_reply_after_a_queued_step_comes_over_the_bus,
    a_flow_not_running_here_is_left_to_the_bus,
    a_malformed_message_is_refused,
);

const WAIT: Duration = Duration::from_secs(10);

/// `trigger → keep (filter n > 0) → sum (jsonata) → reply`.
fn replying_flow() -> Value {
    flow(
        TENANT,
        "userId",
        vec![
            node("trigger", "noop", json!({})),
            node("keep", "filter", json!({"condition": "n > 0"})),
            node("sum", "jsonata", json!({"expression": "{'sum': n + 1}"})),
            node("reply", "webhook-reply", json!({"statusCode": 201})),
        ],
        &[("trigger", "keep"), ("keep", "sum"), ("sum", "reply")],
    )
}

/// Hands `flow.execute`'s message to the orchestrator, as the webhooks of its process do.
async fn execute_here(hub: &Hub, payload: &Value) -> Result<Local, DataflowError> {
    let flow_id = payload["flow"]["_id"].as_str().expect("flow id");
    let reply_to = payload["msgOpts"]["headers"]["reply_to"]
        .as_str()
        .expect("reply_to");
    hub.in_process
        .execute(flow_id, payload["msg"].clone(), reply_to.to_owned())
        .await
}

/// What the steps of an execution started in process sent its caller.
async fn run_here(hub: &Hub, payload: &Value) -> Vec<ToCaller> {
    match execute_here(hub, payload).await.expect("ran") {
        Local::Ran(answers) => answers,
        Local::NotHere(_) => panic!("the flow runs here"),
    }
}

fn body(message: &oih_bus::Message) -> Value {
    serde_json::from_slice(&message.body).expect("JSON")
}

async fn the_reply_is_returned_once_the_execution_is_stored(mut hub: Hub) {
    let flow = replying_flow();
    hub.started(&flow).await;
    let mut on_bus = caller(&hub, "test.local").await;
    let (exec, payload) = execute_payload(&flow, json!({"n": 4}), Some("test.local.a"));
    let answers = run_here(&hub, &payload).await;
    assert_eq!(answers.len(), 1, "one reply");
    let (key, reply) = &answers[0];
    assert_eq!(key, "test.local.a");
    let reply_body = body(reply);
    assert_eq!(reply_body["statusCode"], 201, "{reply_body}");
    assert_eq!(reply_body["body"], json!({"sum": 5}));
    assert_eq!(reply.properties.headers["flowExecId"], exec.as_str());
    // Stored before the answer was handed over, not merely soon after.
    let stored = hub
        .executions
        .get(&exec)
        .await
        .expect("store")
        .expect("the execution is stored");
    let stored = serde_json::to_value(&stored).expect("json");
    assert_eq!(stored["status"], "succeeded", "{stored}");
    assert_eq!(stored["replied"], true);
    assert_eq!(stored["steps"]["sum"]["output"], json!({"sum": 5}));
    // Nothing went over the bus to the caller.
    let more = tokio::time::timeout(Duration::from_millis(300), on_bus.next()).await;
    assert!(more.is_err(), "the reply did not travel over the bus");
    hub.shutdown().await;
}

async fn a_message_that_reaches_no_reply_returns_the_outcome(mut hub: Hub) {
    let flow = replying_flow();
    hub.started(&flow).await;
    let (exec, payload) = execute_payload(&flow, json!({"n": -1}), Some("test.local.b"));
    let answers = run_here(&hub, &payload).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    let note = body(&answers[0].1);
    assert_eq!(note["executionFinished"]["flowExecId"], exec.as_str());
    assert_eq!(note["executionFinished"]["status"], "succeeded", "{note}");
    hub.shutdown().await;
}

/// `http-request` keeps its queue: the call returns once its input is queued, and the reply
/// after it reaches the caller over the bus, as from any queued step.
async fn a_reply_after_a_queued_step_comes_over_the_bus(mut hub: Hub) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::get(|| async { axum::Json(json!({"echoed": true})) }),
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
                json!({"url": format!("\"http://{address}/echo\"")}),
            ),
            node("reply", "webhook-reply", json!({})),
        ],
        &[("start", "call"), ("call", "reply")],
    );
    hub.started(&flow).await;
    let mut on_bus = caller(&hub, "test.later").await;
    let (exec, payload) = execute_payload(&flow, json!({}), Some("test.later.a"));
    let answers = run_here(&hub, &payload).await;
    assert!(answers.is_empty(), "no answer yet: {answers:?}");
    let reply = tokio::time::timeout(WAIT, on_bus.next())
        .await
        .expect("reply in time")
        .expect("open");
    assert_eq!(reply.routing_key, "test.later.a");
    let reply_body: Value = serde_json::from_slice(reply.body()).expect("json");
    assert_eq!(
        reply_body["body"]["body"],
        json!({"echoed": true}),
        "{reply_body}"
    );
    reply.ack().await.expect("ack");
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    server.abort();
    hub.shutdown().await;
}

async fn a_flow_not_running_here_is_left_to_the_bus(hub: Hub) {
    let flow = replying_flow();
    let (exec, payload) = execute_payload(&flow, json!({"n": 1}), Some("test.elsewhere.a"));
    let ran = execute_here(&hub, &payload).await.expect("no error");
    assert!(
        matches!(&ran, Local::NotHere(msg) if *msg == payload["msg"]),
        "not run here, and the message given back: {ran:?}"
    );
    assert!(
        hub.executions.get(&exec).await.expect("store").is_none(),
        "nothing stored"
    );
    hub.shutdown().await;
}

async fn a_malformed_message_is_refused(mut hub: Hub) {
    let flow = replying_flow();
    hub.started(&flow).await;
    let flow_id = flow["id"].as_str().expect("flow id");
    let refused = hub
        .in_process
        .execute(flow_id, json!(["not", "a message"]), "test.local.a".into())
        .await;
    assert!(
        matches!(refused, Err(DataflowError::Malformed(_))),
        "{refused:?}"
    );
    hub.shutdown().await;
}
