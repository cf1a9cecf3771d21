//! `/api/v1/auth-clients` (data-services.md §3.8). Unlike OIH, which listed every client to
//! everyone and let anyone start a flow with any client, clients are scoped to their owners:
//! USER owners, and the members of a TENANT owner.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use oih_core::{Identity, ObjectId};
use oih_http::{ApiError, Auth, Data, Json, Path, Query};
use oih_store::{Document, Filter, FindOptions, SortOrder};
use serde_json::{Map, Value, json};

use crate::client_model::{CLIENT_READ_RAW, StoredClient, clean_fields, mask_client, parse_kind};
use crate::events::CLIENT_CREATED;
use crate::http::{
    caller, invalid, keep_type, list_page, new_owners, no_store, object_body, owner_to_forget,
    page_request, visible_to,
};
use crate::model::{self, parse_owners};
use crate::service::Service;

const DELETE_ANY: &str = "secrets.authClient.deleteAny";

pub fn routes() -> Router<Service> {
    Router::new()
        .route(
            "/api/v1/auth-clients",
            get(list).post(create).delete(delete_of_owner),
        )
        .route(
            "/api/v1/auth-clients/{id}",
            get(get_one).patch(update).delete(delete_one),
        )
        .route("/api/v1/auth-clients/{id}/secrets", get(secrets_of))
}

/// Why a caller wants a client: to use it (start flows, list its secrets) or to change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Use,
    Manage,
}

/// The client `id` for this caller: 400 malformed id, 404 unknown, 403 not theirs.
pub async fn client_for(
    svc: &Service,
    who: &Identity,
    id: &str,
    access: Access,
) -> Result<(Document, StoredClient), ApiError> {
    if !ObjectId::is_valid(id) {
        return Err(ApiError::bad_request("Invalid auth client id"));
    }
    let Some((doc, client)) = svc.clients.get(&id.to_ascii_lowercase()).await? else {
        return Err(ApiError::not_found("Auth client not found"));
    };
    let allowed = match access {
        Access::Use => client.is_usable_by(who),
        Access::Manage => client.is_manageable_by(who),
    };
    if !allowed {
        return Err(ApiError::forbidden(
            "You are not an owner of this auth client",
        ));
    }
    Ok((doc, client))
}

/// A client as the caller sees it: credentials decrypted, and masked without readRaw.
async fn view(
    svc: &Service,
    who: &Identity,
    doc: &Document,
    client: &StoredClient,
) -> Result<Value, ApiError> {
    let mut fields = svc.clients.plaintext(&doc.id, client).await?;
    mask_client(&mut fields, who.has_one_of(&[CLIENT_READ_RAW]));
    let mut out = Map::new();
    out.insert("_id".into(), Value::String(doc.id.clone()));
    out.insert("name".into(), Value::String(client.name.clone()));
    out.insert("type".into(), json!(client.kind));
    out.insert("owners".into(), json!(client.owners));
    if let Some(tenant) = &client.tenant {
        out.insert("tenant".into(), Value::String(tenant.clone()));
    }
    if let Some(p) = &client.preprocessor {
        out.insert("preprocessor".into(), Value::String(p.clone()));
    }
    out.extend(fields);
    out.insert("createdAt".into(), json!(doc.created_at));
    out.insert("updatedAt".into(), json!(doc.updated_at));
    Ok(Value::Object(out))
}

fn text_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::BadRequest(format!(
            "{name} must be a non-empty string"
        ))),
    }
}

#[utoipa::path(get, path = "/api/v1/auth-clients", tag = "auth-clients",
    params(
        ("page[size]" = Option<u64>, Query, description = "Page size"),
        ("page[number]" = Option<u64>, Query, description = "Page number from 1"),
    ),
    responses((status = 200, description = "`{data: [{_id, name, type}], meta}`: clients the caller or their tenant owns"))
)]
pub(crate) async fn list(
    State(svc): State<Service>,
    Auth(who): Auth,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let page = page_request(query.as_deref(), svc.page_size)?;
    list_page(
        &svc.clients,
        &visible_to(&who),
        &page,
        |doc, client| json!({"_id": doc.id, "name": client.name, "type": client.kind}),
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/auth-clients", tag = "auth-clients",
    request_body(content = Object, description = "`{name, type (OA1_TWO_LEGGED|OA1_THREE_LEGGED|OA2_AUTHORIZATION_CODE|SESSION_AUTH), preprocessor?, owners?, ...type fields}`"),
    responses(
        (status = 200, description = "`{data: client}`, credentials masked unless `secrets.authClient.readRaw`; publishes `secrets.authclient.created`"),
        (status = 400, description = "`{message}`: unknown type or invalid fields"),
    )
)]
pub(crate) async fn create(
    State(svc): State<Service>,
    Auth(who): Auth,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let body = object_body(body)?;
    let kind = parse_kind(&body).map_err(invalid)?;
    let name = text_field(&body, "name")?.ok_or_else(|| {
        ApiError::bad_request("AuthClient validation failed: name: Path `name` is required.")
    })?;
    let mut owners = vec![caller(&who)];
    // OIH forced the creator as sole owner; sharing with the caller's tenant is allowed here.
    if let Some(raw) = body.get("owners").filter(|v| !v.is_null()) {
        for owner in parse_owners(raw, &who).map_err(invalid)? {
            model::add_owner(&mut owners, owner);
        }
    }
    let client = StoredClient {
        name,
        kind,
        owners,
        tenant: who.tenant.clone(),
        preprocessor: text_field(&body, "preprocessor")?,
        encrypted_fields: Vec::new(),
        fields: clean_fields(kind, &body).map_err(invalid)?,
    };
    let id = ObjectId::new().to_string();
    svc.clients.insert(&id, client).await?;
    let (doc, client) = client_for(&svc, &who, &id, Access::Use).await?;
    svc.events
        .emit(CLIENT_CREATED, json!({"id": doc.id, "name": client.name}))
        .await;
    Ok(no_store(Data::new(view(&svc, &who, &doc, &client).await?)))
}

