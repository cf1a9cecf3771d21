//! The four `/chunks` routes with OIH's paths, bodies, messages and check order
//! (iam-ils.md §20.4). Unlike OIH, every route needs a bearer token (401 first), and chunks are
//! kept per tenant: another tenant's chunks are never read, merged or listed.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use jsonschema::Validator;
use oih_core::Identity;
use oih_http::{ApiError, Auth, Json, Path, Query};
use serde_json::{Map, Value, json};

use crate::model::{self, ChunkInput, NewChunk, SchemaRef, SplitInput};
use crate::schema::{Caller, SchemaError, SchemaSource, Validators, compile};
use crate::store::{ChunkStore, Upsert};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    chunks: ChunkStore,
    schemas: Arc<dyn SchemaSource>,
    validators: Arc<Validators>,
}

impl AppState {
    pub fn new(chunks: ChunkStore, schemas: Arc<dyn SchemaSource>, validators: Validators) -> Self {
        Self {
            chunks,
            schemas,
            validators: Arc::new(validators),
        }
    }

    /// The compiled schema a `def` names, from the cache or the repository.
    async fn validator(
        &self,
        schema: &SchemaRef,
        caller: &Caller,
    ) -> Result<Arc<Validator>, ApiError> {
        let invalid = |_| ApiError::bad_request(model::SCHEMA_INVALID);
        let (domain_id, schema_uri) = match schema {
            SchemaRef::Inline(schema) => return compile(schema).map(Arc::new).map_err(invalid),
            SchemaRef::Domain {
                domain_id,
                schema_uri,
            } => (domain_id.as_str(), schema_uri.as_str()),
        };
        let scope = scope(&caller.identity);
        if let Some(v) = self.validators.get(&scope, domain_id, schema_uri) {
            return Ok(v);
        }
        let raw = self
            .schemas
            .schema(domain_id, schema_uri, caller)
            .await
            .map_err(schema_error)?
            .ok_or_else(|| ApiError::not_found(model::SCHEMA_NOT_FOUND))?;
        let validator = Arc::new(compile(&raw).map_err(invalid)?);
        self.validators
            .put(&scope, domain_id, schema_uri, validator.clone());
        Ok(validator)
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/chunks", post(create))
        .route("/chunks/validate", post(validate))
        .route("/chunks/split", post(split))
        .route("/chunks/{ila_id}", get(read))
        .with_state(state)
}

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    IlsApi::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "integration-layer-service",
        description = "Chunks shared by cooperating flows, merged by a common id and validated against a JSON schema; they expire a while after their last write. Every endpoint needs a bearer token; chunks are kept per tenant."
    ),
    paths(create, validate, split, read)
)]
struct IlsApi;

/// The partition a caller's chunks live in: the tenant, or for a caller without one (a
/// service account, the global admin) its own account.
fn scope(identity: &Identity) -> String {
    match &identity.tenant {
        Some(tenant) => tenant.clone(),
        None => format!("user:{}", identity.sub),
    }
}

/// The caller with its bearer token, which the repository needs to check read access. The
/// token is the second word of `Authorization`, as the authentication layer reads it.
fn caller(identity: Identity, headers: &HeaderMap) -> Caller {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    Caller { identity, token }
}

/// Repository failures as OIH passes them on: its status and message; unreachable as 502; a
/// `$ref` that cannot be resolved as an invalid schema (400).
fn schema_error(err: SchemaError) -> ApiError {
    match err {
        SchemaError::Upstream { status, message } => ApiError::Other {
            status: StatusCode::from_u16(status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::BAD_GATEWAY),
            message,
        },
        // Unresolvable in process too (the reader leaves such a reference out of the bundle and
        // the schema does not compile), where it is an invalid schema.
        SchemaError::Reference(why) => {
            ApiError::bad_request(format!("{} {why}", model::SCHEMA_INVALID))
        }
        SchemaError::Unavailable(cause) => {
            tracing::warn!(%cause, "meta-data repository unavailable");
            ApiError::Other {
                status: StatusCode::BAD_GATEWAY,
                message: "The meta-data repository is not reachable".into(),
            }
        }
    }
}

fn is_valid(validator: &Validator, payload: &Map<String, Value>) -> bool {
    validator.is_valid(&Value::Object(payload.clone()))
}

fn data(chunk: Value) -> Value {
    json!({"data": chunk, "meta": {}})
}

#[utoipa::path(post, path = "/chunks", tag = "chunks",
    request_body(content = Object, description = "`{ilaId, token, cid, def: {domainId, schemaUri} | {schema}, payload}`"),
    responses(
        (status = 200, description = "`{data: <chunk>, meta: {}}`: created, or merged into the chunk with the same common id"),
        (status = 400, description = "Input does not match schema! / ilaId must not contain special characters! / Schema is invalid! / Payload does not contain cid! / CID and def must match with other flow!"),
        (status = 404, description = "Domain ID and Schema URI or custom schema must be specified! / DomainId or schemaUri not found!"),
        (status = 405, description = "Either domainId with schemaUri or custom schema must be specified, but not both!"),
    ))]
