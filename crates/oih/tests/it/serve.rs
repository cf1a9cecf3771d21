//! Starts the real binary on a free port with a fresh data directory, talks to it, and stops
//! it with SIGTERM or SIGINT (Ctrl-C).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::hub::{Backend, Hub, wait_for_hook};
use crate::support::{Running, start, wait_healthy};

/// The names `serve --only` accepts, in the order the hub mounts them.
const ALL_SERVICES: [&str; 11] = [
    "iam",
    "flow-repository",
    "component-repository",
    "component-orchestrator",
    "webhooks",
    "scheduler",
    "secret-service",
    "audit-log",
    "meta-data-repository",
    "integration-layer-service",
    "snapshots",
];

/// Sends `signal` (`TERM`, `INT`) to the hub.
fn signal(running: &Running, signal: &str) {
    let pid = running.0.id().to_string();
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Waits (at most 10 s) for the hub to exit and asserts it exited cleanly.
fn assert_exits_cleanly(running: &mut Running, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = running.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "oih did not exit within 10 s of {after}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after {after}: {status:?}");
}

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

    signal(&running, "TERM");
    assert_exits_cleanly(&mut running, "SIGTERM");
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

/// Ctrl-C at a terminal sends SIGINT: the hub stops as cleanly as on SIGTERM, and what it
/// stored is there at the next start.
#[tokio::test]
async fn stops_cleanly_on_sigint() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut running, base) = start(data.path(), &[]);
    wait_healthy(&base).await;
    signal(&running, "INT");
    assert_exits_cleanly(&mut running, "SIGINT");
    let addr = base.trim_start_matches("http://");
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens on {addr} after the exit"
    );
    // The database was closed properly: the next start on it is healthy.
    let (mut again, base) = start(data.path(), &[]);
    wait_healthy(&base).await;
    signal(&again, "INT");
    assert_exits_cleanly(&mut again, "the second SIGINT");
}

/// `oih serve` with its whole banner (stdout up to and including the `services:` line).
fn start_with_banner(data_dir: &std::path::Path, args: &[&str]) -> (Running, Vec<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_oih"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
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
    let mut running = Running(child);
    let stdout = running.0.stdout.take().expect("stdout");
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let last = line.trim_start().starts_with("services:");
                banner.push(line);
                if last {
                    return (running, banner);
                }
            }
            Err(_) => panic!("no complete banner within 60 s; got {banner:?}"),
        }
    }
}

/// The URL on the banner's `… listening on <url>` line.
fn listen_url(banner: &[String]) -> &str {
    banner
        .iter()
        .find_map(|line| line.split(" listening on ").nth(1))
        .unwrap_or_else(|| panic!("no `listening on` line in {banner:?}"))
        .trim()
}

/// The value after `label` on the banner line that starts with it.
fn banner_value<'a>(banner: &'a [String], label: &str) -> &'a str {
    banner
        .iter()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in {banner:?}"))
        .trim()
}

/// A newcomer learns from the banner where the hub listens and where its data lives, and both
/// are true: the URL answers, the database is in the directory named.
#[tokio::test]
async fn the_banner_says_where_it_listens_and_where_data_lives() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut running, banner) = start_with_banner(data.path(), &[]);
    let url = listen_url(&banner);
    assert!(url.starts_with("http://127.0.0.1:"), "{banner:?}");
    let health = wait_healthy(url).await;
    assert_eq!(health["status"], "pass");

    let storage = banner_value(&banner, "storage:");
    assert_eq!(
        storage,
        format!("SQLite in {}", data.path().display()),
        "{banner:?}"
    );
    assert!(
        data.path().join("oih.db").exists(),
        "the database is where the banner says"
    );
    let bus = banner_value(&banner, "bus:");
    assert!(bus.contains("persisted in the database"), "{banner:?}");
    signal(&running, "TERM");
    assert_exits_cleanly(&mut running, "SIGTERM");
}

