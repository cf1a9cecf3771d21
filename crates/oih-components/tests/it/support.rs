//! A running service per test: SQLite in a temp dir, the embedded bus, the module's workers,
//! and the router as `oih serve` mounts it.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{EventBus, EventStream, MessageBus};
use oih_components::{Config, Deps, module};
use oih_core::Event;
use oih_http::testing::{StaticAuthenticator, router};
use oih_store::{Backend, Collection, DocStore};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const PERMS: &[&str] = &[
    "components.create",
    "components.update",
    "components.delete",
    "components.write",
];

/// The callers of every test: `alice` and `carol` share tenant t1, `bob` is in t2; `reader`
/// and `updater` (t1) lack permissions.
fn users() -> StaticAuthenticator {
    StaticAuthenticator::new()
        .with_user("admin", "admin", Some("t1"), &["all"])
        .with_user("alice", "alice", Some("t1"), PERMS)
        .with_user("carol", "carol", Some("t1"), PERMS)
        .with_user("bob", "bob", Some("t2"), PERMS)
        .with_user("reader", "reader", Some("t1"), &[])
        // May create and change, but neither delete nor configure.
        .with_user(
            "updater",
            "updater",
            Some("t1"),
            &["components.create", "components.update"],
        )
        .with_user("service", "svc", None, &["components.any.read"])
}

pub struct TestApp {
    pub router: Router,
    /// The service's database, for tests that watch what a background consumer wrote.
    pub docs: Arc<dyn DocStore>,
    pub bus: Arc<EmbeddedBus>,
    stop: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Self {
        let backend = oih_store::open(Some("sqlite::memory:"), Path::new("."))
            .await
            .expect("store");
        Self::on(backend, config).await
    }

    /// Starts the service on an existing database (a restart, or a second replica).
    pub async fn on(backend: Backend, config: Config) -> Self {
        let bus = EmbeddedBus::open(backend.log.clone(), Default::default())
            .await
            .expect("bus");
        let deps = Deps {
            docs: backend.docs.clone(),
            bus: bus.clone(),
        };
        let mut module = module(config, deps).await.expect("module");
        let stop = CancellationToken::new();
        for worker in std::mem::take(&mut module.workers) {
            tokio::spawn(worker.run(stop.clone()));
        }
        Self {
            router: router(module, users()),
            docs: backend.docs.clone(),
            bus,
            stop,
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).expect("request"))
            .await
            .expect("response");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        match body {
            Some(body) => {
                self.raw(
                    method,
                    uri,
                    Some(token),
                    Some("application/json"),
                    body.to_string().into_bytes(),
                )
                .await
            }
            None => self.raw(method, uri, Some(token), None, Vec::new()).await,
        }
    }

    pub async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, token, None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, token, Some(body)).await
    }

    pub async fn patch(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, uri, token, Some(body)).await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, uri, token, None).await
    }

    /// Creates a component as `token` and returns its id.
    pub async fn component(&self, token: &str, body: Value) -> String {
        let (status, created) = self.post("/components", token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["data"]["id"].as_str().expect("id").to_owned()
    }

    /// A service (e.g. the flow repository) publishing on the event bus.
    pub async fn publish(&self, name: &str, payload: Value) {
        EventBus::new(self.bus.clone(), "flow-repository")
            .await
            .expect("event bus")
            .publish(Event::new(name, payload))
            .await
            .expect("publish");
    }

    /// The component ids the service has recorded as used by the active flow `flow_id`.
    pub async fn usage(&self, flow_id: &str) -> Option<Value> {
        self.docs
            .get(Collection("components_flow_usage"), flow_id)
            .await
            .expect("read usage")
            .map(|doc| doc.body["componentIds"].clone())
    }

    /// Ready messages in a bus queue.
    pub async fn bus_len(&self, queue: &str) -> u64 {
        self.bus.queue_len(queue).await.expect("queue length")
    }

    /// A subscriber on the event bus seeing what the service publishes.
    pub async fn observe(&self, topics: &[&str]) -> EventStream {
        EventBus::new(self.bus.clone(), "observer")
            .await
            .expect("event bus")
            .subscribe(topics, 16)
            .await
            .expect("subscribe")
    }
}

pub fn docker(name: &str) -> Value {
    json!({"name": name, "distribution": {"image": "elasticio/node:latest"}})
}

/// The next event within a few seconds.
pub async fn next_event(stream: &mut EventStream) -> Event {
    let received = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event in time")
        .expect("stream open");
    let event = received.event.clone();
    received.ack().await.expect("ack");
    event
}

/// Polls `check` until it holds (event consumers run in the background).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}
