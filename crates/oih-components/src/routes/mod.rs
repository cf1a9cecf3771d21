//! HTTP: `/components` and `/virtual-components` at OIH's paths, answering in
//! component-repository's error shape `{errors:[{message}]}`.

mod components;
mod enrich;
mod global;
mod openapi;
mod versions;
mod virtual_components;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use oih_bus::EventBus;
use oih_http::ApiError;
use tokio::sync::mpsc;

use crate::Config;
use crate::builtin::Catalogue;
use crate::enrich::Fetcher;
use crate::restart::RestartJob;
use crate::store::Repo;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub repo: Repo,
    pub events: EventBus,
    pub config: Config,
    pub catalogue: Catalogue,
    pub restarts: mpsc::Sender<RestartJob>,
    pub fetcher: Fetcher,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_request_body_size.0;
    Router::new()
        .route(
            "/components",
            get(components::list).post(components::create),
        )
        .route(
            "/components/{id}",
            get(components::get_one)
                .patch(components::patch)
                .delete(components::delete),
        )
        .route("/components/enrich/{id}", patch(enrich::enrich))
        .route("/components/global/{id}/start", post(global::start))
        .route("/components/global/{id}/stop", post(global::stop))
        .route("/components/global/restart/all", post(global::restart_all))
        .route(
            "/virtual-components",
            get(virtual_components::list).post(virtual_components::create),
        )
        .route(
            "/virtual-components/defaults",
            get(virtual_components::defaults),
        )
        .route(
            "/virtual-components/defaults/config",
            get(virtual_components::defaults_config),
        )
        .route(
            "/virtual-components/{id}",
            get(virtual_components::get_one)
                .patch(virtual_components::patch)
                .delete(virtual_components::delete)
                .post(versions::create),
        )
        .route(
            "/virtual-components/{id}/{version_id}",
            get(versions::get_one)
                .patch(versions::patch)
                .delete(versions::delete),
        )
        .route(
            "/virtual-components/{id}/{version_id}/config",
            post(versions::create_config).patch(versions::patch_config),
        )
        .route(
            "/virtual-components/{id}/{version_id}/actions/{name}",
            get(versions::action),
        )
        .route(
            "/virtual-components/{id}/{version_id}/triggers/{name}",
            get(versions::trigger),
        )
        // OIH authenticates whole routers: no token is a 401 before the body is looked at.
        .route_layer(axum::middleware::from_fn(oih_http::auth::require_auth))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The service's endpoints for `/api-docs`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::document()
}

/// A path id that must look like an ObjectId (stored ids are lowercase).
fn object_id(raw: &str, message: &str) -> Result<String, ApiError> {
    if oih_core::ObjectId::is_valid(raw) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::bad_request(message))
    }
}

/// A fresh document id.
fn new_id() -> String {
    oih_core::ObjectId::new().to_string()
}
