//! `compare`: oih against the systems its users would pick instead (n8n, Node-RED), on the
//! same machine in the same run, with the same flow and the same load generator.
//!
//! Every system is started fresh and gets the flow HTTP trigger → transform (rename one field,
//! compute two) → filter (drop 10 %) → reply: oih through its API from
//! `bench/flows/oih.json`, Node-RED from its flow file `bench/flows/node-red.json`, n8n through
//! its REST API from `bench/flows/n8n.json`. Each system's answers are checked in full before
//! it is measured. Loads are interleaved (for each load, round after round, every system in
//! turn) so that drift of the machine hits all systems alike.
//!
//! Scenario (b) (`ingest.rs`) starts the systems afresh with the asynchronous variant of the
//! flow (`bench/flows/*-async.json`: answered at once, the result POSTed to a sink in the
//! harness) and measures accepted requests, results at the sink and end-to-end latency.
//! Scenario (d)'s other side (`ferryman_alone.rs`) runs `oih-ferryman`'s Ferryman step alone
//! on OIH's queue topology, fed straight over RabbitMQ. See `bench/README.md`.

mod ferryman_alone;
mod ingest;
mod load;
mod n8n;
mod peers;
mod plot;
mod process;
mod procs;
mod report;
mod sink;
mod systems;
pub(crate) mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use clap::Args;
use serde_json::json;

use load::{Generator, Mode};
use peers::Peers;
use procs::Units;
use report::{Idle, Report, Row, Startup, mib};
use systems::{Context, Flow, Kind, Running};
use workload::Replies;

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The systems, in the order they take turns. Default: oih, oih-pg (when --database-url
    /// and --amqp-url are given), node-red, n8n.
    #[arg(long, value_enum, value_delimiter = ',')]
    systems: Vec<Kind>,
    /// Closed-loop client counts (the scaling sweep).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8, 16, 64])]
    concurrency: Vec<usize>,
    /// Active flows for the flow-count scaling (oih and Node-RED; each count on freshly
    /// started systems, closed loop at --flows-concurrency clients). `--flows` alone skips it.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_values_t = [10, 100, 1000])]
    flows: Vec<usize>,
    /// Clients for the flow-count scaling.
    #[arg(long, default_value_t = 16)]
    flows_concurrency: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// How many times each system is measured under each load (taking turns).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Open-loop rate in requests/s, the same for every system [default: half of oih's best
    /// closed-loop throughput].
    #[arg(long)]
    rate: Option<u64>,
    /// Open loop: requests in flight beyond which a due request is not sent (an error).
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Scenario (b), asynchronous ingestion: closed-loop client counts.
    #[arg(long, value_delimiter = ',', default_values_t = [4, 16, 64])]
    async_concurrency: Vec<usize>,
    /// Scenario (b): after the load stops, results are awaited as long as they keep
    /// arriving; those still missing when none arrived for this many seconds count as lost.
    #[arg(long, default_value_t = 30)]
    drain: u64,
    /// Skip scenario (b), asynchronous ingestion.
    #[arg(long)]
    no_async: bool,
    /// Seconds after which a request counts as failed.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// A smoke run of the harness (a few seconds per system): checks that every system
    /// answers every body correctly, that no request fails and (scenario b) that no result is
    /// lost or wrong. Asserts nothing about speed.
    #[arg(long)]
    quick: bool,
    /// The `oih` binary [default: beside this one].
    #[arg(long)]
    oih_bin: Option<PathBuf>,
    /// Where the peers are installed [default: $HOME/.cache/oih/peers].
    #[arg(long, env = "OIH_BENCH_PEERS_DIR")]
    peers_dir: Option<PathBuf>,
    /// Where the results go [default: bench/results in the workspace].
    #[arg(long)]
    out: Option<PathBuf>,
    /// PostgreSQL for oih-pg (a fresh schema per run).
    #[arg(long, env = "OIH_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// RabbitMQ for oih-pg.
    #[arg(long, env = "OIH_BENCH_AMQP_URL")]
    amqp_url: Option<String>,
}

/// The workspace's `bench/` directory.
fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench")
}

/// The settings a run uses, after `--quick`.
struct Plan {
    concurrency: Vec<usize>,
    flows: Vec<usize>,
    flows_concurrency: usize,
    duration: Duration,
    warmup: Duration,
    rounds: usize,
    timeout: Duration,
    /// Scenario (b)'s client counts; empty: skipped.
    ingest_concurrency: Vec<usize>,
    ingest_warmup: Duration,
    drain: Duration,
}

