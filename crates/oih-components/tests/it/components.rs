//! `/components` (OIH's list/get/post/patch/delete specs, plus bad input and tenants).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, docker};

#[tokio::test]
async fn empty_list_has_oih_paging_meta() {
    let app = TestApp::start().await;
    let (status, body) = app.get("/components", "alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"data": [], "meta": {"page": 1, "perPage": 50, "total": 0, "totalPages": 0}})
    );
}

#[tokio::test]
async fn create_fills_oih_defaults() {
    let app = TestApp::start().await;
    let (status, body) = app
        .post("/components", "alice", json!({"name": "Mailer", "description": "sends", "distribution": {"image": "mailer:1"}, "tenant": "t9"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let data = body["data"].as_object().expect("data").clone();
    assert_eq!(body["meta"], json!({}));
    for (key, value) in [
        ("name", json!("Mailer")),
        ("description", json!("sends")),
        ("access", json!("private")),
        ("isGlobal", json!(false)),
        ("active", json!(false)),
        (
            "distribution",
            json!({"type": "docker", "image": "mailer:1"}),
        ),
        ("owners", json!([{"id": "alice", "type": "user"}])),
        // The tenant comes from the token, not the body.
        ("tenant", json!("t1")),
    ] {
        assert_eq!(data.get(key), Some(&value), "{key}");
    }
    for absent in ["rating", "resources", "specialFlags", "_id", "__v"] {
        assert!(!data.contains_key(absent), "{absent} should be absent");
    }
    let id = data["id"].as_str().expect("id");
    assert!(oih_core::ObjectId::is_valid(id));
    assert!(
        data["createdAt"]
            .as_str()
            .expect("createdAt")
            .ends_with('Z')
    );
    let (status, again) = app.get(&format!("/components/{id}"), "alice").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["data"], body["data"]);
}

#[tokio::test]
async fn creator_is_appended_to_given_owners() {
    let app = TestApp::start().await;
    let mut body = docker("Shared");
    body["owners"] = json!([{"id": "carol", "type": "user"}]);
    body["access"] = json!("public");
    body["isGlobal"] = json!(true);
    let (_, created) = app.post("/components", "alice", body).await;
    assert_eq!(
        created["data"]["owners"],
        json!([{"id": "carol", "type": "user"}, {"id": "alice", "type": "user"}])
    );
    assert_eq!(created["data"]["access"], "public");
    assert_eq!(created["data"]["isGlobal"], true);
}

#[tokio::test]
async fn list_shows_own_and_public_in_insertion_order() {
    let app = TestApp::start().await;
    let own = app.component("alice", docker("mine")).await;
    let mut public = docker("theirs");
    public["access"] = json!("public");
    let theirs = app.component("bob", public).await;
    app.component("bob", docker("bob-private")).await;

    let (_, body) = app.get("/components", "alice").await;
    let ids: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [own.as_str(), theirs.as_str()]);
    assert_eq!(body["meta"]["total"], 2);

    let (_, all) = app.get("/components", "admin").await;
    assert_eq!(all["meta"]["total"], 3);
}

#[tokio::test]
async fn list_pages() {
    let app = TestApp::start().await;
    for i in 0..5 {
        app.component("alice", docker(&format!("c{i}"))).await;
    }
    let (status, body) = app
        .get("/components?page[size]=2&page[number]=3", "alice")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().expect("data").len(), 1);
    assert_eq!(body["data"][0]["name"], "c4");
    assert_eq!(
        body["meta"],
        json!({"page": 3, "perPage": 2, "total": 5, "totalPages": 3})
    );
}

