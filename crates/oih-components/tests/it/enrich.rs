//! `PATCH /components/enrich/{id}` against a stand-in for raw.githubusercontent.com.

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use oih_components::Config;
use serde_json::{Value, json};

use crate::support::{TestApp, docker};

const REPO: &str = "/openintegrationhub/wice-adapter/master";

/// Serves OIH's enrich fixture (its spec's nock replies); returns the base URL.
async fn fake_github() -> String {
    let json_reply = |value: Value| get(move || async move { axum::Json(value) });
    let router = Router::new()
        .route(
            &format!("{REPO}/component.json"),
            json_reply(json!({
                "triggers": {"getPersonsPolling": {
                    "title": "Fetch new and updated persons", "main": "./lib/triggers/getPersonsPolling.js",
                    "metadata": {"in": "./lib/schemas/getPersons.in.json", "out": "./lib/schemas/getPersons.out.json"}
                }},
                "actions": {"upsertPerson": {
                    "title": "Upsert a person", "main": "./lib/actions/upsertPerson.js",
                    "metadata": {"in": "./lib/schemas/upsertPerson.in.json", "out": "../escape.json"}
                }}
            })),
        )
        .route(&format!("{REPO}/Readme.md"), get(|| async { "Hello world" }))
        .route(&format!("{REPO}/lib/schemas/getPersons.in.json"), json_reply(json!({"getPersonsIn": "done"})))
        .route(&format!("{REPO}/lib/schemas/getPersons.out.json"), json_reply(json!({"getPersonsOut": "done"})))
        .route(&format!("{REPO}/lib/schemas/upsertPerson.in.json"), json_reply(json!({"upsertPersonIn": "done"})));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn app() -> TestApp {
    TestApp::with_config(Config {
        github_raw_url: fake_github().await,
        ..Config::default()
    })
    .await
}

async fn enrich(app: &TestApp, uri: &str, token: &str) -> (StatusCode, Value) {
    app.call(Method::PATCH, uri, token, None).await
}

#[tokio::test]
async fn fills_actions_triggers_and_rating() {
    let app = app().await;
    let id = app.component("alice", docker("wice")).await;
    let url = "https://github.com/openintegrationhub/wice-adapter";
    let (status, body) = enrich(
        &app,
        &format!("/components/enrich/{id}?repository={url}"),
        "alice",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, got) = app.get(&format!("/components/{id}"), "alice").await;
    let data = &got["data"];
    assert_eq!(data["repository"], url);
    assert_eq!(
        data["rating"],
        json!({
            "interoperability": {"get": true, "post": true, "put": true, "upsert": true, "delete": false, "error": false},
            "documentation": {"readme": true, "size": false, "error": false}
        })
    );
    assert_eq!(
        data["triggers"]["getPersonsPolling"]["metadata"],
        json!({"in": {"getPersonsIn": "done"}, "out": {"getPersonsOut": "done"}})
    );
    // A path leaving the repository is not fetched.
    assert_eq!(
        data["actions"]["upsertPerson"]["metadata"],
        json!({"in": {"upsertPersonIn": "done"}, "out": "../escape.json"})
    );
    // Next time the stored repository is used.
    let (status, _) = enrich(&app, &format!("/components/enrich/{id}"), "alice").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn enrich_errors() {
    let app = app().await;
    let (status, body) = enrich(&app, "/components/enrich/5f6a7b8c9d0e1f2a3b4c5d6e", "alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component is not found"}]})
    );
    let id = app.component("alice", docker("c")).await;
    let uri = format!("/components/enrich/{id}");
    let (status, body) = enrich(&app, &uri, "carol").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"errors": [{"message": "Not authorized"}]}));
    let (status, body) = enrich(&app, &uri, "alice").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Missing Repository URL"}]})
    );
    // OIH fetches any URL that is not GitHub's as given.
    let (status, _) = enrich(
        &app,
        &format!("{uri}?repository=http://169.254.169.254/latest"),
        "alice",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // OIH answers 204 and changes nothing.
    let (status, body) = enrich(
        &app,
        &format!("{uri}?repository=https://github.com/someone/missing"),
        "alice",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": [{"message": "No component.json found in the repository (HTTP 404)"}]})
    );
    let (_, got) = app.get(&format!("/components/{id}"), "alice").await;
    assert!(got["data"].get("repository").is_none());
    assert_eq!(enrich(&app, &uri, "reader").await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_unreachable_host_is_a_502() {
    // Nothing listens on port 9 of localhost (discard), so the connection is refused.
    let app = TestApp::with_config(Config {
        github_raw_url: "http://127.0.0.1:9".into(),
        ..Config::default()
    })
    .await;
    let id = app.component("alice", docker("c")).await;
    let (status, body) = enrich(
        &app,
        &format!("/components/enrich/{id}?repository=https://github.com/a/b"),
        "alice",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        body,
        json!({"errors": [{"message": "The repository could not be reached"}]})
    );
}