impl Plan {
    fn new(args: &CompareArgs) -> Result<Self> {
        let ingest = |concurrency: Vec<usize>| {
            if args.no_async {
                Vec::new()
            } else {
                concurrency
            }
        };
        let plan = if args.quick {
            Self {
                concurrency: vec![4],
                flows: vec![5],
                flows_concurrency: 4,
                duration: Duration::from_secs(2),
                warmup: Duration::from_millis(500),
                rounds: 1,
                timeout: Duration::from_secs(10),
                ingest_concurrency: ingest(vec![4]),
                // The check before measuring has just sent every body.
                ingest_warmup: Duration::ZERO,
                drain: Duration::from_secs(args.drain),
            }
        } else {
            Self {
                concurrency: args.concurrency.clone(),
                flows: args.flows.clone(),
                flows_concurrency: args.flows_concurrency,
                duration: Duration::from_secs(args.duration),
                warmup: Duration::from_secs(3),
                rounds: args.rounds,
                timeout: Duration::from_secs(args.timeout),
                ingest_concurrency: ingest(args.async_concurrency.clone()),
                ingest_warmup: Duration::from_secs(3),
                drain: Duration::from_secs(args.drain),
            }
        };
        ensure!(
            plan.rounds > 0
                && !plan.duration.is_zero()
                && plan.flows_concurrency > 0
                && plan
                    .concurrency
                    .iter()
                    .chain(&plan.flows)
                    .chain(&plan.ingest_concurrency)
                    .all(|&c| c > 0),
            "--rounds, --duration, --concurrency, --flows, --flows-concurrency and --async-concurrency must be positive"
        );
        Ok(plan)
    }
}

pub async fn run(args: CompareArgs) -> Result<()> {
    let plan = Plan::new(&args)?;
    let systems = choose_systems(&args);
    ensure!(!systems.is_empty(), "no system to measure");
    let oih_bin = match &args.oih_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's directory")?
            .join("oih"),
    };
    if systems.iter().any(|k| k.is_oih()) && !oih_bin.is_file() {
        bail!(
            "no oih binary at {} (build it: cargo build --release -p oih, or pass --oih-bin)",
            oih_bin.display()
        );
    }
    let peers_dir = match &args.peers_dir {
        Some(dir) => dir.clone(),
        None => Peers::default_root()?,
    };
    let ctx = Context {
        oih_bin,
        peers: Peers::new(peers_dir),
        flows_dir: bench_dir().join("flows"),
        units: Units::detect(),
        database_url: args.database_url.clone(),
        amqp_url: args.amqp_url.clone(),
    };
    let generator = Generator::new(Replies::default(), plan.timeout)?;
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let machine = machine();
    println!(
        "compare: {} on {}",
        systems
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        machine["cpu"].as_str().unwrap_or("?")
    );

    // Scenario (a) and the client-count half of (f): one flow, every system.
    let (together, later) = apart(&systems);
    let running = start_all(&together, &ctx, &generator, 1).await?;
    let mut rows = client_loads(&running, &generator, &plan).await?;
    let rate = match (args.quick, args.rate) {
        (true, _) => 5,
        (false, Some(rate)) => rate,
        (false, None) => half_of_oih_peak(&rows).context("--rate is needed without oih")?,
    };
    let open = Mode::Open {
        rate,
        max_in_flight: args.max_in_flight,
    };
    rows.extend(measure(&running, &generator, &plan, open).await?);
    let mut startups: Vec<Startup> = running.iter().map(startup).collect();
    drop(running);
    if !later.is_empty() {
        let running = start_all(&later, &ctx, &generator, 1).await?;
        rows.extend(client_loads(&running, &generator, &plan).await?);
        rows.extend(measure(&running, &generator, &plan, open).await?);
        startups.extend(running.iter().map(startup));
    }

    // Scenario (d): the same Ferryman step with no hub at all, once oih-ferryman has stopped.
    let ferryman_alone = if systems.contains(&Kind::OihFerryman) {
        let top = plan.concurrency.iter().copied().max().unwrap_or(1);
        let loads = ferryman_alone::Loads {
            in_flight: if top > 1 { vec![1, top] } else { vec![1] },
            warmup: plan.warmup,
            duration: plan.duration,
            rounds: plan.rounds,
        };
        ferryman_alone::run(&ctx, &systems::ferryman_component_dir(&ctx)?, &loads)
            .await
            .context("scenario (d): the Ferryman step alone")?
    } else {
        Vec::new()
    };

    // The flow-count half of (f): n8n is left out (creating a thousand workflows through its
    // API alone takes longer than the whole comparison), and so is oih-ferryman (a thousand
    // flows would be a thousand Node.js processes).
    let scalable: Vec<Kind> = systems
        .iter()
        .copied()
        .filter(|&k| !matches!(k, Kind::N8n | Kind::OihFerryman))
        .collect();
    for &flows in &plan.flows {
        if scalable.is_empty() {
            break;
        }
        let running = start_all(&scalable, &ctx, &generator, flows).await?;
        warm_up(&running, &generator, &plan).await?;
        let mode = Mode::Closed {
            concurrency: plan.flows_concurrency,
        };
        rows.extend(measure(&running, &generator, &plan, mode).await?);
    }

    // Scenario (b): every system afresh with the asynchronous flow.
    let mut ingest = Vec::new();
    if !plan.ingest_concurrency.is_empty() {
        for group in [together, later] {
            if !group.is_empty() {
                ingest.extend(ingest::run(&group, &ctx, &generator, &plan).await?);
            }
        }
    }

    let idle = if args.quick {
        Vec::new()
    } else {
        idle_footprints(&ctx, &systems).await?
    };

    let report = Report {
        started_at,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine,
        quick: args.quick,
        startups,
        rows,
        ingest,
        ferryman_alone,
        idle,
    };
    let markdown = report.markdown();
    println!("\n{markdown}");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| bench_dir().join("results"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let stem = if args.quick {
        "compare-quick"
    } else {
        "compare"
    };
    std::fs::write(
        out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&report.json())?,
    )?;
    std::fs::write(out.join(format!("{stem}.md")), &markdown)?;
    let png = out.join(format!("{stem}.png"));
    match plot::draw(&report.rows, &png) {
        Ok(()) => println!(
            "wrote {stem}.json, {stem}.md and {stem}.png in {}",
            out.display()
        ),
        Err(e) => println!(
            "wrote {stem}.json and {stem}.md in {}; no plot: {e:#}",
            out.display()
        ),
    }

    if args.quick {
        let failed: Vec<String> = report
            .rows
            .iter()
            .filter(|r| r.errors > 0 || r.ok == 0)
            .map(|r| {
                format!(
                    "{} ({} errors, {} ok): {}",
                    r.system.name(),
                    r.errors,
                    r.ok,
                    r.error_samples.join("; ")
                )
            })
            .collect();
        ensure!(failed.is_empty(), "requests failed: {}", failed.join(" | "));
        let failed: Vec<String> = report
            .ingest
            .iter()
            .filter(|r| r.failed())
            .map(|r| {
                format!(
                    "{} ({} errors, {} accepted, {} delivered, {} lost, {} wrong): {}",
                    r.system.name(),
                    r.errors,
                    r.accepted,
                    r.delivered,
                    r.lost,
                    r.wrong,
                    r.samples.join("; ")
                )
            })
            .collect();
        ensure!(
            failed.is_empty(),
            "scenario (b) failed: {}",
            failed.join(" | ")
        );
        // Every answer of the Ferryman step alone was checked as it came.
        ensure!(
            report.ferryman_alone.iter().all(|r| r.delivered > 0),
            "the Ferryman step alone delivered nothing"
        );
    }
    Ok(())
}

