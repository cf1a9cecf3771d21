//! The test hub: the service mounted like `oih serve` does, its ingest worker running, and
//! request helpers.

use oih_http::testing::Client;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use oih_audit::store::LogStore;
use oih_audit::{Config, Deps};
use oih_bus::MessageBus;
use oih_bus::embedded::EmbeddedBus;
use oih_http::testing::StaticAuthenticator;
pub use oih_store::testing::FlakyStore;
use oih_store::testing::PgSchema;
use oih_store::{DocStore, MessageLog};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const TENANT: &str = "TestTenant";
pub const OTHER_TENANT: &str = "OtherTenant";

/// OIH's test users (test/utils/tokens.js) plus the ones the extra cases need.
fn authenticator() -> StaticAuthenticator {
    const RW: &[&str] = &["logs.read", "logs.push"];
    StaticAuthenticator::new()
        .with_user("adminToken", "adminId", None, &["all"])
        .with_user("userToken", "userId", Some(TENANT), RW)
        .with_user("otherToken", "otherId", Some(OTHER_TENANT), RW)
        .with_user("readToken", "readerId", Some(TENANT), &["logs.read"])
        .with_user("noTenantToken", "loneId", None, RW)
        .with_user("tenantAdminToken", "taId", Some(TENANT), &["tenant.all"])
        .with_user("unpermitToken", "unpermitId", Some(TENANT), &["flows.read"])
}

pub struct Hub {
    /// Calls the service's router (`Hub` derefs to it: `hub.get(…)`, `hub.post(…)`).
    client: Client,
    config: Config,
    pub bus: Arc<dyn MessageBus>,
    pub docs: Arc<dyn DocStore>,
    pub logs: LogStore,
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

impl std::ops::Deref for Hub {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Hub {
    pub async fn start() -> Hub {
        let backend = sqlite().await;
        Self::on(backend.docs, backend.log, None, Config::default()).await
    }

    pub async fn start_with(config: Config) -> Hub {
        let backend = sqlite().await;
        Self::on(backend.docs, backend.log, None, config).await
    }

    /// On SQLite behind a [`FlakyStore`] the test can make fail.
    pub async fn start_flaky() -> (Hub, Arc<FlakyStore>) {
        let backend = sqlite().await;
        let flaky = Arc::new(FlakyStore::new(backend.docs));
        let hub = Self::on(flaky.clone(), backend.log, None, Config::default()).await;
        (hub, flaky)
    }

    pub async fn start_postgres() -> Option<Hub> {
        let base_url = oih_store::testing::pg_url()?;
        let schema = PgSchema::create(&base_url).await.expect("test schema");
        let backend = oih_store::open(Some(schema.url()), Path::new("."))
            .await
            .expect("store");
        Some(Self::on(backend.docs, backend.log, Some(schema), Config::default()).await)
    }

    async fn on(
        docs: Arc<dyn DocStore>,
        log: Arc<dyn MessageLog>,
        pg: Option<PgSchema>,
        config: Config,
    ) -> Hub {
        let bus: Arc<dyn MessageBus> = EmbeddedBus::open(log, Default::default())
            .await
            .expect("bus");
        Self::mount(docs, bus, pg, config).await
    }

    /// The service stopped and built again on the same database and bus, as after a restart.
    pub async fn restart(self) -> Hub {
        self.cancel.cancel();
        for worker in self.workers {
            worker.await.expect("worker ended");
        }
        Self::mount(self.docs, self.bus, self._pg, self.config).await
    }

    async fn mount(
        docs: Arc<dyn DocStore>,
        bus: Arc<dyn MessageBus>,
        pg: Option<PgSchema>,
        config: Config,
    ) -> Hub {
        let deps = Deps {
            docs: docs.clone(),
            bus: bus.clone(),
        };
        let mut module = oih_audit::module(config.clone(), deps)
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
        let logs = LogStore::open(docs.clone()).await.expect("log store");
        Hub {
            client: Client::new(router),
            config,
            bus,
            docs,
            logs,
            cancel,
            workers,
            _pg: pg,
        }
    }

    /// Pushes an entry as admin and returns its id.
    pub async fn push(&self, body: Value) -> String {
        let (status, res) = self.post("/logs", "adminToken", body).await;
        assert_eq!(status, StatusCode::CREATED, "{res}");
        res["_id"].as_str().expect("_id").to_owned()
    }

    /// Publishes an event as another service does.
    pub async fn publish(&self, service: &str, name: &str, payload: Value) {
        oih_bus::testing::publish_as(self.bus.clone(), service, name, payload).await;
    }

    /// Waits until `GET uri` (as admin) satisfies `done`.
    pub async fn wait_for(&self, uri: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let (status, body) = self.get(uri, "adminToken").await;
            // `data` and `meta.total` are two reads: accept only a consistent first page.
            let consistent = body["data"].as_array().map(|d| d.len() as u64)
                == body["meta"]["total"]
                    .as_u64()
                    .zip(body["meta"]["perPage"].as_u64())
                    .map(|(total, per_page)| total.min(per_page));
            if status == StatusCode::OK && consistent && done(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{uri} never showed {what}");
    }

    /// `/logs/verify` for one chain, as admin.
    pub async fn verify(&self, tenant: &str) -> Value {
        let (status, body) = self
            .get(
                &format!("/logs/verify?filter[tenant]={tenant}"),
                "adminToken",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
        body["data"][0].clone()
    }

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

pub fn messages(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors array expected: {body}"))
        .iter()
        .map(|e| e["message"].as_str().expect("message").to_owned())
        .collect()
}
