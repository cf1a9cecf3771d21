//! The test hub: the service mounted like `oih serve` does, an in-memory schema source, and
//! request helpers.

use oih_http::testing::Client;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::StatusCode;
use oih_http::testing::StaticAuthenticator;
use oih_ils::{Caller, Config, Deps, SchemaError, SchemaSource};
use oih_store::testing::PgSchema;
use oih_store::{Collection, DocStore, Filter};
use serde_json::{Value, json};

pub const TENANT: &str = "tenant1";
pub const OTHER_TENANT: &str = "tenant2";
/// A body token long enough for OIH's request schema.
pub const BODY_TOKEN: &str = "0123456789abc";

fn authenticator() -> StaticAuthenticator {
    StaticAuthenticator::new()
        .with_user("userToken", "user1", Some(TENANT), &[])
        .with_user("colleagueToken", "user2", Some(TENANT), &[])
        .with_user("otherToken", "user3", Some(OTHER_TENANT), &[])
}

/// The meta-data repository as a map from (domain, uri) to schema. The domain `forbidden`
/// answers 403 as the repository does for a caller without access. Records every call.
#[derive(Default)]
pub struct MemorySchemas {
    schemas: HashMap<(String, String), Value>,
    pub calls: Mutex<Vec<(String, String, String)>>,
}

impl MemorySchemas {
    pub fn with(mut self, domain: &str, uri: &str, schema: Value) -> Self {
        self.schemas.insert((domain.into(), uri.into()), schema);
        self
    }

    pub fn calls(&self) -> Vec<(String, String, String)> {
        self.calls.lock().expect("lock").clone()
    }
}

#[async_trait]
impl SchemaSource for MemorySchemas {
    async fn schema(
        &self,
        domain_id: &str,
        schema_uri: &str,
        caller: &Caller,
    ) -> Result<Option<Value>, SchemaError> {
        self.calls.lock().expect("lock").push((
            domain_id.into(),
            schema_uri.into(),
            caller.token.clone(),
        ));
        if domain_id == "forbidden" {
            return Err(SchemaError::Upstream {
                status: 403,
                message: "Insufficient permissions".into(),
            });
        }
        Ok(self
            .schemas
            .get(&(domain_id.to_owned(), schema_uri.to_owned()))
            .cloned())
    }
}

/// A person schema requiring `email` and `name`.
pub fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
        "required": ["email", "name"]
    })
}

async fn sqlite() -> Arc<dyn DocStore> {
    oih_store::open(Some("sqlite::memory:"), Path::new("."))
        .await
        .expect("store")
        .docs
}

pub struct Hub {
    /// Calls the service's router (`Hub` derefs to it: `hub.get(…)`, `hub.post(…)`).
    client: Client,
    pub docs: Arc<dyn DocStore>,
    pub schemas: Arc<MemorySchemas>,
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
    /// On a private in-memory SQLite database, with the default configuration.
    pub async fn start() -> Hub {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Hub {
        Self::on(sqlite().await, config, None, None).await
    }

    /// On SQLite, with schemas from `source` instead of the in-memory repository.
    pub async fn with_source(source: Arc<dyn SchemaSource>) -> Hub {
        Self::on(sqlite().await, Config::default(), None, Some(source)).await
    }

    /// On a fresh schema of the PostgreSQL named by `OIH_TEST_DATABASE_URL`; `None` (the test
    /// is skipped) when it is not set.
    pub async fn start_postgres() -> Option<Hub> {
        let base_url = oih_store::testing::pg_url()?;
        let schema = PgSchema::create(&base_url).await.expect("test schema");
        let backend = oih_store::open(Some(schema.url()), Path::new("."))
            .await
            .expect("store");
        Some(Self::on(backend.docs, Config::default(), Some(schema), None).await)
    }

    async fn on(
        docs: Arc<dyn DocStore>,
        config: Config,
        pg: Option<PgSchema>,
        source: Option<Arc<dyn SchemaSource>>,
    ) -> Hub {
        let schemas =
            Arc::new(MemorySchemas::default().with("dom1", "person.json", person_schema()));
        let deps = Deps {
            docs: docs.clone(),
            schemas: source.unwrap_or_else(|| schemas.clone()),
        };
        let module = oih_ils::module(config, deps).await.expect("module");
        Hub {
            client: Client::new(oih_http::testing::router(module, authenticator())),
            docs,
            schemas,
            _pg: pg,
        }
    }

    /// `method uri` with a body sent as it is (malformed JSON included).
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        self.client
            .call_text(method, uri, token, body.map(str::to_owned))
            .await
    }

    /// How many chunks are stored, whoever they belong to.
    pub async fn stored(&self) -> u64 {
        self.docs
            .count(Collection("ils_chunks"), &Filter::All)
            .await
            .expect("count")
    }
}

/// A `POST /chunks` body.
pub fn chunk(ila_id: &str, def: Value, payload: Value) -> Value {
    json!({"ilaId": ila_id, "token": BODY_TOKEN, "cid": "email", "def": def, "payload": payload})
}

/// The `def` of the repository's person schema.
pub fn person_def() -> Value {
    json!({"domainId": "dom1", "schemaUri": "person.json"})
}

/// Asserts OIH's error body: `{errors: [{message, code}]}`.
pub fn assert_error(got: (StatusCode, Value), status: u16, message: &str) {
    let (got_status, body) = got;
    assert_eq!(got_status.as_u16(), status, "{body}");
    assert_eq!(
        body,
        json!({"errors": [{"message": message, "code": status}]}),
        "{message}"
    );
}
