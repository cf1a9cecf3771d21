//! Scenario (b), asynchronous ingestion: each system answers the webhook as soon as it has
//! taken the message (oih: once it is persisted), and the flow runs after, its last step
//! POSTing the result to the harness's [`Sink`]. Measured: accepted requests/s and their
//! answer latency (as in scenario (a)), results/s at the sink, end-to-end latency (send →
//! arrival at the sink), and results lost (accepted, not arrived within the drain period).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, ensure};

use super::load::{Generator, Mode, Script};
use super::report::IngestRow;
use super::sink::{Ledger, Sink};
use super::systems::{self, Context, Flow, Kind, Running};
use super::workload::Replies;
use super::{Plan, announce};

/// How long the first-answer probe waits for its result at the sink.
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// Scenario (b)'s script: the bodies of scenario (a) in the same order, each with a fresh
/// `seq` the sink knows it by; any 2xx is an accepted body.
pub struct Ingest {
    sink_url: String,
    ledger: std::sync::Arc<Ledger>,
    next: AtomicU64,
}

impl Ingest {
    pub fn new(sink: &Sink) -> Self {
        Self {
            sink_url: sink.url.clone(),
            ledger: sink.ledger.clone(),
            next: AtomicU64::new(0),
        }
    }

    pub fn sink_url(&self) -> &str {
        &self.sink_url
    }

    /// The `seq` the next body gets.
    fn upcoming(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

/// `body` (a JSON object) with `"seq": seq` as its first member.
fn with_seq(body: &str, seq: u64) -> String {
    let rest = body.strip_prefix('{').unwrap_or(body);
    format!("{{\"seq\":{seq},{rest}")
}

impl Script for Ingest {
    type Ticket = u64;

    fn body(&self, _k: usize) -> (String, u64) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        // Noted before it is sent: a fast system's result may arrive before its answer.
        self.ledger.expect(seq, Instant::now());
        (with_seq(&self.ledger.case(seq).body, seq), seq)
    }

    fn settle(&self, seq: u64, answer: Result<(u16, &[u8]), String>) -> Result<(), String> {
        match answer {
            Ok((status, _)) if (200..300).contains(&status) => {
                self.ledger.accepted(seq);
                Ok(())
            }
            Ok((status, body)) => {
                self.ledger.forget(seq);
                Err(format!(
                    "status {status}: {}",
                    String::from_utf8_lossy(body)
                ))
            }
            Err(e) => {
                self.ledger.forget(seq);
                Err(e)
            }
        }
    }
}

impl Generator<Ingest> {
    /// Ok once a kept order is accepted and its result arrives at the sink.
    pub async fn first_result(&self, url: &str) -> Result<()> {
        loop {
            let seq = self.script().upcoming();
            self.once(url, 0).await.map_err(anyhow::Error::msg)?;
            if self.script().ledger.is_kept(seq) {
                ensure!(
                    self.script().ledger.arrives(seq, PROBE_WAIT).await,
                    "accepted, but no result at the sink within {PROBE_WAIT:?}"
                );
                return Ok(());
            }
        }
    }

