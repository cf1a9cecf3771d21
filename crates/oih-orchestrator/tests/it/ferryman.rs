//! Process components: a real Ferryman (npm `@openintegrationhub/ferryman`, the version OIH's
//! components use) runs the small component in `tests/ferryman-component` through the
//! `process` driver against RabbitMQ, in a flow `noop → ferryman component → log`.
//!
//! Needs `OIH_TEST_AMQP_URL`, `node` and `npm`; skipped with a reason otherwise. Ferryman is
//! installed once into `$HOME/.cache/oih/ferryman` (or `$OIH_FERRYMAN_CACHE`), outside the
//! source tree, and reused.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{ConsumeOptions, Consumer, Delivery, MessageBus, QueueOptions};
use oih_core::ObjectId;
use oih_orchestrator::testing::{ferryman, ferryman_component_dir};
use oih_orchestrator::topology::COLLECTOR;
use oih_orchestrator::{ComponentDocuments, Config, ProcessConfig, RepositoryResolver};
use serde_json::{Value, json};

use crate::support::{Hub, TENANT, flow, node};

const COMPONENT_ID: &str = "5f1ad0d2ad7a2a4e9fe77a11";
const WAIT: Duration = Duration::from_secs(30);

/// One orchestrator at a time consumes the broker's single backchannel queue; two would take
/// each other's messages.
static RABBITMQ: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The Component Repository, as far as the orchestrator reads it.
struct Documents(HashMap<String, Value>);

#[async_trait]
impl ComponentDocuments for Documents {
    async fn component(&self, id: &str) -> Result<Option<Value>, oih_store::StoreError> {
        Ok(self.0.get(id).cloned())
    }
}

/// The test component as the repository stores it: Ferryman's entry point run with node in
/// the component's directory, rebounds retried after 100 ms instead of 15 s.
fn component(run_global: &Path) -> Value {
    let dir = ferryman_component_dir();
    json!({
        "id": COMPONENT_ID,
        "name": "ferryman test component",
        "distribution": {
            "type": "process",
            "command": ["node", run_global],
            "workingDirectory": dir,
        },
        "descriptor": {"environment": {"variables": {"REBOUND_INITIAL_EXPIRATION": "100"}}},
    })
}

fn ferryman_node(id: &str) -> Value {
    json!({"id": id, "componentId": COMPONENT_ID, "function": "transform", "fields": {}})
}

fn resolver(run_global: &Path) -> Arc<RepositoryResolver> {
    let documents = Documents(HashMap::from([(
        COMPONENT_ID.to_owned(),
        component(run_global),
    )]));
    Arc::new(RepositoryResolver::new(Arc::new(documents)))
}

/// `noop → ferryman component → log`.
fn ferryman_flow() -> Value {
    flow(
        TENANT,
        "userId",
        vec![
            node("step_1", "noop", json!({})),
            ferryman_node("step_2"),
            node("step_3", "log", json!({})),
        ],
        &[("step_1", "step_2"), ("step_2", "step_3")],
    )
}

/// The hub on RabbitMQ with the test component registered, or `None` when skipped. The
/// component's output is in the log (`RUST_LOG=oih_orchestrator=info`, `--nocapture`).
async fn rabbitmq_hub() -> Option<Hub> {
    // Another test may have installed it already.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let Ok(url) = std::env::var("OIH_TEST_AMQP_URL") else {
        eprintln!("skipped: OIH_TEST_AMQP_URL is not set");
        return None;
    };
    let run_global = ferryman()?;
    let bus: Arc<dyn MessageBus> = oih_bus::amqp::AmqpBus::connect(&url, Default::default())
        .await
        .expect("RabbitMQ");
    let backend = oih_store::open(Some("sqlite::memory:"), Path::new("."))
        .await
        .expect("store");
    let config = Config {
        process: ProcessConfig {
            flows_amqp_url: Some(url),
            // Nothing listens there: the component's snapshot lookup fails at once.
            api_uri: Some("http://127.0.0.1:9".into()),
            stop_grace_secs: 5,
            ..ProcessConfig::default()
        },
        // The tests follow every step's output on the bus.
        inline_steps: false,
        ..Config::default()
    };
    Some(Hub::with(backend.docs, bus, resolver(&run_global), config, None).await)
}

/// A queue of the collector's copies of the flow's messages matching `patterns`.
async fn watch(bus: &Arc<dyn MessageBus>, patterns: &[String]) -> (String, Consumer) {
    let queue = format!("test-watch-{}", ObjectId::new());
    bus.declare_queue(&queue, &QueueOptions::default())
        .await
        .expect("queue");
    for pattern in patterns {
        bus.bind_queue(&queue, COLLECTOR, pattern)
            .await
            .expect("bind");
    }
    let consumer = bus
        .consume(&queue, ConsumeOptions::default())
        .await
        .expect("consume");
    (queue, consumer)
}

async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a message in time")
        .expect("open")
}

