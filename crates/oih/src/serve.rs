//! `oih serve`: opens the store and the bus, builds the selected services into one router,
//! serves it on one listener, and shuts everything down in order on SIGINT/SIGTERM:
//! stop accepting → let in-flight requests finish → cancel workers → close bus → close store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use oih_bus::{ExchangeKind, MessageBus};
use oih_http::step_token::{StepTokens, WithStepTokens};
use oih_http::{App, BoxError, Built, HealthCheck, Worker};
use oih_store::Backend;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::redact;
use crate::services::{self, ServiceContext};
use crate::storage::Storage;

/// The generated step-token key, in the data directory.
const STEP_TOKEN_KEY_FILE: &str = "orchestrator-token.key";
/// The exchange OIH's services talk over; declaring it (idempotent) proves the bus is up.
const EVENT_BUS_EXCHANGE: &str = "event-bus";

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));

    let storage = Storage::from_args(&args.storage)?;
    let backend = storage.open().await?;
    let bus = match open_bus(&args, &backend).await {
        Ok(bus) => bus,
        Err(e) => {
            backend.docs.close().await;
            return Err(e);
        }
    };

    let result = serve(&args, &storage, &backend, bus.clone(), shutdown.clone()).await;

    shutdown.cancel();
    bus.close().await;
    backend.docs.close().await;
    tracing::info!("stopped");
    result
}

/// The step-token key: configured, or generated once into the data directory so that tokens
/// in queued messages stay valid across restarts.
fn step_tokens(args: &ServeArgs, storage: &Storage) -> anyhow::Result<Arc<StepTokens>> {
    let key = match &args.orchestrator_token_secret {
        Some(key) if key.chars().count() < 32 => {
            anyhow::bail!("ORCHESTRATOR_TOKEN_SECRET must be at least 32 characters")
        }
        Some(key) => key.clone(),
        None if args.production => anyhow::bail!(
            "--production needs ORCHESTRATOR_TOKEN_SECRET (the key that signs step tokens)"
        ),
        None => {
            let path = storage.data_dir.join(STEP_TOKEN_KEY_FILE);
            let (key, created) = oih_store::keyfile::read_or_create(&path, || {
                format!(
                    "{:032x}{:032x}",
                    rand::random::<u128>(),
                    rand::random::<u128>()
                )
            })
            .with_context(|| format!("reading {}", path.display()))?;
            if created {
                tracing::info!(path = %path.display(), "generated the step-token key");
            }
            key
        }
    };
    let lifetime = Duration::from_secs(args.step_token_lifetime_secs.max(1));
    Ok(Arc::new(
        StepTokens::new(key.as_bytes(), lifetime).context("the step-token key")?,
    ))
}

/// Everything between "infrastructure is open" and "infrastructure may be closed".
async fn serve(
    args: &ServeArgs,
    storage: &Storage,
    backend: &Backend,
    bus: Arc<dyn MessageBus>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let selected = args.services();
    let step_tokens = step_tokens(args, storage)?;
    let listen = args.listen_addr();
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let ctx = ServiceContext {
        docs: backend.docs.clone(),
        bus: bus.clone(),
        data_dir: storage.data_dir.clone(),
        production: args.production,
        selected: selected.clone(),
        configs: {
            // Process components reach the hub's RabbitMQ unless they are given their own URL.
            let mut configs = args.services_config.clone();
            let process = &mut configs.orchestrator.process;
            if process.flows_amqp_url.is_none() {
                process.flows_amqp_url = args.amqp().map(str::to_owned);
            }
            // ... and the hub's API where it really listens.
            process.api_uri.get_or_insert_with(|| self_uri(local));
            configs
        },
        iam_logins: Arc::default(),
        in_process: Arc::default(),
        step_tokens: step_tokens.clone(),
    };
    let mut app = App::new()
        .version(env!("CARGO_PKG_VERSION"))
        .body_limit(args.body_limit)
        .cors_origins(args.cors_origins.clone())
        .health_check(store_check(backend))
        .health_check(bus_check(bus.clone()));
    let mut mounted = Vec::new();
    let mut authenticator = None;
    for service in &selected {
        let built = services::build(*service, &ctx)
            .await
            .with_context(|| format!("starting {}", service.name()))?;
        mounted.push(service.name());
        authenticator = authenticator.or(built.authenticator);
        app = app.service(service.name(), built.module);
    }
    // IAM in this process checks tokens without a network hop; otherwise ask the IAM named
    // by INTROSPECT_ENDPOINT_BASIC, as OIH's services do.
    let authenticator = match authenticator {
        Some(local) => local,
        None => services::remote_authenticator(&ctx)?,
    };
    // Step tokens are checked here, before IAM: they are the orchestrator's, not IAM's.
    app = app.authenticator(Arc::new(WithStepTokens {
        tokens: step_tokens,
        inner: authenticator,
    }));
    let Built {
        router,
        mut workers,
    } = app.build();
    workers.push(purge_expired_worker(backend));

    // The start banner: on stdout, for people and for scripts that wait for it.
    println!(
        "oih {} listening on http://{local}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  storage:  {}", storage.describe());
    println!("  bus:      {}", describe_bus(args, bus.as_ref()));
    println!(
        "  services: {}",
        if mounted.is_empty() {
            "none yet (selected: ".to_owned()
                + &selected
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", ")
                + ")"
        } else {
            mounted.join(", ")
        }
    );
    tracing::info!(%local, "listening");

    // Workers stop only after the server has drained: an in-flight request may wait on one
    // (a synchronous webhook waits for its flow's reply, which steps and the reply consumer
    // produce), so cancelling them with the signal would cut that request off.
    let stop_workers = CancellationToken::new();
    let mut workers_set = spawn_workers(workers, &stop_workers);
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    let mut server = tokio::spawn(server);
    let grace = Duration::from_secs(args.shutdown_grace);

    // Until shutdown: watch the server and log workers that end early.
    let mut server_done = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            result = &mut server => {
                server_done = Some(result);
                shutdown.cancel();
                break;
            }
            Some(joined) = workers_set.join_next() => log_worker_exit(joined),
        }
    }

    // Stop accepting, let in-flight requests finish (within the grace period).
    let served = match server_done {
        Some(result) => result,
        None => match tokio::time::timeout(grace, &mut server).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "requests still in flight after the grace period; cutting them off"
                );
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    // Now the workers; give them the same grace.
    stop_workers.cancel();
    let drained = tokio::time::timeout(grace, async {
        while let Some(joined) = workers_set.join_next().await {
            log_worker_exit(joined);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = workers_set.len(),
            "workers did not stop in time; aborting them"
        );
        workers_set.shutdown().await;
    }
    served
        .context("the HTTP server task panicked")?
        .context("the HTTP server failed")
}

