//! The message log alone (no broker): how fast the store persists the embedded bus's group
//! commits. Each write appends a batch and removes the batch before it, the steady state of
//! publish → consume → ack.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use oih_store::{LogBatch, MessageLog, StoredMessage};

#[derive(Args)]
pub struct LogArgs {
    /// Messages written (and removed) per batch size.
    #[arg(long, default_value_t = 100_000)]
    messages: i64,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,5000")]
    batches: Vec<i64>,
    /// Body size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Measure PostgreSQL at this URL instead of SQLite in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
}

pub async fn run(args: LogArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = if args.database_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    println!("{:<9} {:>7} {:>14}", "engine", "batch", "msg/s");
    for &batch in &args.batches {
        // A fresh database per batch size, so one run does not warm up the next.
        let data_dir: PathBuf = dir.path().join(format!("batch-{batch}"));
        let backend = oih_store::open(args.database_url.as_deref(), &data_dir).await?;
        let rate =
            append_then_remove(&*backend.log, args.messages, batch.max(1), args.size).await?;
        println!("{engine:<9} {batch:>7} {rate:>14.0}");
        println!(
            "{}",
            serde_json::json!({"bench": "log", "engine": engine, "batch": batch, "messages": args.messages, "msg_per_s": rate.round()})
        );
        backend.docs.close().await;
    }
    Ok(())
}

fn message(id: i64, size: usize) -> StoredMessage {
    StoredMessage {
        id,
        queue: "flow-67a0c3e9b1d2f4a5b6c7d8e9:step_1:messages".into(),
        exchange: "flow-67a0c3e9b1d2f4a5b6c7d8e9".into(),
        routing_key: "flow-67a0c3e9b1d2f4a5b6c7d8e9.step_1.input".into(),
        props: vec![b' '; 64],
        body: vec![b'x'; size],
        enqueued_at: 1_700_000_000_000 + id,
        expires_at: None,
        delivery_count: 0,
    }
}

async fn append_then_remove(
    log: &dyn MessageLog,
    messages: i64,
    batch: i64,
    size: usize,
) -> anyhow::Result<f64> {
    // Ids continue after whatever a previous run left, so a reused database still works.
    let mut next = log
        .load()
        .await?
        .messages
        .iter()
        .map(|m| m.id)
        .max()
        .unwrap_or(0)
        + 1;
    let end = next + messages;
    let start = Instant::now();
    let mut previous: Vec<i64> = Vec::new();
    while next < end {
        let ids: Vec<i64> = (next..(next + batch).min(end)).collect();
        next += batch;
        let append = ids.iter().map(|&id| message(id, size)).collect();
        let remove = std::mem::replace(&mut previous, ids);
        log.write(LogBatch {
            append,
            remove,
            ..LogBatch::default()
        })
        .await?;
    }
    log.write(LogBatch {
        remove: previous,
        ..LogBatch::default()
    })
    .await?;
    let rate = messages as f64 / start.elapsed().as_secs_f64();
    anyhow::ensure!(
        log.load().await?.messages.is_empty(),
        "the log should be empty after removing everything"
    );
    Ok(rate)
}
