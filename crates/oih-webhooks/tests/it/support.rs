//! The test hub: the service mounted like `oih serve` does, its worker running, an observer
//! of `flow.execute` on the event bus, and helpers to make flows hookable and call hooks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{EventBus, EventStream, MessageBus};
use oih_core::{Event, Identity, ObjectId};
use oih_http::BoxError;
use oih_http::testing::StaticAuthenticator;
pub use oih_store::testing::FlakyStore;
use oih_store::testing::PgSchema;
use oih_store::{DocStore, MessageLog};
use oih_webhooks::{Config, Deps, HmacVerifier, InProcess, PasswordLogin};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const TENANT: &str = "tenant1";
pub const OTHER_TENANT: &str = "tenant2";
/// The id of the one secret the test Secret Service knows, and its key.
pub const SECRET_ID: &str = "5f0c2d0e1a2b3c4d5e6f7a8b";
const SECRET_KEY: &[u8] = b"s3cret";
/// Every 404 waits this long in the tests (OIH: 1000 ms).
pub const NOT_FOUND_DELAY: Duration = Duration::from_millis(150);
/// The body limit in the tests.
pub const BODY_LIMIT: usize = 2048;

/// The Secret Service's `validateHmac`: HMAC-SHA256 of the body with the secret's key,
/// base64, checked in constant time. The secret belongs to the flows' starter, `ownerId`, as
/// whom the check is made.
struct TestSecrets;

#[async_trait]
impl HmacVerifier for TestSecrets {
    async fn verify(
        &self,
        owner: &Identity,
        secret_id: &str,
        algorithm: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<bool, BoxError> {
        if owner.sub != "ownerId" || secret_id != SECRET_ID || algorithm != "sha256" {
            return Ok(false);
        }
        let Ok(expected) = STANDARD.decode(signature) else {
            return Ok(false);
        };
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET_KEY)?;
        mac.update(body);
        Ok(mac.verify_slice(&expected).is_ok())
    }
}

/// The signature [`TestSecrets`] accepts for `body`.
pub fn sign(body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET_KEY).expect("key");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// IAM's login: one user, `basicUser` / `pw`, owner of the test flows.
struct TestLogin;

#[async_trait]
impl PasswordLogin for TestLogin {
    async fn login(&self, username: &str, password: &str) -> Result<Option<Identity>, BoxError> {
        Ok((username == "basicUser" && password == "pw").then(|| {
            Identity::new(
                "basicId",
                Some(TENANT.into()),
                vec!["webhooks.execute".into()],
            )
        }))
    }
}

fn authenticator() -> StaticAuthenticator {
    StaticAuthenticator::new()
        .with_user("adminToken", "adminId", None, &["all"])
        .with_user("ownerToken", "ownerId", Some(TENANT), &["webhooks.execute"])
        .with_user("noPermToken", "ownerId", Some(TENANT), &["flows.read"])
        .with_user(
            "memberToken",
            "memberId",
            Some(TENANT),
            &["webhooks.execute"],
        )
        .with_user(
            "otherToken",
            "otherId",
            Some(OTHER_TENANT),
            &["webhooks.execute"],
        )
}

pub fn config() -> Config {
    Config {
        payload_size_limit: BODY_LIMIT,
        webhooks_not_found_delay_ms: u64::try_from(NOT_FOUND_DELAY.as_millis()).expect("ms"),
        ..Config::default()
    }
}

async fn sqlite() -> oih_store::Backend {
    oih_store::open(Some("sqlite::memory:"), Path::new("."))
        .await
        .expect("store")
}

pub struct Hub {
    pub router: Router,
    pub bus: Arc<dyn MessageBus>,
    pub docs: Arc<dyn DocStore>,
    observer: EventStream,
    cancel: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// Held for its `Drop`; last, so that it goes after everything using the database.
    _pg: Option<PgSchema>,
}

impl Hub {
    pub async fn start() -> Hub {
        Self::start_with(config()).await
    }

    /// On a private in-memory SQLite database.
    pub async fn start_with(config: Config) -> Hub {
        let backend = sqlite().await;
        Self::on(config, backend.docs, backend.log, None, None).await
    }

    /// With `orchestrator` as the orchestrator of the same process.
    pub async fn start_in_process(orchestrator: Arc<dyn InProcess>) -> Hub {
        let backend = sqlite().await;
        Self::on(
            config(),
            backend.docs,
            backend.log,
            None,
            Some(orchestrator),
        )
        .await
    }

    /// On SQLite behind a [`FlakyStore`] the test can make fail.
    pub async fn start_flaky() -> (Hub, Arc<FlakyStore>) {
        let backend = sqlite().await;
        let flaky = Arc::new(FlakyStore::new(backend.docs));
        let hub = Self::on(config(), flaky.clone(), backend.log, None, None).await;
        (hub, flaky)
    }

    /// On a fresh schema of `OIH_TEST_DATABASE_URL`; `None` (skipped) when it is not set.
    pub async fn start_postgres() -> Option<Hub> {
        let base_url = oih_store::testing::pg_url()?;
        let schema = PgSchema::create(&base_url).await.expect("test schema");
        let backend = oih_store::open(Some(schema.url()), Path::new("."))
            .await
            .expect("store");
        Some(Self::on(config(), backend.docs, backend.log, Some(schema), None).await)
    }

