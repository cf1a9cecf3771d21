//! Callers of a flow with a `webhook-reply` step wait for its answer. The orchestrator is
//! played by the test: it reads `reply_to` from `flow.execute` and publishes what a step
//! (or the orchestrator at the execution's end) would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use oih_webhooks::{InProcess, InProcessError, Ran};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use oih_bus::Message;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{Hub, config, flow_payload, hook_uri};

const BACKCHANNEL: &str = "orchestrator_backchannel";

/// A flow whose callers wait (`flow.started` said `syncReply`).
async fn sync_flow(hub: &Hub) -> Value {
    let flow = flow_payload(json!({}));
    hub.starting(&flow).await;
    let id = flow["id"].as_str().expect("id").to_owned();
    hub.publish("flow.started", json!({"id": id, "syncReply": true}))
        .await;
    for _ in 0..100 {
        let doc = hub
            .docs
            .get(oih_webhooks::store::FLOWS, &id)
            .await
            .expect("get");
        if doc.is_some_and(|d| d.body["syncReply"] == true) {
            return flow;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("flow never became synchronous");
}

struct Answered {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

/// Sends the request in the background.
fn call(hub: &Hub, uri: &str, headers: &[(&str, &str)]) -> tokio::task::JoinHandle<Answered> {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Body::from(r#"{"a":2,"b":3}"#)).expect("request");
    let router = hub.router.clone();
    tokio::spawn(async move {
        let res = router.oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        Answered {
            status,
            headers,
            body: body.to_vec(),
        }
    })
}

/// Takes the next `flow.execute` and returns its `reply_to`.
async fn reply_to(hub: &mut Hub) -> String {
    let event = hub.expect_execute().await;
    event.payload["msgOpts"]["headers"]["reply_to"]
        .as_str()
        .expect("flow.execute names reply_to")
        .to_owned()
}

async fn answer(hub: &Hub, reply_to: &str, body: Value) {
    let message = Message::json(&body).with_header("flowExecId", "exec-1");
    hub.bus
        .publish(BACKCHANNEL, reply_to, message)
        .await
        .expect("publish");
}

#[tokio::test]
async fn the_step_reply_is_the_response() {
    let mut hub = Hub::start().await;
    let flow = sync_flow(&hub).await;
    let pending = call(&hub, &hook_uri(&flow), &[]);
    let to = reply_to(&mut hub).await;
    assert!(to.starts_with("webhooks.reply.local."), "{to}");
    let reply = json!({"statusCode": 201, "headers": {"x-sum": "5", "content-type": "application/json"}, "body": {"sum": 5}});
    answer(&hub, &to, reply).await;
    let res = pending.await.expect("request task");
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.headers["x-sum"], "5");
    assert_eq!(res.headers["x-oih-execution-id"], "exec-1");
    let body: Value = serde_json::from_slice(&res.body).expect("JSON");
    assert_eq!(body, json!({"sum": 5}));
    // The outcome note that follows a reply finds nobody waiting and changes nothing.
    answer(
        &hub,
        &to,
        json!({"executionFinished": {"flowExecId": "exec-1", "status": "succeeded"}}),
    )
    .await;
    hub.shutdown().await;
}

#[tokio::test]
async fn an_execution_that_ends_without_a_reply_answers_at_once() {
    let mut hub = Hub::start().await;
    let flow = sync_flow(&hub).await;

    let pending = call(&hub, &hook_uri(&flow), &[]);
    let to = reply_to(&mut hub).await;
    let note = json!({"executionFinished": {"flowExecId": "e-ok", "status": "succeeded"}});
    answer(&hub, &to, note).await;
    let res = pending.await.expect("request task");
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(res.headers["x-oih-execution-id"], "e-ok");

    let pending = call(&hub, &hook_uri(&flow), &[]);
    let to = reply_to(&mut hub).await;
    let note = json!({"executionFinished": {
        "flowExecId": "e-bad", "status": "failed",
        "error": {"stepId": "s", "message": "password=hunter2 rejected"},
    }});
    answer(&hub, &to, note).await;
    let res = pending.await.expect("request task");
    assert_eq!(res.status, StatusCode::BAD_GATEWAY);
    let body = String::from_utf8(res.body).expect("utf-8");
    assert!(body.contains("The flow failed before it replied"), "{body}");
    assert!(
        !body.contains("hunter2"),
        "step errors are not shown to callers"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn a_caller_gets_202_when_no_reply_comes_in_time() {
    let mut config = config();
    config.webhooks_reply_timeout_ms = 200;
    let mut hub = Hub::start_with(config).await;
    let flow = sync_flow(&hub).await;
    let pending = call(&hub, &hook_uri(&flow), &[("x-request-id", "slow-1")]);
    let to = reply_to(&mut hub).await;
    let res = pending.await.expect("request task");
    assert_eq!(res.status, StatusCode::ACCEPTED);
    let body: Value = serde_json::from_slice(&res.body).expect("JSON");
    assert_eq!(body["data"]["requestId"], "slow-1");
    // A reply after the timeout is dropped and the next caller is served normally.
    answer(&hub, &to, json!({"statusCode": 200, "body": "late"})).await;
    let pending = call(&hub, &hook_uri(&flow), &[]);
    let to = reply_to(&mut hub).await;
    answer(&hub, &to, json!({"statusCode": 200, "body": {"ok": true}})).await;
    let res = pending.await.expect("request task");
    assert_eq!(res.status, StatusCode::OK);
    hub.shutdown().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_gets_the_first_reply_without_running_again() {
    let mut hub = Hub::start().await;
    let flow = sync_flow(&hub).await;
    let key = [("idempotency-key", "order-7")];
    let pending = call(&hub, &hook_uri(&flow), &key);
    let to = reply_to(&mut hub).await;
    answer(
        &hub,
        &to,
        json!({"statusCode": 201, "headers": {"content-type": "text/plain"}, "body": "made"}),
    )
    .await;
    let first = pending.await.expect("request task");
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body, b"made");

    let again = call(&hub, &hook_uri(&flow), &key)
        .await
        .expect("request task");
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, b"made");
    assert_eq!(again.headers["content-type"], "text/plain");
    assert_eq!(again.headers["x-oih-execution-id"], "exec-1");
    // Nothing was published for the repeat: the next event is the next caller's.
    let pending = call(&hub, &hook_uri(&flow), &[("x-request-id", "third")]);
    let event = hub.expect_only("third").await;
    let to = event.payload["msgOpts"]["headers"]["reply_to"]
        .as_str()
        .expect("reply_to")
        .to_owned();
    answer(&hub, &to, json!({"statusCode": 200})).await;
    assert_eq!(pending.await.expect("request task").status, StatusCode::OK);
    hub.shutdown().await;
}

#[tokio::test]
async fn malformed_replies_are_dropped_and_the_worker_goes_on() {
    let mut hub = Hub::start().await;
    let flow = sync_flow(&hub).await;
    let pending = call(&hub, &hook_uri(&flow), &[]);
    let to = reply_to(&mut hub).await;
    hub.bus
        .publish(BACKCHANNEL, &to, Message::new(b"not json".to_vec()))
        .await
        .expect("publish");
    answer(
        &hub,
        "webhooks.reply.local.nobody",
        json!({"statusCode": 200}),
    )
    .await;
    answer(&hub, &to, json!({"statusCode": 200, "body": [1, 2]})).await;
    let res = pending.await.expect("request task");
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, b"[1,2]");
    hub.shutdown().await;
}

/// What the orchestrator of the same process does with the next `flow.execute`.
enum Run {
    /// It does not run the flow.
    NotHere,
    /// It runs it, and the steps answer the caller with this reply.
    Replies(Value),
    Fails,
}

/// Plays the orchestrator of the webhooks' process, as the test scripts it.
#[derive(Default)]
struct Orchestrator {
    script: Mutex<VecDeque<Run>>,
    calls: Mutex<usize>,
}

impl Orchestrator {
    fn scripted(runs: Vec<Run>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(runs.into()),
            calls: Mutex::new(0),
        })
    }

    fn calls(&self) -> usize {
        *self.calls.lock().expect("lock")
    }
}

#[async_trait]
impl InProcess for Orchestrator {
    async fn execute(
        &self,
        _flow_id: &str,
        msg: Value,
        reply_to: &str,
    ) -> Result<Ran, InProcessError> {
        *self.calls.lock().expect("lock") += 1;
        let next = self.script.lock().expect("lock").pop_front();
        match next.expect("a scripted run") {
            Run::NotHere => Ok(Ran::NotHere(msg)),
            Run::Fails => Err(InProcessError("the store is down".into())),
            Run::Replies(reply) => {
                let message = Message::json(&reply).with_header("flowExecId", "exec-here");
                Ok(Ran::Here(vec![(reply_to.to_owned(), message)]))
            }
        }
    }
}

#[tokio::test]
async fn a_flow_run_in_process_answers_without_the_bus() {
    let orchestrator = Orchestrator::scripted(vec![
        Run::Replies(json!({"statusCode": 201, "body": {"sum": 5}})),
        Run::NotHere,
    ]);
    let mut hub = Hub::start_in_process(orchestrator.clone()).await;
    let flow = sync_flow(&hub).await;
    let res = call(&hub, &hook_uri(&flow), &[("x-request-id", "first")])
        .await
        .expect("request task");
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.headers["x-oih-execution-id"], "exec-here");
    let body: Value = serde_json::from_slice(&res.body).expect("JSON");
    assert_eq!(body, json!({"sum": 5}));
    // A flow the process does not run goes over the bus; nothing was published before it.
    let pending = call(&hub, &hook_uri(&flow), &[("x-request-id", "second")]);
    let event = hub.expect_only("second").await;
    let to = event.payload["msgOpts"]["headers"]["reply_to"]
        .as_str()
        .expect("reply_to")
        .to_owned();
    answer(
        &hub,
        &to,
        json!({"statusCode": 200, "body": "over the bus"}),
    )
    .await;
    let res = pending.await.expect("request task");
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, br#""over the bus""#);
    assert_eq!(orchestrator.calls(), 2);
    hub.shutdown().await;
}