/// The systems in two groups that take their turns one after the other: hubs on one
/// RabbitMQ cannot run side by side (they would share OIH's fixed queue names), so
/// oih-ferryman (scenario d) waits until oih-pg has stopped.
fn apart(systems: &[Kind]) -> (Vec<Kind>, Vec<Kind>) {
    let (later, together) = systems.iter().partition(|&&k| {
        k == Kind::OihFerryman && systems.iter().any(|&o| o != k && o.is_external())
    });
    (together, later)
}

/// Starts each system fresh with `flows` flows, one after the other, and checks its answers
/// in full.
async fn start_all(
    systems: &[Kind],
    ctx: &Context,
    generator: &Generator<Replies>,
    flows: usize,
) -> Result<Vec<Running>> {
    let mut running = Vec::new();
    for &kind in systems {
        let system = systems::start(kind, ctx, Flow::Reply(generator), flows)
            .await
            .with_context(|| format!("starting {} with {flows} flow(s)", kind.name()))?;
        generator.verify(&system.urls).await.with_context(|| {
            format!(
                "{} answers wrongly (log: {})",
                kind.name(),
                system.log().display()
            )
        })?;
        announce(&system, &format!("{flows} flow(s)"));
        running.push(system);
    }
    Ok(running)
}

/// Prints that `system` is ready with `what` and has answered right.
fn announce(system: &Running, what: &str) {
    println!(
        "{:<9} {what}: ready in {} ms, first correct result at {} ms, every answer checked is right",
        system.kind.name(),
        system.ready.as_millis(),
        system.first_reply.as_millis()
    );
}

/// Warms the systems up, then measures them at each closed-loop client count.
async fn client_loads(
    running: &[Running],
    generator: &Generator<Replies>,
    plan: &Plan,
) -> Result<Vec<Row>> {
    warm_up(running, generator, plan).await?;
    let mut rows = Vec::new();
    for &concurrency in &plan.concurrency {
        rows.extend(measure(running, generator, plan, Mode::Closed { concurrency }).await?);
    }
    Ok(rows)
}

