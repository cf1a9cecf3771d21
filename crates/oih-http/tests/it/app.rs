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
