//! The results: one record per measurement, aggregated per system and load over the rounds,
//! with the ratios oih/peer; printed as a table and written as JSON and Markdown.

use std::fmt::Write as _;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

use super::ferryman_alone::AloneRow;
use super::load::{Mode, Outcome};
use super::procs::Usage;
use super::sink::Tally;
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
        ms(&self.latency_us, q)
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
            "latency_ms": latency_json(&self.latency_us),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "cpu_ms_per_request": round(self.cpu_ms_per_request(), 3),
            "peak_rss_mib": round(mib(self.peak_rss_bytes), 1),
            "error_samples": self.error_samples,
        })
    }
}

/// Scenario (b): one system at one closed-loop client count, all rounds together.
pub struct IngestRow {
    pub system: Kind,
    pub concurrency: usize,
    pub rounds: usize,
    /// 2xx answers.
    pub accepted: u64,
    pub errors: u64,
    /// Seconds of load.
    pub seconds: f64,
    /// Latency of the HTTP answers, accepted ones only.
    pub answer_us: Histogram<u64>,
    pub delivered: u64,
    /// Seconds from the start of each load to its last result at the sink.
    pub delivery_seconds: f64,
    pub e2e_us: Histogram<u64>,
    pub lost: u64,
    pub expected_dropped: u64,
    pub wrong: u64,
    /// Load and drain.
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub samples: Vec<String>,
}

impl IngestRow {
    pub fn new(system: Kind, concurrency: usize) -> Result<Self> {
        Ok(Self {
            system,
            concurrency,
            rounds: 0,
            accepted: 0,
            errors: 0,
            seconds: 0.0,
            answer_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            delivered: 0,
            delivery_seconds: 0.0,
            e2e_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            lost: 0,
            expected_dropped: 0,
            wrong: 0,
            cpu_seconds: 0.0,
            peak_rss_bytes: 0,
            samples: Vec::new(),
        })
    }

    /// One round: the load's `outcome` from `started`, what reached the sink by the end of
    /// the drain, and what it cost.
    pub fn add(
        &mut self,
        outcome: &Outcome,
        tally: &Tally,
        started: std::time::Instant,
        usage: Usage,
    ) -> Result<()> {
        self.rounds += 1;
        self.accepted += outcome.ok;
        self.errors += outcome.errors;
        self.seconds += outcome.elapsed.as_secs_f64();
        self.answer_us.add(&outcome.latency_us)?;
        self.delivered += tally.delivered;
        // Results still arriving after the load stopped count at the rate they came.
        let last = tally
            .last_arrival
            .map_or(0.0, |at| at.duration_since(started).as_secs_f64());
        self.delivery_seconds += last.max(outcome.elapsed.as_secs_f64());
        self.e2e_us.add(&tally.e2e_us)?;
        self.lost += tally.lost;
        self.expected_dropped += tally.expected_dropped;
        self.wrong += tally.wrong;
        self.cpu_seconds += usage.cpu_seconds;
        self.peak_rss_bytes = self.peak_rss_bytes.max(usage.peak_rss_bytes);
        for e in outcome.error_samples.iter().chain(&tally.samples) {
            if self.samples.len() < 5 {
                self.samples.push(e.clone());
            }
        }
        Ok(())
    }

    pub fn accepted_per_sec(&self) -> f64 {
        self.accepted as f64 / self.seconds.max(f64::EPSILON)
    }

    pub fn delivered_per_sec(&self) -> f64 {
        self.delivered as f64 / self.delivery_seconds.max(f64::EPSILON)
    }

    /// Whether anything went wrong: a failed request, a lost or a wrong result.
    pub fn failed(&self) -> bool {
        self.errors + self.lost + self.wrong > 0 || self.accepted == 0 || self.delivered == 0
    }

    fn json(&self) -> Value {
        json!({
            "system": self.system,
            "load": Mode::Closed { concurrency: self.concurrency },
            "rounds": self.rounds,
            "accepted": self.accepted,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "accepted_per_s": round(self.accepted_per_sec(), 1),
            "answer_latency_ms": latency_json(&self.answer_us),
            "delivered": self.delivered,
            "delivery_seconds": round(self.delivery_seconds, 2),
            "delivered_per_s": round(self.delivered_per_sec(), 1),
            "e2e_latency_ms": latency_json(&self.e2e_us),
            "lost": self.lost,
            "expected_dropped": self.expected_dropped,
            "wrong": self.wrong,
            "cpu_seconds": round(self.cpu_seconds, 2),
            "peak_rss_mib": round(mib(self.peak_rss_bytes), 1),
            "samples": self.samples,
        })
    }
}

/// Latency at quantile `q` in milliseconds (0 when nothing was recorded).
fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

