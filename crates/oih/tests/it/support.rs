//! Shared helpers: start the real binary on a free port with a fresh data directory and wait
//! until it is healthy.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills the child if the test fails half-way.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `oih serve` on 127.0.0.1:0 with `data_dir` and the extra environment `env`; returns the
/// running child and its base URL (from the banner).
pub fn start(data_dir: &std::path::Path, env: &[(&str, &str)]) -> (Running, String) {
    start_with(data_dir, env, &[])
}

/// As [`start`], with extra `serve` arguments (e.g. `--only`).
pub fn start_with(
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Running, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oih"));
    command
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
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn().expect("spawn oih");
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

/// Polls `/healthcheck` until it answers 200 (at most 10 s); returns its body.
pub async fn wait_healthy(base: &str) -> serde_json::Value {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http.get(format!("{base}/healthcheck")).send().await {
            Ok(res) if res.status() == 200 => return res.json().await.expect("json"),
            other if Instant::now() > deadline => panic!("not healthy: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
