//! The test hub: the service mounted like `oih serve` does, its worker running, an observer
//! queue on the event bus, request helpers and archive builders.

use oih_http::testing::Client;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{EventBus, EventStream, MessageBus};
use oih_http::testing::StaticAuthenticator;
use oih_metadata::{Config, Deps};
use oih_store::testing::PgSchema;
use oih_store::{DocStore, MessageLog};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const BASE: &str = "http://metadata.test";
pub const TENANT: &str = "tenantA";
pub const OTHER_TENANT: &str = "tenantC";

/// OIH's test users (test/tokens.js), with the same permissions.
fn authenticator() -> StaticAuthenticator {
    StaticAuthenticator::new()
        .with_user("user1", "u1", Some(TENANT), &["metadata.domains.crud"])
        .with_user("user2", "u2", Some(TENANT), &["tenant.all"])
        .with_user("user3", "u3", Some(TENANT), &[])
        .with_user("admin", "admin", Some("tenantB"), &["all"])
        .with_user(
            "other",
            "o1",
            Some(OTHER_TENANT),
            &["metadata.domains.crud"],
        )
        .with_user("otherAdmin", "oa", Some(OTHER_TENANT), &["tenant.all"])
}

pub fn config() -> Config {
    Config {
        base_url: format!("{BASE}/"),
        metadata_import_max_bytes: 256 * 1024,
        ..Config::default()
    }
}

pub struct Hub {
    /// Calls the service's router (`Hub` derefs to it: `hub.get(…)`, `hub.post(…)`).
    client: Client,
    pub bus: Arc<dyn MessageBus>,
    pub docs: Arc<dyn DocStore>,
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
    pub async fn start() -> Hub {
        let backend = oih_store::open(Some("sqlite::memory:"), Path::new("."))
            .await
            .expect("store");
        Self::on(backend.docs, backend.log, None).await
    }

    /// On a fresh PostgreSQL schema; `None` (skipped, with the reason printed by
    /// `pg_url`) when `OIH_TEST_DATABASE_URL` is not set.
    pub async fn start_postgres() -> Option<Hub> {
        let url = oih_store::testing::pg_url()?;
        let schema = PgSchema::create(&url).await.expect("test schema");
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
            .subscribe(&["metadata.#"], 100)
            .await
            .expect("subscribe");
        let deps = Deps {
            docs: docs.clone(),
            bus: bus.clone(),
        };
        let mut module = oih_metadata::module(config(), deps).await.expect("module");
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

    /// Creates a domain and returns its id.
    pub async fn domain(&self, token: &str, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/domains",
                token,
                json!({"name": name, "description": "d"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["id"].as_str().expect("id").to_owned()
    }

    /// Posts a schema into a domain; returns status and body.
    pub async fn schema(&self, token: &str, domain: &str, value: Value) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/domains/{domain}/schemas"),
            token,
            json!({ "value": value }),
        )
        .await
    }

    /// Uploads `bytes` as the multipart field `field` named `filename`.
    pub async fn upload(
        &self,
        domain: &str,
        token: &str,
        field: &str,
        filename: &str,
        bytes: &[u8],
    ) -> (StatusCode, Value) {
        let boundary = "oih-test-boundary-7d3f";
        let mut body = Vec::new();
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .expect("write");
        body.extend_from_slice(bytes);
        write!(body, "\r\n--{boundary}--\r\n").expect("write");
        let req = Request::builder()
            .method("POST")
            .uri(format!("/api/v1/domains/{domain}/schemas/import"))
            .header("authorization", format!("Bearer {token}"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .expect("request");
        self.send(req).await
    }

    /// Publishes an event as another service would.
    pub async fn publish(&self, service: &str, name: &str, payload: Value) {
        oih_bus::testing::publish_as(self.bus.clone(), service, name, payload).await;
    }

    /// The next event named `name` the service published (others are skipped).
    pub async fn expect_event(&mut self, name: &str) -> Value {
        let event =
            oih_bus::testing::next_named(&mut self.observer, name, Duration::from_secs(5)).await;
        assert_eq!(event.headers.service_name, "meta-data-repository");
        event.payload
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        for worker in self.workers {
            worker.await.expect("worker ended");
        }
    }
}

/// The path of a schema under a domain, as the API serves it.
pub fn schema_path(domain: &str, path: &str) -> String {
    format!("/api/v1/domains/{domain}/schemas/{path}")
}

/// The absolute `$id` the service gives a schema.
pub fn schema_id(domain: &str, path: &str) -> String {
    format!("{BASE}{}", schema_path(domain, path))
}

/// A zip of `(name, content)` entries, stored uncompressed.
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in entries {
        zip.start_file(*name, options).expect("zip entry");
        zip.write_all(content).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

/// A gzip'ed tar of `(name, content)` entries.
pub fn tgz_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *content)
            .expect("tar entry");
    }
    tar.into_inner().expect("tar").finish().expect("gzip")
}

/// OIH's test data folder (`../shared/data` from the project root), or None with the reason
/// printed when it is absent.
pub fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: OIH's test data folder {} is absent",
            dir.display()
        );
        None
    }
}

/// The `message` of an error body.
pub fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}
