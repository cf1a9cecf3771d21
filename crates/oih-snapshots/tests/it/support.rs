//! The test hub: the service mounted like `oih serve` does, its workers running on the
//! embedded bus, and helpers that publish as steps and services do.

use oih_snapshots::events::TOPICS;
use oih_snapshots::{Finished, SERVICE_NAME};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{EventBus, Message, MessageBus};
use oih_core::Event;
use oih_http::testing::StaticAuthenticator;
use oih_snapshots::ingest::COLLECTOR;
use oih_snapshots::{Config, Deps};
pub use oih_store::testing::FlakyStore;
use oih_store::testing::PgSchema;
use oih_store::{DocStore, MessageLog};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const TENANT: &str = "TestTenant";
pub const OTHER_TENANT: &str = "OtherTenant";
/// The user who started the test flows (the `userId` header steps send).
pub const STARTER: &str = "starterId";
pub const FLOW: &str = "5ca5c44c187c040010a9bb8b";
pub const OTHER_FLOW: &str = "5ca5c44c187c040010a9bb8c";

/// The starter's step token for `step_1` of [`FLOW`], as the orchestrator issues it.
fn step_token_identity() -> oih_core::Identity {
    let mut identity = oih_core::Identity::new(STARTER, Some(TENANT.to_owned()), Vec::new());
    identity.step = Some(oih_core::StepScope {
        flow_id: FLOW.into(),
        step_id: "step_1".into(),
        secret_id: None,
    });
    identity
}

fn authenticator() -> StaticAuthenticator {
    StaticAuthenticator::new()
        .with("stepToken", step_token_identity())
        .with_user("adminToken", "adminId", None, &["all"])
        .with_user("starterToken", STARTER, Some(TENANT), &[])
        .with_user(
            "colleagueToken",
            "colleagueId",
            Some(TENANT),
            &["flows.read"],
        )
        .with_user("tenantAdminToken", "taId", Some(TENANT), &["tenant.all"])
        .with_user(
            "otherAdminToken",
            "oaId",
            Some(OTHER_TENANT),
            &["tenant.all"],
        )
}

pub struct Hub {
    pub router: Router,
    pub bus: Arc<dyn MessageBus>,
    pub docs: Arc<dyn DocStore>,
    cancel: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// Held for its `Drop`; last, so that it goes after everything using the database.
    _pg: Option<PgSchema>,
}

async fn sqlite() -> oih_store::Backend {
    oih_store::open(Some("sqlite::memory:"), Path::new("."))
        .await
        .expect("store")
}

impl Hub {
    pub async fn start() -> Hub {
        let backend = sqlite().await;
        Self::on(backend.docs, backend.log, None, Finished::FromEvents).await
    }

    /// Beside the orchestrator, as `oih serve` runs it with both, on a bus where an earlier
    /// start (the orchestrator elsewhere) bound the service's queue to
    /// `flow.execution.finished`.
    pub async fn start_beside_orchestrator() -> Hub {
        let backend = sqlite().await;
        Self::on(
            backend.docs,
            backend.log,
            None,
            Finished::BesideOrchestrator,
        )
        .await
    }

    /// On SQLite behind a [`FlakyStore`] the test can make fail.
    pub async fn start_flaky() -> (Hub, Arc<FlakyStore>) {
        let backend = sqlite().await;
        let flaky = Arc::new(FlakyStore::new(backend.docs));
        let hub = Self::on(flaky.clone(), backend.log, None, Finished::FromEvents).await;
        (hub, flaky)
    }

    pub async fn start_postgres() -> Option<Hub> {
        let base_url = oih_store::testing::pg_url()?;
        let schema = PgSchema::create(&base_url).await.expect("test schema");
        let backend = oih_store::open(Some(schema.url()), Path::new("."))
            .await
            .expect("store");
        Some(
            Self::on(
                backend.docs,
                backend.log,
                Some(schema),
                Finished::FromEvents,
            )
            .await,
        )
    }