/// `POST /chunks`: create the chunk, or merge into the one with the same common id.
async fn create(
    axum::extract::State(state): axum::extract::State<AppState>,
    Auth(identity): Auth,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let input = ChunkInput::parse(&body)?;
    model::check_ila_id(&input.ila_id)?;
    let schema = SchemaRef::from_def(&input.def)?;
    let caller = caller(identity, &headers);
    let validator = state.validator(&schema, &caller).await?;
    input.cid_value()?;
    let scope = scope(&caller.identity);
    let doc = state
        .chunks
        .upsert(
            &Upsert {
                scope: &scope,
                ila_id: &input.ila_id,
                cid: &input.cid,
                def: &input.def,
                payload: &input.payload,
            },
            &|payload| is_valid(&validator, payload),
        )
        .await?;
    Ok(Json(data(model::render(&doc.id, &doc.body))))
}

#[utoipa::path(post, path = "/chunks/validate", tag = "chunks",
    request_body(content = Object, description = "`{ilaId, token, cid, def: {domainId, schemaUri}, payload}`"),
    responses(
        (status = 200, description = "`{data: {valid}, meta: {}}`; nothing is stored"),
        (status = 400, description = "ilaId must not contain special characters! / Input does not match schema! / Payload does not contain cid! / Schema is invalid!"),
        (status = 404, description = "Domain ID and Schema URI must be specified! / DomainId or schemaUri not found!"),
    ))]
/// `POST /chunks/validate`: the verdict for a payload against a repository schema; nothing is
/// stored.
async fn validate(
    axum::extract::State(state): axum::extract::State<AppState>,
    Auth(identity): Auth,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    // OIH checks the ilaId characters before the request schema here.
    if let Some(ila_id) = body.get("ilaId").and_then(Value::as_str) {
        model::check_ila_id(ila_id)?;
    }
    let input = ChunkInput::parse(&body)?;
    input.cid_value()?;
    let text = |name: &str| {
        input
            .def
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (Some(domain_id), Some(schema_uri)) = (text("domainId"), text("schemaUri")) else {
        return Err(ApiError::not_found(model::DOMAIN_DEF_MISSING));
    };
    let caller = caller(identity, &headers);
    let validator = state
        .validator(
            &SchemaRef::Domain {
                domain_id,
                schema_uri,
            },
            &caller,
        )
        .await?;
    let valid = is_valid(&validator, &input.payload);
    Ok(Json(json!({"data": {"valid": valid}, "meta": {}})))
}

#[utoipa::path(post, path = "/chunks/split", tag = "chunks",
    request_body(content = Object, description = "`{ilaId, payload, splitSchema: [{meta: {splitKey, ...}, payload: {<field>: ...}, def?}]}`"),
    responses(
        (status = 200, description = "`[{data: <chunk>, meta: {}}, ...]` in split-schema order"),
        (status = 400, description = "Split schema is not defined! / Split schema is not valid! / Split key must be defined!"),
    ))]
/// `POST /chunks/split`: one chunk per split-schema element, keyed by its `splitKey`.
async fn split(
    axum::extract::State(state): axum::extract::State<AppState>,
    Auth(identity): Auth,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let input = SplitInput::parse(&body)?;
    let caller = caller(identity, &headers);
    let mut chunks = Vec::with_capacity(input.parts.len());
    for part in &input.parts {
        let payload = part.project(&input.payload);
        // OIH never validates split chunks; here an element that names a schema is checked
        // against it, and one without stays invalid as in OIH.
        let (def, valid) = match &part.def {
            Some((def, schema)) => {
                let validator = state.validator(schema, &caller).await?;
                (Some(def.clone()), is_valid(&validator, &payload))
            }
            None => (None, false),
        };
        chunks.push(NewChunk {
            ila_id: input.ila_id.clone(),
            cid: None,
            def,
            payload,
            split_key: Some(part.split_key.clone()),
            meta: part.meta.clone(),
            valid,
        });
    }
    let stored = state
        .chunks
        .insert_all(&scope(&caller.identity), &chunks)
        .await?;
    Ok(Json(Value::Array(
        stored
            .iter()
            .map(|doc| data(model::render(&doc.id, &doc.body)))
            .collect(),
    )))
}

#[utoipa::path(get, path = "/chunks/{ilaId}", tag = "chunks",
    params(
        ("ilaId" = String, Path, description = "Integration layer adapter channel"),
        ("key" = Option<String>, Query, description = "Split key: list that key's split chunks instead of the valid chunks"),
    ),
    responses(
        (status = 200, description = "`{data: [<chunk>], meta: {total}}`"),
        (status = 400, description = "Integration Layer Adapter ID required!"),
        (status = 404, description = "No chunks found!"),
    ))]
/// `GET /chunks/{ilaId}[?key=<splitKey>]`: the valid chunks of a channel, or the split chunks
/// of one key.
async fn read(
    axum::extract::State(state): axum::extract::State<AppState>,
    Auth(identity): Auth,
    Path(ila_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    // What OIH's clients send when they forgot the id.
    if ila_id == "undefined" {
        return Err(ApiError::bad_request(model::ILA_ID_REQUIRED));
    }
    let docs = state
        .chunks
        .list(
            &scope(&identity),
            &ila_id,
            query.get("key").map(String::as_str),
        )
        .await?;
    if docs.is_empty() {
        return Err(ApiError::not_found(model::NO_CHUNKS));
    }
    let total = docs.len();
    let data: Vec<Value> = docs
        .iter()
        .map(|doc| model::render(&doc.id, &doc.body))
        .collect();
    Ok(Json(json!({"data": data, "meta": {"total": total}})))
}
