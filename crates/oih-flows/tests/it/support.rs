//! The test hub: the service mounted like `oih serve` does, its worker running, an observer
//! queue on the event bus, and request helpers.

use oih_http::testing::Client;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{EventBus, EventStream, MessageBus};
use oih_flows::{Config, Deps};
use oih_http::testing::StaticAuthenticator;
pub use oih_store::testing::FlakyStore;
use oih_store::testing::PgSchema;
use oih_store::{DocStore, MessageLog};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn sqlite() -> oih_store::Backend {
    oih_store::open(Some("sqlite::memory:"), Path::new("."))
        .await
        .expect("store")
}

pub const TENANT: &str = "testTenant1";
pub const OTHER_TENANT: &str = "testTenant2";

/// OIH's test users (test/utils/tokens.js), plus a few this port needs.
fn authenticator() -> StaticAuthenticator {
    const RW: &[&str] = &["flows.read", "flows.write"];
    StaticAuthenticator::new()
        .with_user("adminToken", "adminId", None, &["all"])
        .with_user("guestToken", "guestId", Some(TENANT), RW)
        .with_user("permitToken", "permitId", Some(TENANT), RW)
        .with_user(
            "unpermitToken",
            "unpermitId",
            Some(TENANT),
            &["something.else"],
        )
        .with_user(
            "bulkToken",
            "bulkId",
            Some(TENANT),
            &["flows.bulk", "flows.write", "flows.read"],
        )
        .with_user(
            "controlToken",
            "controlId",
            Some(TENANT),
            &["flows.read", "flows.write", "flows.control"],
        )
        .with_user(
            "otherTenantToken",
            "otherId",
            Some(OTHER_TENANT),
            &["flows.read", "flows.write", "flows.control", "flows.bulk"],
        )
}

pub struct Hub {
    /// Calls the service's router (`Hub` derefs to it: `hub.get(…)`, `hub.post(…)`).
    client: Client,
    pub bus: Arc<dyn MessageBus>,
    pub docs: Arc<dyn DocStore>,
    /// Sees every event the service publishes.
    observer: EventStream,
    cancel: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// Held for its `Drop`; last, so that it goes after everything using the database.
    _pg: Option<PgSchema>,
}

impl std::ops::Deref for Hub {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Hub {
    /// On a private in-memory SQLite database.
    pub async fn start() -> Hub {
        let backend = sqlite().await;
        Self::on(backend.docs, backend.log, None).await
    }

    /// On SQLite behind a [`FlakyStore`] the test can make fail.
    pub async fn start_flaky() -> (Hub, Arc<FlakyStore>) {
        let backend = sqlite().await;
        let flaky = Arc::new(FlakyStore::new(backend.docs));
        let hub = Self::on(flaky.clone(), backend.log, None).await;
        (hub, flaky)
    }

    /// On a fresh schema of the PostgreSQL named by `OIH_TEST_DATABASE_URL`; `None` (the test
    /// is skipped) when it is not set.
    pub async fn start_postgres() -> Option<Hub> {
        let base_url = oih_store::testing::pg_url()?;
        let schema = PgSchema::create(&base_url).await.expect("test schema");
        let backend = oih_store::open(Some(schema.url()), Path::new("."))
            .await
            .expect("store");
        Some(Self::on(backend.docs, backend.log, Some(schema)).await)
    }

    async fn on(docs: Arc<dyn DocStore>, log: Arc<dyn MessageLog>, pg: Option<PgSchema>) -> Hub {
        let bus: Arc<dyn MessageBus> = EmbeddedBus::open(log, Default::default())
            .await
            .expect("bus");
        let observer = EventBus::new(bus.clone(), "test-observer")
            .await
            .expect("event bus")
            .subscribe(&["flow.#", "flowrepo.#"], 100)
            .await
            .expect("subscribe");
        let deps = Deps {
            docs: docs.clone(),
            bus: bus.clone(),
        };
        let mut module = oih_flows::module(Config::default(), deps)
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
            client: Client::new(router),
            bus,
            docs,
            observer,
            cancel,
            workers,
            _pg: pg,
        }
    }

    /// Creates a valid flow and returns its id.
    pub async fn create(&self, token: &str, flow: Value) -> String {
        let (status, body) = self.post("/flows", token, flow).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"]["id"].as_str().expect("id").to_owned()
    }

    /// Publishes an event as another service would.
    pub async fn publish(&self, service: &str, name: &str, payload: Value) {
        oih_bus::testing::publish_as(self.bus.clone(), service, name, payload).await;
    }

    /// The next event named `name` the service published (others are skipped).
    pub async fn expect_event(&mut self, name: &str) -> Value {
        let event =
            oih_bus::testing::next_named(&mut self.observer, name, Duration::from_secs(5)).await;
        assert_eq!(event.headers.service_name, "flow-repository");
        event.payload
    }

    /// Waits until `GET /flows/{id}` (as admin) satisfies `done`.
    pub async fn wait_for(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(StatusCode, &Value) -> bool,
    ) -> Value {
        for _ in 0..100 {
            let (status, body) = self.get(&format!("/flows/{id}"), "adminToken").await;
            if done(status, &body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("flow {id} never reached: {what}");
    }

    /// Waits until the flow has `status`.
    pub async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        self.wait_for(id, status, |code, body| {
            code == StatusCode::OK && body["data"]["status"] == status
        })
        .await
    }

    /// Number of messages waiting in a queue (e.g. the service's dead-letter queue).
    pub async fn queue_len(&self, queue: &str) -> u64 {
        self.bus.queue_len(queue).await.expect("queue length")
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        for worker in self.workers {
            worker.await.expect("worker ended");
        }
        self.docs.close().await;
    }
}

/// The flow OIH's tests add first ("should add a flow").
pub fn sample_flow(name: &str) -> Value {
    json!({
        "type": "ordinary",
        "name": name,
        "description": "A description",
        "graph": {
            "nodes": [
                {
                    "id": "NodeOne",
                    "componentId": "5ca5c44c187c040010a9bb8b",
                    "function": "getPersonsPolling",
                    "credentials_id": "5ca5c44c187c040010a9bb8c",
                    "fields": {"username": "TestName", "password": "TestPass"}
                },
                {
                    "id": "NodeTwo",
                    "componentId": "5ca5c44c187c040010a9bb8c",
                    "function": "transformTestToOih"
                }
            ],
            "edges": [{"source": "NodeOne", "target": "NodeTwo"}]
        }
    })
}

pub fn messages(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors array expected: {body}"))
        .iter()
        .map(|e| e["message"].as_str().expect("message").to_owned())
        .collect()
}

pub const UNKNOWN_ID: &str = "5ca5c44c187c040010a9bb8b";
