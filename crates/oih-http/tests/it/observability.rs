//! Request ids, metrics and health.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use oih_http::{App, ErrorShape, HealthCheck, ServiceModule, Worker};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{get as get_req, send};

fn module(name: &'static str, path: &str) -> ServiceModule {
    ServiceModule::new(
        name,
        ErrorShape::Errors,
        Router::new().route(path, get(|| async { "pong" })),
    )
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let router = App::new()
        .module(module("rid-test", "/rid/{x}"))
        .build()
        .router;
    let req = Request::get("/rid/1")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .expect("request");
    let (_, headers, _) = send(&router, req).await;
    assert_eq!(headers["x-request-id"], "abc-123");
    let (_, headers, _) = send(&router, get_req("/rid/1")).await;
    let generated = headers["x-request-id"].to_str().expect("ascii");
    assert!(generated.len() >= 16, "{generated}");
    // Errors get one too.
    let (status, headers, _) = send(&router, get_req("/nowhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers.contains_key("x-request-id"));
}

/// The value of the sample whose line contains every one of `needles`.
fn sample(text: &str, needles: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let router = App::new()
        .module(module("metrics-test", "/mt/{id}"))
        .build()
        .router;
    let needles = [
        "http_requests_total{",
        "service=\"metrics-test\"",
        "route=\"/mt/{id}\"",
        "status=\"200\"",
        "method=\"GET\"",
    ];
    let (_, _, before) = send(&router, get_req("/metrics")).await;
    let before = sample(before.as_str().expect("text"), &needles);
    for id in ["a", "b", "c"] {
        let (status, _, _) = send(&router, get_req(&format!("/mt/{id}"))).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, after) = send(&router, get_req("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = after.as_str().expect("text");
    assert_eq!(sample(text, &needles) - before, 3.0, "{text}");
    assert!(
        !text.contains("route=\"/mt/a\""),
        "raw paths never become labels"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn healthcheck_passes_and_fails_by_name() {
    let ok = App::new()
        .health_check(HealthCheck::new("store", || async { Ok(()) }))
        .module(
            module("health-a", "/ha").with_health(HealthCheck::new("cache", || async { Ok(()) })),
        )
        .build()
        .router;
    let (status, _, body) = send(&ok, get_req("/healthcheck")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "pass");
    assert_eq!(body["details"], json!({"store":{"status":"pass"}}));
    assert_eq!(
        body["services"],
        json!({"health-a":{"status":"pass","details":{"cache":{"status":"pass"}}}})
    );

    let failing = App::new()
        .health_check(HealthCheck::new("store", || async { Ok(()) }))
        .health_check(HealthCheck::new("bus", || async {
            Err("connection refused".to_owned())
        }))
        .build()
        .router;
    let (status, _, body) = send(&failing, get_req("/healthcheck")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "fail");
    assert_eq!(body["details"]["bus"], json!({"status":"fail"}));
    assert_eq!(body["details"]["store"], json!({"status":"pass"}));
}

/// Every service is reported on its own: a service whose own check fails, or whose worker
/// died, fails (and so does the whole answer) while the others still pass; a dependency that
/// fails fails every service.
#[tokio::test]
async fn healthcheck_reports_each_service() {
    let built = App::new()
        .health_check(HealthCheck::new("store", || async { Ok(()) }))
        .module(module("steady", "/steady").with_worker(Worker::new(
            "steady-loop",
            |token| async move {
                token.cancelled().await;
                Ok(())
            },
        )))
        .module(
            module("crashing", "/crashing")
                .with_worker(Worker::new("crashing-loop", |_token| async {
                    Err("the consumer lost its queue".into())
                })),
        )
        .module(
            module("panicking", "/panicking")
                .with_worker(Worker::new("panicking-loop", |_token| async {
                    panic!("a bug in the consumer")
                })),
        )
        .module(
            module("checked", "/checked").with_health(HealthCheck::new("upstream", || async {
                Err("unreachable".to_owned())
            })),
        )
        .build();
    let router = built.router;
    let token = CancellationToken::new();
    let mut running = Vec::new();
    for worker in built.workers {
        let name = worker.name.clone();
        let handle = tokio::spawn(worker.run(token.clone()));
        running.push((name, handle));
    }
    // The crash is recorded when the worker ends; wait for that.
    let crashed = running
        .iter()
        .position(|(name, _)| name == "crashing-loop")
        .expect("the crashing worker is run");
    let (_, crashed) = running.swap_remove(crashed);
    let ended = crashed.await.expect("no panic");
    assert!(ended.is_err(), "the worker's error is handed on");
    let panicked = running
        .iter()
        .position(|(name, _)| name == "panicking-loop")
        .expect("the panicking worker is run");
    let (_, panicked) = running.swap_remove(panicked);
    let joined = panicked.await;
    assert!(
        joined.is_err_and(|e| e.is_panic()),
        "the panic is handed on to the task's owner"
    );

    let (status, _, body) = send(&router, get_req("/healthcheck")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "fail");
    assert_eq!(body["details"], json!({"store":{"status":"pass"}}));
    assert_eq!(
        body["services"],
        json!({
            "steady": {"status":"pass","details":{"workers":{"status":"pass"}}},
            "crashing": {"status":"fail","details":{"workers":{"status":"fail"}}},
            "panicking": {"status":"fail","details":{"workers":{"status":"fail"}}},
            "checked": {"status":"fail","details":{"upstream":{"status":"fail"}}}
        })
    );
    token.cancel();
    for (_, handle) in running {
        let _ = handle.await;
    }

    // A dependency down: every service fails with it.
    let down = App::new()
        .health_check(HealthCheck::new("store", || async {
            Err("database is locked".to_owned())
        }))
        .module(module("steady", "/steady"))
        .build()
        .router;
    let (status, _, body) = send(&down, get_req("/healthcheck")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["services"]["steady"],
        json!({"status":"fail","details":{}})
    );
}