fn latency_json(h: &Histogram<u64>) -> Value {
    json!({
        "p50": round(ms(h, 0.50), 3),
        "p90": round(ms(h, 0.90), 3),
        "p99": round(ms(h, 0.99), 3),
        "max": round(h.max() as f64 / 1000.0, 3),
    })
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
    pub ingest: Vec<IngestRow>,
    /// Scenario (d): the Ferryman step alone on OIH's queue topology.
    pub ferryman_alone: Vec<AloneRow>,
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

    /// (clients, peer, accepted oih/peer, delivered oih/peer, e2e p99 oih/peer) for every
    /// peer row of scenario (b).
    fn ingest_ratios(&self) -> Vec<(usize, Kind, f64, f64, f64)> {
        self.ingest
            .iter()
            .filter(|r| r.system != Kind::Oih)
            .filter_map(|peer| {
                let oih = self
                    .ingest
                    .iter()
                    .find(|r| r.system == Kind::Oih && r.concurrency == peer.concurrency)?;
                let per = |a: f64, b: f64| a / b.max(f64::EPSILON);
                Some((
                    peer.concurrency,
                    peer.system,
                    per(oih.accepted_per_sec(), peer.accepted_per_sec()),
                    per(oih.delivered_per_sec(), peer.delivered_per_sec()),
                    per(ms(&oih.e2e_us, 0.99), ms(&peer.e2e_us, 0.99)),
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
            "ingest": self.ingest.iter().map(IngestRow::json).collect::<Vec<_>>(),
            "ingest_ratios_oih_over_peer": self.ingest_ratios().into_iter().map(|(clients, peer, accepted, delivered, p99)| json!({
                "load": Mode::Closed { concurrency: clients },
                "peer": peer,
                "accepted": round(accepted, 2),
                "delivered": round(delivered, 2),
                "e2e_p99_latency": round(p99, 3),
            })).collect::<Vec<_>>(),
            "ferryman_alone": self.ferryman_alone.iter().map(|r| json!({
                "in_flight": r.in_flight,
                "delivered": r.delivered,
                "seconds": round(r.seconds, 2),
                "msg_per_s": round(r.per_sec(), 1),
                "latency_ms": latency_json(&r.latency_us),
                "oih_ferryman_over_alone": self.ferryman_ratio(r).map(|(_, x)| round(x, 2)),
            })).collect::<Vec<_>>(),
            "idle": self.idle,
        })
    }

    /// oih-ferryman's throughput, and its ratio to the step alone's, at as many clients as
    /// messages in flight.
    fn ferryman_ratio(&self, alone: &AloneRow) -> Option<(f64, f64)> {
        let hub = self.rows.iter().find(|r| {
            r.system == Kind::OihFerryman
                && r.flows == 1
                && r.mode
                    == Mode::Closed {
                        concurrency: alone.in_flight,
                    }
        })?;
        Some((
            hub.per_sec(),
            hub.per_sec() / alone.per_sec().max(f64::EPSILON),
        ))
    }

    /// Scenario (d)'s other side: the Ferryman step alone, against oih-ferryman.
    fn ferryman_alone_markdown(&self, out: &mut String) {
        if self.ferryman_alone.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n## Scenario (d): the Ferryman step alone on OIH's queue topology\n\noih-ferryman's transform component run by Ferryman as OIH's orchestrator runs it (prefetch 1), fed straight over RabbitMQ with no orchestrator and no HTTP: the most any orchestrator, OIH's included, gets out of this step. oih-ferryman is the whole flow through the hub, at as many clients as messages in flight here.\n\n| in flight | msg/s | p50 ms | p90 ms | p99 ms | max ms | oih-ferryman req/s | oih-ferryman / alone |\n|---|---|---|---|---|---|---|---|"
        );
        for r in &self.ferryman_alone {
            let (hub_rate, ratio) = match self.ferryman_ratio(r) {
                Some((rate, ratio)) => (format!("{rate:.0}"), format!("{ratio:.2}")),
                None => ("–".into(), "–".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {hub_rate} | {ratio} |",
                r.in_flight,
                r.per_sec(),
                ms(&r.latency_us, 0.50),
                ms(&r.latency_us, 0.90),
                ms(&r.latency_us, 0.99),
                r.latency_us.max() as f64 / 1000.0,
            );
        }
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
        self.ingest_markdown(&mut out);
        self.ferryman_alone_markdown(&mut out);
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
        for r in self.ingest.iter().filter(|r| !r.samples.is_empty()) {
            let _ = writeln!(
                out,
                "\nErrors of {} in scenario (b) at {} clients: {}",
                r.system.name(),
                r.concurrency,
                r.samples.join("; ")
            );
        }
        out
    }

    /// Scenario (b)'s table and ratios.
    fn ingest_markdown(&self, out: &mut String) {
        if self.ingest.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n## Scenario (b): asynchronous ingestion\n\nHTTP → transform → filter → POST to a sink; the answer comes once the system has taken the request, end-to-end latency is from sending the request to its result reaching the sink. Lost: accepted, kept by the filter, and not at the sink once none had arrived for the drain period after the load stopped; dropped by filter: accepted, and rightly never delivered.\n"
        );
        let _ = writeln!(
            out,
            "| clients | system | accepted req/s | delivered msg/s | e2e p50 ms | e2e p90 ms | e2e p99 ms | e2e max ms | lost | dropped by filter | wrong | answer p50 ms | answer p99 ms | errors | CPU s | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in &self.ingest {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {:.2} | {:.2} | {} | {:.1} | {:.1} |",
                r.concurrency,
                r.system.name(),
                r.accepted_per_sec(),
                r.delivered_per_sec(),
                ms(&r.e2e_us, 0.50),
                ms(&r.e2e_us, 0.90),
                ms(&r.e2e_us, 0.99),
                r.e2e_us.max() as f64 / 1000.0,
                r.lost,
                r.expected_dropped,
                r.wrong,
                ms(&r.answer_us, 0.50),
                ms(&r.answer_us, 0.99),
                r.errors,
                r.cpu_seconds,
                mib(r.peak_rss_bytes),
            );
        }
        let ratios = self.ingest_ratios();
        if !ratios.is_empty() {
            let _ = writeln!(
                out,
                "\nRatios oih / peer in scenario (b): rates above 1 and p99 below 1 favour oih.\n\n| clients | peer | accepted oih/peer | delivered oih/peer | e2e p99 oih/peer |\n|---|---|---|---|---|"
            );
            for (clients, peer, accepted, delivered, p99) in ratios {
                let _ = writeln!(
                    out,
                    "| {clients} | {} | {accepted:.2} | {delivered:.2} | {p99:.3} |",
                    peer.name()
                );
            }
        }
    }
}