    async fn on(
        config: Config,
        docs: Arc<dyn DocStore>,
        log: Arc<dyn MessageLog>,
        pg: Option<PgSchema>,
        in_process: Option<Arc<dyn InProcess>>,
    ) -> Hub {
        let bus: Arc<dyn MessageBus> = EmbeddedBus::open(log, Default::default())
            .await
            .expect("bus");
        let observer = EventBus::new(bus.clone(), "test-observer")
            .await
            .expect("event bus")
            .subscribe(&["flow.execute"], 100)
            .await
            .expect("subscribe");
        let deps = Deps {
            docs: docs.clone(),
            bus: bus.clone(),
            hmac: Arc::new(TestSecrets),
            login: Some(Arc::new(TestLogin)),
            in_process,
        };
        let mut module = oih_webhooks::module(config, deps).await.expect("module");
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
            observer,
            cancel,
            workers,
            _pg: pg,
        }
    }

    /// The response itself, for its headers.
    pub async fn raw(&self, req: Request<Body>) -> axum::response::Response {
        self.router.clone().oneshot(req).await.expect("infallible")
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        oih_http::testing::Client::new(self.router.clone())
            .send(req)
            .await
    }

    /// A hook request with an optional content type and body.
    pub async fn hook(
        &self,
        method: &str,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Value) {
        self.hook_with(method, uri, content_type, body, &[]).await
    }

    pub async fn hook_with(
        &self,
        method: &str,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(req.body(body.into()).expect("request")).await
    }

    /// POSTs a JSON body.
    pub async fn post_json(&self, uri: &str, body: &Value) -> (StatusCode, Value) {
        self.hook("POST", uri, Some("application/json"), body.to_string())
            .await
    }

    /// Publishes a lifecycle event as the flow repository / orchestrator would.
    pub async fn publish(&self, name: &str, payload: Value) {
        EventBus::new(self.bus.clone(), "flow-repository")
            .await
            .expect("event bus")
            .publish(Event::new(name, payload))
            .await
            .expect("publish");
    }

    /// Sends `flow.starting` for `flow` (an OIH flow-repository payload) and waits until the
    /// projection holds it.
    pub async fn starting(&self, flow: &Value) {
        let id = flow["id"].as_str().expect("id").to_owned();
        self.publish("flow.starting", flow.clone()).await;
        self.wait_for_status(&id, Some("starting")).await;
    }

    /// Makes `flow` hookable: `flow.starting` then `flow.started`.
    pub async fn activate(&self, flow: &Value) {
        self.starting(flow).await;
        let id = flow["id"].as_str().expect("id").to_owned();
        self.publish("flow.started", json!({"id": id})).await;
        self.wait_for_status(&id, Some("active")).await;
    }

    /// The status `webhooks_flows` holds for the flow (the hooks cannot tell: starting and
    /// unknown flows both answer 404).
    pub async fn stored_status(&self, id: &str) -> Option<String> {
        self.docs
            .get(oih_webhooks::store::FLOWS, id)
            .await
            .expect("get")
            .and_then(|d| d.body["status"].as_str().map(str::to_owned))
    }

    /// Waits until `webhooks_flows` holds the flow with `status` (`None`: not at all).
    pub async fn wait_for_status(&self, id: &str, status: Option<&str>) {
        for _ in 0..100 {
            if self.stored_status(id).await.as_deref() == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("flow {id} never reached status {status:?}");
    }

    /// The next `flow.execute` on the bus (whole event: headers and payload).
    pub async fn expect_execute(&mut self) -> Event {
        let received = tokio::time::timeout(Duration::from_secs(5), self.observer.next())
            .await
            .expect("no flow.execute within 5s")
            .expect("bus open");
        let event = received.event.clone();
        received.ack().await.expect("ack");
        event
    }

    /// Asserts that the next `flow.execute` is the one answered with `request_id`, i.e. that
    /// nothing was published in between.
    pub async fn expect_only(&mut self, request_id: &str) -> Event {
        let event = self.expect_execute().await;
        assert_eq!(
            event.payload["msg"]["metadata"]["source"]["externalExecId"], request_id,
            "an unexpected flow.execute was published"
        );
        event
    }

    pub async fn queue_len(&self, queue: &str) -> u64 {
        self.bus.queue_len(queue).await.expect("queue length")
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        for worker in self.workers {
            worker.await.expect("worker ended");
        }
        // Release every database connection while the runtime still runs: dropping the
        // PostgreSQL test schema blocks this thread and would wait forever for a connection
        // left inside a transaction.
        self.bus.close().await;
        self.docs.close().await;
    }
}

/// A flow as flow-repository's `flow.starting` carries it, owned by `ownerId` in [`TENANT`],
/// with the given `flowSettings.webhooks`.
pub fn flow_payload(webhooks: Value) -> Value {
    json!({
        "id": ObjectId::new().to_string(),
        "name": "hooked",
        "description": "",
        "graph": {
            "nodes": [
                {"id": "step_1", "componentId": "5ca5c44c187c040010a9bb8b", "function": "webhook"},
                {"id": "step_2", "componentId": "5ca5c44c187c040010a9bb8c", "function": "upsert"}
            ],
            "edges": [{"source": "step_1", "target": "step_2"}]
        },
        "type": "ordinary",
        "tenant": TENANT,
        "owners": [{"id": "ownerId", "type": "user"}],
        "status": "starting",
        "cron": null,
        "flowSettings": {"webhooks": webhooks},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z",
        "startedBy": "ownerId"
    })
}

/// A hookable flow without authentication; returns its payload.
pub async fn open_flow(hub: &Hub) -> Value {
    let flow = flow_payload(json!({}));
    hub.activate(&flow).await;
    flow
}

pub fn hook_uri(flow: &Value) -> String {
    format!("/hook/{}", flow["id"].as_str().expect("id"))
}
