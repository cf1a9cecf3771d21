//! `GET /healthcheck` in the body shape OIH's flow-repository and audit-log use:
//! `{status:"pass"|"fail", version, details:{<check>:{status}}}`. All checks pass → 200; any
//! fails → 503 (OIH answers 500; 503 is what load balancers and probes expect).
//!
//! Failure causes are logged, not returned: the endpoint is unauthenticated and a database
//! error can name hosts.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};

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

/// Runs every check concurrently and renders the answer.
pub async fn respond(checks: &[HealthCheck], version: &str) -> Response {
    let results = join_all(checks.iter().map(HealthCheck::run)).await;
    let mut details = Map::new();
    let mut healthy = true;
    for (check, result) in checks.iter().zip(results) {
        let status = match result {
            Ok(()) => "pass",
            Err(cause) => {
                tracing::warn!(check = %check.name, %cause, "health check failed");
                healthy = false;
                "fail"
            }
        };
        details.insert(check.name.to_string(), json!({ "status": status }));
    }
    let (code, status) = if healthy {
        (StatusCode::OK, "pass")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "fail")
    };
    let body = json!({"status": status, "version": version, "details": Value::Object(details)});
    (code, axum::Json(body)).into_response()
}
