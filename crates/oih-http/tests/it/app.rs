//! Composition: OpenAPI documents and Swagger UI, workers.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use oih_http::{App, ErrorShape, ServiceModule, Worker};
use utoipa::openapi::OpenApiBuilder;

use crate::{get as get_req, send};

fn doc(title: &str) -> utoipa::openapi::OpenApi {
    OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title(title)
                .version("1")
                .build(),
        )
        .build()
}

fn app() -> oih_http::Built {
    App::new()
        .module(
            ServiceModule::new(
                "docs-flows",
                ErrorShape::Errors,
                Router::new().route("/docs-flows", get(|| async { "x" })),
            )
            .with_openapi(doc("flow-repository"))
            .with_worker(Worker::new("w", |token| async move {
                token.cancelled().await;
                Ok(())
            })),
        )
        .build()
}

#[tokio::test]
async fn serves_each_openapi_document_and_the_ui() {
    let router = app().router;
    let (status, _, body) = send(&router, get_req("/api-docs/docs-flows/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["info"]["title"], "flow-repository");
    let (status, _, body) = send(&router, get_req("/api-docs/oih/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["paths"]["/healthcheck"].is_object(), "{body}");
    let (status, _, body) = send(&router, get_req("/api-docs/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_str()
            .expect("html")
            .contains("HTML for static distribution bundle build")
    );
    let (status, _, body) = send(&router, get_req("/api-docs/swagger-initializer.js")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_str()
            .expect("js")
            .contains("/api-docs/docs-flows/openapi.json")
    );
    let (status, headers, _) = send(&router, get_req("/docs")).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers["location"], "/api-docs/");
}

#[tokio::test]
async fn workers_are_handed_over_and_stop_on_cancel() {
    let built = app();
    // The module's worker plus the metrics upkeep.
    assert_eq!(built.workers.len(), 2);
    let token = tokio_util::sync::CancellationToken::new();
    let mut set = tokio::task::JoinSet::new();
    for worker in built.workers {
        set.spawn(worker.run(token.child_token()));
    }
    token.cancel();
    while let Some(done) = set.join_next().await {
        assert!(done.expect("joined").is_ok());
    }
}

fn cors_app(origins: &[&str]) -> Router {
    App::new()
        .module(ServiceModule::new(
            "cors",
            ErrorShape::Errors,
            Router::new().route("/cors", get(|| async { "x" })),
        ))
        .cors_origins(origins.iter().map(|o| (*o).to_owned()).collect())
        .build()
        .router
}

async fn call(
    router: &Router,
    method: &str,
    origin: Option<&str>,
) -> axum::http::Response<axum::body::Body> {
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder().method(method).uri("/cors");
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    if method == "OPTIONS" {
        req = req.header("access-control-request-method", "POST").header(
            "access-control-request-headers",
            "authorization,content-type",
        );
    }
    router
        .clone()
        .oneshot(req.body(axum::body::Body::empty()).expect("request"))
        .await
        .expect("response")
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let router = cors_app(&["https://ui.example.com"]);
    let preflight = call(&router, "OPTIONS", Some("https://ui.example.com")).await;
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://ui.example.com"
    );
    let allowed_headers = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );

    let other = call(&router, "GET", Some("https://evil.example.com")).await;
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // OIH answers 500 to a request without Origin when a whitelist is set; servers and curl
    // send none, so it must simply work.
    let no_origin = call(&router, "GET", None).await;
    assert_eq!(no_origin.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_configured_origins_no_cors_headers_are_sent() {
    let router = cors_app(&[]);
    let res = call(&router, "GET", Some("https://ui.example.com")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let any = cors_app(&["*"]);
    let res = call(&any, "GET", Some("https://ui.example.com")).await;
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}