/// The message bus: RabbitMQ when a URL is given, else the embedded broker persisted in the
/// store's message log.
async fn open_bus(args: &ServeArgs, backend: &Backend) -> anyhow::Result<Arc<dyn MessageBus>> {
    match args.amqp() {
        Some(url) => {
            let bus = oih_bus::amqp::AmqpBus::connect(url, Default::default())
                .await
                .with_context(|| format!("connecting to RabbitMQ at {}", redact::url(url)))?;
            Ok(bus)
        }
        None => {
            let bus = oih_bus::embedded::EmbeddedBus::open(backend.log.clone(), Default::default())
                .await
                .context("opening the embedded message bus")?;
            Ok(bus)
        }
    }
}

fn describe_bus(args: &ServeArgs, bus: &dyn MessageBus) -> String {
    match args.amqp() {
        Some(url) => format!("{} ({})", bus.backend(), redact::url(url)),
        None => format!("{} (persisted in the database)", bus.backend()),
    }
}

fn store_check(backend: &Backend) -> HealthCheck {
    let docs = backend.docs.clone();
    HealthCheck::new("store", move || {
        let docs = docs.clone();
        async move { docs.ping().await.map_err(|e| e.to_string()) }
    })
}

fn bus_check(bus: Arc<dyn MessageBus>) -> HealthCheck {
    HealthCheck::new("bus", move || {
        let bus = bus.clone();
        async move {
            bus.declare_exchange(EVENT_BUS_EXCHANGE, ExchangeKind::Topic)
                .await
                .map_err(|e| e.to_string())
        }
    })
}

type WorkerExit = (String, Result<(), BoxError>);

fn spawn_workers(workers: Vec<Worker>, stop: &CancellationToken) -> JoinSet<WorkerExit> {
    let mut set = JoinSet::new();
    for worker in workers {
        let name = worker.name.clone();
        let token = stop.child_token();
        tracing::debug!(worker = %name, "starting worker");
        set.spawn(async move { (name, worker.run(token).await) });
    }
    set
}

fn log_worker_exit(joined: Result<WorkerExit, tokio::task::JoinError>) {
    match joined {
        Ok((name, Ok(()))) => tracing::debug!(worker = %name, "worker stopped"),
        Ok((name, Err(e))) => tracing::error!(worker = %name, error = %e, "worker failed"),
        Err(e) => tracing::error!(error = %e, "worker panicked"),
    }
}

/// First SIGINT/SIGTERM: graceful shutdown. A second one: exit at once (130), for the
/// impatient at a terminal.
async fn watch_signals(shutdown: CancellationToken) {
    if let Err(e) = next_signal().await {
        tracing::error!(error = %e, "cannot listen for signals; stop with SIGKILL");
        return;
    }
    tracing::info!("shutting down (send the signal again to exit at once)");
    shutdown.cancel();
    if next_signal().await.is_ok() {
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    }
}

#[cfg(unix)]
async fn next_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn next_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

/// How often expired documents (TTL) are reclaimed. Reads hide them at once; this only frees
/// the space.
const PURGE_EVERY: Duration = Duration::from_secs(60);

fn purge_expired_worker(backend: &Backend) -> Worker {
    let docs = backend.docs.clone();
    Worker::new("store-ttl-purge", move |token| async move {
        loop {
            tokio::select! {
                () = token.cancelled() => return Ok(()),
                () = tokio::time::sleep(PURGE_EVERY) => {}
            }
            match docs.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "expired documents purged"),
                Err(err) => {
                    tracing::warn!(error = %err, "purging expired documents failed; will retry")
                }
            }
        }
    })
}

/// The hub's base URL as local processes reach it: a wildcard listen address becomes the
/// loopback address.
fn self_uri(local: std::net::SocketAddr) -> String {
    let ip = match local.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    format!("http://{}", std::net::SocketAddr::new(ip, local.port()))
}
