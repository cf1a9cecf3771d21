//! `auth`: authenticated request throughput and latency. C concurrent clients (reqwest, kept-alive
//! connections) send N `GET /flows` requests with a bearer token to a flow repository served on
//! 127.0.0.1, in these modes:
//!
//! - `baseline`: no token check at all (an authenticator that returns a fixed admin identity),
//!   the ceiling the other modes are measured against: routing, the handler and its SQLite query;
//! - `jwt-inprocess`: IAM hands out HS256 JWTs; IAM and the flow repository share one app, and
//!   the flow repository authenticates through IAM's in-process authenticator (`Iam.authenticator`,
//!   which verifies the JWT, checks its token document and caches the identity for
//!   `auth_cache_seconds`);
//! - `jwt-verify-nocache`: the same JWTs sent to a flow repository running alone, which
//!   verifies the HS256 signature itself on every request (`IntrospectionAuthenticator` with the
//!   shared secret and a cache TTL of 0: no call to IAM);
//! - `opaque-inprocess`: OIH's opaque tokens, IAM's in-process authenticator (cached);
//! - `introspect-nocache`: opaque tokens sent to a flow repository running alone, which asks
//!   IAM's `/api/v1/tokens/introspect` over HTTP on every request (cache TTL 0);
//! - `introspect-cached`: the same with the default introspection cache (10 s).
//!
//! Latency is per request, from send to the full body read, with every client running flat out
//! (so it includes queueing). Any non-2xx answer or transport error counts as an error.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use clap::Args;
use hdrhistogram::Histogram;
use oih_bus::MessageBus;
use oih_bus::embedded::EmbeddedBus;
use oih_core::Identity;
use oih_http::{App, AuthError, Authenticator, ServiceModule};
use oih_iam::{Config, IntrospectionAuthenticator, IntrospectionConfig, Secret, TokenFormat};
use oih_store::Backend;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Requests per mode.
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// A short run (2,000 requests per mode).
    #[arg(long)]
    quick: bool,
}

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "bench-admin-password";
const JWT_SECRET: &str = "oih-bench-hs256-secret-of-enough-length";
const ISSUER: &str = "http://iam.bench";
const AUDIENCE: &str = "oih-bench";

pub async fn run(args: AuthArgs) -> Result<()> {
    let requests = if args.quick { 2_000 } else { args.requests };
    if requests == 0 || args.concurrency == 0 {
        bail!("--requests and --concurrency must be positive");
    }
    println!(
        "auth: {requests} x GET /flows per mode, {} concurrent clients, 127.0.0.1",
        args.concurrency
    );
    let load = Load {
        requests,
        concurrency: args.concurrency,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .timeout(Duration::from_secs(30))
            .build()?,
    };
    let mut rows = Vec::new();

    // No token check: what the endpoint itself costs.
    let alone = FlowsApp::start(Arc::new(FixedIdentity)).await?;
    rows.push(load.measure("baseline", &alone.server.url, "any").await?);
    alone.stop().await;

    // JWT login tokens.
    let iam = IamApp::start(TokenFormat::Jwt).await?;
    let token = iam.login(&load.client).await?;
    rows.push(
        load.measure("jwt-inprocess", &iam.server.url, &token)
            .await?,
    );
    let verifier = introspection(&iam, 0, Some(Secret::new(JWT_SECRET)));
    let alone = FlowsApp::start(IntrospectionAuthenticator::new(&verifier)?).await?;
    rows.push(
        load.measure("jwt-verify-nocache", &alone.server.url, &token)
            .await?,
    );
    alone.stop().await;
    iam.stop().await;

    // Opaque login tokens.
    let iam = IamApp::start(TokenFormat::Opaque).await?;
    let token = iam.login(&load.client).await?;
    rows.push(
        load.measure("opaque-inprocess", &iam.server.url, &token)
            .await?,
    );
    for (mode, ttl) in [("introspect-nocache", 0), ("introspect-cached", 10)] {
        let remote = introspection(&iam, ttl, None);
        let alone = FlowsApp::start(IntrospectionAuthenticator::new(&remote)?).await?;
        rows.push(load.measure(mode, &alone.server.url, &token).await?);
        alone.stop().await;
    }
    iam.stop().await;

    print!("{}", table(&rows));
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    ensure!(
        errors == 0,
        "{errors} requests failed (non-2xx or transport error)"
    );
    Ok(())
}

