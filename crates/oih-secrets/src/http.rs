//! `/api/v1/secrets` (data-services.md §3.8). Every route needs a valid token; the IAM check
//! runs before the body is read, as OIH's middleware does.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use oih_core::{Identity, Owner, OwnerType};
use oih_http::auth::require_auth;
use oih_http::{ApiError, Auth, Data, Json, Page, PageRequest, Path, Query, StepAuth, require};
use oih_store::{Document, Filter, FindOptions, SortOrder};
use serde_json::{Map, Value, json};

use crate::events::{OWNER_ADDED, OWNER_REMOVED, SECRET_CREATED, TOKEN_GET};
use crate::model::{
    self, OWNERS_INVALID, SecretType, StoredSecret, check_complete, clean_patch, parse_owners,
};
use crate::service::Service;
use crate::store::{Record, Repo};

const DELETE_ANY: &str = "secrets.secret.deleteAny";
const NO_STORE: &str = "no-store, no-cache, must-revalidate, private";

pub fn router(service: Service) -> Router {
    let authenticated = secret_routes()
        .merge(crate::client_http::routes())
        .merge(crate::flows::routes())
        .route_layer(middleware::from_fn(require_auth));
    authenticated
        .merge(crate::flows::public_routes())
        .with_state(service)
}

fn secret_routes() -> Router<Service> {
    Router::new()
        .route(
            "/api/v1/secrets",
            get(list).post(create).delete(delete_of_owner),
        )
        .route(
            "/api/v1/secrets/{id}",
            get(get_one).patch(update).delete(delete_one),
        )
        .route(
            "/api/v1/secrets/{id}/owners",
            post(add_owner).delete(remove_owner),
        )
        .route("/api/v1/secrets/{id}/validateHmac", post(validate_hmac))
}

/// Secrets answers may carry credentials: no cache may keep them.
pub(crate) fn no_store(body: impl IntoResponse) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    res
}

/// OIH accepts `{data: {...}}` or the object itself.
pub(crate) fn object_body(body: Value) -> Result<Map<String, Value>, ApiError> {
    let inner = match body {
        Value::Object(mut outer) if outer.get("data").is_some_and(Value::is_object) => {
            outer.remove("data").unwrap_or_default()
        }
        other => other,
    };
    match inner {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request("The body must be a JSON object")),
    }
}

pub(crate) fn invalid(err: model::Invalid) -> ApiError {
    ApiError::BadRequest(err.0)
}

/// `page[size]` (default PAGINATION_PAGE_SIZE) and `page[number]` (default 1; OIH reads 0 as
/// 1). Anything else that is not a whole number is a 400 (OIH computed NaN pages).
pub(crate) fn page_request(raw: Option<&str>, default_size: u64) -> Result<PageRequest, ApiError> {
    let params: Vec<(String, String)> = raw
        .map(|q| {
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
                &format!("/?{q}")
                    .parse()
                    .map_err(|_| ApiError::bad_request("Invalid query string"))?,
            )
            .map(|q| q.0)
            .map_err(|_| ApiError::bad_request("Invalid query string"))
        })
        .transpose()?
        .unwrap_or_default();
    let last = |key: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
    };
    let number = |key: &str, default: u64, min: u64| match last(key) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| ApiError::BadRequest(format!("Invalid {key} parameter"))),
    };
    Ok(PageRequest {
        size: number("page[size]", default_size, 1)?,
        number: number("page[number]", 1, 0)?.max(1),
    })
}

/// A PATCH may not change the type (`what`: "a secret", "an auth client").
pub(crate) fn keep_type(
    body: &Map<String, Value>,
    current: &str,
    what: &str,
) -> Result<(), ApiError> {
    match body.get("type") {
        Some(t) if t.as_str() != Some(current) => Err(ApiError::BadRequest(format!(
            "The type of {what} cannot be changed"
        ))),
        _ => Ok(()),
    }
}

/// The owners a PATCH sets, if any: all of them replace the current ones, so there must be one.
pub(crate) fn new_owners(
    body: &Map<String, Value>,
    who: &Identity,
) -> Result<Option<Vec<Owner>>, ApiError> {
    let Some(raw) = body.get("owners") else {
        return Ok(None);
    };
    let owners = parse_owners(raw, who).map_err(invalid)?;
    if owners.is_empty() {
        return Err(ApiError::bad_request(OWNERS_INVALID));
    }
    Ok(Some(owners))
}

