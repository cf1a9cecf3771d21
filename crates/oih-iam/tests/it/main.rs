//! IAM router tests, in process against SQLite `:memory:` and the embedded bus.

mod access;
mod authn;
mod bootstrap;
mod events;
mod jwt;
mod login;
mod oidc;
mod roles;
mod tenants;
mod tokens;
mod users;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use oih_bus::embedded::EmbeddedBus;
use oih_bus::{EventBus, EventStream, MessageBus};
use oih_core::Event;
use oih_http::Authenticator;
use oih_iam::{Config, Deps, Secret};
use oih_store::DocStore;
use oih_store::testing::{PG_ENV, PgSchema};
use serde_json::{Value, json};

pub const ADMIN: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-pass";

/// Cheap argon2 parameters so that tests hash quickly.
pub fn config() -> Config {
    Config {
        admin_username: ADMIN.into(),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        jwt_audience: "oih-test".into(),
        base_url: "http://iam.test".into(),
        jwt_key_rotation_seconds: 3600,
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        login_max_failures: 3,
        ..Config::default()
    }
}

pub struct TestIam {
    pub router: Router,
    pub docs: Arc<dyn DocStore>,
    pub bus: Arc<dyn MessageBus>,
    pub authenticator: Arc<dyn Authenticator>,
    pub service_token: String,
    /// The admin password this start generated (and printed), if it did.
    pub generated_admin_password: Option<Secret>,
    /// A login token of the bootstrap admin.
    pub admin: String,
    /// Keeps the PostgreSQL schema (if any); last, so it is dropped after everything that
    /// uses the database.
    _schema: Option<Arc<PgSchema>>,
}

/// IAM with the default test config and a logged-in admin.
pub async fn start() -> TestIam {
    let mut t = boot(config()).await;
    t.admin = t.login(ADMIN, ADMIN_PASSWORD).await;
    t
}

/// IAM wired as `serve` wires it, without logging anybody in (`admin` is empty).
pub async fn boot(config: Config) -> TestIam {
    boot_on(config, None).await
}

/// Same, on an existing document store when given (a restart), with a fresh bus. The store
/// is SQLite in memory, or a private schema on the PostgreSQL named by
/// `OIH_TEST_DATABASE_URL` when that is set (as CI does).
pub async fn boot_on(config: Config, docs: Option<Arc<dyn DocStore>>) -> TestIam {
    let schema = match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => Some(Arc::new(
            PgSchema::create(&url).await.expect("postgres schema"),
        )),
        _ => None,
    };
    let url = schema.as_ref().map_or("sqlite::memory:", |s| s.url());
    let backend = oih_store::open(Some(url), Path::new("."))
        .await
        .expect("store");
    let bus: Arc<dyn MessageBus> = EmbeddedBus::open(backend.log.clone(), Default::default())
        .await
        .expect("bus");
    let docs = docs.unwrap_or(backend.docs);
    let deps = Deps {
        docs: docs.clone(),
        bus: bus.clone(),
    };
    let iam = oih_iam::module(config, deps).await.expect("iam");
    let router = oih_http::App::new()
        .module(iam.module)
        .authenticator(iam.authenticator.clone())
        .build()
        .router;
    TestIam {
        router,
        docs,
        bus,
        authenticator: iam.authenticator,
        service_token: iam.service_token,
        generated_admin_password: iam.generated_admin_password,
        admin: String::new(),
        _schema: schema,
    }
}

impl TestIam {
    /// Sends one request; the body comes back as JSON, or as a JSON string if it is not JSON.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.client().call(method.as_str(), uri, token, body).await
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        self.client().send(req).await
    }

    fn client(&self) -> oih_http::testing::Client {
        oih_http::testing::Client::new(self.router.clone())
    }

    pub async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(token), Some(body)).await
    }

    pub async fn patch(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, uri, Some(token), Some(body)).await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, uri, Some(token), None).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        body["token"].as_str().expect("token").to_owned()
    }

    pub async fn create_tenant(&self, name: &str) -> String {
        let (status, body) = self
            .post("/api/v1/tenants", &self.admin, json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Creates an account as `token`; returns its id.
    pub async fn create_user(&self, token: &str, body: Value) -> String {
        let (status, res) = self.post("/api/v1/users", token, body).await;
        assert_eq!(status, StatusCode::OK, "{res}");
        res["id"].as_str().expect("id").to_owned()
    }

    /// An account made by the admin, password `pw`, with `extra` fields; returns its id and a
    /// login token.
    pub async fn account(&self, name: &str, extra: Value) -> (String, String) {
        let mut body = json!({"username": name, "password": "pw"});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let id = self.create_user(&self.admin, body).await;
        (id, self.login(name, "pw").await)
    }

    pub async fn me_id(&self, token: &str) -> String {
        let (_, me) = self.get("/api/v1/users/me", token).await;
        me["_id"].as_str().expect("id").to_owned()
    }

    /// A tenant with a tenant admin (`TENANT_ADMIN` role's permissions given directly) and a
    /// plain user; returns (tenant id, admin token, admin id, user token, user id).
    pub async fn tenant_with_users(&self, name: &str) -> TenantFixture {
        let tenant = self.create_tenant(name).await;
        let admin_name = format!("admin@{name}.test");
        let admin_id = self
            .create_user(
                &self.admin,
                json!({"username": admin_name, "password": "pw", "tenant": tenant,
                       "permissions": ["tenant.all", "tenant.account.read", "tenant.roles.read"]}),
            )
            .await;
        let user_name = format!("user@{name}.test");
        let user_id = self
            .create_user(
                &self.admin,
                json!({"username": user_name, "password": "pw", "tenant": tenant}),
            )
            .await;
        TenantFixture {
            admin: self.login(&admin_name, "pw").await,
            user: self.login(&user_name, "pw").await,
            tenant,
            admin_id,
            user_id,
        }
    }

    /// Serves the router on a local port (for clients that need a real URL); returns the
    /// base URL. The server stops with the test's runtime.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = self.router.clone();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    /// Starts observing IAM's events (subscribe before acting).
    pub async fn events(&self) -> EventStream {
        EventBus::new(self.bus.clone(), "observer")
            .await
            .expect("event bus")
            .subscribe(&["iam.#"], 100)
            .await
            .expect("subscribe")
    }
}

pub struct TenantFixture {
    pub tenant: String,
    pub admin: String,
    pub admin_id: String,
    pub user: String,
    pub user_id: String,
}

/// The next event named `name` (others are skipped), or panics after a few seconds.
pub async fn expect_event(stream: &mut EventStream, name: &str) -> Event {
    oih_bus::testing::next_named(stream, name, Duration::from_secs(5)).await
}
