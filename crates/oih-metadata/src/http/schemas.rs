//! `GET/POST /api/v1/domains/{id}/schemas`, `POST …/schemas/import`, and
//! `GET/PUT/DELETE …/schemas/{uri…}` with `POST …/schemas/{uri…}/validate`.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use oih_http::{ApiError, Auth, Data, Json, Path};
use serde_json::{Map, Value};

use super::{AppState, Body, Guard, list_body, log_unpublished, object_body, page_of};
use crate::access::{CRUD, OWNER_ONLY};
use crate::archive;
use crate::events::{SCHEMA_CREATED, SCHEMA_MODIFIED};
use crate::model::{Domain, Schema};
use crate::processing::schema_uri;
use crate::validation;
use crate::write::{self, WriteError, schema_value};

const SCHEMA_JSON: &str = "application/schema+json";
const VALIDATE_SUFFIX: &str = "/validate";

fn schema_not_found() -> ApiError {
    ApiError::not_found("Schema not found")
}

/// `name`, `description` and `value` of a create or update body.
fn schema_body(body: Body) -> Result<(Option<String>, Option<String>, Value), ApiError> {
    let obj: Map<String, Value> = object_body(body)?;
    let text = |key: &str| match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("{key} must be a string"))),
    };
    let value = schema_value(obj.get("value"))?;
    Ok((text("name")?, text("description")?, value))
}

/// The stored schema at `path` under the domain.
async fn stored(st: &AppState, domain: &Domain, path: &str) -> Result<Schema, ApiError> {
    st.store
        .schema(&schema_uri(&domain.id, path))
        .await?
        .ok_or_else(schema_not_found)
}

/// `GET /domains/{id}/schemas`: `value` stays JSON text, as in OIH.
#[utoipa::path(get, path = "/api/v1/domains/{id}/schemas", tag = "schemas",
    params(
        ("page[size]" = Option<u64>, Query, description = "Page size (default 10)"),
        ("page[number]" = Option<u64>, Query, description = "Page number, from 1"),
    ),
    responses((status = 200, description = "`{data: [Schema], meta}`"), (status = 403), (status = 404)))]
pub(super) async fn list(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<axum::Json<Value>, ApiError> {
    let domain = st.domain(&who, &id, Guard::OwnerOr(&[])).await?;
    let page = page_of(uri.query())?;
    let listed = st
        .store
        .schemas_in_domain(&domain.id, page.skip(), page.limit())
        .await?;
    let data = listed.items.iter().map(|s| s.to_json(false)).collect();
    Ok(axum::Json(list_body(data, &page, listed.total)))
}

/// `POST /domains/{id}/schemas`: `{name?, description?, value}`; the caller owns the schema.
#[utoipa::path(post, path = "/api/v1/domains/{id}/schemas", tag = "schemas",
    responses((status = 200, description = "`{data: Schema}`"), (status = 400, description = "Invalid schema or reference"), (status = 403), (status = 404)))]
pub(super) async fn create(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Data<Value>, ApiError> {
    let domain = st.domain(&who, &id, Guard::OwnerOr(&[CRUD])).await?;
    let (name, description, value) = schema_body(body)?;
    let schema = write::create_schema(
        &st.store,
        st.base(),
        &domain,
        &who,
        name,
        description,
        value,
    )
    .await?;
    log_unpublished(
        SCHEMA_CREATED,
        st.events.schema(SCHEMA_CREATED, &schema).await,
    );
    Ok(Data::new(schema.to_json(false)))
}

/// Reads the multipart field `archive`, refusing more than `cap` bytes.
async fn archive_field(
    multipart: Result<Multipart, MultipartRejection>,
    cap: u64,
) -> Result<(String, Vec<u8>), ApiError> {
    let part_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(cap)
        } else {
            ApiError::bad_request(e.body_text())
        }
    };
    let mut multipart = multipart.map_err(|e| ApiError::bad_request(e.body_text()))?;
    while let Some(mut field) = multipart.next_field().await.map_err(part_error)? {
        if field.name() != Some("archive") {
            continue;
        }
        let filename = field.file_name().unwrap_or_default().to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(part_error)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > cap {
                return Err(too_large(cap));
            }
        }
        return Ok((filename, bytes));
    }
    Err(ApiError::bad_request("No file submitted"))
}

fn too_large(cap: u64) -> ApiError {
    WriteError::from(archive::ArchiveError::TooLarge(cap)).into()
}

/// `POST /domains/{id}/schemas/import`: multipart field `archive` (`.zip`, `.tgz`,
/// `.tar.gz`); every `*.json` file becomes a schema, all in one transaction.
#[utoipa::path(post, path = "/api/v1/domains/{id}/schemas/import", tag = "schemas",
    responses(
        (status = 200, description = "`{data: [Schema]}`: the schemas created"),
        (status = 400, description = "No file, unsafe or invalid archive, invalid schema or reference"),
        (status = 403, description = "Not an owner, tenant admin or admin"),
        (status = 413, description = "Archive too large"),
    ))]
