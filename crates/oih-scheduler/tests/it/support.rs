//! The test hub: one store and one embedded bus, any number of scheduler replicas on them
//! (each its own module with its workers running), an observer queue playing the
//! orchestrator's part on `flow.execute`, and helpers to publish flow-repository and
//! orchestrator events.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{EventBus, EventStream, MessageBus};
use oih_core::{Event, ObjectId};
use oih_scheduler::store::{FLOWS, NEXT_RUN_AT};
use oih_scheduler::{Config, Deps};
pub use oih_store::testing::FlakyStore;
use oih_store::testing::PgSchema;
use oih_store::{DocStore, MessageLog};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One running scheduler.
pub struct Replica {
    cancel: CancellationToken,
    workers: Vec<JoinHandle<()>>,
}

impl Replica {
    /// Stops its workers and waits for them (a scheduler going down).
    pub async fn stop(self) {
        self.cancel.cancel();
        for worker in self.workers {
            worker.await.expect("worker ended");
        }
    }
}

pub struct Hub {
    pub bus: Arc<dyn MessageBus>,
    pub docs: Arc<dyn DocStore>,
    /// Receives every `flow.execute`.
    executions: EventStream,
    replicas: Vec<Replica>,
    /// Held for its `Drop`; last, so that it goes after everything using the database.
    _pg: Option<PgSchema>,
}

impl Hub {
    /// On a private in-memory SQLite database, with no replica yet.
    pub async fn sqlite() -> Hub {
        let backend = oih_store::open(Some("sqlite::memory:"), Path::new("."))
            .await
            .expect("store");
        Self::on(backend.docs, backend.log, None).await
    }

    /// On SQLite behind a [`FlakyStore`] the test can make fail.
    pub async fn sqlite_flaky() -> (Hub, Arc<FlakyStore>) {
        let backend = oih_store::open(Some("sqlite::memory:"), Path::new("."))
            .await
            .expect("store");
        let flaky = Arc::new(FlakyStore::new(backend.docs));
        let hub = Self::on(flaky.clone(), backend.log, None).await;
        (hub, flaky)
    }

    /// On a fresh schema of the PostgreSQL named by `OIH_TEST_DATABASE_URL`; `None` (the test
    /// is skipped) when it is not set.
    pub async fn postgres() -> Option<Hub> {
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
        let executions = EventBus::new(bus.clone(), "test-orchestrator")
            .await
            .expect("event bus")
            .subscribe(&["flow.execute"], 100)
            .await
            .expect("subscribe");
        Hub {
            bus,
            docs,
            executions,
            replicas: Vec::new(),
            _pg: pg,
        }
    }

    /// Starts a scheduler replica with `config` on the hub's store and bus.
    pub async fn spawn(&self, config: Config) -> Replica {
        let deps = Deps {
            docs: self.docs.clone(),
            bus: self.bus.clone(),
        };
        let mut module = oih_scheduler::module(config, deps).await.expect("module");
        let cancel = CancellationToken::new();
        let workers = std::mem::take(&mut module.workers)
            .into_iter()
            .map(|w| {
                let run = w.run(cancel.clone());
                tokio::spawn(async move { run.await.expect("worker") })
            })
            .collect();
        Replica { cancel, workers }
    }

    /// Starts a replica the hub stops on [`Hub::shutdown`].
    pub async fn start_replica(&mut self, config: Config) {
        let replica = self.spawn(config).await;
        self.replicas.push(replica);
    }

    /// Publishes an event as `service` would.
    pub async fn publish(&self, service: &str, name: &str, payload: Value) {
        oih_bus::testing::publish_as(self.bus.clone(), service, name, payload).await;
    }

    /// flow-repository starts a flow: `flow.starting` with the whole flow.
    pub async fn starting(&self, flow: &Value) {
        self.publish("flow-repository", "flow.starting", flow.clone())
            .await;
    }

    /// The orchestrator deployed the flow: `flow.started`.
    pub async fn started(&self, id: &str) {
        self.publish("component-orchestrator", "flow.started", json!({"id": id}))
            .await;
    }

    /// Starts the flow as flow-repository and the orchestrator do, and waits until the
    /// scheduler planned its first run.
    pub async fn start_flow(&self, flow: &Value) -> String {
        let id = flow["id"].as_str().expect("id").to_owned();
        self.starting(flow).await;
        self.wait_for_doc(&id, "the flow to be remembered", |doc| doc.is_some())
            .await;
        self.started(&id).await;
        self.next_run_at(&id).await;
        id
    }