/// Lets each system warm up (JIT compilation, connection pools) at the highest load.
async fn warm_up(running: &[Running], generator: &Generator<Replies>, plan: &Plan) -> Result<()> {
    let concurrency = plan.concurrency.iter().copied().max().unwrap_or(1);
    for system in running {
        generator
            .run(&system.urls, Mode::Closed { concurrency }, plan.warmup)
            .await?;
    }
    Ok(())
}

fn startup(s: &Running) -> Startup {
    Startup {
        system: s.kind,
        ready_ms: s.ready.as_millis() as u64,
        first_reply_ms: s.first_reply.as_millis() as u64,
        idle_rss_mib: report::round(mib(s.idle_rss_bytes), 1),
        peak_rss_mib: report::round(mib(s.monitor.peak_rss_bytes()), 1),
        cpu_seconds_total: report::round(s.monitor.cpu_seconds(), 1),
    }
}

/// The requested systems, or every one that can run here (each missing one with the reason).
fn choose_systems(args: &CompareArgs) -> Vec<Kind> {
    if !args.systems.is_empty() {
        return args.systems.clone();
    }
    let mut systems = vec![Kind::Oih];
    let external = args.database_url.is_some() && args.amqp_url.is_some();
    if external {
        systems.push(Kind::OihPg);
    } else {
        println!(
            "skipping oih-pg and oih-ferryman: --database-url and --amqp-url are not both set"
        );
    }
    match peers::missing_tools() {
        None if external => systems.extend([Kind::OihFerryman, Kind::NodeRed, Kind::N8n]),
        None => systems.extend([Kind::NodeRed, Kind::N8n]),
        Some(why) => println!("skipping oih-ferryman, node-red and n8n: {why}"),
    }
    systems
}

/// Measures every system under `mode`, taking turns for each round.
async fn measure(
    running: &[Running],
    generator: &Generator<Replies>,
    plan: &Plan,
    mode: Mode,
) -> Result<Vec<Row>> {
    let mut rows = running
        .iter()
        .map(|s| Row::new(s.kind, s.urls.len(), mode))
        .collect::<Result<Vec<_>>>()?;
    for round in 1..=plan.rounds {
        for (system, row) in running.iter().zip(&mut rows) {
            let window = system.monitor.window();
            let outcome = generator.run(&system.urls, mode, plan.duration).await?;
            let usage = window.end();
            println!(
                "{:<9} {} flow(s), {mode:?}, round {round}: {:.0} req/s, p99 {:.2} ms, {} errors",
                system.kind.name(),
                system.urls.len(),
                outcome.per_sec(),
                if outcome.latency_us.is_empty() {
                    0.0
                } else {
                    outcome.latency_us.value_at_quantile(0.99) as f64 / 1000.0
                },
                outcome.errors
            );
            row.add(&outcome, usage)?;
            if !system.monitor.settle(Duration::from_secs(120)).await {
                println!(
                    "{:<9} still busy 2 minutes after the load stopped",
                    system.kind.name()
                );
            }
        }
    }
    Ok(rows)
}

fn half_of_oih_peak(rows: &[Row]) -> Option<u64> {
    rows.iter()
        .filter(|r| r.system == Kind::Oih)
        .map(Row::per_sec)
        .reduce(f64::max)
        .map(|peak| ((peak / 2.0).round() as u64).max(1))
}

/// Scenario (e): the resident memory of `oih serve` with every service and no flow, against
/// one Node.js process serving express (the floor of each of OIH's Node.js services), each
/// idle a few seconds after its first answer.
async fn idle_footprints(ctx: &Context, systems: &[Kind]) -> Result<Vec<Idle>> {
    let mut idle = Vec::new();
    if systems.contains(&Kind::Oih) {
        idle.push(Idle {
            what: "oih serve, every service, embedded backend, no flow".into(),
            rss_mib: report::round(mib(systems::idle_oih(ctx).await?), 1),
        });
    }
    if systems.iter().any(|k| !k.is_oih()) {
        idle.push(Idle {
            what: "node + express, one route (one OIH service's floor)".into(),
            rss_mib: report::round(mib(systems::idle_express(ctx).await?), 1),
        });
    }
    Ok(idle)
}

/// What the report says about the machine.
fn machine() -> serde_json::Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let version = |program: &str| {
        std::process::Command::new(program)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "absent".into())
    };
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory_gib": report::round(mem_kib as f64 / (1024.0 * 1024.0), 1),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "load_average_at_start": read("/proc/loadavg").split(' ').take(3).collect::<Vec<_>>().join(" "),
        "node": version("node"),
        "peers": format!("{}, {} on {}", peers::NODE_RED, peers::N8N, peers::NODE_24),
        "load_generator": "oih-bench (reqwest, HTTP/1.1 keep-alive) on the same cores",
    })
}
