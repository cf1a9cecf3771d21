//! Global components: start, stop, restart-all and their events.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{TestApp, docker, eventually, next_event};

async fn global(app: &TestApp, name: &str) -> String {
    let mut body = docker(name);
    body["isGlobal"] = json!(true);
    body["access"] = json!("public");
    app.component("admin", body).await
}

#[tokio::test]
async fn start_and_stop_publish_the_component() {
    let app = TestApp::start().await;
    let mut events = app.observe(&["component.*"]).await;
    let id = global(&app, "shared").await;

    let (status, body) = app
        .post(
            &format!("/components/global/{id}/start"),
            "admin",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"message": "Component started", "code": 200}));
    let event = next_event(&mut events).await;
    assert_eq!(event.name(), "component.starting");
    assert_eq!(event.headers.service_name, "component-repository");
    assert_eq!(event.payload["_id"], id.as_str());
    assert_eq!(event.payload["startedBy"], "admin");
    assert_eq!(
        event.payload["distribution"]["image"],
        "elasticio/node:latest"
    );
    assert!(event.payload.get("owners").is_none());
    let (_, got) = app.get(&format!("/components/{id}"), "admin").await;
    assert_eq!(got["data"]["active"], true);

    let (status, body) = app
        .post(&format!("/components/global/{id}/stop"), "admin", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"message": "Component stopped", "code": 200}));
    let event = next_event(&mut events).await;
    assert_eq!(event.name(), "component.stopping");
    assert_eq!(event.payload["stoppedBy"], "admin");
    let (_, got) = app.get(&format!("/components/{id}"), "admin").await;
    assert_eq!(got["data"]["active"], false);
}

#[tokio::test]
async fn start_checks() {
    let app = TestApp::start().await;
    let id = global(&app, "shared").await;
    let local = app.component("alice", docker("local")).await;
    let (status, body) = app
        .post(
            &format!("/components/global/{id}/start"),
            "alice",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["errors"][0]["message"], "MISSING_PERMISSION");
    let (status, body) = app
        .post(
            "/components/global/5f6a7b8c9d0e1f2a3b4c5d6e/start",
            "admin",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component is not found"}]})
    );
    let (status, body) = app
        .post("/components/global/nope/stop", "admin", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"errors": [{"message": "Invalid id"}]}));
    // OIH answers 401 here, which clients read as "log in again".
    let (status, body) = app
        .post(
            &format!("/components/global/{local}/start"),
            "admin",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component is not global"}]})
    );
}

#[tokio::test]
async fn restart_all_stops_then_starts_every_active_global_component() {
    let app = TestApp::start().await;
    let a = global(&app, "a").await;
    let b = global(&app, "b").await;
    let idle = global(&app, "idle").await;
    for id in [&a, &b] {
        let (status, _) = app
            .post(
                &format!("/components/global/{id}/start"),
                "admin",
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut events = app.observe(&["component.*"]).await;
    let (status, body) = app
        .post(
            "/components/global/restart/all?emitThrottle=0&restartDelay=0.3",
            "admin",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"message": "2 Components will be restarted", "code": 200})
    );

    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = next_event(&mut events).await;
        let id = event.payload["_id"].as_str().expect("_id").to_owned();
        let by = if event.name() == "component.stopping" {
            "stoppedBy"
        } else {
            "startedBy"
        };
        assert_eq!(event.payload[by], "admin");
        seen.push((event.name().to_owned(), id));
    }
    let stops: Vec<_> = seen.iter().take(2).collect();
    assert!(
        stops.iter().all(|(name, _)| name == "component.stopping"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .skip(2)
            .all(|(name, _)| name == "component.starting"),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|(_, id)| *id == idle));
    for id in [&a, &b] {
        eventually("active again", || async {
            app.get(&format!("/components/{id}"), "admin").await.1["data"]["active"] == true
        })
        .await;
    }
}

#[tokio::test]
async fn restart_all_validates_its_waits() {
    let app = TestApp::start().await;
    for query in ["emitThrottle=abc", "restartDelay=-1", "emitThrottle=1e9"] {
        let (status, _) = app
            .post(
                &format!("/components/global/restart/all?{query}"),
                "admin",
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }
    let (status, _) = app
        .post("/components/global/restart/all", "alice", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .post("/components/global/restart/all", "admin", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "0 Components will be restarted");
}

/// Stop has start's checks: admins only, a known id; a refused stop publishes nothing and
/// leaves the component running.
#[tokio::test]
async fn stop_checks() {
    let app = TestApp::start().await;
    let mut events = app.observe(&["component.*"]).await;
    let id = global(&app, "shared").await;
    let uri = format!("/components/global/{id}/stop");
    let (status, _) = app
        .post(
            &format!("/components/global/{id}/start"),
            "admin",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(next_event(&mut events).await.name(), "component.starting");

    for who in ["alice", "reader"] {
        let (status, body) = app.post(&uri, who, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
        assert_eq!(body["errors"][0]["message"], "MISSING_PERMISSION", "{who}");
    }
    let (status, body) = app
        .post(
            "/components/global/5f6a7b8c9d0e1f2a3b4c5d6e/stop",
            "admin",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"errors": [{"message": "Component is not found"}]})
    );
    let (_, got) = app.get(&format!("/components/{id}"), "admin").await;
    assert_eq!(got["data"]["active"], true, "still running");

    // The next event is the admin's stop: the refused ones published nothing.
    let (status, _) = app.post(&uri, "admin", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let event = next_event(&mut events).await;
    assert_eq!(event.name(), "component.stopping");
    assert_eq!(event.payload["stoppedBy"], "admin");
    assert_eq!(event.payload["_id"], id.as_str());
}
