//! Message-log throughput, measured, never asserted (timings depend on the machine). Run:
//! `cargo test --release -p oih-store --test it log_throughput -- --ignored --nocapture`
//! (set `OIH_TEST_DATABASE_URL` to measure PostgreSQL too).

use std::time::Instant;

use oih_store::{LogBatch, MessageLog, StoredMessage};

use crate::support::{Engine, PG_ENV, run};

const MESSAGES: i64 = 100_000;

fn msg(id: i64) -> StoredMessage {
    StoredMessage {
        id,
        queue: "flow-67a0c3e9b1d2f4a5b6c7d8e9:step_1:messages".into(),
        exchange: "flows".into(),
        routing_key: "flow-67a0c3e9b1d2f4a5b6c7d8e9.step_1.message".into(),
        props: vec![7; 64],
        body: vec![b'x'; 256],
        enqueued_at: 1_700_000_000_000 + id,
        expires_at: None,
        delivery_count: 0,
    }
}

/// Steady state of the bus's group commit: each write appends `batch` new messages and
/// removes the `batch` appended by the previous write (acknowledged meanwhile).
async fn append_then_remove(log: &dyn MessageLog, batch: i64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut previous: Vec<i64> = Vec::new();
    let mut next = 1;
    while next <= MESSAGES {
        let ids: Vec<i64> = (next..next + batch).collect();
        next += batch;
        log.write(LogBatch {
            append: ids.iter().copied().map(msg).collect(),
            remove: std::mem::replace(&mut previous, ids),
            ..LogBatch::default()
        })
        .await?;
    }
    log.write(LogBatch {
        remove: previous,
        ..LogBatch::default()
    })
    .await?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(log.load().await?.messages.is_empty());
    Ok(MESSAGES as f64 / secs)
}

#[tokio::test]
#[ignore = "measurement, not a test; run with --release --ignored --nocapture"]
async fn log_throughput() -> anyhow::Result<()> {
    let mut engines = vec![Engine::SqliteFile];
    if std::env::var(PG_ENV).is_ok() {
        engines.push(Engine::Postgres);
    }
    for engine in engines {
        for batch in [100, 1_000, 5_000] {
            run(engine, |ctx| async move {
                let rate = append_then_remove(&*ctx.db.log, batch).await?;
                eprintln!("{engine:?}: batch {batch:>5}: {rate:>9.0} messages/s append+remove");
                Ok(())
            })
            .await?;
        }
    }
    Ok(())
}
