//! The built-in component catalogue.

use axum::http::StatusCode;
use oih_components::{BuiltinDescriptor, BuiltinFunction, Config, builtin_id};
use serde_json::json;

use crate::support::{TestApp, docker};

fn descriptors() -> Vec<BuiltinDescriptor> {
    vec![
        BuiltinDescriptor {
            name: "http-request".into(),
            title: "HTTP request".into(),
            description: "Calls an HTTP endpoint".into(),
            triggers: vec![],
            actions: vec![BuiltinFunction {
                name: "request".into(),
                title: "Request".into(),
                description: "Sends one request".into(),
                fields: Some(json!({"url": {"label": "URL", "required": true}})),
                metadata: None,
            }],
        },
        BuiltinDescriptor {
            name: "jsonata".into(),
            title: "JSONata transform".into(),
            description: "Transforms messages".into(),
            triggers: vec![],
            actions: vec![BuiltinFunction {
                name: "transform".into(),
                title: "Transform".into(),
                description: String::new(),
                fields: None,
                metadata: Some(json!({"in": {"type": "object"}})),
            }],
        },
    ]
}

fn config() -> Config {
    Config {
        builtins: descriptors(),
        ..Config::default()
    }
}

#[tokio::test]
async fn builtins_are_listed_as_public_read_only_components() {
    let app = TestApp::with_config(config()).await;
    let id = builtin_id("http-request");
    let (status, body) = app.get(&format!("/components/{id}"), "bob").await;
    assert_eq!(status, StatusCode::OK);
    let data = &body["data"];
    assert_eq!(data["name"], "HTTP request");
    assert_eq!(data["access"], "public");
    assert_eq!(
        data["distribution"],
        json!({"type": "builtin", "name": "http-request"})
    );
    assert_eq!(
        data["actions"],
        json!({"request": {"title": "Request", "main": "request", "description": "Sends one request", "fields": {"url": {"label": "URL", "required": true}}}})
    );
    let (_, listed) = app.get("/components", "reader").await;
    assert_eq!(listed["meta"]["total"], 2);

    for who in ["alice", "admin"] {
        let (status, body) = app
            .patch(&format!("/components/{id}"), who, json!({"name": "mine"}))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
        assert_eq!(
            body,
            json!({"errors": [{"message": "Component \"http-request\" is a built-in component of this hub and is read-only"}]})
        );
        assert_eq!(
            app.delete(&format!("/components/{id}"), who).await.0,
            StatusCode::FORBIDDEN
        );
    }
    // Not global: it runs inside the hub, not as a shared deployment.
    let (status, _) = app
        .post(
            &format!("/components/global/{id}/start"),
            "admin",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn users_may_reference_known_builtins_only() {
    let app = TestApp::with_config(config()).await;
    let (status, _) = app
        .post(
            "/components",
            "alice",
            json!({"name": "my jsonata", "distribution": {"type": "builtin", "name": "jsonata"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            "/components",
            "alice",
            json!({"name": "x", "distribution": {"type": "builtin", "name": "shell"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn restarts_and_replicas_write_the_same_catalogue() {
    let dir = tempfile_dir();
    let backend = oih_store::open(None, dir.path()).await.expect("store");
    let first = TestApp::on(backend.clone(), config()).await;
    app_total(&first, 2).await;
    // One process owns a database's embedded bus: stop the first before the second starts.
    oih_bus::MessageBus::close(first.bus.as_ref()).await;
    drop(first);
    // A second start on the same database (a restart or another replica): no duplicates, and
    // a changed description is applied.
    let mut changed = config();
    changed.builtins[1].description = "Transforms messages with JSONata".into();
    let second = TestApp::on(backend, changed).await;
    app_total(&second, 2).await;
    let (_, body) = second
        .get(&format!("/components/{}", builtin_id("jsonata")), "alice")
        .await;
    assert_eq!(
        body["data"]["description"],
        "Transforms messages with JSONata"
    );
    // User components are untouched by catalogue installs.
    second.component("alice", docker("own")).await;
    app_total(&second, 3).await;
}

async fn app_total(app: &TestApp, expected: u64) {
    let (_, listed) = app.get("/components", "admin").await;
    assert_eq!(listed["meta"]["total"], expected);
}

fn tempfile_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[tokio::test]
async fn invalid_descriptors_stop_the_module() {
    let backend = oih_store::open(Some("sqlite::memory:"), std::path::Path::new("."))
        .await
        .expect("store");
    let bus = oih_bus::embedded::EmbeddedBus::open(backend.log.clone(), Default::default())
        .await
        .expect("bus");
    let mut twice = config();
    twice.builtins.push(descriptors()[0].clone());
    let mut long = config();
    long.builtins[0].title = "t".repeat(51);
    for bad in [twice, long] {
        let deps = oih_components::Deps {
            docs: backend.docs.clone(),
            bus: bus.clone(),
        };
        let err = oih_components::module(bad, deps)
            .await
            .expect_err("invalid catalogue");
        assert!(err.to_string().contains("http-request"), "{err}");
    }
}
