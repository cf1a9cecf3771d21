//! The test hub: the module mounted like `oih serve` mounts it, its workers running, an
//! observer on the event bus, a spy on the steps' data, and helpers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{ConsumeOptions, Consumer, EventBus, EventStream, MessageBus, QueueOptions};
use oih_core::ObjectId;
use oih_http::step_token::StepTokens;
use oih_http::testing::StaticAuthenticator;
use oih_orchestrator::executions::ExecutionStore;
use oih_orchestrator::resolve::builtin_id;
use oih_orchestrator::topology::{BACKCHANNEL, OUTPUT_KEY};
use oih_orchestrator::{BuiltinIdResolver, ComponentResolver, Config, Deps};
use oih_store::testing::PgSchema;
use oih_store::{DocStore, MessageLog};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const TENANT: &str = "testTenant1";
pub const OTHER_TENANT: &str = "testTenant2";
const WAIT: Duration = Duration::from_secs(10);

fn authenticator() -> StaticAuthenticator {
    StaticAuthenticator::new()
        .with_user("adminToken", "adminId", None, &["all"])
        .with_user("userToken", "userId", Some(TENANT), &["flows.read"])
        .with_user(
            "otherTenantToken",
            "otherId",
            Some(OTHER_TENANT),
            &["flows.read"],
        )
}

pub struct Hub {
    pub router: Router,
    /// Executions started in process, as a webhooks service beside the orchestrator does.
    pub in_process: oih_orchestrator::InProcess,
    pub bus: Arc<dyn MessageBus>,
    pub executions: ExecutionStore,
    /// The executions the orchestrator had the snapshots service of its process purge.
    pub purged: Arc<Purged>,
    docs: Arc<dyn DocStore>,
    observer: EventStream,
    spy: Consumer,
    spy_queue: String,
    cancel: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
    _pg: Option<PgSchema>,
}

/// Stands for the snapshots service of the orchestrator's process: records what it is told.
#[derive(Default)]
pub struct Purged(std::sync::Mutex<Vec<String>>);

impl Purged {
    pub fn ids(&self) -> Vec<String> {
        self.0.lock().expect("purged lock").clone()
    }
}

#[async_trait::async_trait]
impl oih_orchestrator::FinishedExecutions for Purged {
    async fn purge(&self, flow_exec_id: &str) -> Result<(), String> {
        self.0
            .lock()
            .expect("purged lock")
            .push(flow_exec_id.to_owned());
        Ok(())
    }
}

/// The tests' configuration with no step run in place: every step's input and output
/// travels through the bus, as in OIH.
pub fn queued() -> Config {
    Config {
        component_prefetch: 4,
        inline_steps: false,
        ..Config::default()
    }
}

impl Hub {
    /// The hub on SQLite with `config`.
    pub async fn start_with(config: Config) -> Hub {
        let backend = oih_store::open(Some("sqlite::memory:"), Path::new("."))
            .await
            .expect("store");
        Self::on(backend.docs, backend.log, config, None).await
    }

    /// The hub on PostgreSQL with `config`; `None` without `OIH_TEST_DATABASE_URL`.
    pub async fn start_postgres_with(config: Config) -> Option<Hub> {
        let base_url = oih_store::testing::pg_url()?;
        let schema = PgSchema::create(&base_url).await.expect("test schema");
        let backend = oih_store::open(Some(schema.url()), Path::new("."))
            .await
            .expect("store");
        Some(Self::on(backend.docs, backend.log, config, Some(schema)).await)
    }

    async fn on(
        docs: Arc<dyn DocStore>,
        log: Arc<dyn MessageLog>,
        config: Config,
        pg: Option<PgSchema>,
    ) -> Hub {
        let bus: Arc<dyn MessageBus> = EmbeddedBus::open(log, Default::default())
            .await
            .expect("bus");
        let components = Arc::new(BuiltinIdResolver::new());
        Self::with(docs, bus, components, config, pg).await
    }