    /// The stored next run of a flow, once it has one.
    pub async fn next_run_at(&self, id: &str) -> DateTime<Utc> {
        let doc = self
            .wait_for_doc(id, "a planned run", |doc| {
                doc.is_some_and(|d| d.get(NEXT_RUN_AT).is_some())
            })
            .await
            .expect("document");
        millis(&doc[NEXT_RUN_AT])
    }

    /// The flow's document body in the scheduler's collection.
    pub async fn doc(&self, id: &str) -> Option<Value> {
        self.docs
            .get(FLOWS, id)
            .await
            .expect("read")
            .map(|d| d.body)
    }

    /// Waits (up to 5 s) until the flow's document satisfies `done`; returns it.
    pub async fn wait_for_doc(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        for _ in 0..100 {
            let doc = self.doc(id).await;
            if done(doc.as_ref()) {
                return doc;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("flow {id} never reached: {what}");
    }

    /// Writes the flow's next run straight into the store (downtime simulated).
    pub async fn set_next_run_at(&self, id: &str, at: DateTime<Utc>) {
        let doc = self.docs.get(FLOWS, id).await.expect("read").expect("doc");
        let mut body = doc.body;
        body[NEXT_RUN_AT] = json!(at.timestamp_millis());
        self.docs
            .update(FLOWS, id, Some(doc.version), body)
            .await
            .expect("write");
    }

    /// Every `flow.execute` published within `window`.
    pub async fn executions_within(&mut self, window: Duration) -> Vec<Event> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(received)) =
            tokio::time::timeout_at(deadline, self.executions.next()).await
        {
            seen.push(received.event.clone());
            received.ack().await.expect("ack");
        }
        seen
    }

    /// The next `flow.execute`, within `limit`.
    pub async fn next_execution(&mut self, limit: Duration) -> Event {
        let received = tokio::time::timeout(limit, self.executions.next())
            .await
            .unwrap_or_else(|_| panic!("no flow.execute within {limit:?}"))
            .expect("bus open");
        let event = received.event.clone();
        received.ack().await.expect("ack");
        event
    }

    /// Number of messages waiting in a queue (e.g. the service's dead-letter queue).
    pub async fn queue_len(&self, queue: &str) -> u64 {
        self.bus.queue_len(queue).await.expect("queue length")
    }

    /// Waits (up to 5 s) until `queue` holds `n` messages.
    pub async fn wait_for_queue_len(&self, queue: &str, n: u64) {
        for _ in 0..100 {
            if self.queue_len(queue).await == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{queue} never held {n} messages");
    }

    pub async fn shutdown(self) {
        for replica in self.replicas {
            replica.stop().await;
        }
        self.docs.close().await;
    }
}

/// A flow as flow-repository's `flow.starting` carries it.
pub fn flow(cron: Option<&str>) -> Value {
    let mut flow = json!({
        "id": ObjectId::new().to_string(),
        "name": "Scheduled flow",
        "description": "Runs on a schedule",
        "graph": {
            "nodes": [
                {"id": "step_1", "componentId": "5ca5c44c187c040010a9bb8b", "function": "getPersons"},
                {"id": "step_2", "componentId": "5ca5c44c187c040010a9bb8c", "function": "upsert"}
            ],
            "edges": [{"source": "step_1", "target": "step_2"}]
        },
        "type": "ordinary",
        "tenant": "tenant1",
        "owners": [{"id": "user1", "type": "user"}],
        "status": "starting",
        "fromTemplate": null,
        "flowSettings": {},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z",
        "startedBy": "user1"
    });
    if let Some(cron) = cron {
        flow["cron"] = json!(cron);
    }
    flow
}

/// A date OIH put on the wire (`toISOString()` form).
pub fn iso_date(value: &Value) -> DateTime<Utc> {
    let text = value.as_str().expect("a date string");
    assert!(
        text.len() == 24 && text.ends_with('Z') && text.as_bytes()[19] == b'.',
        "{text} is not in toISOString() form"
    );
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 date")
        .with_timezone(&Utc)
}

fn millis(value: &Value) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(value.as_i64().expect("milliseconds")).expect("in range")
}

/// Every second: the tests' cron, so they finish in seconds.
pub const EVERY_SECOND: &str = "* * * * * *";
/// Once a year (New Year's midnight): never due during a test unless made so.
pub const YEARLY: &str = "0 0 0 1 1 *";