#[utoipa::path(get, path = "/api/v1/auth-clients/{id}", tag = "auth-clients",
    params(("id" = String, Path, description = "Auth client id")),
    responses(
        (status = 200, description = "`{data: client}`, masked unless `secrets.authClient.readRaw`"),
        (status = 403, description = "`{message}`: not an owner"),
        (status = 404, description = "`{message}`: no such client"),
    )
)]
pub(crate) async fn get_one(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (doc, client) = client_for(&svc, &who, &id, Access::Use).await?;
    Ok(no_store(Data::new(view(&svc, &who, &doc, &client).await?)))
}

#[utoipa::path(patch, path = "/api/v1/auth-clients/{id}", tag = "auth-clients",
    params(("id" = String, Path, description = "Auth client id")),
    request_body(content = Object, description = "Fields to change (merged and checked whole); the type cannot change"),
    responses(
        (status = 200, description = "`{data: client}`"),
        (status = 400, description = "`{message}`: invalid fields"),
        (status = 403, description = "`{message}`: not a USER owner or tenant admin of the owning tenant"),
    )
)]
pub(crate) async fn update(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let body = object_body(body)?;
    let (doc, current) = client_for(&svc, &who, &id, Access::Manage).await?;
    let id = doc.id.clone();
    keep_type(&body, current.kind.as_str(), "an auth client")?;
    let name = text_field(&body, "name")?;
    let owners = new_owners(&body, &who)?;
    let preprocessor = text_field(&body, "preprocessor")?;
    // The type's fields are merged over the current ones (in plaintext) and checked whole.
    let mut merged = svc.clients.plaintext(&doc.id, &current).await?;
    for (key, value) in &body {
        merged.insert(key.clone(), value.clone());
    }
    let fields = clean_fields(current.kind, &merged).map_err(invalid)?;
    let updated = svc
        .clients
        .update(&id, |c| {
            if let Some(name) = &name {
                c.name.clone_from(name);
            }
            if let Some(owners) = &owners {
                c.owners.clone_from(owners);
            }
            if preprocessor.is_some() {
                c.preprocessor.clone_from(&preprocessor);
            }
            c.fields.clone_from(&fields);
            c.encrypted_fields.clear();
            Ok(true)
        })
        .await?;
    let Some((doc, client)) = updated else {
        return Err(ApiError::not_found("Auth client not found"));
    };
    Ok(no_store(Data::new(view(&svc, &who, &doc, &client).await?)))
}

#[utoipa::path(delete, path = "/api/v1/auth-clients/{id}", tag = "auth-clients",
    params(("id" = String, Path, description = "Auth client id")),
    responses(
        (status = 204, description = "With other owners only the caller is removed; else deleted. Publishes `secrets.authclient.deleted`"),
        (status = 403, description = "`{message}`: not an owner"),
    )
)]
pub(crate) async fn delete_one(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = client_for(&svc, &who, &id, Access::Manage).await?.0.id;
    svc.drop_client_owner_or_delete(&id, &caller(&who)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/auth-clients", tag = "auth-clients",
    params(
        ("ownerId" = String, Query, description = "Owner id"),
        ("type" = Option<String>, Query, description = "USER (default) or TENANT"),
    ),
    responses(
        (status = 200, description = "`OK`"),
        (status = 403, description = "`MISSING_PERMISSION`: needs `secrets.authClient.deleteAny`"),
    )
)]
pub(crate) async fn delete_of_owner(
    State(svc): State<Service>,
    Auth(who): Auth,
    Query(query): Query<HashMap<String, String>>,
) -> Result<&'static str, ApiError> {
    let owner = owner_to_forget(&who, DELETE_ANY, &query, "ownerId")?;
    svc.remove_client_owner_everywhere(&owner).await?;
    Ok("OK")
}

/// The caller's secrets made with this client (OIH: owner filter, no check on the client).
#[utoipa::path(get, path = "/api/v1/auth-clients/{id}/secrets", tag = "auth-clients",
    params(("id" = String, Path, description = "Auth client id")),
    responses((status = 200, description = "`{data: [secret without credentials]}`: the caller's secrets made with this client"))
)]
pub(crate) async fn secrets_of(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = client_for(&svc, &who, &id, Access::Use).await?.0.id;
    let filter = Filter::and([
        Filter::eq("value.authClientId", id.as_str()),
        visible_to(&who),
    ]);
    let opts = FindOptions {
        sort: vec![("_id".into(), SortOrder::Asc)],
        ..FindOptions::default()
    };
    let items: Vec<Value> = svc
        .secrets
        .find(&filter, &opts)
        .await?
        .iter()
        .map(|(doc, secret)| Service::summary(doc, secret))
        .collect();
    Ok(no_store(Data::new(items)))
}
