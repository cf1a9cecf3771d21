//! IAM's routes at OIH's paths (iam-ils.md §10), and the small helpers they share.

pub(crate) mod auth;
mod permissions;
mod roles;
mod tenants;
mod tokens;
mod users;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use oih_core::ObjectId;
use oih_http::{ApiError, Json};
use oih_store::StoreError;
use serde_json::{Map, Value, json};

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/users", get(users::list).post(users::create))
        .route("/users/me", get(users::me).patch(users::patch_me))
        .route(
            "/users/{id}",
            get(users::get_one)
                .patch(users::update)
                .put(users::update)
                .delete(users::remove),
        )
        .route("/tenants", get(tenants::list).post(tenants::create))
        .route(
            "/tenants/{id}",
            get(tenants::get_one)
                .put(tenants::update)
                .patch(tenants::update)
                .delete(tenants::remove),
        )
        .route("/tenants/{id}/profile", get(tenants::get_one))
        .route("/tenants/{id}/users", get(tenants::users))
        .route("/tenants/{id}/user/{user_id}", delete(tenants::remove_user))
        .route(
            "/tenants/{id}/key",
            get(tenants::get_key)
                .post(tenants::create_key)
                .delete(tenants::delete_key),
        )
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/introspect", post(tokens::introspect))
        .route("/tokens/refresh", get(tokens::refresh))
        .route("/tokens/{id}", get(tokens::get_one).delete(tokens::remove))
        .route("/roles", get(roles::list).post(roles::create))
        .route(
            "/roles/{id}",
            get(roles::get_one)
                .patch(roles::update)
                .delete(roles::remove),
        )
        .route("/permissions", get(permissions::list));
    let routes = Router::new()
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/.well-known/jwks.json", get(auth::jwks));
    // The OpenID Connect provider is mounted only when configured (OIH's `IAM_AUTH_TYPE=oidc`).
    let routes = if state.oidc.is_some() {
        routes
            .merge(crate::oidc::router())
            .nest("/api/v1", api.merge(crate::oidc::admin_router()))
    } else {
        routes.nest("/api/v1", api)
    };
    routes.with_state(state)
}

/// Express's `sendStatus(200)`: a plain-text `OK`.
fn ok() -> Response {
    (StatusCode::OK, "OK").into_response()
}

fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

fn input_invalid() -> ApiError {
    ApiError::bad_request("INPUT_INVALID")
}

/// A request body that must be a JSON object.
fn object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(input_invalid()),
    }
}

/// An id from the path or a body: malformed ids are the caller's mistake (OIH answered 500 or
/// never answered).
pub(crate) fn valid_id(id: &str) -> Result<(), ApiError> {
    if ObjectId::is_valid(id) {
        Ok(())
    } else {
        Err(input_invalid())
    }
}

/// Store errors with IAM's messages.
fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Duplicate(_) => ApiError::conflict("DUPLICATE_KEY"),
        StoreError::Conflict { .. } => ApiError::conflict("ENTITY_MODIFIED"),
        other => ApiError::internal(other),
    }
}

/// OIH's `?meta=<truthy>` convention on lists and single reads.
fn wants_meta(query: &[(String, String)]) -> bool {
    query
        .iter()
        .any(|(k, v)| k == "meta" && !matches!(v.as_str(), "" | "false" | "0"))
}

fn list_response(items: Vec<Value>, meta: bool) -> Json<Value> {
    if meta {
        let total = items.len();
        Json(json!({"data": items, "meta": {"total": total}}))
    } else {
        Json(Value::Array(items))
    }
}

fn one_response(item: Value, meta: bool) -> Json<Value> {
    if meta {
        Json(json!({"data": item}))
    } else {
        Json(item)
    }
}

/// String array from a body field; anything else is invalid input.
fn strings(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(input_invalid))
            .collect(),
        Some(_) => Err(input_invalid()),
    }
}
