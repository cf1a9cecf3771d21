//! `step`: what one builtin step costs when the orchestrator runs it in place, the per-step
//! half of scenario (d). The step is the `jsonata` transform of `bench/flows/oih.json`, run
//! through the runtime's `run_step` (as the orchestrator runs it) on the benchmark's bodies;
//! the other half, a Ferryman step through RabbitMQ, is measured by `compare` (oih-ferryman).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use hdrhistogram::Histogram;
use oih_runtime::{Emit, StepContext, StepMessage, run_step};
use serde_json::Value;

use crate::compare::workload;

#[derive(Debug, Args)]
pub struct StepArgs {
    /// Messages to run through the step.
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
}

pub async fn run(args: StepArgs) -> Result<()> {
    let flow: Value = serde_json::from_str(include_str!("../../../bench/flows/oih.json"))?;
    let fields = flow["graph"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == "transform"))
        .map(|node| node["fields"].clone())
        .context("bench/flows/oih.json has a transform node")?;
    let step = oih_runtime::catalogue()
        .get("jsonata")
        .context("the jsonata builtin")?
        .prepare(&fields)?;
    let ctx = StepContext::new(reqwest::Client::new());
    let inputs: Vec<Value> = workload::cases()
        .iter()
        .map(|case| serde_json::from_str(&case.body))
        .collect::<Result<_, _>>()?;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let started = Instant::now();
    for k in 0..args.messages {
        let msg = StepMessage::new(inputs[k % inputs.len()].clone());
        let one = Instant::now();
        let emits = run_step(step.as_ref(), msg, &ctx).await;
        latency.saturating_record(one.elapsed().as_nanos() as u64);
        anyhow::ensure!(
            matches!(emits.first(), Some(Emit::Data(_))),
            "the step did not emit data: {emits:?}"
        );
    }
    let elapsed = started.elapsed();
    let per_sec = args.messages as f64 / elapsed.as_secs_f64();
    let us = |q: f64| Duration::from_nanos(latency.value_at_quantile(q)).as_secs_f64() * 1e6;
    println!(
        "builtin jsonata step run in place, one task: {} messages in {:.2} s = {per_sec:.0} msg/s; per message p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        args.messages,
        elapsed.as_secs_f64(),
        us(0.5),
        us(0.99),
        Duration::from_nanos(latency.max()).as_secs_f64() * 1e6,
    );
    Ok(())
}