    async fn on(
        docs: Arc<dyn DocStore>,
        log: Arc<dyn MessageLog>,
        pg: Option<PgSchema>,
        finished: Finished,
    ) -> Hub {
        let bus: Arc<dyn MessageBus> = EmbeddedBus::open(log, Default::default())
            .await
            .expect("bus");
        if finished == Finished::BesideOrchestrator {
            let earlier = EventBus::new(bus.clone(), SERVICE_NAME)
                .await
                .expect("event bus");
            drop(earlier.subscribe(TOPICS, 1).await.expect("subscribe"));
        }
        let deps = Deps {
            docs: docs.clone(),
            bus: bus.clone(),
        };
        let mut module = oih_snapshots::module(Config::default(), deps, finished)
            .await
            .expect("module");
        let cancel = CancellationToken::new();
        let workers = std::mem::take(&mut module.workers)
            .into_iter()
            .map(|w| {
                let run = w.run(cancel.clone());
                tokio::spawn(async move { run.await.expect("worker") })
            })
            .collect();
        let router = oih_http::testing::router(module, authenticator());
        Hub {
            router,
            bus,
            docs,
            cancel,
            workers,
            _pg: pg,
        }
    }

    pub async fn call(&self, method: &str, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = req.body(Body::empty()).expect("request");
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    pub async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", uri, Some(token)).await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> StatusCode {
        self.call("DELETE", uri, Some(token)).await.0
    }

    /// Publishes to the collector as a step does (`SNAPSHOT_ROUTING_KEY`).
    pub async fn publish_snapshot(&self, headers: Value, body: &[u8]) {
        let flow = headers["taskId"].as_str().unwrap_or("x");
        let step = headers["stepId"].as_str().unwrap_or("x");
        self.publish_raw(
            COLLECTOR,
            &format!("flow-{flow}.{step}.snapshot"),
            headers,
            body,
        )
        .await;
    }

    /// Publishes `snapshots` (their headers and body), all of `flow`, which has none yet,
    /// and waits until the service lists them.
    pub async fn seed(&self, flow: &str, snapshots: &[(Value, &[u8])]) {
        for (headers, body) in snapshots {
            self.publish_snapshot(headers.clone(), body).await;
        }
        self.wait_for(&steps_uri(flow), "the seed", |b| {
            data(b).len() == snapshots.len()
        })
        .await;
    }

    pub async fn publish_raw(&self, exchange: &str, key: &str, headers: Value, body: &[u8]) {
        let mut message = Message::new(body.to_vec());
        message.properties.content_type = Some("application/json".into());
        if let Value::Object(map) = headers {
            message.properties.headers = map.into_iter().collect();
        }
        self.bus
            .publish(exchange, key, message)
            .await
            .expect("publish");
    }

    /// Publishes an event as another service does.
    pub async fn publish_event(&self, service: &str, name: &str, payload: Value) {
        EventBus::new(self.bus.clone(), service)
            .await
            .expect("event bus")
            .publish(Event::new(name, payload))
            .await
            .expect("publish");
    }

    /// Waits until `GET uri` as admin answers 200 with a body satisfying `done`.
    pub async fn wait_for(&self, uri: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..400 {
            let (status, body) = self.get(uri, "adminToken").await;
            if status == StatusCode::OK && done(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{uri} never showed {what}");
    }

    pub async fn queue_len(&self, queue: &str) -> u64 {
        self.bus.queue_len(queue).await.expect("queue length")
    }

    /// Waits until `queue` holds `n` ready messages.
    pub async fn wait_queue_len(&self, queue: &str, n: u64) {
        for _ in 0..400 {
            if self.queue_len(queue).await == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(self.queue_len(queue).await, n, "{queue}");
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        for worker in self.workers {
            worker.await.expect("worker ended");
        }
        self.docs.close().await;
    }
}

/// Headers of Ferryman's `snapshot` emit (persistent) by the test flow's starter.
pub fn persistent(flow: &str, step: &str) -> Value {
    json!({
        "taskId": flow, "stepId": step, "userId": STARTER, "tenant": TENANT,
        "snapshotEvent": "snapshot", "execId": "abc", "cid": 1,
    })
}

/// Headers of Ferryman's `updateSnapshot` emit (execution-scoped).
pub fn scoped(flow: &str, step: &str, exec: &str) -> Value {
    json!({
        "taskId": flow, "stepId": step, "userId": STARTER, "tenant": TENANT,
        "snapshotEvent": "updateSnapshot", "flowExecId": exec,
    })
}

/// The `data` array of a list answer.
pub fn data(body: &Value) -> &Vec<Value> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data array expected: {body}"))
}

pub fn steps_uri(flow: &str) -> String {
    format!("/snapshots/flows/{flow}/steps")
}

pub fn step_uri(flow: &str, step: &str) -> String {
    format!("/snapshots/flows/{flow}/steps/{step}")
}