#[tokio::test]
async fn bad_paging_is_400_not_500() {
    let app = TestApp::start().await;
    for (query, message) in [
        (
            "page[number]=0",
            "page[number] parameter should be greater than 0",
        ),
        (
            "page[size]=-1",
            "page[size] parameter should be greater than 0",
        ),
        ("page[size]=101", "page[size] shouldn't be greater than 100"),
        (
            "page[size]=abc",
            "page[size] parameter should be a positive integer",
        ),
        (
            "artifactId=nope",
            "artifactId parameter is not a valid Artifact Id",
        ),
    ] {
        let (status, body) = app.get(&format!("/components?{query}"), "alice").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body, json!({"errors": [{"message": message}]}), "{query}");
    }
}

#[tokio::test]
async fn artifact_ids_filter_and_pick_the_highest_version() {
    let app = TestApp::start().await;
    for (artifact, version) in [
        ("artifact_a", 1.0),
        ("artifact_a", 1.5),
        ("artifact_a", 1.2),
        ("artifact_b", 1.0),
    ] {
        let mut body = docker("art");
        body["artifactId"] = json!(artifact);
        body["version"] = json!(version);
        body["access"] = json!("public");
        app.component("alice", body).await;
    }
    let (_, listed) = app.get("/components?artifactId=artifact_a", "bob").await;
    assert_eq!(listed["meta"]["total"], 3);
    let (_, listed) = app.get("/components?artifactId=artifact_b", "bob").await;
    assert_eq!(listed["meta"]["total"], 1);

    let (status, latest) = app.get("/components/artifact_a", "bob").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest["data"]["version"], 1.5);
    let (_, picked) = app.get("/components/artifact_a?version=1.2", "bob").await;
    assert_eq!(picked["data"]["version"], 1.2);
    // OIH crashes (500) on an unknown artifact id.
    let (status, body) = app.get("/components/artifact_zzz", "bob").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component is not found"}]})
    );
    let (status, _) = app.get("/components/artifact_a?version=x", "bob").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn get_rules() {
    let app = TestApp::start().await;
    let id = app.component("alice", docker("private")).await;
    let (status, body) = app
        .get("/components/5f6a7b8c9d0e1f2a3b4c5d6e", "alice")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component is not found"}]})
    );
    let (status, body) = app.get(&format!("/components/{id}"), "carol").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"errors": [{"message": "Not authorized"}]}));
    // Another tenant's private component, the same.
    let (status, _) = app.get(&format!("/components/{id}"), "bob").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A service account with components.any.read reads everything; so does an admin.
    assert_eq!(
        app.get(&format!("/components/{id}"), "service").await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/components/{id}"), "admin").await.0,
        StatusCode::OK
    );
    // A malformed id is a 400 (OIH: a CastError 500).
    let (status, body) = app.get("/components/not-an-id", "alice").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"errors": [{"message": "Invalid id"}]}));
    // Upper-case hex is the same id.
    let (status, _) = app
        .get(&format!("/components/{}", id.to_uppercase()), "alice")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn patch_updates_and_validates() {
    let app = TestApp::start().await;
    let id = app.component("alice", docker("before")).await;
    let uri = format!("/components/{id}");
    let (status, body) = app
        .patch(&uri, "alice", json!({"name": "after", "access": "public", "resources": {"limits": {"cpu": "1"}}, "createdAt": "2000-01-01T00:00:00.000Z", "tenant": "t2"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "after");
    assert_eq!(body["data"]["access"], "public");
    assert_eq!(body["data"]["resources"], json!({"limits": {"cpu": "1"}}));
    assert_eq!(
        body["data"]["distribution"]["image"],
        "elasticio/node:latest"
    );
    assert_ne!(body["data"]["createdAt"], "2000-01-01T00:00:00.000Z");
    // The tenant is not movable through PATCH.
    assert_eq!(body["data"]["tenant"], "t1");

    let (status, body) = app
        .patch(&uri, "alice", json!({"name": "", "access": "shared"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let messages: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["message"].as_str().expect("message"))
        .collect();
    assert_eq!(
        messages,
        [
            "Path `name` is required.",
            "`shared` is not a valid enum value for path `access`."
        ]
    );
    let (_, unchanged) = app.get(&uri, "alice").await;
    assert_eq!(unchanged["data"]["name"], "after");

    let (status, body) = app
        .patch(
            "/components/5f6a7b8c9d0e1f2a3b4c5d6e",
            "alice",
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component is not found"}]})
    );
}

#[tokio::test]
async fn only_owners_and_admins_write() {
    let app = TestApp::start().await;
    let mut public = docker("public");
    public["access"] = json!("public");
    let id = app.component("alice", public).await;
    let uri = format!("/components/{id}");
    for who in ["carol", "bob"] {
        let (status, body) = app.patch(&uri, who, json!({"name": "mine now"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
        assert_eq!(body, json!({"errors": [{"message": "Not authorized"}]}));
        assert_eq!(
            app.delete(&uri, who).await.0,
            StatusCode::FORBIDDEN,
            "{who}"
        );
    }
    let (status, body) = app.patch(&uri, "reader", json!({"name": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["errors"][0]["message"], "MISSING_PERMISSION");
    assert_eq!(
        app.patch(&uri, "admin", json!({"name": "by admin"}))
            .await
            .0,
        StatusCode::OK
    );
    let (_, body) = app.get(&uri, "bob").await;
    assert_eq!(body["data"]["name"], "by admin");
}

#[tokio::test]
async fn delete_removes() {
    let app = TestApp::start().await;
    let id = app.component("alice", docker("gone")).await;
    let uri = format!("/components/{id}");
    let (status, body) = app.delete(&uri, "alice").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, body) = app.get(&uri, "alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component is not found"}]})
    );
    assert_eq!(app.delete(&uri, "alice").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn special_flags_are_for_admins() {
    let app = TestApp::start().await;
    let mut body = docker("privileged");
    body["specialFlags"] = json!({"privilegedComponent": true, "rootAccess": true});
    let (status, err) = app.post("/components", "alice", body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        err,
        json!({"errors": [{"message": "Only admins may set specialFlags"}]})
    );
    let (status, created) = app.post("/components", "admin", body).await;
    assert_eq!(status, StatusCode::CREATED);
    // Unknown flags are stripped.
    assert_eq!(
        created["data"]["specialFlags"],
        json!({"privilegedComponent": true})
    );

    let id = app.component("alice", docker("plain")).await;
    let (status, _) = app
        .patch(
            &format!("/components/{id}"),
            "alice",
            json!({"specialFlags": {"privilegedComponent": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Changing other fields of a flagged component is fine for its owner.
    let flagged = created["data"]["id"].as_str().expect("id");
    let (status, _) = app
        .patch(
            &format!("/components/{flagged}"),
            "admin",
            json!({"owners": [{"id": "alice", "type": "user"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .patch(
            &format!("/components/{flagged}"),
            "alice",
            json!({"description": "still privileged"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn distributions() {
    let app = TestApp::start().await;
    let (status, created) = app
        .post("/components", "alice", json!({"name": "local", "distribution": {"type": "process", "command": ["node", "index.js"], "workingDirectory": "/opt/c", "env": {"LOG_LEVEL": "debug"}}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["data"]["distribution"],
        json!({"type": "process", "command": ["node", "index.js"], "workingDirectory": "/opt/c", "env": {"LOG_LEVEL": "debug"}})
    );
    for (distribution, message) in [
        (json!({}), "Path `distribution.image` is required."),
        (
            json!({"type": "slug"}),
            "Path `distribution.slugUrl` is required.",
        ),
        (
            json!({"type": "process", "command": []}),
            "Path `distribution.command` is required: a non-empty array, the program first.",
        ),
        (
            json!({"type": "builtin"}),
            "Path `distribution.name` is required.",
        ),
        (
            json!({"type": "builtin", "name": "nope"}),
            "`nope` is not a built-in component of this hub.",
        ),
        (
            json!({"type": "ftp"}),
            "`ftp` is not a valid enum value for path `distribution.type`.",
        ),
        (
            json!({"image": "x", "registrySecretId": "123"}),
            "Path `distribution.registrySecretId` must be a 24-hex id.",
        ),
    ] {
        let (status, body) = app
            .post(
                "/components",
                "alice",
                json!({"name": "x", "distribution": distribution}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{distribution}");
        assert_eq!(body["errors"][0]["message"], message, "{distribution}");
    }
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_changes_nothing() {
    let app = TestApp::start().await;
    let (status, body) = app
        .post(
            "/components",
            "alice",
            json!({"distribution": {"image": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["message"], "Path `name` is required.");
    let (status, body) = app
        .post(
            "/components",
            "alice",
            json!({"name": "x".repeat(51), "distribution": {"image": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["errors"][0]["message"],
        "Path `name` is longer than the maximum allowed length (50)."
    );
    let (status, body) = app
        .post(
            "/components",
            "alice",
            json!({"name": 5, "distribution": {"image": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .starts_with("Invalid body")
    );
    let (status, _) = app
        .post("/components", "alice", json!(["not", "an", "object"]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .raw(
            Method::POST,
            "/components",
            Some("alice"),
            Some("application/json"),
            b"{\"name\":".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"][0]["message"].is_string());
    let (status, _) = app
        .raw(
            Method::POST,
            "/components",
            Some("alice"),
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // MAX_REQUEST_BODY_SIZE defaults to 100kb.
    let big = json!({"name": "big", "distribution": {"image": "x"}, "descriptor": "y".repeat(110 * 1024)});
    let (status, body) = app.post("/components", "alice", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        json!({"errors": [{"message": "request entity too large"}]})
    );
    // No token: 401 before the body is looked at.
    let (status, body) = app
        .raw(
            Method::POST,
            "/components",
            None,
            Some("application/json"),
            b"{".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Missing authorization header."}]})
    );
    // No permission: 403 before the body is looked at.
    let (status, body) = app
        .raw(
            Method::POST,
            "/components",
            Some("reader"),
            Some("application/json"),
            b"{".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["errors"][0]["message"], "MISSING_PERMISSION");
    let (_, listed) = app.get("/components", "admin").await;
    assert_eq!(listed["meta"]["total"], 0);
}

#[tokio::test]
async fn openapi_lists_the_endpoints() {
    let app = TestApp::start().await;
    let (status, doc) = app
        .get("/api-docs/component-repository/openapi.json", "alice")
        .await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/components/global/restart/all"));
    assert!(paths["/virtual-components/{id}"].get("post").is_some());
    assert_eq!(paths.len(), 14);
    // The main operations say what they take and what they answer.
    let param_names = |op: &Value| -> Vec<String> {
        op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| p["name"].as_str().expect("name").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let list = &paths["/components"]["get"];
    assert_eq!(
        param_names(list),
        ["page[size]", "page[number]", "artifactId"]
    );
    assert!(list["responses"]["400"].is_object());
    assert!(paths["/components"]["post"]["requestBody"].is_object());
    let delete = &paths["/components/{id}"]["delete"];
    assert_eq!(param_names(delete), ["id", "version"]);
    for status in ["204", "400", "401", "403", "404", "409"] {
        assert!(delete["responses"][status].is_object(), "DELETE {status}");
    }
    for (path, method) in [
        ("/components/{id}", "patch"),
        ("/virtual-components", "post"),
        ("/virtual-components/{id}", "patch"),
        ("/virtual-components/{id}", "post"),
        ("/virtual-components/{id}/{version_id}/config", "patch"),
    ] {
        assert!(
            paths[path][method]["requestBody"].is_object(),
            "{method} {path}"
        );
    }
    for (path, ops) in paths {
        for (method, op) in ops.as_object().expect("operations") {
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} documents its 401"
            );
        }
    }
}