/// What a caller may list: secrets they own, and those owned by their tenant (which they can
/// also read; OIH listed only the first kind).
pub(crate) fn visible_to(who: &Identity) -> Filter {
    let mut any = vec![Filter::ArrayContains(
        "owners".into(),
        json!({"id": who.sub, "type": "USER"}),
    )];
    if let Some(tenant) = &who.tenant {
        any.push(Filter::ArrayContains(
            "owners".into(),
            json!({"id": tenant, "type": "TENANT"}),
        ));
    }
    Filter::or(any)
}

#[utoipa::path(get, path = "/api/v1/secrets", tag = "secrets",
    params(
        ("page[size]" = Option<u64>, Query, description = "Page size (default PAGINATION_PAGE_SIZE, 30)"),
        ("page[number]" = Option<u64>, Query, description = "Page number from 1 (0 counts as 1)"),
    ),
    responses(
        (status = 200, description = "`{data: [secret without credentials], meta: {page, perPage, total, totalPages}}`: the caller's secrets and their tenant's"),
        (status = 400, description = "`{message}`: page parameters are not whole numbers"),
        (status = 401, description = "`{message}`: missing or invalid token"),
    )
)]
pub(crate) async fn list(
    State(svc): State<Service>,
    Auth(who): Auth,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = page_request(query.as_deref(), svc.page_size)?;
    list_page(&svc.secrets, &visible_to(&who), &page, Service::summary).await
}

/// One page of `repo`'s records matching `filter`, oldest first, as `{data, meta}`.
pub(crate) async fn list_page<T: Record>(
    repo: &Repo<T>,
    filter: &Filter,
    page: &PageRequest,
    item: impl Fn(&Document, &T) -> Value,
) -> Result<Response, ApiError> {
    let total = repo.count(filter).await?;
    let opts = FindOptions {
        sort: vec![("_id".into(), SortOrder::Asc)],
        skip: page.skip(),
        limit: Some(page.limit()),
    };
    let items = repo
        .find(filter, &opts)
        .await?
        .iter()
        .map(|(doc, record)| item(doc, record))
        .collect();
    let mut body = Page::new(items, page, total);
    // OIH reports at least one page, even for an empty list.
    body.meta.total_pages = body.meta.total_pages.max(1);
    Ok(no_store(body))
}

/// Checks `value.authClientId` names an auth client, with OIH's message per type.
async fn check_auth_client(
    svc: &Service,
    who: &Identity,
    kind: SecretType,
    value: &Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(message) = kind.missing_auth_client_message() else {
        return Ok(());
    };
    let Some(id) = value.get("authClientId").and_then(Value::as_str) else {
        return Ok(());
    };
    // Unlike OIH, the client must also be one the caller may use: a secret refreshes with
    // its client's credentials.
    if svc.usable_client(who, id).await?.is_some() {
        Ok(())
    } else {
        Err(ApiError::bad_request(message))
    }
}

#[utoipa::path(post, path = "/api/v1/secrets", tag = "secrets",
    request_body(content = Object, description = "`{name, type, value, owners?, domain?, mixedProperties?}`, bare or as `{data: ...}`"),
    responses(
        (status = 200, description = "`{data: secret}`, masked unless the caller holds `secrets.secret.readRaw`; publishes `secrets.secret.created`"),
        (status = 400, description = "`{message}`: unknown type, missing or mistyped field, unusable auth client, `Owners is not valid`"),
        (status = 401, description = "`{message}`: missing or invalid token"),
    )
)]
pub(crate) async fn create(
    State(svc): State<Service>,
    Auth(who): Auth,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let body = object_body(body)?;
    let secret = model::parse_new(&body, &who).map_err(invalid)?;
    check_auth_client(&svc, &who, secret.kind, &secret.value).await?;
    let id = oih_core::ObjectId::new().to_string();
    let doc = svc.secrets.insert(&id, secret).await?;
    let Some((doc, secret)) = svc.secrets.get(&doc.id).await? else {
        return Err(ApiError::internal("a created secret vanished"));
    };
    svc.events
        .emit(SECRET_CREATED, json!({"id": doc.id, "name": secret.name}))
        .await;
    Ok(no_store(Data::new(svc.view(&who, &doc, &secret).await?)))
}

