//! The message log: what the embedded bus writes must come back from `load` exactly.

use oih_store::{LogBatch, StoredMessage, TopologyRecord};

use crate::support::Ctx;

fn msg(id: i64, queue: &str) -> StoredMessage {
    StoredMessage {
        id,
        queue: queue.into(),
        exchange: "flows".into(),
        routing_key: format!("rk.{id}"),
        // Binary, with zero bytes and invalid UTF-8.
        props: vec![0, 159, 146, 150, (id % 256) as u8],
        body: format!("{{\"n\":{id}}}\0\u{fffd}").into_bytes(),
        enqueued_at: 1_700_000_000_000 + id,
        expires_at: (id % 2 == 0).then_some(1_800_000_000_000 + id),
        delivery_count: 0,
    }
}

fn topo(kind: &str, name: &str, spec: &[u8]) -> TopologyRecord {
    TopologyRecord {
        kind: kind.into(),
        name: name.into(),
        spec: spec.to_vec(),
    }
}

pub async fn roundtrip(ctx: Ctx) -> anyhow::Result<()> {
    let log = &*ctx.db.log;
    assert_eq!(log.load().await?, Default::default());
    log.write(LogBatch::default()).await?;

    log.write(LogBatch {
        upsert_topology: vec![
            topo("queue", "q1", b"durable"),
            topo("exchange", "flows", &[0, 1, 2]),
            topo("binding", "flows|q1|#", b""),
        ],
        append: vec![msg(3, "q1"), msg(1, "q1"), msg(2, "q2")],
        ..LogBatch::default()
    })
    .await?;
    let snap = log.load().await?;
    // Topology in (kind, name) order; messages in id order.
    assert_eq!(
        snap.topology,
        vec![
            topo("binding", "flows|q1|#", b""),
            topo("exchange", "flows", &[0, 1, 2]),
            topo("queue", "q1", b"durable"),
        ]
    );
    assert_eq!(
        snap.messages,
        vec![msg(1, "q1"), msg(2, "q2"), msg(3, "q1")]
    );

    // Upsert replaces; delete removes; unknown deletes are harmless.
    log.write(LogBatch {
        delete_topology: vec![
            ("binding".into(), "flows|q1|#".into()),
            ("queue".into(), "nope".into()),
        ],
        upsert_topology: vec![topo("queue", "q1", b"v2")],
        ..LogBatch::default()
    })
    .await?;
    let snap = log.load().await?;
    assert_eq!(
        snap.topology,
        vec![
            topo("exchange", "flows", &[0, 1, 2]),
            topo("queue", "q1", b"v2")
        ]
    );
    assert_eq!(snap.messages.len(), 3);
    Ok(())
}

pub async fn removes_counts_and_purges(ctx: Ctx) -> anyhow::Result<()> {
    let log = &*ctx.db.log;
    log.write(LogBatch {
        append: (1..=6)
            .map(|id| msg(id, if id <= 3 { "q1" } else { "q2" }))
            .collect(),
        ..LogBatch::default()
    })
    .await?;

    // Removals (including unknown ids) and delivery counts in one batch.
    log.write(LogBatch {
        remove: vec![2, 99],
        set_delivery_count: vec![(1, 3), (5, 1), (98, 7)],
        ..LogBatch::default()
    })
    .await?;
    let snap = log.load().await?;
    let state: Vec<(i64, i32)> = snap
        .messages
        .iter()
        .map(|m| (m.id, m.delivery_count))
        .collect();
    assert_eq!(state, vec![(1, 3), (3, 0), (4, 0), (5, 1), (6, 0)]);

    // A purge empties one queue and leaves the others; an append to the purged queue in the
    // same batch survives (purges apply before appends).
    log.write(LogBatch {
        purge_queues: vec!["q1".into()],
        append: vec![msg(7, "q1")],
        ..LogBatch::default()
    })
    .await?;
    let ids: Vec<i64> = log.load().await?.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![4, 5, 6, 7]);

    // Removals apply before appends within one batch.
    log.write(LogBatch {
        remove: vec![4, 5],
        append: vec![msg(8, "q2")],
        ..LogBatch::default()
    })
    .await?;
    let ids: Vec<i64> = log.load().await?.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![6, 7, 8]);
    Ok(())
}

/// Batch sizes that are not multiples of any internal chunk size, and non-contiguous ids.
pub async fn large_batches(ctx: Ctx) -> anyhow::Result<()> {
    let log = &*ctx.db.log;
    let first: Vec<StoredMessage> = (0..1_237).map(|i| msg(i * 3, "big")).collect();
    let second: Vec<StoredMessage> = (0..4_001).map(|i| msg(10_000 + i, "big")).collect();
    log.write(LogBatch {
        append: first.clone(),
        ..LogBatch::default()
    })
    .await?;
    log.write(LogBatch {
        append: second.clone(),
        ..LogBatch::default()
    })
    .await?;
    let snap = log.load().await?;
    assert_eq!(snap.messages.len(), 1_237 + 4_001);
    assert_eq!(snap.messages[..1_237], first[..]);
    assert_eq!(snap.messages[1_237..], second[..]);

    // Remove all but every 100th message, in one batch.
    let remove: Vec<i64> = snap
        .messages
        .iter()
        .map(|m| m.id)
        .filter(|id| id % 100 != 0)
        .collect();
    let keep: Vec<i64> = snap
        .messages
        .iter()
        .map(|m| m.id)
        .filter(|id| id % 100 == 0)
        .collect();
    log.write(LogBatch {
        remove,
        set_delivery_count: keep.iter().map(|&id| (id, 2)).collect(),
        ..LogBatch::default()
    })
    .await?;
    let snap = log.load().await?;
    assert_eq!(snap.messages.iter().map(|m| m.id).collect::<Vec<_>>(), keep);
    assert!(snap.messages.iter().all(|m| m.delivery_count == 2));
    Ok(())
}

/// Messages logged by one backend are what the next one (after a restart) loads.
pub async fn survives_reopen(ctx: Ctx) -> anyhow::Result<()> {
    ctx.db
        .log
        .write(LogBatch {
            upsert_topology: vec![topo("queue", "q", b"")],
            append: vec![msg(1, "q"), msg(2, "q")],
            ..LogBatch::default()
        })
        .await?;
    ctx.db.docs.close().await;
    let Some(again) = ctx.open_again().await? else {
        return Ok(());
    };
    let snap = again.log.load().await?;
    assert_eq!(snap.messages, vec![msg(1, "q"), msg(2, "q")]);
    assert_eq!(snap.topology, vec![topo("queue", "q", b"")]);
    again.docs.close().await;
    Ok(())
}
