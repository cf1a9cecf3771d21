//! OIH's "Login Security" and "Permissions" cases, on every endpoint.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Hub, UNKNOWN_ID, messages, sample_flow};

crate::engines!(
    every_endpoint_needs_a_token,
    every_endpoint_needs_its_permission,
    bulk_create_needs_the_bulk_permission,
    malformed_bodies_are_400_and_change_nothing
);

/// Every endpoint with a body that would otherwise be accepted.
fn endpoints() -> Vec<(&'static str, String, Option<Value>)> {
    let id = UNKNOWN_ID;
    vec![
        ("GET", "/flows".into(), None),
        ("POST", "/flows".into(), Some(sample_flow("x"))),
        ("PATCH", "/flows/bulk".into(), Some(json!([{"id": id}]))),
        ("POST", "/flows/multiple/start".into(), Some(json!([id]))),
        ("POST", "/flows/multiple/stop".into(), Some(json!([id]))),
        ("GET", format!("/flows/{id}"), None),
        ("PATCH", format!("/flows/{id}"), Some(json!({"name": "x"}))),
        ("DELETE", format!("/flows/{id}"), None),
        ("POST", format!("/flows/{id}/start"), None),
        ("POST", format!("/flows/{id}/stop"), None),
        ("GET", format!("/flows/{id}/versions"), None),
        ("GET", format!("/flows/{id}/versions/1"), None),
    ]
}

async fn every_endpoint_needs_a_token(hub: Hub) {
    for (method, uri, body) in endpoints() {
        let (status, res) = hub.call(method, &uri, None, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {res}");
        assert_eq!(
            messages(&res),
            ["Missing authorization header."],
            "{method} {uri}"
        );
        assert_eq!(res["errors"][0]["code"], 401);

        let (status, res) = hub.call(method, &uri, Some("notAToken"), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {res}");
    }
    hub.shutdown().await;
}

async fn every_endpoint_needs_its_permission(hub: Hub) {
    for (method, uri, body) in endpoints() {
        let (status, res) = hub.call(method, &uri, Some("unpermitToken"), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {res}");
        assert_eq!(messages(&res), ["MISSING_PERMISSION"], "{method} {uri}");
    }
    // Read/write holders may not control flows or use the bulk update.
    for (method, uri, body, needed) in [
        (
            "POST",
            format!("/flows/{UNKNOWN_ID}/start"),
            None,
            "flows.control",
        ),
        (
            "POST",
            format!("/flows/{UNKNOWN_ID}/stop"),
            None,
            "flows.control",
        ),
        (
            "POST",
            "/flows/multiple/start".to_owned(),
            Some(json!([UNKNOWN_ID])),
            "flows.control",
        ),
        (
            "PATCH",
            "/flows/bulk".to_owned(),
            Some(json!([{"id": UNKNOWN_ID}])),
            "flows.bulk",
        ),
    ] {
        let (status, res) = hub.call(method, &uri, Some("guestToken"), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {res}");
        assert_eq!(res["errors"][0]["details"], format!("[\"{needed}\"]"));
    }
    hub.shutdown().await;
}

async fn bulk_create_needs_the_bulk_permission(hub: Hub) {
    let (status, res) = hub
        .post("/flows", "guestToken", json!([sample_flow("a")]))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        messages(&res),
        ["User is missing permission for bulk operations"]
    );
    let (_, list) = hub.get("/flows", "adminToken").await;
    assert_eq!(list["meta"]["total"], 0, "nothing was created");
    hub.shutdown().await;
}

async fn malformed_bodies_are_400_and_change_nothing(hub: Hub) {
    let id = hub.create("guestToken", sample_flow("keep")).await;
    let raw = |method: &str, uri: &str, body: &str, content_type: &str| {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", "Bearer bulkToken")
            .header("content-type", content_type)
            .body(axum::body::Body::from(body.to_owned()))
            .expect("request")
    };
    let flow_uri = format!("/flows/{id}");
    for (method, uri) in [
        ("POST", "/flows"),
        ("PATCH", flow_uri.as_str()),
        ("PATCH", "/flows/bulk"),
    ] {
        let (status, res) = hub
            .send(raw(method, uri, "{\"name\": ", "application/json"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {res}");
        assert_eq!(res["errors"][0]["code"], 400);
        let (status, _) = hub.send(raw(method, uri, "{}", "text/plain")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{method} {uri}");
    }
    for body in [json!("text"), json!(5), json!(null)] {
        let (status, _) = hub.post("/flows", "guestToken", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "POST {body}");
        let (status, _) = hub.patch(&flow_uri, "guestToken", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PATCH {body}");
    }
    let oversized = json!({"name": "x".repeat(11 * 1024 * 1024)});
    let (status, _) = hub.post("/flows", "guestToken", oversized).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (_, flow) = hub.get(&flow_uri, "guestToken").await;
    assert_eq!(flow["data"]["name"], "keep");
    let (_, list) = hub.get("/flows", "adminToken").await;
    assert_eq!(list["meta"]["total"], 1);
    hub.shutdown().await;
}

/// OIH's "Documentation" case, plus our OpenAPI document listing every route.
#[tokio::test]
async fn documentation_is_served() {
    let hub = Hub::start().await;
    let (status, html) = hub.call("GET", "/api-docs/", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.as_str()
            .expect("html")
            .contains("HTML for static distribution bundle build")
    );
    let (status, doc) = hub
        .call("GET", "/api-docs/flow-repository/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/flows",
        "/flows/bulk",
        "/flows/multiple/start",
        "/flows/multiple/stop",
        "/flows/{id}",
        "/flows/{id}/start",
        "/flows/{id}/stop",
        "/flows/{id}/versions",
        "/flows/{id}/versions/{version}",
    ] {
        assert!(paths.contains_key(path), "{path} undocumented");
    }
    assert!(doc["paths"]["/flows/{id}"]["delete"].is_object());
    hub.shutdown().await;
}