#[tokio::test]
async fn a_failure_in_process_is_503_and_gives_the_idempotency_key_back() {
    let orchestrator = Orchestrator::scripted(vec![
        Run::Fails,
        Run::Replies(json!({"statusCode": 201, "body": "made"})),
    ]);
    let hub = Hub::start_in_process(orchestrator.clone()).await;
    let flow = sync_flow(&hub).await;
    let key = [("idempotency-key", "order-9")];
    let failed = call(&hub, &hook_uri(&flow), &key)
        .await
        .expect("request task");
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_slice(&failed.body).expect("JSON");
    assert_eq!(
        body,
        json!({"error": "The flow could not be run; retry the request"})
    );
    let retried = call(&hub, &hook_uri(&flow), &key)
        .await
        .expect("request task");
    assert_eq!(
        retried.status,
        StatusCode::CREATED,
        "the retry runs the flow"
    );
    let again = call(&hub, &hook_uri(&flow), &key)
        .await
        .expect("request task");
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, br#""made""#);
    assert_eq!(orchestrator.calls(), 2, "the repeat ran nothing");
    hub.shutdown().await;
}

#[tokio::test]
async fn a_caller_that_does_not_wait_is_answered_once_the_event_is_on_the_bus() {
    let orchestrator = Orchestrator::scripted(vec![]);
    let mut hub = Hub::start_in_process(orchestrator.clone()).await;
    let flow = flow_payload(json!({}));
    hub.activate(&flow).await;
    let res = call(&hub, &hook_uri(&flow), &[("x-request-id", "async-1")])
        .await
        .expect("request task");
    assert_eq!(res.status, StatusCode::OK);
    let event = hub.expect_only("async-1").await;
    assert!(
        event.payload["msgOpts"]["headers"]
            .get("reply_to")
            .is_none()
    );
    assert_eq!(orchestrator.calls(), 0, "not run in process");
    hub.shutdown().await;
}
