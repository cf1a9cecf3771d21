//! OIH's iam-utils messages for missing/bad tokens and missing permissions.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use oih_http::testing::StaticAuthenticator;
use oih_http::{ApiError, App, Auth, ErrorShape, Json, ServiceModule, require};
use serde_json::{Value, json};

use crate::send;

async fn me(Auth(identity): Auth) -> Result<Json<Value>, ApiError> {
    require(&identity, &["flows.read"])?;
    Ok(Json(
        json!({"sub": identity.sub, "tenant": identity.tenant}),
    ))
}

fn app(shape: ErrorShape) -> Router {
    let authn = StaticAuthenticator::new()
        .with_user("reader", "u1", Some("t1"), &["flows.read"])
        .with_user("admin", "root", None, &["all"])
        .with_user("nobody", "u2", Some("t1"), &["components.read"]);
    let guarded = Router::new().route(
        "/guarded",
        get(|| async { "ok" }).route_layer(axum::middleware::from_fn(oih_http::auth::require_auth)),
    );
    oih_http::testing::router(
        ServiceModule::new(
            "auth-test",
            shape,
            Router::new().route("/me", get(me)).merge(guarded),
        ),
        authn,
    )
}

fn with_auth(uri: &str, header: Option<&str>) -> Request<Body> {
    let mut req = Request::get(uri);
    if let Some(h) = header {
        req = req.header("authorization", h);
    }
    req.body(Body::empty()).expect("request")
}

async fn message(router: &Router, uri: &str, header: Option<&str>) -> (StatusCode, Value) {
    let (status, _, body) = send(router, with_auth(uri, header)).await;
    (status, body)
}

#[tokio::test]
async fn missing_header() {
    let (status, body) = message(&app(ErrorShape::Errors), "/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"errors":[{"message":"Missing authorization header.","code":401}]})
    );
}

#[tokio::test]
async fn header_without_token() {
    let (status, body) = message(&app(ErrorShape::Errors), "/me", Some("Bearer")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["message"], "Invalid authorization header");
}

#[tokio::test]
async fn unknown_token() {
    let (status, body) = message(&app(ErrorShape::Message), "/me", Some("Bearer wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"message":"Token invalid. Error: Error. Details: Token not found in IAM"})
    );
}

#[tokio::test]
async fn good_token() {
    let (status, body) = message(&app(ErrorShape::Errors), "/me", Some("Bearer reader")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"sub":"u1","tenant":"t1"}));
    // The scheme word is not checked, as in OIH.
    let (status, _) = message(&app(ErrorShape::Errors), "/me", Some("Token admin")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn missing_permission_is_403() {
    let (status, body) = message(&app(ErrorShape::Errors), "/me", Some("Bearer nobody")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"errors":[{"message":"MISSING_PERMISSION","code":403,"details":"[\"flows.read\"]"}]})
    );
}

#[tokio::test]
async fn middleware_form() {
    let router = app(ErrorShape::ErrorsNoCode);
    let (status, body) = message(&router, "/guarded", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"errors":[{"message":"Missing authorization header."}]})
    );
    let (status, _) = message(&router, "/guarded", Some("Bearer nobody")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn no_authenticator_is_a_logged_500() {
    let router = App::new()
        .module(ServiceModule::new(
            "auth-none",
            ErrorShape::Errors,
            Router::new().route("/me2", get(me)),
        ))
        .build()
        .router;
    let (status, body) = message(&router, "/me2", Some("Bearer x")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["errors"][0]["message"], "Internal server error");
}
