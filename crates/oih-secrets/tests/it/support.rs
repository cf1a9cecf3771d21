//! A secret-service app per test: SQLite in a temp dir, the embedded bus, fixed tokens, and a
//! listener on every `secrets.*` event.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{EventBus, EventStream, MessageBus};
use oih_core::Event;
use oih_http::testing::{StaticAuthenticator, router};
use oih_http::{BoxError, Worker};
use oih_secrets::{Config, Deps};
use oih_store::DocStore;
use oih_store::testing::{PgSchema, pg_url};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

pub const MASTER_KEY: &str = "test master key: 0123456789abcdef";

/// Tokens: u1 and u2 share tenant t1; u3 is in t2.
pub fn tokens() -> StaticAuthenticator {
    StaticAuthenticator::new()
        .with_user("u1", "u1", Some("t1"), &[])
        .with_user("u1raw", "u1", Some("t1"), &["secrets.secret.readRaw"])
        .with_user("u2", "u2", Some("t1"), &[])
        .with_user("u3", "u3", Some("t2"), &["secrets.secret.readRaw"])
        .with_user("tadmin", "u5", Some("t1"), &["tenant.all"])
        .with_user("service", "sa", None, &["secrets.secret.deleteAny"])
        .with_user("clientsvc", "sa2", None, &["secrets.authClient.deleteAny"])
        .with_user(
            "clientraw",
            "u1",
            Some("t1"),
            &["secrets.authClient.readRaw"],
        )
}

pub fn config(data_dir: &Path) -> Config {
    Config {
        master_key: Some(MASTER_KEY.into()),
        page_size: 10,
        data_dir: data_dir.to_owned(),
        ..Config::default()
    }
}

/// The store, bus and data directory outlive apps, so a test can restart the service.
pub struct Infra {
    pub dir: TempDir,
    pub docs: Arc<dyn DocStore>,
    pub bus: Arc<dyn MessageBus>,
    /// Held for its `Drop`; last, so that it goes after everything using the database.
    _pg: Option<PgSchema>,
}

impl Infra {
    /// On SQLite in a temp dir.
    pub async fn new() -> Result<Self> {
        Self::on(None).await
    }

    /// On a PostgreSQL schema of its own; None (the test is skipped) without
    /// `OIH_TEST_DATABASE_URL`.
    pub async fn postgres() -> Result<Option<Self>> {
        let Some(base_url) = pg_url() else {
            return Ok(None);
        };
        let schema = PgSchema::create(&base_url).await?;
        Ok(Some(Self::on(Some(schema)).await?))
    }

    async fn on(pg: Option<PgSchema>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let backend = oih_store::open(pg.as_ref().map(PgSchema::url), dir.path()).await?;
        let bus = EmbeddedBus::open(backend.log.clone(), Default::default()).await?;
        Ok(Self {
            dir,
            docs: backend.docs,
            bus,
            _pg: pg,
        })
    }

    pub fn deps(&self) -> Deps {
        Deps {
            docs: self.docs.clone(),
            bus: self.bus.clone(),
        }
    }

    /// A listener bound before anything is published, so it sees every event.
    pub async fn listen(&self) -> Result<Listener> {
        let bus = EventBus::new(self.bus.clone(), "test-listener").await?;
        Ok(Listener {
            stream: bus.subscribe(&["secrets.#"], 100).await?,
        })
    }

    pub async fn app(&self, config: Config) -> Result<App> {
        let mut module = oih_secrets::module(config, self.deps()).await?;
        let workers = std::mem::take(&mut module.workers);
        let cancel = CancellationToken::new();
        let running = workers
            .into_iter()
            .map(|w: Worker| tokio::spawn(w.run(cancel.clone())))
            .collect();
        Ok(App {
            router: router(module, tokens()),
            cancel,
            running,
        })
    }
}

pub struct App {
    router: Router,
    cancel: CancellationToken,
    running: Vec<JoinHandle<Result<(), BoxError>>>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A response: status, body as JSON (or a JSON string for text), headers.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub cache_control: Option<String>,
    pub location: Option<String>,
}

impl App {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Reply> {
        let raw = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        self.call_raw(method, path, token, raw).await
    }

    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = match body {
            Some(bytes) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(bytes))?,
            None => req.body(Body::empty())?,
        };
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let header_text = |name| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let cache_control = header_text(header::CACHE_CONTROL);
        let location = header_text(header::LOCATION);
        let bytes = res.into_body().collect().await?.to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Reply {
            status,
            body,
            cache_control,
            location,
        })
    }

    pub async fn get(&self, path: &str, token: &str) -> Result<Reply> {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Result<Reply> {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Result<Reply> {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Result<Reply> {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a secret as `token` and returns its id.
    pub async fn create(&self, token: &str, secret: Value) -> Result<String> {
        let reply = self.post("/api/v1/secrets", token, secret).await?;
        anyhow::ensure!(
            reply.status == StatusCode::OK,
            "create failed: {} {}",
            reply.status,
            reply.body
        );
        reply.body["data"]["_id"]
            .as_str()
            .map(str::to_owned)
            .context("no _id")
    }

    /// Workers stop when the app is dropped; this checks they ended cleanly.
    pub async fn shutdown(mut self) -> Result<()> {
        self.cancel.cancel();
        for task in std::mem::take(&mut self.running) {
            task.await?.map_err(|e| anyhow::anyhow!(e))?;
        }
        Ok(())
    }
}

pub fn simple(name: &str, username: &str, passphrase: &str) -> Value {
    json!({"name": name, "type": "SIMPLE", "value": {"username": username, "passphrase": passphrase}})
}

pub struct Listener {
    stream: EventStream,
}

impl Listener {
    /// The next event, or None if none comes within a second.
    pub async fn next(&mut self) -> Option<Event> {
        let received = tokio::time::timeout(Duration::from_secs(2), self.stream.next())
            .await
            .ok()??;
        let event = received.event.clone();
        received.ack().await.ok()?;
        Some(event)
    }

    /// Events until none arrives for a moment.
    pub async fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Ok(Some(received)) =
            tokio::time::timeout(Duration::from_millis(300), self.stream.next()).await
        {
            events.push(received.event.clone());
            let _ = received.ack().await;
        }
        events
    }

    /// The next event named `name`, skipping others.
    pub async fn expect(&mut self, name: &str) -> Result<Event> {
        while let Some(event) = self.next().await {
            if event.name() == name {
                return Ok(event);
            }
        }
        anyhow::bail!("no {name} event arrived")
    }
}

/// An OA2 auth client whose token endpoint is `token_url`, created by `token`; returns its id.
pub async fn oa2_client(app: &App, token: &str, token_url: &str) -> Result<String> {
    let reply = app
        .post(
            "/api/v1/auth-clients",
            token,
            json!({"name": "provider", "type": "OA2_AUTHORIZATION_CODE",
                   "clientId": "the-client-id", "clientSecret": "the-client-secret",
                   "redirectUri": "https://hub.example/api/v1/callback",
                   "endpoints": {"auth": "https://provider.example/auth?scope={{scope}}&state={{state}}&redirect_uri={{redirectUri}}&client_id={{clientId}}",
                                 "token": token_url}}),
        )
        .await?;
    anyhow::ensure!(
        reply.status == StatusCode::OK,
        "client: {} {}",
        reply.status,
        reply.body
    );
    reply.body["data"]["_id"]
        .as_str()
        .map(str::to_owned)
        .context("no _id")
}