/// `/healthcheck` reports each service this process runs: all-in-one, every service (the ones
/// the banner lists) next to store and bus; alone (`--only`), just that service, in the same
/// shape and with the same verdict.
#[tokio::test]
async fn healthcheck_names_each_running_service() {
    let all_dir = tempfile::tempdir().expect("tempdir");
    let (mut all, banner) = start_with_banner(all_dir.path(), &[]);
    let only_dir = tempfile::tempdir().expect("tempdir");
    let (mut only, only_banner) =
        start_with_banner(only_dir.path(), &["--only", "flow-repository"]);
    let all_body = wait_healthy(listen_url(&banner)).await;
    let only_body = wait_healthy(listen_url(&only_banner)).await;

    let mounted: Vec<&str> = banner_value(&banner, "services:").split(", ").collect();
    assert_eq!(mounted, ALL_SERVICES, "{banner:?}");
    let names = |body: &Value| -> Vec<String> {
        body["services"]
            .as_object()
            .unwrap_or_else(|| panic!("services is an object: {body}"))
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(names(&all_body), ALL_SERVICES, "{all_body}");
    assert_eq!(names(&only_body), ["flow-repository"], "{only_body}");

    for body in [&all_body, &only_body] {
        assert_eq!(body["status"], "pass", "{body}");
        assert_eq!(
            body["details"],
            json!({"store": {"status": "pass"}, "bus": {"status": "pass"}}),
            "{body}"
        );
        for (name, service) in body["services"].as_object().expect("services") {
            assert_eq!(service["status"], "pass", "{name}: {body}");
        }
    }
    assert_eq!(
        all_body["services"]["flow-repository"], only_body["services"]["flow-repository"],
        "one service reports the same alone and in the all-in-one hub"
    );
    assert_eq!(
        only_body["services"]["flow-repository"],
        json!({"status": "pass", "details": {"workers": {"status": "pass"}}}),
        "its event consumer is running"
    );
    signal(&all, "TERM");
    signal(&only, "TERM");
    assert_exits_cleanly(&mut all, "SIGTERM");
    assert_exits_cleanly(&mut only, "SIGTERM");
}

/// An HTTP server whose answers the test releases one by one: it reports each request it has
/// read on `received` and answers it once `release` gets a message. One request at a time.
struct HeldServer {
    url: String,
    received: tokio::sync::mpsc::UnboundedReceiver<()>,
    release: std_mpsc::Sender<()>,
}

const HELD_ANSWER: &str = r#"{"answer":"worth the wait"}"#;

fn held_server() -> HeldServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (received_tx, received) = tokio::sync::mpsc::unbounded_channel();
    let (release, release_rx) = std_mpsc::channel::<()>();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            if read_request(&mut socket).is_err() {
                continue;
            }
            if received_tx.send(()).is_err() || release_rx.recv().is_err() {
                return;
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{HELD_ANSWER}",
                HELD_ANSWER.len()
            );
            let _ = socket.write_all(reply.as_bytes());
        }
    });
    HeldServer {
        url,
        received,
        release,
    }
}

/// Reads one request (head and a `content-length` body).
fn read_request(socket: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body_len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + body_len {
                return Ok(());
            }
        }
    }
}

/// SIGTERM while a synchronous webhook call waits for its flow's reply: the hub stops taking
/// new connections but the waiting caller still gets the reply (the flow's steps keep running
/// until in-flight requests are answered), and then the hub exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_call_in_flight_at_sigterm_still_gets_its_reply() {
    let mut remote = held_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut running, hub) = Hub::start_with(
        dir.path(),
        &Backend::Embedded,
        &[("OIH_SHUTDOWN_GRACE", "30")],
    )
    .await;
    let flow = json!({
        "name": "in-flight-at-shutdown",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "call", "componentId": hub.builtin("http-request").await, "function": "request",
                 "fields": {"method": "GET", "url": format!("'{}/slow'", remote.url), "timeout": 120000}},
                {"id": "answer", "componentId": hub.builtin("webhook-reply").await, "function": "reply",
                 "fields": {"body": "body"}}
            ],
            "edges": [{"source": "hook", "target": "call"}, {"source": "call", "target": "answer"}]
        }
    });
    let id = hub.started(&flow).await;
    // A first call, answered at once: the webhook knows the flow and the path works.
    remote.release.send(()).expect("release");
    let replied = wait_for_hook(&hub, &id, &json!({"n": 1})).await;
    assert_eq!(
        replied,
        serde_json::from_str::<Value>(HELD_ANSWER).expect("json")
    );
    remote
        .received
        .recv()
        .await
        .expect("the first call was seen");

    // The second call waits on the held remote...
    let in_flight = tokio::spawn({
        let http = hub.http.clone();
        let url = format!("{}/hook/{id}", hub.base);
        async move { http.post(url).json(&json!({"n": 2})).send().await }
    });
    tokio::time::timeout(Duration::from_secs(20), remote.received.recv())
        .await
        .expect("the flow calls out within 20 s")
        .expect("server running");
    // ...when the hub is told to stop. Once it refuses new connections it is shutting down.
    signal(&running, "TERM");
    let addr = hub.base.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting connections 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    remote.release.send(()).expect("release");

    let res = in_flight
        .await
        .expect("the caller's task")
        .expect("the in-flight call is answered, not cut off");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::from_str::<Value>(HELD_ANSWER).expect("json")
    );
    assert_exits_cleanly(&mut running, "SIGTERM");
}

/// The hub runs with mimalloc's small-footprint settings unless the environment names them.
#[tokio::test]
async fn the_hub_runs_with_the_small_footprint_allocator_settings() {
    let environ = |running: &Running| {
        let raw = std::fs::read(format!("/proc/{}/environ", running.0.id())).expect("environ");
        String::from_utf8_lossy(&raw)
            .split('\0')
            .filter(|v| v.starts_with("MIMALLOC_"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let data = tempfile::tempdir().expect("tempdir");
    let (running, _base) = start(data.path(), &[]);
    let mut set = environ(&running);
    set.sort();
    assert_eq!(
        set,
        ["MIMALLOC_ARENA_EAGER_COMMIT=0", "MIMALLOC_PURGE_DELAY=0"],
        "the same process (pid) re-executed with the settings"
    );
    drop(running);
    // An operator's own setting is kept, and nothing is added to it.
    let data = tempfile::tempdir().expect("tempdir");
    let (running, _base) = start(data.path(), &[("MIMALLOC_PURGE_DELAY", "10")]);
    assert_eq!(environ(&running), ["MIMALLOC_PURGE_DELAY=10"]);
    drop(running);
}