    /// Sends every body once; each must be accepted, and every kept order's result must
    /// arrive right, and no other, within `drain` (a dropped order's result arriving later
    /// still counts as wrong in the measurement it arrives in).
    pub async fn verify(&self, url: &str, drain: Duration) -> Result<()> {
        let bodies = self.script().ledger.case_count();
        for k in 0..bodies {
            self.once(url, k)
                .await
                .map_err(|e| anyhow!("{url}: body {k}: {e}"))?;
        }
        let tally = self.script().ledger.settle(drain).await;
        ensure!(
            tally.lost == 0 && tally.wrong == 0,
            "{} results lost, {} wrong: {}",
            tally.lost,
            tally.wrong,
            tally.samples.join("; ")
        );
        Ok(())
    }
}

/// One system in scenario (b), with its own sink.
struct Subject {
    load: Generator<Ingest>,
    // Dropped after the system: it may still be posting.
    running: Running,
    _sink: Sink,
}

/// Scenario (b): starts each system fresh with the asynchronous flow, checks it, and measures
/// it at each client count of `plan.ingest_concurrency`, the systems taking turns.
pub async fn run(
    kinds: &[Kind],
    ctx: &Context,
    base: &Generator<Replies>,
    plan: &Plan,
) -> Result<Vec<IngestRow>> {
    let mut subjects = Vec::new();
    for &kind in kinds {
        let sink = Sink::start().await?;
        let load = base.with_script(Ingest::new(&sink));
        let running = systems::start(kind, ctx, Flow::Ingest(&load), 1)
            .await
            .with_context(|| format!("starting {} with the asynchronous flow", kind.name()))?;
        load.verify(&running.urls[0], plan.drain)
            .await
            .with_context(|| {
                format!(
                    "{} ingests wrongly (log: {})",
                    kind.name(),
                    running.log().display()
                )
            })?;
        announce(&running, "the asynchronous flow");
        subjects.push(Subject {
            load,
            running,
            _sink: sink,
        });
    }
    warm_up(&subjects, plan).await?;
    let mut rows = Vec::new();
    for &concurrency in &plan.ingest_concurrency {
        let mut batch: Vec<IngestRow> = subjects
            .iter()
            .map(|s| IngestRow::new(s.running.kind, concurrency))
            .collect::<Result<_>>()?;
        for round in 1..=plan.rounds {
            for (s, row) in subjects.iter().zip(&mut batch) {
                let window = s.running.monitor.window();
                let started = Instant::now();
                let outcome = s
                    .load
                    .run(&s.running.urls, Mode::Closed { concurrency }, plan.duration)
                    .await?;
                let tally = s.load.script().ledger.settle(plan.drain).await;
                let usage = window.end();
                println!(
                    "{:<9} async, {concurrency} clients, round {round}: {:.0} accepted/s, {} delivered, e2e p99 {:.2} ms, {} lost, {} wrong, {} errors",
                    s.running.kind.name(),
                    outcome.per_sec(),
                    tally.delivered,
                    if tally.e2e_us.is_empty() {
                        0.0
                    } else {
                        tally.e2e_us.value_at_quantile(0.99) as f64 / 1000.0
                    },
                    tally.lost,
                    tally.wrong,
                    outcome.errors
                );
                row.add(&outcome, &tally, started, usage)?;
                if !s.running.monitor.settle(Duration::from_secs(120)).await {
                    println!(
                        "{:<9} still busy 2 minutes after the load stopped",
                        s.running.kind.name()
                    );
                }
            }
        }
        rows.extend(batch);
    }
    Ok(rows)
}

/// Lets each system warm up at the highest load (not in a quick run: its check before
/// measuring was enough); what goes wrong meanwhile is printed, not counted.
async fn warm_up(subjects: &[Subject], plan: &Plan) -> Result<()> {
    if plan.ingest_warmup.is_zero() {
        return Ok(());
    }
    let concurrency = plan.ingest_concurrency.iter().copied().max().unwrap_or(1);
    for s in subjects {
        let outcome = s
            .load
            .run(
                &s.running.urls,
                Mode::Closed { concurrency },
                plan.ingest_warmup,
            )
            .await?;
        let tally = s.load.script().ledger.settle(plan.drain).await;
        if outcome.errors + tally.lost + tally.wrong > 0 {
            println!(
                "{:<9} async warm-up: {} errors, {} lost, {} wrong: {}",
                s.running.kind.name(),
                outcome.errors,
                tally.lost,
                tally.wrong,
                outcome
                    .error_samples
                    .iter()
                    .chain(&tally.samples)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_seq_becomes_the_first_member_of_the_body() {
        let body = r#"{"id":7,"note":"x"}"#;
        let with = with_seq(body, 42);
        assert_eq!(with, r#"{"seq":42,"id":7,"note":"x"}"#);
        let parsed: Value = serde_json::from_str(&with).expect("JSON");
        assert_eq!(parsed["seq"], 42);
    }
}
