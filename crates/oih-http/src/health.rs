//! `GET /healthcheck`, per service. The body keeps the shape OIH's flow-repository and
//! audit-log use, `{status:"pass"|"fail", version, details:{<dependency>:{status}}}`, and adds
//! `services:{<service>:{status, details}}`: one entry per service this process runs. Alone
//! (`--only x`) that is the one service; all-in-one, every service, and the top-level
//! `status` aggregates them all. Everything passes → 200; anything fails → 503 (OIH answers
//! 500; 503 is what load balancers and probes expect).
//!
//! A service passes when the shared dependencies it runs on (store, bus) pass, its own checks
//! pass and none of its background workers has died (ended with an error or a panic before
//! shutdown): a dead consumer never comes back, so the process must be replaced.
//!
//! Failure causes are logged, not returned: the endpoint is unauthenticated and a database
//! error can name hosts.

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::FutureExt as _;
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};

use crate::module::Worker;

/// A check that hangs counts as failed after this long, so the probe itself never hangs.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// One named health check (store ping, bus up, …).
#[derive(Clone)]
pub struct HealthCheck {
    name: Cow<'static, str>,
    check: Arc<CheckFn>,
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheck")
            .field("name", &self.name)
            .finish()
    }
}

impl HealthCheck {
    pub fn new<F, Fut>(name: impl Into<Cow<'static, str>>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name: name.into(),
            check: Arc::new(move || Box::pin(check())),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self) -> Result<(), String> {
        match tokio::time::timeout(CHECK_TIMEOUT, (self.check)()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    }
}

/// Which of a service's workers have died. Shared between the wrapped workers (which record
/// their death) and the health endpoint (which reports it).
#[derive(Debug, Default)]
pub struct WorkerWatch {
    count: AtomicUsize,
    dead: Mutex<Vec<String>>,
}

impl WorkerWatch {
    /// Wraps `worker` so that its ending with an error or a panic is recorded here. A worker
    /// that returns `Ok` has finished its job; that is not a failure.
    pub fn watch(self: &Arc<Self>, worker: Worker) -> Worker {
        self.count.fetch_add(1, Ordering::Relaxed);
        let watch = self.clone();
        let name = worker.name.clone();
        Worker::new(name.clone(), move |token| async move {
            let ended = AssertUnwindSafe(worker.run(token)).catch_unwind().await;
            match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    watch.record_death(name);
                    Err(e)
                }
                Err(panic) => {
                    watch.record_death(name);
                    // The owner of the task still sees the panic.
                    std::panic::resume_unwind(panic)
                }
            }
        })
    }

    fn record_death(&self, name: String) {
        self.dead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(name);
    }

    fn has_workers(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// The workers that died, by name (empty: all alive).
    fn dead(&self) -> Vec<String> {
        self.dead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// What `/healthcheck` reports for one service: its own checks and its workers.
#[derive(Debug, Clone)]
pub struct ServiceHealth {
    pub name: &'static str,
    pub checks: Vec<HealthCheck>,
    pub workers: Arc<WorkerWatch>,
}

/// Runs every check concurrently and renders the answer: `dependencies` are the checks every
/// service relies on (store, bus), `services` the services this process runs.
pub async fn respond(
    dependencies: &[HealthCheck],
    services: &[ServiceHealth],
    version: &str,
) -> Response {
    let (deps, own) =
        futures::join!(
            join_all(dependencies.iter().map(run_logged)),
            join_all(services.iter().map(|service| async move {
                join_all(service.checks.iter().map(run_logged)).await
            })),
        );
    let deps_pass = deps.iter().all(|&ok| ok);
    let mut details = Map::new();
    for (check, ok) in dependencies.iter().zip(&deps) {
        details.insert(check.name.to_string(), json!({ "status": verdict(*ok) }));
    }
    let mut healthy = deps_pass;
    let mut by_service = Map::new();
    for (service, results) in services.iter().zip(own) {
        let mut own_details = Map::new();
        let mut pass = deps_pass;
        for (check, ok) in service.checks.iter().zip(results) {
            own_details.insert(check.name.to_string(), json!({ "status": verdict(ok) }));
            pass &= ok;
        }
        if service.workers.has_workers() {
            let dead = service.workers.dead();
            if !dead.is_empty() {
                tracing::warn!(service = service.name, ?dead, "workers died");
            }
            let alive = dead.is_empty();
            own_details.insert("workers".to_owned(), json!({ "status": verdict(alive) }));
            pass &= alive;
        }
        healthy &= pass;
        by_service.insert(
            service.name.to_owned(),
            json!({ "status": verdict(pass), "details": Value::Object(own_details) }),
        );
    }
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": verdict(healthy),
        "version": version,
        "details": Value::Object(details),
        "services": Value::Object(by_service),
    });
    (code, axum::Json(body)).into_response()
}

async fn run_logged(check: &HealthCheck) -> bool {
    match check.run().await {
        Ok(()) => true,
        Err(cause) => {
            tracing::warn!(check = %check.name, %cause, "health check failed");
            false
        }
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "pass" } else { "fail" }
}
