//! `/virtual-components`: visibility, create, patch, delete with cascade, defaults.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, docker};

/// Creates a virtual component as `token`; returns its `_id`.
pub async fn virtual_component(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = app.post("/virtual-components", token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["data"]["_id"].as_str().expect("_id").to_owned()
}

/// Creates a version of `vc` pointing at a fresh component of `token`; returns its `_id`.
pub async fn version(app: &TestApp, token: &str, vc: &str, name: &str) -> String {
    let component = app.component(token, docker(name)).await;
    let (status, created) = app
        .post(
            &format!("/virtual-components/{vc}"),
            token,
            json!({
                "name": name, "componentId": component,
                "authorization": {"authType": "API_KEY"},
                "actions": [{"name": "send", "function": "send"}, {"name": "old", "function": "old", "active": false}],
                "triggers": {"poll": {"title": "Poll", "main": "./poll.js", "metadata": {"out": {"type": "object"}}}}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["data"]["_id"].as_str().expect("_id").to_owned()
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v["_id"].as_str().expect("_id").to_owned())
        .collect()
}

#[tokio::test]
async fn create_forces_tenant_and_owner_for_non_admins() {
    let app = TestApp::start().await;
    let (status, body) = app
        .post("/virtual-components", "alice", json!({"name": "Mail", "tenant": "t2", "owners": [{"id": "bob", "type": "user"}], "versions": [{"componentVersion": "1.0", "apiVersion": "v1"}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let data = &body["data"];
    assert_eq!(data["tenant"], "t1");
    assert_eq!(data["owners"], json!([{"id": "alice", "type": "user"}]));
    assert_eq!(data["access"], "private");
    assert_eq!(data["active"], true);
    assert_eq!(
        data["versions"],
        json!([{"componentVersion": "1.0", "apiVersion": "v1"}])
    );
    assert_eq!(body["meta"], json!({}));

    let (status, body) = app
        .post(
            "/virtual-components",
            "admin",
            json!({"name": "Global", "tenant": "t2", "owners": [{"id": "bob", "type": "user"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["data"]["tenant"], "t2");
    assert_eq!(
        body["data"]["owners"],
        json!([{"id": "bob", "type": "user"}])
    );

    let (status, body) = app
        .post("/virtual-components", "alice", json!({"access": "public"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // One entry per failed rule, naming the field (an extra key next to OIH's `message`).
    assert_eq!(
        body,
        json!({"errors": [{"message": "Path `name` is required.", "field": "name"}]})
    );
    let (status, _) = app
        .post("/virtual-components", "reader", json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn visibility_by_tenant_owner_and_access() {
    let app = TestApp::start().await;
    let alice = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let bob = virtual_component(&app, "bob", json!({"name": "b"})).await;
    let public = virtual_component(
        &app,
        "admin",
        json!({"name": "p", "access": "public", "tenant": "t3"}),
    )
    .await;
    let inactive = virtual_component(
        &app,
        "admin",
        json!({"name": "off", "access": "public", "active": false}),
    )
    .await;

    let (_, listed) = app.get("/virtual-components", "carol").await;
    assert_eq!(ids(&listed), [alice.clone(), public.clone()]);
    let (_, listed) = app.get("/virtual-components", "bob").await;
    assert_eq!(ids(&listed), [bob.clone(), public.clone()]);
    let (_, listed) = app.get("/virtual-components", "admin").await;
    assert_eq!(ids(&listed).len(), 4);

    for (who, id, expected) in [
        ("carol", &alice, StatusCode::OK),
        ("bob", &alice, StatusCode::NOT_FOUND),
        ("alice", &bob, StatusCode::NOT_FOUND),
        ("bob", &public, StatusCode::OK),
        ("admin", &bob, StatusCode::OK),
        ("bob", &inactive, StatusCode::OK),
    ] {
        let (status, body) = app.get(&format!("/virtual-components/{id}"), who).await;
        assert_eq!(status, expected, "{who} {id}");
        if status == StatusCode::NOT_FOUND {
            assert_eq!(
                body,
                json!({"errors": [{"message": "VirtualComponent is not found"}]})
            );
        }
    }
    let (status, _) = app.get("/virtual-components/garbage", "alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_rules() {
    let app = TestApp::start().await;
    let id = virtual_component(
        &app,
        "alice",
        json!({"name": "a", "versions": [{"componentVersion": "1"}]}),
    )
    .await;
    let uri = format!("/virtual-components/{id}");
    // A tenant colleague may change it (OIH: same tenant loads and writes private ones).
    let (status, body) = app
        .patch(&uri, "carol", json!({"name": "renamed", "versions": [], "defaultVersionId": null, "owners": [], "tenant": "t2"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "renamed");
    assert_eq!(body["data"]["versions"], json!([]));
    assert!(body["data"].get("defaultVersionId").is_none());
    // Emptied owners get the caller; the tenant stays.
    assert_eq!(
        body["data"]["owners"],
        json!([{"id": "carol", "type": "user"}])
    );
    assert_eq!(body["data"]["tenant"], "t1");

    assert_eq!(
        app.patch(&uri, "alice", json!({"name": ""})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.patch(&uri, "alice", json!({"defaultVersionId": "x"}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.patch(&uri, "bob", json!({"name": "x"})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(&uri, "reader", json!({"name": "x"})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.patch(
            "/virtual-components/5f6a7b8c9d0e1f2a3b4c5d6e",
            "alice",
            json!({"name": "x"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    let public = virtual_component(&app, "admin", json!({"name": "p", "access": "public"})).await;
    let (status, body) = app
        .patch(
            &format!("/virtual-components/{public}"),
            "bob",
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"errors": [{"message": "Not authorized"}]}));
    assert_eq!(
        app.delete(&format!("/virtual-components/{public}"), "bob")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn delete_cascades_to_versions_and_configs() {
    let app = TestApp::start().await;
    let vc = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let v1 = version(&app, "alice", &vc, "v1").await;
    let (status, _) = app
        .post(
            &format!("/virtual-components/{vc}/{v1}/config"),
            "alice",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let keep = virtual_component(&app, "alice", json!({"name": "keep"})).await;
    let kept = version(&app, "alice", &keep, "kept").await;
    let (status, _) = app
        .post(
            &format!("/virtual-components/{keep}/{kept}/config"),
            "alice",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    assert_eq!(
        app.delete(&format!("/virtual-components/{vc}"), "bob")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/virtual-components/{vc}"), "reader")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/virtual-components/{vc}"), "alice")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/virtual-components/{vc}"), "alice")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, configs) = app
        .get("/virtual-components/defaults/config", "admin")
        .await;
    let versions: Vec<&Value> = configs["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| &c["componentVersionId"])
        .collect();
    assert_eq!(versions, [&json!(kept)]);
    assert_eq!(
        app.get(&format!("/virtual-components/{keep}/{kept}"), "alice")
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn defaults_show_default_versions_of_visible_components() {
    let app = TestApp::start().await;
    let vc = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let default = version(&app, "alice", &vc, "default").await;
    let other = version(&app, "alice", &vc, "other").await;
    let (status, _) = app
        .patch(
            &format!("/virtual-components/{vc}"),
            "alice",
            json!({"defaultVersionId": default, "versions": [{"id": default}, {"id": other}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let bobs = virtual_component(&app, "bob", json!({"name": "b"})).await;
    let bobs_default = version(&app, "bob", &bobs, "bobs").await;
    app.patch(
        &format!("/virtual-components/{bobs}"),
        "bob",
        json!({"defaultVersionId": bobs_default}),
    )
    .await;

    let (status, body) = app.get("/virtual-components/defaults", "carol").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), [default.as_str()]);
    assert_eq!(
        body["data"][0]["actions"]
            .as_array()
            .expect("actions")
            .len(),
        2
    );
    let (_, admin) = app.get("/virtual-components/defaults", "admin").await;
    assert_eq!(ids(&admin), [default.clone(), bobs_default]);

    let (_, light) = app
        .get(
            "/virtual-components/defaults?verbose=false&filterActiveFunctions=true",
            "carol",
        )
        .await;
    assert_eq!(
        light["data"][0]["actions"],
        json!([{"name": "send", "active": true}])
    );
    assert_eq!(
        light["data"][0]["triggers"],
        json!([{"name": "poll", "title": "Poll", "active": true}])
    );
    assert!(light["data"][0].get("createdAt").is_none());

    let (status, _) = app
        .post(
            &format!("/virtual-components/{vc}/{default}/config"),
            "carol",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            &format!("/virtual-components/{vc}/{other}/config"),
            "carol",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, configs) = app
        .get("/virtual-components/defaults/config", "alice")
        .await;
    assert_eq!(configs["data"].as_array().expect("data").len(), 1);
    assert_eq!(configs["data"][0]["componentVersionId"], default.as_str());
    assert_eq!(configs["data"][0]["tenant"], "t1");
    let (_, configs) = app.get("/virtual-components/defaults/config", "bob").await;
    assert_eq!(configs["data"], json!([]));
}
