//! `bus`: the same workload through each backend. K publishers send N messages of S bytes to a
//! direct exchange bound to one durable queue, each keeping a batch of B messages in flight
//! (published, awaiting confirms); one consumer with prefetch P receives and acks each.
//!
//! - throughput: N / (first publish .. last ack);
//! - latency: send timestamp (first 8 bytes of the body) to receipt by the consumer. The
//!   publishers run flat out, so this is latency under saturation, queueing included.
//!
//! Backends: `embedded` (our broker on SQLite), `amqp` (our RabbitMQ backend), `lapin` (raw
//! lapin against the same RabbitMQ: the reference for what `amqp` costs on top).

mod embedded;
mod lapin_raw;
mod via_trait;

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use oih_bus::amqp::{AmqpBus, AmqpOptions};
use serde_json::json;

#[derive(Debug, Clone, Args)]
pub struct BusArgs {
    /// Messages sent through each backend.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Body size in bytes (at least 8: the send timestamp).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Consumer prefetch (unacked deliveries in flight).
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    /// Concurrent publishers.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Messages per batch: a publisher sends a batch, then waits for its confirms.
    #[arg(long, default_value_t = 200)]
    batch: usize,
    #[arg(long, value_enum, default_value_t = Which::All)]
    backend: Which,
    #[arg(
        long,
        env = "OIH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// A short run (10 000 messages) for CI.
    #[arg(long)]
    quick: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Embedded,
    Amqp,
    Lapin,
    All,
}

/// The workload, as every backend runs it.
#[derive(Debug, Clone)]
pub struct Workload {
    pub messages: u64,
    pub size: usize,
    pub prefetch: u16,
    pub publishers: usize,
    pub batch: usize,
}

impl Workload {
    /// How many messages publisher `p` sends: an even split, the remainder to the first ones.
    pub fn share(&self, p: usize) -> u64 {
        let k = self.publishers as u64;
        self.messages / k + u64::from((p as u64) < self.messages % k)
    }

    /// A body carrying the current time.
    pub fn body(&self) -> Vec<u8> {
        let mut body = vec![0u8; self.size];
        body[..8].copy_from_slice(&now_nanos().to_le_bytes());
        body
    }

    /// Unique names so runs never see each other's leftovers.
    pub fn names(backend: &str) -> (String, String) {
        let tag = format!("{backend}-{}-{}", std::process::id(), now_nanos());
        (format!("bench-{tag}"), format!("bench-{tag}"))
    }
}

pub const ROUTING_KEY: &str = "bench";

/// Nanoseconds since the first call: publisher and consumer are in this process, so one
/// monotonic clock serves both ends.
fn now_nanos() -> u64 {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    let nanos = ANCHOR.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// The consumer side: latency per delivery, and when the last one arrived.
pub struct Recorder {
    expected: u64,
    received: u64,
    latency_us: Histogram<u64>,
}

impl Recorder {
    pub fn new(expected: u64) -> Result<Self> {
        Ok(Self {
            expected,
            received: 0,
            // 1 µs .. 1 h, 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)?,
        })
    }

    /// Records one delivery; true once all expected messages are in.
    pub fn record(&mut self, body: &[u8]) -> bool {
        if let Some(stamp) = body.get(..8).and_then(|b| b.try_into().ok()) {
            let sent = u64::from_le_bytes(stamp);
            self.latency_us
                .saturating_record(now_nanos().saturating_sub(sent) / 1000);
        }
        self.received += 1;
        self.done()
    }

    pub fn done(&self) -> bool {
        self.received >= self.expected
    }
}

/// How long the consumer may see nothing before the run is declared stuck.
pub const STALL: Duration = Duration::from_secs(30);

/// One backend's result.
pub struct Figures {
    pub backend: &'static str,
    /// From the first publish until every publish was confirmed.
    pub publish: Duration,
    /// From the first publish until the last delivery was received and acked.
    pub total: Duration,
    pub recorder: Recorder,
}

pub async fn run(args: BusArgs) -> Result<()> {
    let workload = Workload {
        messages: if args.quick { 10_000 } else { args.messages },
        size: args.size,
        prefetch: args.prefetch,
        publishers: args.publishers,
        batch: args.batch,
    };
    if workload.size < 8 {
        bail!("--size must be at least 8 (the send timestamp)");
    }
    if workload.publishers == 0 || workload.batch == 0 || workload.messages == 0 {
        bail!("--messages, --publishers and --batch must be positive");
    }
    let which: &[Which] = match args.backend {
        Which::All => &[Which::Embedded, Which::Amqp, Which::Lapin],
        Which::Embedded => &[Which::Embedded],
        Which::Amqp => &[Which::Amqp],
        Which::Lapin => &[Which::Lapin],
    };
    println!(
        "bus: {} messages x {} bytes, {} publishers (batches of {}), prefetch {}",
        workload.messages, workload.size, workload.publishers, workload.batch, workload.prefetch
    );
    let mut rows = Vec::new();
    for backend in which {
        let figures = match backend {
            Which::Embedded => Some(embedded::run(&workload).await?),
            Which::Amqp => {
                let opts = AmqpOptions {
                    connection_name: "oih-bench".into(),
                    ..AmqpOptions::default()
                };
                let bus = AmqpBus::connect(&args.amqp_url, opts).await?;
                Some(via_trait::run(bus, "amqp", &workload).await?)
            }
            Which::Lapin => Some(lapin_raw::run(&args.amqp_url, &workload).await?),
            Which::All => None,
        };
        if let Some(figures) = figures {
            println!("{}", json_line(&figures, &workload));
            rows.push(figures);
        }
    }
    print!("{}", table(&rows));
    Ok(())
}

fn per_sec(count: u64, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64().max(f64::EPSILON)
}

fn json_line(f: &Figures, w: &Workload) -> String {
    let h = &f.recorder.latency_us;
    json!({
        "bench": "bus",
        "backend": f.backend,
        "messages": w.messages,
        "size": w.size,
        "prefetch": w.prefetch,
        "publishers": w.publishers,
        "batch": w.batch,
        "publish_msg_per_s": per_sec(w.messages, f.publish).round(),
        "throughput_msg_per_s": per_sec(w.messages, f.total).round(),
        "latency_us": {
            "p50": h.value_at_quantile(0.50),
            "p90": h.value_at_quantile(0.90),
            "p99": h.value_at_quantile(0.99),
            "max": h.max(),
        },
        "peak_rss_kib": peak_rss_kib(),
    })
    .to_string()
}

fn table(rows: &[Figures]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<9} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "backend", "publish/s", "e2e msg/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for f in rows {
        let h = &f.recorder.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let n = f.recorder.expected;
        let _ = writeln!(
            out,
            "{:<9} {:>12.0} {:>12.0} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            f.backend,
            per_sec(n, f.publish),
            per_sec(n, f.total),
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.90)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
        );
    }
    match peak_rss_kib() {
        Some(kib) => {
            let _ = writeln!(
                out,
                "peak RSS of this process (all runs): {:.1} MiB",
                kib as f64 / 1024.0
            );
        }
        None => {
            let _ = writeln!(out, "peak RSS: unavailable (no /proc/self/status)");
        }
    }
    out
}

/// `VmHWM` (the resident-set high-water mark) from /proc/self/status, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