/// How a flow repository running alone reaches this IAM.
fn introspection(iam: &IamApp, ttl: u64, jwt_secret: Option<Secret>) -> IntrospectionConfig {
    IntrospectionConfig {
        endpoint: format!("{}/api/v1/tokens/introspect", iam.server.url),
        iam_token: Secret::new(iam.service_token.clone()),
        cache_ttl_seconds: ttl,
        jwks_url: None,
        jwt_verify_secret: jwt_secret,
        jwt_verify_issuer: ISSUER.into(),
        jwt_verify_audience: AUDIENCE.into(),
    }
}

fn iam_config(format: TokenFormat) -> Config {
    Config {
        admin_username: ADMIN.into(),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        token_format: format,
        jwt_secret: Some(Secret::new(JWT_SECRET)),
        jwt_audience: AUDIENCE.into(),
        base_url: ISSUER.into(),
        ..Config::default()
    }
}

/// A SQLite-in-memory store with an embedded bus on it.
async fn infrastructure() -> Result<(Backend, Arc<dyn MessageBus>)> {
    let backend = oih_store::open(Some("sqlite::memory:"), Path::new(".")).await?;
    let bus: Arc<dyn MessageBus> =
        EmbeddedBus::open(backend.log.clone(), Default::default()).await?;
    Ok((backend, bus))
}

async fn flows_module(backend: &Backend, bus: &Arc<dyn MessageBus>) -> Result<ServiceModule> {
    let deps = oih_flows::Deps {
        docs: backend.docs.clone(),
        bus: bus.clone(),
    };
    Ok(oih_flows::module(oih_flows::Config::default(), deps).await?)
}

/// An app served on 127.0.0.1 (its workers are not run: nothing here needs them).
struct Server {
    url: String,
    task: JoinHandle<std::io::Result<()>>,
    backend: Backend,
    bus: Arc<dyn MessageBus>,
}

impl Server {
    async fn start(
        app: App,
        authenticator: Arc<dyn Authenticator>,
        backend: Backend,
        bus: Arc<dyn MessageBus>,
    ) -> Result<Self> {
        let built = app.authenticator(authenticator).build();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let task = tokio::spawn(axum::serve(listener, built.router).into_future());
        Ok(Self {
            url: format!("http://{addr}"),
            task,
            backend,
            bus,
        })
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.bus.close().await;
        self.backend.docs.close().await;
    }
}

/// IAM and the flow repository in one app, as `oih serve` composes them.
struct IamApp {
    server: Server,
    service_token: String,
}

impl IamApp {
    async fn start(format: TokenFormat) -> Result<Self> {
        let (backend, bus) = infrastructure().await?;
        let deps = oih_iam::Deps {
            docs: backend.docs.clone(),
            bus: bus.clone(),
        };
        let iam = oih_iam::module(iam_config(format), deps).await?;
        let app = App::new()
            .module(iam.module)
            .module(flows_module(&backend, &bus).await?);
        let server = Server::start(app, iam.authenticator, backend, bus).await?;
        Ok(Self {
            server,
            service_token: iam.service_token,
        })
    }

