//! Component versions, tenant configs, and action/trigger lookups.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{TestApp, docker};
use crate::virtual_components::{version, virtual_component};

const UNKNOWN: &str = "5f6a7b8c9d0e1f2a3b4c5d6e";

#[tokio::test]
async fn create_version_validates_and_converts_function_maps() {
    let app = TestApp::start().await;
    let vc = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let uri = format!("/virtual-components/{vc}");
    let (status, body) = app
        .post(&uri, "alice", json!({"description": "no name"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(fields, ["name", "componentId", "authorization.authType"]);

    let (status, body) = app
        .post(
            &uri,
            "alice",
            json!({"name": "v", "componentId": UNKNOWN, "authorization": {"authType": "NO_AUTH"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // OIH: {errors:{mesage:…}} (sic).
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component not found"}]})
    );
    // Another tenant's private component cannot be referenced either.
    let bobs = app.component("bob", docker("bob's")).await;
    let (status, _) = app
        .post(
            &uri,
            "alice",
            json!({"name": "v", "componentId": bobs, "authorization": {"authType": "NO_AUTH"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let id = version(&app, "alice", &vc, "v1").await;
    let (status, body) = app.get(&format!("{uri}/{id}"), "carol").await;
    assert_eq!(status, StatusCode::OK);
    let data = &body["data"];
    assert_eq!(data["virtualComponentId"], vc.as_str());
    assert_eq!(data["actions"].as_array().expect("actions").len(), 2);
    assert_eq!(
        data["triggers"],
        json!([{"name": "poll", "title": "Poll", "function": "./poll.js", "schemas": {"out": {"type": "object"}}, "active": true}])
    );

    assert_eq!(
        app.post(
            &format!("/virtual-components/{UNKNOWN}"),
            "alice",
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&uri, "reader", json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&uri, "bob", json!({})).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn versions_are_only_reachable_through_their_virtual_component() {
    let app = TestApp::start().await;
    let bobs_vc = virtual_component(&app, "bob", json!({"name": "b"})).await;
    let bobs_version = version(&app, "bob", &bobs_vc, "secret").await;
    let own = virtual_component(&app, "alice", json!({"name": "a"})).await;
    // OIH serves any version through any visible virtual component.
    let through_own = format!("/virtual-components/{own}/{bobs_version}");
    let (status, body) = app.get(&through_own, "alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component version could not be found"}]})
    );
    assert_eq!(
        app.patch(&through_own, "alice", json!({"name": "x"}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&through_own, "alice").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&format!("{through_own}/config"), "alice", json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("{through_own}/actions/send"), "alice")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let direct = format!("/virtual-components/{bobs_vc}/{bobs_version}");
    assert_eq!(app.get(&direct, "alice").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&direct, "bob").await.0, StatusCode::OK);

    let (status, body) = app
        .get(&format!("/virtual-components/{own}/nope"), "alice")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"errors": [{"message": "Invalid id"}]}));
}

#[tokio::test]
async fn patch_version() {
    let app = TestApp::start().await;
    let vc = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let id = version(&app, "alice", &vc, "v1").await;
    let uri = format!("/virtual-components/{vc}/{id}");
    let (status, body) = app
        .patch(&uri, "alice", json!({"actions": {"a": {"main": "a.js"}, "b": {"main": "b.js"}}, "virtualComponentId": UNKNOWN}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["actions"].as_array().expect("actions").len(),
        2
    );
    assert_eq!(body["data"]["virtualComponentId"], vc.as_str());
    let (status, body) = app
        .patch(
            &uri,
            "alice",
            json!({"name": "", "componentId": "", "authorization": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"].as_array().expect("errors").len(), 3);
    let (status, body) = app
        .patch(
            &format!("/virtual-components/{vc}/{UNKNOWN}"),
            "alice",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "ComponentVersion is not found"}]})
    );
    assert_eq!(
        app.patch(&uri, "reader", json!({})).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn delete_version() {
    let app = TestApp::start().await;
    let vc = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let default = version(&app, "alice", &vc, "default").await;
    let other = version(&app, "alice", &vc, "other").await;
    app.patch(
        &format!("/virtual-components/{vc}"),
        "alice",
        json!({"defaultVersionId": default, "versions": [{"id": default}, {"id": other}]}),
    )
    .await;
    let (status, body) = app
        .delete(&format!("/virtual-components/{vc}/{default}"), "alice")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Cannot delete the default component Version"}]})
    );
    let (status, body) = app
        .delete(&format!("/virtual-components/{vc}/bad"), "alice")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Invalid component version id"}]})
    );
    app.post(
        &format!("/virtual-components/{vc}/{other}/config"),
        "alice",
        json!({}),
    )
    .await;

    assert_eq!(
        app.delete(&format!("/virtual-components/{vc}/{other}"), "alice")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, got) = app.get(&format!("/virtual-components/{vc}"), "alice").await;
    assert_eq!(got["data"]["versions"], json!([{"id": default}]));
    // Exactly that version went (OIH deletes an arbitrary one).
    assert_eq!(
        app.get(&format!("/virtual-components/{vc}/{other}"), "alice")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/virtual-components/{vc}/{default}"), "alice")
            .await
            .0,
        StatusCode::OK
    );
    let (_, configs) = app
        .get("/virtual-components/defaults/config", "admin")
        .await;
    assert_eq!(configs["data"], json!([]));
}

#[tokio::test]
async fn configs() {
    let app = TestApp::start().await;
    let vc = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let id = version(&app, "alice", &vc, "v1").await;
    let uri = format!("/virtual-components/{vc}/{id}/config");
    let client = "6b0000000000000000000001";
    let (status, body) = app
        .post(
            &uri,
            "alice",
            json!({"authClientId": client, "tenant": "t2"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // `{data}` without meta, as OIH; the tenant is the caller's.
    assert_eq!(body.as_object().expect("object").len(), 1);
    assert_eq!(body["data"]["tenant"], "t1");
    assert_eq!(body["data"]["authClientId"], client);
    let (status, body) = app.post(&uri, "carol", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": [{"message": "This component version has already been set."}]})
    );
    // An admin configures another tenant.
    let (status, body) = app.post(&uri, "admin", json!({"tenant": "t2"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["data"]["tenant"], "t2");
    let (status, body) = app.post(&uri, "admin", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Configuration requires a Tenant"}]})
    );
    let (status, body) = app
        .post(
            &format!("/virtual-components/{vc}/bad/config"),
            "alice",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"errors": [{"message": "Invalid id"}]}));
    assert_eq!(
        app.post(&uri, "reader", json!({})).await.0,
        StatusCode::FORBIDDEN
    );

    let (status, body) = app
        .patch(&uri, "alice", json!({"authClientId": "bad"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Invalid auth Client id"}]})
    );
    let new_client = "6b0000000000000000000002";
    let (status, body) = app
        .patch(&uri, "carol", json!({"authClientId": new_client}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["authClientId"], new_client);
    assert_eq!(body["data"]["tenant"], "t1");
    let (status, body) = app
        .patch(
            &format!("/virtual-components/{vc}/{UNKNOWN}/config"),
            "alice",
            json!({"authClientId": new_client}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "This component version has not been found."}]})
    );
    // Bob cannot see the virtual component at all.
    assert_eq!(
        app.patch(&uri, "bob", json!({"authClientId": new_client}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn action_and_trigger_lookup() {
    let app = TestApp::start().await;
    let vc = virtual_component(&app, "alice", json!({"name": "a"})).await;
    let id = version(&app, "alice", &vc, "v1").await;
    let base = format!("/virtual-components/{vc}/{id}");
    let (status, body) = app.get(&format!("{base}/actions/send"), "carol").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"data": {"name": "send", "function": "send", "active": true}, "meta": {}})
    );
    let (status, body) = app.get(&format!("{base}/triggers/poll"), "carol").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["title"], "Poll");
    let (status, body) = app.get(&format!("{base}/actions/nope"), "carol").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component version or action could not be found!"}]})
    );
    let (status, body) = app.get(&format!("{base}/triggers/send"), "carol").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component version or trigger could not be found!"}]})
    );
    let (status, body) = app
        .get(
            &format!("/virtual-components/{vc}/bad/triggers/poll"),
            "carol",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"errors": [{"message": "Invalid id"}]}));
    assert_eq!(
        app.get(&format!("{base}/actions/send"), "bob").await.0,
        StatusCode::NOT_FOUND
    );
}
