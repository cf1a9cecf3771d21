//! Starts the real binary on a free port with a fresh data directory, talks to it, and stops
//! it with SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the child if the test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data_dir: &std::path::Path) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oih"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .env_remove("OIH_LISTEN")
        .env_remove("PORT")
        .env_remove("OIH_DATABASE_URL")
        .env_remove("OIH_AMQP_URL")
        .env_remove("RABBITMQ_URI")
        .env_remove("OIH_ONLY")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn oih");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    // The banner's first line carries the URL (the port is chosen by the OS).
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut banner = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        banner.push(line.clone());
        if let Some(url) = line.split("listening on ").nth(1) {
            return (running, url.trim().to_owned());
        }
    }
    panic!("no banner within 60 s; got {banner:?}");
}

#[tokio::test]
async fn serves_health_metrics_and_json_404_then_stops_on_sigterm() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut running, base) = start(data.path());
    let http = reqwest::Client::new();

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http.get(format!("{base}/healthcheck")).send().await {
            Ok(res) if res.status() == 200 => {
                let body: serde_json::Value = res.json().await.expect("json");
                assert_eq!(body["status"], "pass", "{body}");
                assert_eq!(body["details"]["store"]["status"], "pass");
                assert_eq!(body["details"]["bus"]["status"], "pass");
                break;
            }
            other if Instant::now() > deadline => panic!("not healthy: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

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