    async fn login(&self, client: &reqwest::Client) -> Result<String> {
        let res = client
            .post(format!("{}/login", self.server.url))
            .json(&json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
            .send()
            .await?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.context("login answer")?;
        ensure!(status.is_success(), "login failed: {status} {body}");
        body.get("token")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .context("login answer without a token")
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// The flow repository alone, authenticating through IAM over HTTP (or a local JWT check).
struct FlowsApp {
    server: Server,
}

impl FlowsApp {
    async fn start(authenticator: Arc<dyn Authenticator>) -> Result<Self> {
        let (backend, bus) = infrastructure().await?;
        let app = App::new().module(flows_module(&backend, &bus).await?);
        let server = Server::start(app, authenticator, backend, bus).await?;
        Ok(Self { server })
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// The baseline's authenticator: every token is the same admin, nothing is checked.
struct FixedIdentity;

#[async_trait::async_trait]
impl Authenticator for FixedIdentity {
    async fn authenticate(&self, _token: &str) -> Result<Identity, AuthError> {
        Ok(Identity::new(
            "5f1e0000000000000000a1a1",
            None,
            vec!["all".to_owned()],
        ))
    }
}

struct Load {
    requests: u64,
    concurrency: usize,
    client: reqwest::Client,
}

/// One mode's result.
struct Row {
    mode: &'static str,
    requests: u64,
    elapsed: Duration,
    errors: u64,
    latency_us: Histogram<u64>,
}

impl Row {
    fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

impl Load {
    /// Warms up (one request per client: connections, caches), then sends `requests` requests
    /// from `concurrency` clients.
    async fn measure(&self, mode: &'static str, base: &str, token: &str) -> Result<Row> {
        let url = format!("{base}/flows");
        let warm = self.round(&url, token, self.concurrency as u64).await?;
        ensure!(
            warm.1 == 0,
            "{mode}: {} of the warm-up requests failed",
            warm.1
        );
        let start = Instant::now();
        let (latency_us, errors) = self.round(&url, token, self.requests).await?;
        let row = Row {
            mode,
            requests: self.requests,
            elapsed: start.elapsed(),
            errors,
            latency_us,
        };
        println!("{}", json_line(&row, self.concurrency));
        Ok(row)
    }

    async fn round(&self, url: &str, token: &str, requests: u64) -> Result<(Histogram<u64>, u64)> {
        let remaining = Arc::new(AtomicU64::new(requests));
        let mut tasks = Vec::with_capacity(self.concurrency);
        for _ in 0..self.concurrency {
            let remaining = remaining.clone();
            let client = self.client.clone();
            let url = url.to_owned();
            let auth = format!("Bearer {token}");
            tasks.push(tokio::spawn(async move {
                // 1 µs .. 1 min, 3 significant digits.
                let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                let mut errors = 0u64;
                while take(&remaining) {
                    let sent = Instant::now();
                    let ok = match client
                        .get(&url)
                        .header(reqwest::header::AUTHORIZATION, &auth)
                        .send()
                        .await
                    {
                        Ok(res) => {
                            let ok = res.status().is_success();
                            ok && res.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    latency.saturating_record(us.max(1));
                    errors += u64::from(!ok);
                }
                anyhow::Ok((latency, errors))
            }));
        }
        let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut errors = 0;
        for task in tasks {
            let (h, e) = task.await??;
            latency.add(&h)?;
            errors += e;
        }
        Ok((latency, errors))
    }
}

/// Claims one request from the shared budget.
fn take(remaining: &AtomicU64) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

fn json_line(row: &Row, concurrency: usize) -> String {
    let h = &row.latency_us;
    json!({
        "bench": "auth",
        "mode": row.mode,
        "requests": row.requests,
        "concurrency": concurrency,
        "req_per_s": row.per_sec().round(),
        "latency_us": {
            "p50": h.value_at_quantile(0.50),
            "p90": h.value_at_quantile(0.90),
            "p99": h.value_at_quantile(0.99),
            "max": h.max(),
        },
        "errors": row.errors,
    })
    .to_string()
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<20} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "mode", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
    );
    let ms = |us: u64| us as f64 / 1000.0;
    for row in rows {
        let h = &row.latency_us;
        let _ = writeln!(
            out,
            "{:<20} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}",
            row.mode,
            row.per_sec(),
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.90)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
            row.errors,
        );
    }
    out
}