#[utoipa::path(get, path = "/api/v1/secrets/{id}", tag = "secrets",
    params(("id" = String, Path, description = "Secret id")),
    responses(
        (status = 200, description = "`{data: secret}` with a fresh token (refreshed if due), masked unless `secrets.secret.readRaw`; publishes `secrets.token.get`"),
        (status = 400, description = "`{message}`: malformed id"),
        (status = 403, description = "`{message}`: not an owner (nor in an owning tenant), or a step token for another secret"),
        (status = 404, description = "`{message}`: no such secret"),
        (status = 502, description = "`{message}`: the token expired and refreshing it failed (`currentError` records why)"),
    )
)]
pub(crate) async fn get_one(
    State(svc): State<Service>,
    StepAuth(who): StepAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // A flow step reads the secret its node names, and no other.
    if let Some(scope) = &who.step
        && scope.secret_id.as_deref() != Some(id.as_str())
    {
        return Err(ApiError::forbidden(
            "A step token reaches only its own step's secret",
        ));
    }
    let (doc, secret) = svc.owned(&who, &id).await?;
    let (doc, secret) = svc.fresh(doc, secret).await?;
    let view = svc.view(&who, &doc, &secret).await?;
    svc.events
        .emit(
            TOKEN_GET,
            json!({"message": "requested RAW Token", "id": doc.id, "requester": who.sub}),
        )
        .await;
    Ok(no_store(Data::new(view)))
}

#[utoipa::path(patch, path = "/api/v1/secrets/{id}", tag = "secrets",
    params(("id" = String, Path, description = "Secret id")),
    request_body(content = Object, description = "Any of `name`, `owners`, `value` (fields merged), `domain`, `mixedProperties`"),
    responses(
        (status = 200, description = "`{data: secret}`, masked as for GET"),
        (status = 400, description = "`{message}`: invalid change (type change, missing required value field, bad owners)"),
        (status = 403, description = "`{message}`: not an owner"),
        (status = 404, description = "`{message}`: no such secret"),
    )
)]
pub(crate) async fn update(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let body = object_body(body)?;
    let (current_doc, current) = svc.owned(&who, &id).await?;
    let id = current_doc.id;
    let kind = current.kind;
    let model = kind.model_name();
    keep_type(&body, kind.as_str(), "a secret")?;
    let name = match body.get("name") {
        None => None,
        Some(Value::String(n)) if !n.is_empty() => Some(n.clone()),
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "{model} validation failed: name: Path `name` is required."
            )));
        }
    };
    let owners = new_owners(&body, &who)?;
    let patch = match body.get("value") {
        None => Map::new(),
        Some(Value::Object(raw)) => clean_patch(kind, raw).map_err(invalid)?,
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "{model} validation failed: value: must be an object"
            )));
        }
    };
    check_auth_client(&svc, &who, kind, &patch).await?;
    let domain = model::optional_text(&body, "domain", &model).map_err(invalid)?;
    let updated = svc
        .secrets
        .update(&id, |s| {
            if let Some(name) = &name {
                s.name.clone_from(name);
            }
            if let Some(owners) = &owners {
                s.owners.clone_from(owners);
            }
            if body.contains_key("domain") {
                s.domain.clone_from(&domain);
            }
            if let Some(mixed) = body.get("mixedProperties") {
                s.mixed_properties = Some(mixed.clone()).filter(|v| !v.is_null());
            }
            for (field, v) in &patch {
                // A new value replaces the sealed one; it is sealed again before writing.
                s.encrypted_fields.retain(|f| f != field);
                if v.is_null() {
                    s.value.remove(field);
                } else {
                    s.value.insert(field.clone(), v.clone());
                }
            }
            check_complete(kind, &s.value).map_err(|e| e.0)?;
            Ok(true)
        })
        .await?;
    let Some((doc, secret)) = updated else {
        return Err(ApiError::not_found("Secret not found"));
    };
    Ok(no_store(Data::new(svc.view(&who, &doc, &secret).await?)))
}

