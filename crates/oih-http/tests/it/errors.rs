//! Bad input gets JSON errors in the shape of the service it reached.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use oih_http::{ApiError, App, DataMeta, ErrorShape, FieldError, Json, Path, ServiceModule};
use serde::Deserialize;
use serde_json::json;

use crate::{get as get_req, post_json, send};

#[derive(Deserialize)]
struct Thing {
    name: String,
    count: u32,
}

async fn create(Json(thing): Json<Thing>) -> (StatusCode, DataMeta<serde_json::Value>) {
    (
        StatusCode::CREATED,
        DataMeta::new(json!({"name": thing.name, "count": thing.count})),
    )
}

async fn missing(Path(id): Path<u32>) -> Result<Json<()>, ApiError> {
    Err(ApiError::not_found(format!("No thing {id} found")))
}

async fn invalid() -> Result<Json<()>, ApiError> {
    Err(ApiError::Validation(vec![
        FieldError::new("Flows require a graph."),
        FieldError::new("Invalid cron expression.").with_field("cron"),
    ]))
}

async fn boom() -> Result<Json<()>, ApiError> {
    Err(ApiError::internal("db password=hunter2 unreachable"))
}

/// A service under `prefix` with the usual failure modes.
pub fn module(name: &'static str, prefix: &str, shape: ErrorShape) -> ServiceModule {
    let router = Router::new()
        .route(prefix, post(create))
        .route(&format!("{prefix}/{{id}}"), get(missing))
        .route(&format!("{prefix}-invalid"), get(invalid))
        .route(&format!("{prefix}-boom"), get(boom));
    ServiceModule::new(name, shape, router)
}

fn app() -> Router {
    App::new()
        .module(module("errors-flows", "/e-flows", ErrorShape::Errors))
        .module(module(
            "errors-components",
            "/e-components",
            ErrorShape::ErrorsNoCode,
        ))
        .module(module("errors-secrets", "/e-secrets", ErrorShape::Message))
        .body_limit(64)
        .build()
        .router
}

#[tokio::test]
async fn valid_json_is_accepted() {
    let (status, _, body) = send(&app(), post_json("/e-flows", r#"{"name":"a","count":1}"#)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body, json!({"data":{"name":"a","count":1},"meta":{}}));
}

#[tokio::test]
async fn malformed_json_is_400() {
    let (status, headers, body) = send(&app(), post_json("/e-flows", "{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["errors"][0]["code"], 400);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("JSON")
    );
}

#[tokio::test]
async fn wrong_types_are_400_not_422() {
    for bad in [r#"{"name":"a","count":"x"}"#, r#"{"name":"a"}"#, "[]"] {
        let (status, _, body) = send(&app(), post_json("/e-flows", bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["errors"][0]["code"], 400, "{bad}");
    }
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let req = Request::post("/e-flows")
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"name":"a","count":1}"#))
        .expect("request");
    let (status, _, body) = send(&app(), req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["errors"][0]["code"], 415);
    let no_type = Request::post("/e-flows")
        .body(Body::from("{}"))
        .expect("request");
    assert_eq!(
        send(&app(), no_type).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(100));
    let (status, _, body) = send(&app(), post_json("/e-flows", &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        json!({"errors":[{"message":"request entity too large","code":413}]})
    );
    // The shape follows the service.
    let (status, _, body) = send(&app(), post_json("/e-secrets", &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body, json!({"message":"request entity too large"}));
}

#[tokio::test]
async fn unknown_route_is_404_json() {
    let (status, headers, body) = send(&app(), get_req("/nope/nothing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body, json!({"errors":[{"message":"Not found","code":404}]}));
}

#[tokio::test]
async fn unknown_route_of_a_lone_service_uses_its_shape() {
    let router = App::new()
        .module(module("errors-alone", "/e-alone", ErrorShape::Message))
        .build()
        .router;
    let (status, _, body) = send(&router, get_req("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"message":"Not found"}));
}

#[tokio::test]
async fn wrong_method_is_405_json() {
    let (status, headers, body) = send(&app(), get_req("/e-flows")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        headers.contains_key("allow"),
        "Allow header kept: {headers:?}"
    );
    assert_eq!(
        body,
        json!({"errors":[{"message":"Method not allowed","code":405}]})
    );
    let (status, _, body) = send(&app(), get_req("/e-secrets")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, json!({"message":"Method not allowed"}));
    // The app's own routes too.
    let req = Request::post("/healthcheck")
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = send(&app(), req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["errors"][0]["code"], 405);
}

#[tokio::test]
async fn each_service_answers_in_its_shape() {
    let cases = [
        (
            "/e-flows/7",
            json!({"errors":[{"message":"No thing 7 found","code":404}]}),
        ),
        (
            "/e-components/7",
            json!({"errors":[{"message":"No thing 7 found"}]}),
        ),
        ("/e-secrets/7", json!({"message":"No thing 7 found"})),
    ];
    for (uri, expected) in cases {
        let (status, _, body) = send(&app(), get_req(uri)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(body, expected, "{uri}");
    }
}

#[tokio::test]
async fn bad_path_parameter_is_400() {
    let (status, _, body) = send(&app(), get_req("/e-components/abc")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"][0]["message"].is_string());
    assert!(body["errors"][0].get("code").is_none());
}

#[tokio::test]
async fn validation_lists_every_error() {
    let (status, _, body) = send(&app(), get_req("/e-flows-invalid")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors":[
            {"message":"Flows require a graph.","code":400},
            {"message":"Invalid cron expression.","code":400,"field":"cron"}
        ]})
    );
    let (_, _, body) = send(&app(), get_req("/e-secrets-invalid")).await;
    assert_eq!(
        body,
        json!({"message":"Flows require a graph.; Invalid cron expression."})
    );
}

#[tokio::test]
async fn internal_errors_do_not_leak() {
    let (status, _, body) = send(&app(), get_req("/e-flows-boom")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        json!({"errors":[{"message":"Internal server error","code":500}]})
    );
    assert!(!body.to_string().contains("hunter2"));
}
