//! Authentication, permissions and malformed ids across the endpoints: a refused request
//! changes nothing.

use axum::http::{Method, StatusCode};
use oih_store::{Collection, Filter, FindOptions};
use serde_json::{Value, json};

use crate::support::{TestApp, docker};
use crate::virtual_components::{version, virtual_component};

const UNKNOWN: &str = "5f6a7b8c9d0e1f2a3b4c5d6e";

/// Every mounted method and path, with a body the endpoint would otherwise accept.
fn endpoints() -> Vec<(Method, String, Option<Value>)> {
    let id = UNKNOWN;
    let vc = format!("/virtual-components/{id}");
    let version = format!("{vc}/{id}");
    vec![
        (Method::GET, "/components".into(), None),
        (Method::POST, "/components".into(), Some(docker("x"))),
        (Method::GET, format!("/components/{id}"), None),
        (
            Method::PATCH,
            format!("/components/{id}"),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/components/{id}"), None),
        (Method::PATCH, format!("/components/enrich/{id}"), None),
        (Method::POST, format!("/components/global/{id}/start"), None),
        (Method::POST, format!("/components/global/{id}/stop"), None),
        (Method::POST, "/components/global/restart/all".into(), None),
        (Method::GET, "/virtual-components".into(), None),
        (
            Method::POST,
            "/virtual-components".into(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/virtual-components/defaults".into(), None),
        (
            Method::GET,
            "/virtual-components/defaults/config".into(),
            None,
        ),
        (Method::GET, vc.clone(), None),
        (Method::PATCH, vc.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, vc.clone(), None),
        (Method::POST, vc.clone(), Some(json!({"name": "v"}))),
        (Method::GET, version.clone(), None),
        (Method::PATCH, version.clone(), Some(json!({"name": "v"}))),
        (Method::DELETE, version.clone(), None),
        (Method::POST, format!("{version}/config"), Some(json!({}))),
        (
            Method::PATCH,
            format!("{version}/config"),
            Some(json!({"authClientId": id})),
        ),
        (Method::GET, format!("{version}/actions/send"), None),
        (Method::GET, format!("{version}/triggers/poll"), None),
    ]
}

async fn totals(app: &TestApp) -> (Value, Value) {
    let (_, components) = app.get("/components", "admin").await;
    let (_, vcs) = app.get("/virtual-components", "admin").await;
    (components["meta"]["total"].clone(), vcs["data"].clone())
}

#[tokio::test]
async fn every_endpoint_needs_a_token() {
    let app = TestApp::start().await;
    let before = totals(&app).await;
    let all = endpoints();
    // One entry per route of the router (`openapi_lists_the_endpoints` counts the paths).
    assert_eq!(all.len(), 24);
    for (method, uri, body) in all {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, res) = app
            .raw(
                method.clone(),
                &uri,
                None,
                Some("application/json"),
                bytes.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {res}");
        assert_eq!(
            res,
            json!({"errors": [{"message": "Missing authorization header."}]}),
            "{method} {uri}"
        );
        let (status, res) = app
            .raw(
                method.clone(),
                &uri,
                Some("notAToken"),
                Some("application/json"),
                bytes,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {res}");
    }
    assert_eq!(totals(&app).await, before, "nothing was created");
}

#[tokio::test]
async fn deleting_a_component_needs_the_delete_permission() {
    let app = TestApp::start().await;
    let id = app.component("alice", docker("kept")).await;
    let uri = format!("/components/{id}");
    for who in ["reader", "updater"] {
        let (status, body) = app.delete(&uri, who).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
        assert_eq!(body["errors"][0]["message"], "MISSING_PERMISSION", "{who}");
    }
    let (status, body) = app.get(&uri, "alice").await;
    assert_eq!(status, StatusCode::OK, "the component is still there");
    assert_eq!(body["data"]["name"], "kept");
}

#[tokio::test]
async fn deleting_a_version_needs_the_delete_permission() {
    let app = TestApp::start().await;
    let vc = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let id = version(&app, "alice", &vc, "v1").await;
    let uri = format!("/virtual-components/{vc}/{id}");
    // `reader` and `updater` share alice's tenant, so they see the virtual component.
    for who in ["reader", "updater"] {
        let (status, body) = app.delete(&uri, who).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
        assert_eq!(body["errors"][0]["message"], "MISSING_PERMISSION", "{who}");
    }
    let (status, body) = app.get(&uri, "alice").await;
    assert_eq!(status, StatusCode::OK, "the version is still there: {body}");
    assert_eq!(body["data"]["name"], "v1");
}

#[tokio::test]
async fn changing_a_config_needs_the_write_permission() {
    let app = TestApp::start().await;
    let vc = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let id = version(&app, "alice", &vc, "v1").await;
    let uri = format!("/virtual-components/{vc}/{id}/config");
    let client = "6b0000000000000000000001";
    let (status, _) = app
        .post(&uri, "alice", json!({"authClientId": client}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for who in ["reader", "updater"] {
        let (status, body) = app
            .patch(
                &uri,
                who,
                json!({"authClientId": "6b0000000000000000000002"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
        assert_eq!(body["errors"][0]["message"], "MISSING_PERMISSION", "{who}");
    }
    let stored = app
        .docs
        .find(
            Collection("components_configs"),
            &Filter::All,
            &FindOptions::default(),
        )
        .await
        .expect("configs");
    let clients: Vec<&Value> = stored.iter().map(|c| &c.body["authClientId"]).collect();
    assert_eq!(clients, [&json!(client)], "unchanged by the refused calls");
}

#[tokio::test]
async fn malformed_component_ids_are_400() {
    let app = TestApp::start().await;
    let (status, body) = app
        .patch("/components/not-an-id", "alice", json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"errors": [{"message": "Invalid id"}]}));
    let (status, body) = app.delete("/components/not-an-id", "alice").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body, json!({"errors": [{"message": "Invalid id"}]}));
}