pub(super) async fn import(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Data<Vec<Value>>, ApiError> {
    let domain = st.domain(&who, &id, Guard::OwnerOr(&[OWNER_ONLY])).await?;
    let limits = st.config.limits();
    let (filename, bytes) = archive_field(multipart, limits.max_archive_bytes).await?;
    let files = archive::unpack(&filename, &bytes, &limits).map_err(WriteError::from)?;
    let created = write::import_files(&st.store, st.base(), &domain, files, Some(&who)).await?;
    for schema in &created {
        log_unpublished(
            SCHEMA_CREATED,
            st.events.schema(SCHEMA_CREATED, schema).await,
        );
    }
    Ok(Data::new(
        created.iter().map(|s| s.to_json(false)).collect(),
    ))
}

/// Whether the caller asks for the bare schema (OIH looked at the request's `content-type`;
/// `accept` is honoured too).
fn wants_raw(headers: &HeaderMap) -> bool {
    [header::CONTENT_TYPE, header::ACCEPT].iter().any(|h| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(SCHEMA_JSON))
    })
}

/// `GET /domains/{id}/schemas/{uri…}`: `{data: Schema}` with `value` parsed, or the bare
/// schema as `application/schema+json`.
#[utoipa::path(get, path = "/api/v1/domains/{id}/schemas/{uri}", tag = "schemas",
    responses((status = 200, description = "`{data: Schema}` or the raw schema"), (status = 403), (status = 404)))]
pub(super) async fn read(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path((id, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let domain = st.domain(&who, &id, Guard::Read).await?;
    let schema = stored(&st, &domain, &path).await?;
    if wants_raw(&headers) {
        let raw = ([(header::CONTENT_TYPE, SCHEMA_JSON)], schema.value);
        return Ok(raw.into_response());
    }
    Ok(Data::new(schema.to_json(true)).into_response())
}

/// `PUT /domains/{id}/schemas/{uri…}`: the `$id` must not change.
#[utoipa::path(put, path = "/api/v1/domains/{id}/schemas/{uri}", tag = "schemas",
    responses((status = 200, description = "`{data: Schema}`"), (status = 400, description = "Invalid schema, changed `$id`"), (status = 403), (status = 404)))]
pub(super) async fn update(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path((id, path)): Path<(String, String)>,
    body: Body,
) -> Result<Data<Value>, ApiError> {
    let domain = st.domain(&who, &id, Guard::OwnerOr(&[OWNER_ONLY])).await?;
    let existing = stored(&st, &domain, &path).await?;
    let (name, description, value) = schema_body(body)?;
    let updated = write::update_schema(
        &st.store,
        st.base(),
        existing,
        &who,
        name,
        description,
        value,
    )
    .await?;
    st.validators.invalidate(std::slice::from_ref(&updated.uri));
    log_unpublished(
        SCHEMA_MODIFIED,
        st.events.schema(SCHEMA_MODIFIED, &updated).await,
    );
    Ok(Data::new(updated.to_json(false)))
}

/// `DELETE /domains/{id}/schemas/{uri…}`: refused while other schemas reference it.
#[utoipa::path(delete, path = "/api/v1/domains/{id}/schemas/{uri}", tag = "schemas",
    responses((status = 204), (status = 400, description = "`<uri> referenced by <uri>,…`"), (status = 403), (status = 404)))]
pub(super) async fn remove(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path((id, path)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let domain = st.domain(&who, &id, Guard::OwnerOr(&[CRUD])).await?;
    let schema = stored(&st, &domain, &path).await?;
    let referrers = st
        .store
        .referrers(std::slice::from_ref(&schema.uri), None)
        .await?;
    if !referrers.is_empty() {
        let names: Vec<&str> = referrers.iter().map(|s| s.uri.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "{} referenced by {}",
            schema.uri,
            names.join(",")
        )));
    }
    if st.store.delete_schema(&schema).await? {
        st.validators.invalidate(std::slice::from_ref(&schema.uri));
        log_unpublished(
            crate::events::SCHEMA_DELETED,
            st.events.schema_deleted(&schema).await,
        );
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /domains/{id}/schemas/{uri…}/validate`: validates the body against the schema.
#[utoipa::path(post, path = "/api/v1/domains/{id}/schemas/{uri}/validate", tag = "schemas",
    responses(
        (status = 200, description = "`{data: {valid, errors: [{message, instancePath, schemaPath}]}}`"),
        (status = 400, description = "Body is not JSON"), (status = 403), (status = 404),
    ))]
pub(super) async fn validate(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path((id, path)): Path<(String, String)>,
    body: Result<Json<Value>, ApiError>,
) -> Result<Data<Value>, ApiError> {
    let Some(path) = path.strip_suffix(VALIDATE_SUFFIX) else {
        return Err(ApiError::MethodNotAllowed);
    };
    let domain = st.domain(&who, &id, Guard::Read).await?;
    let schema = stored(&st, &domain, path).await?;
    let document = body?.0;
    let validator = st
        .validators
        .validator(&st.store, st.base(), &schema)
        .await?;
    Ok(Data::new(validation::report(&validator, &document)))
}
