//! The results: one record per measurement, aggregated per system and load over the rounds,
//! with the ratios oih/peer; printed as a table and written as JSON and Markdown.

use std::fmt::Write as _;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

use super::load::{Mode, Outcome};
use super::procs::Usage;
use super::systems::Kind;

/// One system under one load, all rounds together.
pub struct Row {
    pub system: Kind,
    /// Active flows the load was spread over.
    pub flows: usize,
    pub mode: Mode,
    pub rounds: usize,
    pub ok: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latency_us: Histogram<u64>,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub error_samples: Vec<String>,
}

impl Row {
    pub fn new(system: Kind, flows: usize, mode: Mode) -> Result<Self> {
        Ok(Self {
            system,
            flows,
            mode,
            rounds: 0,
            ok: 0,
            errors: 0,
            seconds: 0.0,
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            cpu_seconds: 0.0,
            peak_rss_bytes: 0,
            error_samples: Vec::new(),
        })
    }

    pub fn add(&mut self, outcome: &Outcome, usage: Usage) -> Result<()> {
        self.rounds += 1;
        self.ok += outcome.ok;
        self.errors += outcome.errors;
        self.seconds += outcome.elapsed.as_secs_f64();
        self.latency_us.add(&outcome.latency_us)?;
        self.cpu_seconds += usage.cpu_seconds;
        self.peak_rss_bytes = self.peak_rss_bytes.max(usage.peak_rss_bytes);
        for e in &outcome.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(e.clone());
            }
        }
        Ok(())
    }

    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.seconds.max(f64::EPSILON)
    }

    /// Latency at quantile `q` in milliseconds (0 when nothing succeeded).
    pub fn ms(&self, q: f64) -> f64 {
        if self.latency_us.is_empty() {
            return 0.0;
        }
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency_us.max() as f64 / 1000.0
    }

    /// CPU time of the system's processes per successful request, in milliseconds.
    pub fn cpu_ms_per_request(&self) -> f64 {
        if self.ok == 0 {
            return 0.0;
        }
        self.cpu_seconds * 1000.0 / self.ok as f64
    }

    fn json(&self) -> Value {
        json!({
            "system": self.system,
            "flows": self.flows,
            "load": self.mode,
            "rounds": self.rounds,
            "ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "req_per_s": round(self.per_sec(), 1),
            "latency_ms": {
                "p50": round(self.ms(0.50), 3),
                "p90": round(self.ms(0.90), 3),
                "p99": round(self.ms(0.99), 3),
                "max": round(self.max_ms(), 3),
            },
            "cpu_seconds": round(self.cpu_seconds, 2),
            "cpu_ms_per_request": round(self.cpu_ms_per_request(), 3),
            "peak_rss_mib": round(mib(self.peak_rss_bytes), 1),
            "error_samples": self.error_samples,
        })
    }
}

/// How a system started.
#[derive(Serialize)]
pub struct Startup {
    pub system: Kind,
    pub ready_ms: u64,
    pub first_reply_ms: u64,
    pub idle_rss_mib: f64,
    pub peak_rss_mib: f64,
    pub cpu_seconds_total: f64,
}

/// Idle memory of a process (scenario e).
#[derive(Serialize)]
pub struct Idle {
    pub what: String,
    pub rss_mib: f64,
}