    /// The hub on `bus`, resolving components with `components`.
    pub async fn with(
        docs: Arc<dyn DocStore>,
        bus: Arc<dyn MessageBus>,
        components: Arc<dyn ComponentResolver>,
        config: Config,
        pg: Option<PgSchema>,
    ) -> Hub {
        let observer = EventBus::new(bus.clone(), "test-observer")
            .await
            .expect("event bus")
            .subscribe(&["flow.started", "flow.stopped", "flow.failed"], 100)
            .await
            .expect("subscribe");
        let purged = Arc::new(Purged::default());
        let deps = Deps {
            docs: docs.clone(),
            bus: bus.clone(),
            components,
            http: reqwest::Client::new(),
            step_tokens: Arc::new(
                StepTokens::new(
                    b"orchestrator-test-key-0123456789",
                    Duration::from_secs(600),
                )
                .expect("key"),
            ),
            snapshots: Some(purged.clone()),
        };
        let built = oih_orchestrator::module(config, deps)
            .await
            .expect("module");
        let (mut module, in_process) = (built.module, built.in_process);
        // Every data message a step emits, as the orchestrator receives it (a queue of its own:
        // on RabbitMQ the broker outlives the hub).
        let spy_queue = format!("test-spy-{}", ObjectId::new());
        bus.declare_queue(&spy_queue, &QueueOptions::default())
            .await
            .expect("spy queue");
        bus.bind_queue(&spy_queue, BACKCHANNEL, OUTPUT_KEY)
            .await
            .expect("spy binding");
        let spy = bus
            .consume(&spy_queue, ConsumeOptions::default())
            .await
            .expect("spy");
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
            in_process,
            bus,
            executions: ExecutionStore::open(docs.clone(), None)
                .await
                .expect("executions"),
            purged,
            docs,
            observer,
            spy,
            spy_queue,
            cancel,
            workers,
            _pg: pg,
        }
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::builder().method("GET").uri(uri);
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

    /// Publishes an event as `service` would.
    pub async fn publish(&self, service: &str, name: &str, payload: Value) {
        oih_bus::testing::publish_as(self.bus.clone(), service, name, payload).await;
    }