#[utoipa::path(delete, path = "/api/v1/secrets/{id}", tag = "secrets",
    params(("id" = String, Path, description = "Secret id")),
    responses(
        (status = 204, description = "With other owners only the caller is removed; else deleted (`secrets.secret.deleted`)"),
        (status = 403, description = "`{message}`: not an owner"),
        (status = 404, description = "`{message}`: no such secret"),
    )
)]
pub(crate) async fn delete_one(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = svc.owned(&who, &id).await?.0.id;
    svc.drop_owner_or_delete(&id, &caller(&who)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller as a USER owner.
pub(crate) fn caller(who: &Identity) -> Owner {
    Owner {
        id: who.sub.clone(),
        kind: OwnerType::User,
    }
}

const OWNER_BODY_MESSAGE: &str =
    "Owners cannot be empty. Body must contain data: { id: String, type?: String }";

#[utoipa::path(post, path = "/api/v1/secrets/{id}/owners", tag = "secrets",
    params(("id" = String, Path, description = "Secret id")),
    request_body(content = Object, description = "`{id, type?: USER|TENANT}` (a TENANT must be the caller's)"),
    responses(
        (status = 200, description = "`{data: secret}`; publishes `secrets.secret.ownerAdded`"),
        (status = 400, description = "`{message}`: no id, or an invalid owner"),
        (status = 403, description = "`{message}`: not an owner"),
    )
)]
pub(crate) async fn add_owner(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let body = object_body(body)?;
    if body
        .get("id")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(OWNER_BODY_MESSAGE));
    }
    // Unlike OIH, which always added a USER, the type is honoured (TENANT: the caller's own).
    let owner = parse_owners(&Value::Array(vec![Value::Object(body)]), &who)
        .map_err(invalid)?
        .pop()
        .ok_or_else(|| ApiError::bad_request(OWNER_BODY_MESSAGE))?;
    let id = svc.owned(&who, &id).await?.0.id;
    let mut added = false;
    let updated = svc
        .secrets
        .update(&id, |s| {
            added = model::add_owner(&mut s.owners, owner.clone());
            Ok(added)
        })
        .await?;
    let event = added.then_some(OWNER_ADDED);
    owners_changed(&svc, &who, updated, event, &owner).await
}

/// The answer to adding or removing `owner`: the secret as it is now (404 if it was deleted
/// meanwhile). `event` is published only when the owners did change.
async fn owners_changed(
    svc: &Service,
    who: &Identity,
    updated: Option<(Document, StoredSecret)>,
    event: Option<&str>,
    owner: &Owner,
) -> Result<Response, ApiError> {
    let Some((doc, secret)) = updated else {
        return Err(ApiError::not_found("Secret not found"));
    };
    if let Some(event) = event {
        svc.events
            .emit(
                event,
                json!({"id": doc.id, "ownerId": owner.id, "type": owner.kind}),
            )
            .await;
    }
    Ok(no_store(Data::new(svc.view(who, &doc, &secret).await?)))
}

pub(crate) fn owner_from_query(
    query: &HashMap<String, String>,
    id_key: &str,
    message: &str,
) -> Result<Owner, ApiError> {
    let id = query
        .get(id_key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(message))?;
    let kind = match query.get("type").map(String::as_str) {
        None | Some("" | "USER") => OwnerType::User,
        Some("TENANT") => OwnerType::Tenant,
        Some(_) => return Err(ApiError::bad_request(message)),
    };
    Ok(Owner {
        id: id.clone(),
        kind,
    })
}

/// For `DELETE ?<id_key>=…&type=…`, which removes an owner from everything: needs
/// `permission` (the deleteAny of the records concerned).
pub(crate) fn owner_to_forget(
    who: &Identity,
    permission: &str,
    query: &HashMap<String, String>,
    id_key: &str,
) -> Result<Owner, ApiError> {
    require(who, &[permission])?;
    owner_from_query(
        query,
        id_key,
        &format!("Provide valid {id_key} and type as query parameters"),
    )
}