pub struct Report {
    pub started_at: String,
    pub command: String,
    pub machine: Value,
    pub quick: bool,
    pub startups: Vec<Startup>,
    pub rows: Vec<Row>,
    pub idle: Vec<Idle>,
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn load_label(row: &Row) -> String {
    let load = match row.mode {
        Mode::Closed { concurrency } => format!("closed, {concurrency} clients"),
        Mode::Open { rate, .. } => format!("open, {rate} req/s"),
    };
    match row.flows {
        1 => load,
        n => format!("{load}, {n} flows"),
    }
}

impl Report {
    /// The oih row under the same load as `row`.
    fn oih_row(&self, row: &Row) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.system == Kind::Oih && r.mode == row.mode && r.flows == row.flows)
    }

    /// (load, peer, throughput oih/peer, p99 oih/peer) for every peer row.
    fn ratios(&self) -> Vec<(String, Kind, f64, f64)> {
        self.rows
            .iter()
            .filter(|r| r.system != Kind::Oih)
            .filter_map(|peer| {
                let oih = self.oih_row(peer)?;
                Some((
                    load_label(peer),
                    peer.system,
                    oih.per_sec() / peer.per_sec().max(f64::EPSILON),
                    oih.ms(0.99) / peer.ms(0.99).max(f64::EPSILON),
                ))
            })
            .collect()
    }

    pub fn json(&self) -> Value {
        json!({
            "bench": "compare",
            "started_at": self.started_at,
            "command": self.command,
            "quick": self.quick,
            "machine": self.machine,
            "startup": self.startups,
            "results": self.rows.iter().map(Row::json).collect::<Vec<_>>(),
            "ratios_oih_over_peer": self.ratios().into_iter().map(|(load, peer, tput, p99)| json!({
                "load": load,
                "peer": peer,
                "throughput": round(tput, 2),
                "p99_latency": round(p99, 3),
            })).collect::<Vec<_>>(),
            "idle": self.idle,
        })
    }

    /// The tables, in Markdown (also what the terminal shows).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# oih and its peers, side by side\n");
        let _ = writeln!(out, "- when: {}", self.started_at);
        let _ = writeln!(out, "- command: `{}`", self.command);
        if let Some(m) = self.machine.as_object() {
            for (k, v) in m {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                let _ = writeln!(out, "- {k}: {v}");
            }
        }
        let _ = writeln!(out, "\n## Start-up\n");
        let _ = writeln!(
            out,
            "| system | ready ms | first correct reply ms | idle RSS MiB | peak RSS MiB | CPU s (whole run) |\n|---|---|---|---|---|---|"
        );
        for s in &self.startups {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                s.system.name(),
                s.ready_ms,
                s.first_reply_ms,
                s.idle_rss_mib,
                s.peak_rss_mib,
                s.cpu_seconds_total
            );
        }
        let _ = writeln!(
            out,
            "\n## Synchronous flow: HTTP → transform → filter → reply\n"
        );
        let _ = writeln!(
            out,
            "| load | system | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | CPU s | CPU ms/req | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.3} | {:.1} |",
                load_label(r),
                r.system.name(),
                r.per_sec(),
                r.ms(0.50),
                r.ms(0.90),
                r.ms(0.99),
                r.max_ms(),
                r.errors,
                r.cpu_seconds,
                r.cpu_ms_per_request(),
                mib(r.peak_rss_bytes),
            );
        }
        let ratios = self.ratios();
        if !ratios.is_empty() {
            let _ = writeln!(
                out,
                "\n## Ratios oih / peer\n\nThroughput above 1 and p99 below 1 favour oih.\n\n| load | peer | throughput oih/peer | p99 oih/peer |\n|---|---|---|---|"
            );
            for (load, peer, tput, p99) in ratios {
                let _ = writeln!(out, "| {load} | {} | {tput:.2} | {p99:.3} |", peer.name());
            }
        }
        if !self.idle.is_empty() {
            let _ = writeln!(
                out,
                "\n## Idle footprint\n\n| process | RSS MiB |\n|---|---|"
            );
            for i in &self.idle {
                let _ = writeln!(out, "| {} | {:.1} |", i.what, i.rss_mib);
            }
        }
        for r in self.rows.iter().filter(|r| !r.error_samples.is_empty()) {
            let _ = writeln!(
                out,
                "\nErrors of {} under {}: {}",
                r.system.name(),
                load_label(r),
                r.error_samples.join("; ")
            );
        }
        out
    }
}
