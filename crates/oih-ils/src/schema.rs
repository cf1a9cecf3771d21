//! Where chunk schemas come from and how they are applied.
//!
//! ILS does not own schemas: a chunk's `def` names a schema of the meta-data repository
//! (`domainId` + `schemaUri`) or carries one inline. [`SchemaSource`] is the seam: over HTTP in
//! a split deployment ([`HttpSchemaSource`]), in-process when `oih serve` runs everything.
//! [`Validators`] compiles schemas and keeps the compiled form briefly, because the ILA posts
//! the same schema for every record of a flow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonschema::{Draft, Validator};
use oih_core::Identity;
use serde_json::Value;

/// The caller on whose behalf a schema is fetched: the repository checks its own read access,
/// so the caller's identity and bearer token travel along.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// The raw bearer token of the request (without `Bearer `).
    pub token: String,
}

/// Why a schema could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The repository answered with an error status; ILS passes status and message on, as OIH.
    #[error("meta-data repository answered {status}: {message}")]
    Upstream { status: u16, message: String },
    /// The repository could not be reached or answered garbage.
    #[error("meta-data repository unavailable: {0}")]
    Unavailable(String),
}

/// Reads a schema of the meta-data repository. `Ok(None)` when the domain or schema does not
/// exist (or the caller may not see it).
#[async_trait]
pub trait SchemaSource: Send + Sync {
    async fn schema(
        &self,
        domain_id: &str,
        schema_uri: &str,
        caller: &Caller,
    ) -> Result<Option<Value>, SchemaError>;
}

/// The meta-data repository over HTTP: `GET {base}/api/v1/domains/{id}/schemas/{uri}`.
#[derive(Debug, Clone)]
pub struct HttpSchemaSource {
    base: String,
    client: reqwest::Client,
}

impl HttpSchemaSource {
    /// `base` is the repository's root URL, e.g. `http://127.0.0.1:3000`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, SchemaError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| SchemaError::Unavailable(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }
}

#[async_trait]
impl SchemaSource for HttpSchemaSource {
    async fn schema(
        &self,
        domain_id: &str,
        schema_uri: &str,
        caller: &Caller,
    ) -> Result<Option<Value>, SchemaError> {
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/domains/", self.base))
            .map_err(|e| SchemaError::Unavailable(format!("bad repository URL: {e}")))?;
        // Each part becomes escaped path segments, so a domain id cannot step elsewhere.
        url.path_segments_mut()
            .map_err(|()| SchemaError::Unavailable("bad repository URL".into()))?
            .pop_if_empty()
            .push(domain_id)
            .push("schemas")
            .extend(schema_uri.split('/').filter(|s| !s.is_empty()));
        let unavailable = |e: reqwest::Error| SchemaError::Unavailable(e.to_string());
        let res = self
            .client
            .get(url)
            // OIH's repository looks at the request's content-type to answer with the bare
            // schema; ours may look at Accept. Both are sent.
            .header(reqwest::header::ACCEPT, "application/schema+json")
            .header(reqwest::header::CONTENT_TYPE, "application/schema+json")
            .bearer_auth(&caller.token)
            .send()
            .await
            .map_err(unavailable)?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: Value = if status.is_success() {
            res.json().await.map_err(unavailable)?
        } else {
            let body: Value = res.json().await.unwrap_or(Value::Null);
            return Err(SchemaError::Upstream {
                status: status.as_u16(),
                message: upstream_message(&body)
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
            });
        };
        // The bare schema, or OIH's `{data: {value: <schema>}}` envelope.
        Ok(Some(match body.pointer("/data/value") {
            Some(value) => value.clone(),
            None => body,
        }))
    }
}

/// The message of an OIH error body: `{message}` or `{errors: [{message}]}`.
fn upstream_message(body: &Value) -> Option<String> {
    body.get("message")
        .or_else(|| body.pointer("/errors/0/message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The schema does not compile.
#[derive(Debug, thiserror::Error)]
#[error("schema is invalid: {0}")]
pub struct InvalidSchema(String);

/// Compiles a schema: draft from `$schema`, else draft 7 (Ajv 6's default, which OIH used).
pub fn compile(schema: &Value) -> Result<Validator, InvalidSchema> {
    if !schema.is_object() || schema.as_object().is_some_and(|o| o.is_empty()) {
        return Err(InvalidSchema("a schema must be a non-empty object".into()));
    }
    let draft = if schema.get("$schema").is_some() {
        Draft::default().detect(schema)
    } else {
        Draft::Draft7
    };
    jsonschema::options()
        .with_draft(draft)
        .build(schema)
        .map_err(|e| InvalidSchema(e.to_string()))
}

type CacheKey = (String, String, String);

/// Compiled repository schemas, kept for a short while per (caller scope, domain, uri). The
/// scope is part of the key because the repository decides per caller who may read a schema.
pub struct Validators {
    ttl: Duration,
    entries: Mutex<HashMap<CacheKey, (Instant, Arc<Validator>)>>,
}

impl Validators {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, scope: &str, domain_id: &str, schema_uri: &str) -> Option<Arc<Validator>> {
        let key = (
            scope.to_owned(),
            domain_id.to_owned(),
            schema_uri.to_owned(),
        );
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key) {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, scope: &str, domain_id: &str, schema_uri: &str, validator: Arc<Validator>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Drop stale entries so the map stays as small as the set of schemas in use.
        entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        entries.insert(
            (
                scope.to_owned(),
                domain_id.to_owned(),
                schema_uri.to_owned(),
            ),
            (Instant::now(), validator),
        );
    }
}