#[utoipa::path(delete, path = "/api/v1/secrets/{id}/owners", tag = "secrets",
    params(
        ("id" = String, Path, description = "Secret id"),
        ("id" = String, Query, description = "Owner id to remove"),
        ("type" = Option<String>, Query, description = "USER (default) or TENANT"),
    ),
    responses(
        (status = 200, description = "`{data: secret}`; publishes `secrets.secret.ownerRemoved`"),
        (status = 400, description = "`{message}`: no owner id, bad type, or it is the last owner"),
        (status = 403, description = "`{message}`: not an owner"),
    )
)]
pub(crate) async fn remove_owner(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let owner = owner_from_query(
        &query,
        "id",
        "Provide valid owner id and type as query parameters",
    )?;
    let id = svc.owned(&who, &id).await?.0.id;
    let mut removed = false;
    let updated = svc
        .secrets
        .update(&id, |s| {
            let remaining = s.owners.iter().filter(|o| **o != owner).count();
            removed = remaining != s.owners.len();
            // An ownerless secret could never be read or deleted again.
            if removed && remaining == 0 {
                return Err("A secret needs an owner: delete the secret instead".into());
            }
            s.owners.retain(|o| *o != owner);
            Ok(removed)
        })
        .await?;
    let event = removed.then_some(OWNER_REMOVED);
    owners_changed(&svc, &who, updated, event, &owner).await
}

#[utoipa::path(delete, path = "/api/v1/secrets", tag = "secrets",
    params(
        ("userId" = String, Query, description = "Owner id"),
        ("type" = Option<String>, Query, description = "USER (default) or TENANT"),
    ),
    responses(
        (status = 200, description = "`OK`: the owner is removed everywhere; secrets it owned alone are deleted"),
        (status = 400, description = "`{message}`: no userId"),
        (status = 403, description = "`MISSING_PERMISSION`: needs `secrets.secret.deleteAny`"),
    )
)]
pub(crate) async fn delete_of_owner(
    State(svc): State<Service>,
    Auth(who): Auth,
    Query(query): Query<HashMap<String, String>>,
) -> Result<&'static str, ApiError> {
    let owner = owner_to_forget(&who, DELETE_ANY, &query, "userId")?;
    svc.remove_owner_everywhere(&owner).await?;
    Ok("OK")
}

#[utoipa::path(post, path = "/api/v1/secrets/{id}/validateHmac", tag = "secrets",
    params(("id" = String, Path, description = "An API_KEY secret's id")),
    request_body(content = Object, description = "`{hmacValue (base64), hmacAlgo (sha224|sha256|sha384|sha512), rawBody: {data: string | byte array}}`"),
    responses(
        (status = 200, description = "`{data: true|false}`: constant-time comparison with the HMAC keyed by the secret's key"),
        (status = 400, description = "`{message}`: missing fields, unsupported algorithm, or the secret has no key"),
        (status = 403, description = "`{message}`: not an owner"),
    )
)]
pub(crate) async fn validate_hmac(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let body = object_body(body)?;
    let hmac_value = body
        .get("hmacValue")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("hmacValue is required"))?;
    let algorithm = body
        .get("hmacAlgo")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("hmacAlgo is required"))?;
    let raw_body = raw_body_bytes(body.get("rawBody").and_then(|r| r.get("data")))?;
    let (doc, secret) = svc.owned(&who, &id).await?;
    let value = svc.secrets.plaintext(&doc.id, &secret).await?;
    let Some(key) = value.get("key").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(
            "The secret has no key to compute an HMAC with",
        ));
    };
    let valid = crate::hmac::matches(algorithm, key.as_bytes(), &raw_body, hmac_value).ok_or_else(
        || {
            ApiError::BadRequest(format!(
                "Unsupported hmacAlgo {algorithm:?}: use sha224, sha256, sha384 or sha512"
            ))
        },
    )?;
    Ok(no_store(Data::new(valid)))
}

/// `rawBody.data` as Node's `Buffer.from` reads it: an array of byte values (a serialised
/// Buffer) or a string (UTF-8).
fn raw_body_bytes(data: Option<&Value>) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::bad_request("rawBody.data must be a string or an array of bytes");
    match data {
        Some(Value::String(s)) => Ok(s.clone().into_bytes()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|b| {
                b.as_u64()
                    .and_then(|b| u8::try_from(b).ok())
                    .ok_or_else(bad)
            })
            .collect(),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let p = page_request(Some("page[number]=0&page%5Bsize%5D=2"), 30).expect("valid");
        assert_eq!(p, PageRequest { size: 2, number: 1 });
        assert_eq!(page_request(None, 30).expect("default").size, 30);
        assert!(page_request(Some("page[size]=0"), 30).is_err());
        assert!(page_request(Some("page[number]=x"), 30).is_err());
    }
}
