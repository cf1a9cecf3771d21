//! [`ServiceModule`]: what one service contributes to the app, and [`Worker`]: a background
//! loop the app owns and cancels.

use std::future::Future;

use axum::extract::State;
use axum::response::Response;
use axum::{Router, middleware};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::OpenApi;

use crate::error::BoxError;
use crate::metrics::ServiceTag;
use crate::{ErrorShape, HealthCheck};

/// One service: its routes (state already applied), the error shape they answer in, its
/// OpenAPI document, its health checks and its background workers.
///
/// The router must not set a fallback: unknown paths belong to the app, which answers them
/// in JSON (in this service's shape when it runs alone).
pub struct ServiceModule {
    pub name: &'static str,
    pub shape: ErrorShape,
    pub router: Router,
    pub openapi: Option<OpenApi>,
    pub health: Vec<HealthCheck>,
    pub workers: Vec<Worker>,
}

impl ServiceModule {
    pub fn new(name: &'static str, shape: ErrorShape, router: Router) -> Self {
        Self {
            name,
            shape,
            router,
            openapi: None,
            health: Vec::new(),
            workers: Vec::new(),
        }
    }

    pub fn with_openapi(mut self, doc: OpenApi) -> Self {
        self.openapi = Some(doc);
        self
    }

    /// A check of this service's own (reported under `services.<name>.details`).
    pub fn with_health(mut self, check: HealthCheck) -> Self {
        self.health.push(check);
        self
    }

    pub fn with_worker(mut self, worker: Worker) -> Self {
        self.workers.push(worker);
        self
    }

    /// The routes with the service's own layer: errors rendered in its shape, responses
    /// tagged with its name for the metrics.
    pub(crate) fn layered_router(&self) -> Router {
        let info = ModuleInfo {
            name: self.name,
            shape: self.shape,
        };
        self.router
            .clone()
            .layer(middleware::map_response_with_state(info, finish_response))
    }
}

impl std::fmt::Debug for ServiceModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceModule")
            .field("name", &self.name)
            .field("shape", &self.shape)
            .field("health", &self.health)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
struct ModuleInfo {
    name: &'static str,
    shape: ErrorShape,
}

async fn finish_response(State(info): State<ModuleInfo>, res: Response) -> Response {
    let mut res = info.shape.reshape(res);
    res.extensions_mut().insert(ServiceTag(info.name));
    res
}

type RunFn = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, Result<(), BoxError>> + Send>;

/// A background loop (bus consumer, scheduler tick, …). It must return soon after its token
/// is cancelled.
pub struct Worker {
    pub name: String,
    run: RunFn,
}

impl Worker {
    pub fn new<F, Fut>(name: impl Into<String>, run: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            run: Box::new(move |token| Box::pin(run(token))),
        }
    }

    /// Starts the loop; the future completes when the loop ends.
    pub fn run(self, token: CancellationToken) -> BoxFuture<'static, Result<(), BoxError>> {
        (self.run)(token)
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("name", &self.name).finish()
    }
}
