//! Authentication, permissions, other tenants' ids and malformed input on every endpoint:
//! always a 4xx in `{message}`, never a change.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::engines;
use crate::support::{Hub, message, schema_path, zip_of};

engines!(
    unauthenticated_requests_are_refused,
    missing_permissions,
    other_tenants_ids_on_every_endpoint,
    unknown_and_malformed_ids_are_not_found,
    malformed_bodies_are_refused,
);

async fn unauthenticated_requests_are_refused(hub: Hub) {
    let (status, body) = hub.call("GET", "/api/v1/domains", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(message(&body), "Missing authorization header.");
    let (status, _) = hub
        .call("GET", "/api/v1/domains", Some("no-such-token"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Unlike OIH, there is no unauthenticated "local request" path to schemas.
    let d = hub.domain("user1", "d").await;
    let (status, _) = hub
        .call("GET", &schema_path(&d, "x.json"), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn missing_permissions(hub: Hub) {
    let (status, body) = hub
        .post("/api/v1/domains", "user3", json!({"name": "n"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(message(&body), "MISSING_PERMISSION");
    // tenant.all covers metadata.domains.crud.
    let (status, _) = hub
        .post("/api/v1/domains", "user2", json!({"name": "n"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let d = hub.domain("user1", "d").await;
    let s = json!({"$id": "https://x.org/s.json"});
    let (status, _) = hub.schema("user3", &d, s.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = hub
        .put(
            &format!("/api/v1/domains/{d}"),
            "user3",
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(hub.schema("user1", &d, s).await.0, StatusCode::OK);
    let (status, _) = hub.delete(&schema_path(&d, "s.json"), "user3").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn other_tenants_ids_on_every_endpoint(hub: Hub) {
    let d = hub.domain("user1", "mine").await;
    let s = json!({"$id": "https://x.org/s.json", "type": "object"});
    assert_eq!(hub.schema("user1", &d, s).await.0, StatusCode::OK);
    let schema = schema_path(&d, "s.json");
    let domain = format!("/api/v1/domains/{d}");
    let value = json!({"value": {"$id": "https://x.org/s.json"}});
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", domain.clone(), None),
        ("PUT", domain.clone(), Some(json!({"name": "stolen"}))),
        ("DELETE", domain.clone(), None),
        ("GET", format!("{domain}/schemas"), None),
        (
            "POST",
            format!("{domain}/schemas"),
            Some(json!({"value": {"$id": "#?n"}})),
        ),
        ("GET", schema.clone(), None),
        ("PUT", schema.clone(), Some(value)),
        ("DELETE", schema.clone(), None),
        ("POST", format!("{schema}/validate"), Some(json!({}))),
    ];
    for token in ["other", "otherAdmin"] {
        for (method, uri, body) in &calls {
            let (status, res) = hub.call(method, uri, Some(token), body.clone()).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{token} {method} {uri}: {res}"
            );
        }
        let zip = zip_of(&[("n.json", br#"{"type": "object"}"#.as_slice())]);
        let (status, _) = hub.upload(&d, token, "archive", "x.zip", &zip).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (_, read) = hub.get(&domain, "user1").await;
    assert_eq!(read["data"]["name"], "mine");
    let (_, list) = hub.get(&format!("{domain}/schemas"), "user1").await;
    assert_eq!(list["meta"]["total"], 1);
    let (_, theirs) = hub.get("/api/v1/domains", "other").await;
    assert_eq!(theirs["meta"]["total"], 0);
}

async fn unknown_and_malformed_ids_are_not_found(hub: Hub) {
    for id in ["fooooo", "000000000000000000000000"] {
        for token in ["admin", "user1"] {
            let (status, body) = hub.get(&format!("/api/v1/domains/{id}"), token).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{id} {token}");
            assert_eq!(message(&body), "Domain not found");
        }
        let (status, _) = hub
            .put(
                &format!("/api/v1/domains/{id}"),
                "admin",
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = hub.get(&schema_path(id, "a.json"), "admin").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Without the permission, a missing domain is a 403 (as OIH): ids are not probed.
    let (status, _) = hub
        .put(
            "/api/v1/domains/000000000000000000000000",
            "user3",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = hub.get("/api/v1/nothing-here", "admin").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

async fn malformed_bodies_are_refused(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    for (method, uri) in [
        ("POST", "/api/v1/domains".to_owned()),
        ("PUT", format!("/api/v1/domains/{d}")),
        ("POST", format!("/api/v1/domains/{d}/schemas")),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("authorization", "Bearer user1")
            .header("content-type", "application/json")
            .body(Body::from("{\"name\": "))
            .expect("request");
        let (status, body) = hub.send(req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    let (status, _) = hub
        .post(
            "/api/v1/domains",
            "user1",
            json!({"name": "x", "description": ["no"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = hub.post("/api/v1/domains", "user1", json!([1])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = hub
        .post(
            &format!("/api/v1/domains/{d}/schemas"),
            "user1",
            json!({"value": {"$id": "#?a"}, "name": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, list) = hub.get("/api/v1/domains", "user1").await;
    assert_eq!(list["meta"]["total"], 1, "nothing was created");
}
