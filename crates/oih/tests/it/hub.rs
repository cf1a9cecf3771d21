//! A running hub as the end-to-end tests drive it: the real binary on either backend, the
//! admin logged in, and the waits that follow a flow through its lifecycle.

use std::time::{Duration, Instant};

use oih_store::testing::{PgSchema, pg_url};
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

use crate::support::{Running, start_with, wait_healthy};

pub const ADMIN: &str = "admin@example.com";
pub const PASSWORD: &str = "e2e-admin-password";

/// The environment variable naming the RabbitMQ that tests may use.
pub const AMQP_ENV: &str = "OIH_TEST_AMQP_URL";

/// What a hub runs on.
pub enum Backend {
    /// SQLite and the embedded bus in the data directory.
    Embedded,
    /// PostgreSQL (a fresh schema) and RabbitMQ. Hubs on RabbitMQ share the broker's service
    /// queues (`component-orchestrator`, the backchannel, …) and would take each other's
    /// messages, so they run one at a time: this holds the turn.
    External {
        schema: PgSchema,
        amqp_url: String,
        _turn: MutexGuard<'static, ()>,
    },
}

static RABBITMQ_TURN: Mutex<()> = Mutex::const_new(());

impl Backend {
    /// PostgreSQL and RabbitMQ from `OIH_TEST_DATABASE_URL` and `OIH_TEST_AMQP_URL`, or
    /// `None` (with the reason printed) when either is not set.
    pub async fn external() -> Option<Self> {
        let database = pg_url()?;
        let Ok(amqp_url) = std::env::var(AMQP_ENV) else {
            eprintln!("skipped: {AMQP_ENV} is not set");
            return None;
        };
        let turn = RABBITMQ_TURN.lock().await;
        let schema = PgSchema::create(&database).await.expect("a fresh schema");
        Some(Self::External {
            schema,
            amqp_url,
            _turn: turn,
        })
    }

    fn args(&self) -> Vec<&str> {
        match self {
            Self::Embedded => Vec::new(),
            Self::External {
                schema, amqp_url, ..
            } => vec!["--database-url", schema.url(), "--amqp-url", amqp_url],
        }
    }

    pub fn amqp_url(&self) -> Option<&str> {
        match self {
            Self::Embedded => None,
            Self::External { amqp_url, .. } => Some(amqp_url),
        }
    }
}

pub struct Hub {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
}

impl Hub {
    /// The hub on `data_dir` and `backend`, healthy, with the admin logged in.
    pub async fn start(data_dir: &std::path::Path, backend: &Backend) -> (Running, Hub) {
        Self::start_with(data_dir, backend, &[]).await
    }

    /// As [`Hub::start`], with more environment.
    pub async fn start_with(
        data_dir: &std::path::Path,
        backend: &Backend,
        extra: &[(&str, &str)],
    ) -> (Running, Hub) {
        let mut env = vec![
            ("IAM_ACC_ADMIN_USERNAME", ADMIN),
            ("IAM_ACC_ADMIN_PASSWORD", PASSWORD),
        ];
        env.extend_from_slice(extra);
        let (running, base) = start_with(data_dir, &env, &backend.args());
        wait_healthy(&base).await;
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{base}/login"))
            .json(&json!({"username": ADMIN, "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let token = login["token"].as_str().expect("a token").to_owned();
        (running, Hub { base, http, token })
    }

    pub async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.expect("json")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST");
        assert!(res.status().is_success(), "POST {path}: {}", res.status());
        res.json().await.expect("json")
    }

    /// The id of the builtin component with this distribution name.
    pub async fn builtin(&self, name: &str) -> String {
        let list = self.get("/components?page%5Bsize%5D=100").await;
        list["data"]
            .as_array()
            .expect("components")
            .iter()
            .find(|c| c["distribution"]["name"] == name)
            .and_then(|c| c["id"].as_str())
            .unwrap_or_else(|| panic!("builtin {name} is listed"))
            .to_owned()
    }

    /// Polls the flow until its status is `want` (at most 10 s).
    pub async fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let flow = self.get(&format!("/flows/{id}")).await;
            if flow["data"]["status"] == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "flow stayed {} instead of {want}",
                flow["data"]["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates the flow, starts it and waits until it is active; returns its id.
    pub async fn started(&self, flow: &Value) -> String {
        let created = self.post("/flows", flow).await;
        let id = created["data"]["id"].as_str().expect("flow id").to_owned();
        self.post(&format!("/flows/{id}/start"), &json!({})).await;
        self.wait_status(&id, "active").await;
        id
    }
}

/// Posts to `/hook/{flow}` until the webhooks service has seen the flow become active (it
/// learns that from the bus, a moment after the flow repository does); returns the answer.
pub async fn wait_for_hook(hub: &Hub, flow: &str, body: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = hub
            .http
            .post(format!("{}/hook/{flow}", hub.base))
            .json(body)
            .send()
            .await
            .expect("POST /hook");
        if res.status().is_success() {
            return res.json().await.expect("json");
        }
        assert!(
            Instant::now() < deadline,
            "the webhook still answers {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the flow's executions until the newest has `status` (at most 20 s); returns it.
pub async fn wait_execution(hub: &Hub, flow: &str, status: &str) -> Value {
    wait_execution_where(hub, flow, status, |_| true).await
}

/// The newest of the flow's executions that `pick` accepts, once it has `status`: a test that
/// made several calls names the execution it waits for.
pub async fn wait_execution_where(
    hub: &Hub,
    flow: &str,
    status: &str,
    pick: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = hub
            .get(&format!("/executions?filter%5BflowId%5D={flow}"))
            .await;
        if let Some(newest) = list["data"]
            .as_array()
            .and_then(|a| a.iter().find(|e| pick(e)))
            && newest["status"] == status
        {
            return newest.clone();
        }
        assert!(Instant::now() < deadline, "no {status} execution: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
