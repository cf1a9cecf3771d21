//! Starts the real binary on a free port with a fresh data directory, talks to it, and stops
//! it with SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{start, wait_healthy};

#[tokio::test]
async fn serves_health_metrics_and_json_404_then_stops_on_sigterm() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut running, base) = start(data.path(), &[]);
    let http = reqwest::Client::new();

    let body = wait_healthy(&base).await;
    assert_eq!(body["status"], "pass", "{body}");
    assert_eq!(body["details"]["store"]["status"], "pass");
    assert_eq!(body["details"]["bus"]["status"], "pass");

    let res = http
        .get(format!("{base}/does/not/exist"))
        .send()
        .await
        .expect("404");
    assert_eq!(res.status(), 404);
    assert!(res.headers().contains_key("x-request-id"));
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"errors":[{"message":"Not found","code":404}]})
    );

    let res = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("text");
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    assert!(text.contains("route=\"/healthcheck\""), "{text}");

    let pid = running.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = running.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "oih did not exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(
        data.path().join("oih.db").exists(),
        "SQLite file in the data dir"
    );
}

/// The microservice shape: `--only` mounts just the named service, whose unknown paths answer
/// in its own error shape.
#[tokio::test]
async fn only_mounts_the_selected_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_hub, base) = crate::support::start_with(dir.path(), &[], &["--only", "flow-repository"]);
    let health = crate::support::wait_healthy(&base).await;
    assert_eq!(health["status"], "pass");
    let http = reqwest::Client::new();
    // Its routes are there (and want a token)...
    let flows = http
        .get(format!("{base}/flows"))
        .send()
        .await
        .expect("GET /flows");
    assert_eq!(flows.status(), 401);
    let body: serde_json::Value = flows.json().await.expect("json");
    assert_eq!(
        body["errors"][0]["message"],
        "Missing authorization header."
    );
    // ...other services' routes are not: a 404 in the flow repository's shape.
    for path in ["/logs", "/api/v1/secrets", "/components", "/login"] {
        let res = http.get(format!("{base}{path}")).send().await.expect("GET");
        assert_eq!(res.status(), 404, "{path} must not be served");
        let body: serde_json::Value = res.json().await.expect("json 404");
        assert!(body["errors"][0]["message"].is_string(), "{path}: {body}");
    }
}