/// The execution once it has failed.
async fn failed(hub: &Hub, exec: &str) -> Value {
    let wait = async {
        loop {
            let execution = hub.finished(exec).await;
            if execution["status"] == "failed" {
                return execution;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("execution {exec} did not fail"))
}

/// The data of the step outputs, by step.
fn data_of(outputs: &[(String, Value)]) -> Vec<(&str, Value)> {
    outputs
        .iter()
        .map(|(step, body)| (step.as_str(), body["data"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ferryman_component_transforms_errs_snapshots_and_rebounds() {
    let _serial = RABBITMQ.lock().await;
    let Some(mut hub) = rabbitmq_hub().await else {
        return;
    };
    let flow = ferryman_flow();
    let id = flow["id"].as_str().expect("id").to_owned();
    let (watched, mut collector) = watch(
        &hub.bus,
        &[
            format!("flow-{id}.*.snapshot"),
            format!("flow-{id}.*.rebound"),
        ],
    )
    .await;
    hub.started(&flow).await;

    // Data: transformed by the component, on to the last step.
    let exec = hub.execute(&flow, json!({"n": 21})).await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    let expected = json!({"doubled": 42, "reboundIteration": 0});
    assert_eq!(
        data_of(&hub.outputs(3).await),
        [
            ("step_1", json!({"n": 21})),
            ("step_2", expected.clone()),
            ("step_3", expected),
        ]
    );

    // emit('error'): recorded on the execution, nothing goes further. Ferryman publishes the
    // error through a rate limiter without waiting for it, so it may arrive after the step's
    // end: the execution may read "succeeded" for a moment.
    let exec = hub
        .execute(&flow, json!({"n": 1, "fail": "the input says so"}))
        .await;
    let execution = failed(&hub, &exec).await;
    assert_eq!(execution["error"]["stepId"], "step_2", "{execution}");
    assert!(
        execution["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the input says so")),
        "{execution}"
    );
    assert!(execution["steps"].get("step_3").is_none(), "{execution}");
    assert_eq!(
        data_of(&hub.outputs(1).await),
        [("step_1", json!({"n": 1, "fail": "the input says so"}))]
    );

    // emit('snapshot'): to the collector under the step's snapshot key.
    let exec = hub
        .execute(&flow, json!({"n": 2, "snapshot": {"cursor": 7}}))
        .await;
    let snapshot = next(&mut collector).await;
    assert_eq!(snapshot.routing_key, format!("flow-{id}.step_2.snapshot"));
    assert_eq!(snapshot.headers()["snapshotEvent"], "snapshot");
    assert_eq!(snapshot.headers()["stepId"], "step_2");
    let body: Value = serde_json::from_slice(snapshot.body()).expect("json");
    assert_eq!(body, json!({"cursor": 7}));
    snapshot.ack().await.expect("ack");
    assert_eq!(hub.finished(&exec).await["status"], "succeeded");
    assert_eq!(hub.outputs(3).await.len(), 3);

    // emit('rebound'): the input goes to the rebounds queue and comes back to the component,
    // which then lets it through.
    hub.execute(&flow, json!({"n": 5, "rebound": true})).await;
    let rebound = next(&mut collector).await;
    assert_eq!(rebound.routing_key, format!("flow-{id}.step_2.rebound"));
    assert_eq!(rebound.headers()["reboundIteration"], 1);
    assert_eq!(rebound.headers()["reboundReason"], "not yet");
    rebound.ack().await.expect("ack");
    let expected = json!({"doubled": 10, "reboundIteration": 1});
    assert_eq!(
        data_of(&hub.outputs(3).await),
        [
            ("step_1", json!({"n": 5, "rebound": true})),
            ("step_2", expected.clone()),
            ("step_3", expected),
        ]
    );

    hub.bus.delete_queue(&watched).await.expect("delete");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_process_is_restarted_and_gets_its_input_again() {
    let _serial = RABBITMQ.lock().await;
    let Some(mut hub) = rabbitmq_hub().await else {
        return;
    };
    let flow = ferryman_flow();
    hub.started(&flow).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("crashed");
    let exec = hub
        .execute(&flow, json!({"n": 4, "crashOnce": marker}))
        .await;
    let execution = hub.finished(&exec).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    // The first process took the input and died without acknowledging it.
    assert!(marker.exists());
    let outputs = hub.outputs(3).await;
    assert_eq!(
        data_of(&outputs)[2],
        ("step_3", json!({"doubled": 8, "reboundIteration": 0}))
    );
    hub.shutdown().await;
}

/// Without RabbitMQ a process component cannot reach its queue: the flow fails, naming the
/// node, and nothing is started.
#[tokio::test]
async fn a_process_component_needs_rabbitmq() {
    let backend = oih_store::open(Some("sqlite::memory:"), Path::new("."))
        .await
        .expect("store");
    let bus: Arc<dyn MessageBus> = EmbeddedBus::open(backend.log, Default::default())
        .await
        .expect("bus");
    let resolver = resolver(Path::new("/nonexistent/runGlobal.js"));
    let mut hub = Hub::with(backend.docs, bus, resolver, Config::default(), None).await;
    let flow = ferryman_flow();
    let (name, payload) = hub.start_flow(&flow).await;
    assert_eq!(name, "flow.failed");
    let reason = payload["reason"].as_str().expect("reason");
    assert!(
        reason.contains("\"step_2\"") && reason.contains("RabbitMQ"),
        "{reason}"
    );
    hub.shutdown().await;
}