    /// The next `flow.started|stopped|failed` event about `flow_id`, as `(name, payload)`.
    pub async fn next_flow_event(&mut self, flow_id: &str) -> (String, Value) {
        let wait = async {
            loop {
                let received = self.observer.next().await.expect("bus open");
                let event = received.event.clone();
                received.ack().await.expect("ack");
                if event.payload["id"] == flow_id {
                    assert_eq!(event.headers.service_name, "component-orchestrator");
                    return (event.name().to_owned(), event.payload);
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no event about flow {flow_id}"))
    }

    /// Publishes `flow.starting` as the flow repository does and returns the answer.
    pub async fn start_flow(&mut self, flow: &Value) -> (String, Value) {
        let mut payload = flow.clone();
        payload["status"] = json!("starting");
        payload["startedBy"] = json!("userId");
        self.publish("flow-repository", "flow.starting", payload)
            .await;
        self.next_flow_event(flow["id"].as_str().expect("id")).await
    }

    /// Starts `flow` and asserts that it started.
    pub async fn started(&mut self, flow: &Value) {
        let (name, payload) = self.start_flow(flow).await;
        assert_eq!(name, "flow.started", "{payload}");
    }

    /// Publishes `flow.execute` as the webhooks do and returns the execution id.
    pub async fn execute(&self, flow: &Value, data: Value) -> String {
        self.execute_replying(flow, data, None).await
    }

    /// [`Hub::execute`] for a caller waiting for its answer on `reply_to`.
    pub async fn execute_replying(
        &self,
        flow: &Value,
        data: Value,
        reply_to: Option<&str>,
    ) -> String {
        let (exec_id, payload) = execute_payload(flow, data, reply_to);
        self.publish("webhooks", "flow.execute", payload).await;
        exec_id
    }

    /// The execution once it is no longer running.
    pub async fn finished(&self, exec_id: &str) -> Value {
        let wait = async {
            loop {
                if let Some(e) = self.executions.get(exec_id).await.expect("store") {
                    let value = serde_json::to_value(&e).expect("json");
                    if value["status"] != "running" {
                        return value;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("execution {exec_id} did not finish"))
    }

    /// The next `n` data messages steps emitted, as `(stepId, body)`, sorted by step id.
    pub async fn outputs(&mut self, n: usize) -> Vec<(String, Value)> {
        let mut found = Vec::new();
        while found.len() < n {
            let delivery = tokio::time::timeout(WAIT, self.spy.next())
                .await
                .expect("step output in time")
                .expect("spy open");
            let step = delivery.headers()["stepId"]
                .as_str()
                .expect("stepId")
                .to_owned();
            let body: Value = serde_json::from_slice(delivery.body()).expect("json body");
            delivery.ack().await.expect("ack");
            found.push((step, body));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// The ids of the flows recorded as deployed.
    pub async fn deployed(&self) -> Vec<String> {
        let deployed = oih_orchestrator::deployed::Deployed::open(self.docs.clone())
            .await
            .expect("deployed");
        let mut ids: Vec<String> = deployed
            .all()
            .await
            .expect("all")
            .into_iter()
            .map(|f| f.id)
            .collect();
        ids.sort();
        ids
    }

    /// Stops the module and starts a new one on the same store and bus, as a restarted hub
    /// (the bus keeps what was queued, as the embedded bus and RabbitMQ do across restarts).
    pub async fn restart(mut self) -> Hub {
        let pg = self._pg.take();
        let (docs, bus) = (self.docs.clone(), self.bus.clone());
        self.shutdown().await;
        let config = Config {
            component_prefetch: 4,
            ..Config::default()
        };
        Self::with(docs, bus, Arc::new(BuiltinIdResolver::new()), config, pg).await
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        for worker in self.workers {
            worker.await.expect("worker ended");
        }
        drop(self.spy);
        self.bus
            .delete_queue(&self.spy_queue)
            .await
            .expect("spy queue deleted");
    }
}

/// A node running the builtin component `name`.
pub fn node(id: &str, name: &str, fields: Value) -> Value {
    json!({"id": id, "componentId": builtin_id(name), "function": name, "fields": fields})
}

/// A flow as the flow repository formats it.
pub fn flow(tenant: &str, owner: &str, nodes: Vec<Value>, edges: &[(&str, &str)]) -> Value {
    let edges: Vec<Value> = edges
        .iter()
        .map(|(s, t)| json!({"source": s, "target": t}))
        .collect();
    json!({
        "id": ObjectId::new().to_string(),
        "name": "test flow",
        "graph": {"nodes": nodes, "edges": edges},
        "type": "ordinary",
        "tenant": tenant,
        "owners": [{"id": owner, "type": "USER"}],
        "status": "inactive",
    })
}

/// noop → jsonata (`{"doubled": n * 2}`) → log.
pub fn linear_flow(tenant: &str, owner: &str) -> Value {
    flow(
        tenant,
        owner,
        vec![
            node("step_1", "noop", json!({})),
            node(
                "step_2",
                "jsonata",
                json!({"expression": "{\"doubled\": n * 2}"}),
            ),
            node("step_3", "log", json!({"level": "debug"})),
        ],
        &[("step_1", "step_2"), ("step_2", "step_3")],
    )
}

/// A queue receiving what is published to the backchannel under `prefix.#`.
/// Starts `flow`, runs it on `data` and returns the execution id and the
/// `flow.execution.finished` event announcing its end.
pub async fn announced(hub: &mut Hub, flow: &Value, data: Value) -> (String, Value) {
    let mut events = EventBus::new(hub.bus.clone(), "test-snapshots")
        .await
        .expect("event bus")
        .subscribe(&["flow.execution.finished"], 10)
        .await
        .expect("subscribe");
    hub.started(flow).await;
    let exec = hub.execute(flow, data).await;
    let received = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("event in time")
        .expect("bus open");
    let payload = received.event.payload.clone();
    received.ack().await.expect("ack");
    (exec, payload)
}

/// `flow.execute` of `data` for `flow`, as the webhooks send it, and its execution id.
pub fn execute_payload(flow: &Value, data: Value, reply_to: Option<&str>) -> (String, Value) {
    let exec_id = ObjectId::new().to_string();
    let mut msg_headers = json!({"taskId": flow["id"]});
    if let Some(reply_to) = reply_to {
        msg_headers["reply_to"] = json!(reply_to);
    }
    let payload = json!({
        "flow": {"_id": flow["id"], "graph": flow["graph"], "tenant": flow["tenant"], "owners": flow["owners"]},
        "msg": {
            "id": "b2a8",
            "attachments": {},
            "data": data,
            "headers": {"content-type": "application/json"},
            "metadata": {"source": {"name": "webhooks", "type": "webhook", "externalExecId": exec_id}},
            "url": "/hook/x",
            "method": "POST",
            "originalUrl": "/hook/x",
            "query": {},
            "params": {},
            "pathSuffix": "",
        },
        "msgOpts": {"headers": msg_headers},
    });
    (exec_id, payload)
}

pub async fn caller(hub: &Hub, prefix: &str) -> Consumer {
    let queue = format!("test-caller-{prefix}");
    hub.bus
        .declare_queue(&queue, &QueueOptions::default())
        .await
        .expect("queue");
    hub.bus
        .bind_queue(&queue, BACKCHANNEL, &format!("{prefix}.#"))
        .await
        .expect("bind");
    hub.bus
        .consume(&queue, ConsumeOptions::default())
        .await
        .expect("consume")
}

/// `step_1 → step_2 → step_3` where `step_2` fails on every input ("bad input").
pub fn failing_flow() -> Value {
    flow(
        TENANT,
        "userId",
        vec![
            node("step_1", "noop", json!({})),
            node(
                "step_2",
                "jsonata",
                json!({"expression": "$error('bad input')"}),
            ),
            node("step_3", "log", json!({})),
        ],
        &[("step_1", "step_2"), ("step_2", "step_3")],
    )
}
