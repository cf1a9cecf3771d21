//! Group commit: one task owns writing to the message log. It drains every operation queued
//! since its last write into one transaction, so throughput grows with load instead of being
//! capped by one fsync per message. Publisher confirms are sent only after the write that
//! holds the message has committed.

use std::sync::{Arc, Mutex};

use oih_store::{LogBatch, MessageLog};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Core;
use super::broker::{Broker, Routed};

/// One unit of work for the writer.
pub(crate) struct WriteOp {
    batch: LogBatch,
    /// Envelopes that become deliverable once this write is durable.
    visible: Vec<Routed>,
    /// Told the outcome once the write has committed (publisher confirm, declare).
    done: Option<oneshot::Sender<Result<(), String>>>,
}

impl WriteOp {
    /// A change whose caller does not wait (acks, delivery counts, dead-letter moves).
    pub fn background(batch: LogBatch) -> Self {
        Self {
            batch,
            visible: Vec::new(),
            done: None,
        }
    }

    /// A change that makes `visible` deliverable once durable, without a waiting caller.
    pub fn visible_after(batch: LogBatch, visible: Vec<Routed>) -> Self {
        Self {
            batch,
            visible,
            done: None,
        }
    }

    /// A change the caller waits for; `visible` is delivered before the caller hears back.
    pub fn confirmed(
        batch: LogBatch,
        visible: Vec<Routed>,
    ) -> (Self, oneshot::Receiver<Result<(), String>>) {
        let (tx, rx) = oneshot::channel();
        (
            Self {
                batch,
                visible,
                done: Some(tx),
            },
            rx,
        )
    }

    /// Purges and topology deletions must not be merged with other writes: the log applies a
    /// batch's parts in a fixed order, which would reorder them against appends.
    fn must_stand_alone(&self) -> bool {
        !self.batch.purge_queues.is_empty() || !self.batch.delete_topology.is_empty()
    }
}

fn merge(into: &mut LogBatch, from: LogBatch) {
    into.delete_topology.extend(from.delete_topology);
    into.upsert_topology.extend(from.upsert_topology);
    into.remove.extend(from.remove);
    into.set_delivery_count.extend(from.set_delivery_count);
    into.append.extend(from.append);
    into.purge_queues.extend(from.purge_queues);
}

/// Runs until the op channel closes (every sender gone) or `cancel` fires and the queue is
/// drained; returns after the final write.
pub(super) async fn run(
    log: Arc<dyn MessageLog>,
    broker: Arc<Mutex<Broker>>,
    core: std::sync::Weak<Core>,
    mut ops: mpsc::UnboundedReceiver<WriteOp>,
    max_batch: usize,
    cancel: CancellationToken,
) {
    let mut carry: Option<WriteOp> = None;
    loop {
        let first = match carry.take() {
            Some(op) => op,
            None => tokio::select! {
                biased;
                op = ops.recv() => match op { Some(op) => op, None => break },
                () = cancel.cancelled() => match ops.try_recv() { Ok(op) => op, Err(_) => break },
            },
        };
        let mut group = vec![first];
        if !group[0].must_stand_alone() {
            let mut rows = group[0].batch.append.len() + group[0].batch.remove.len();
            while rows < max_batch {
                match ops.try_recv() {
                    Ok(op) if op.must_stand_alone() => {
                        carry = Some(op);
                        break;
                    }
                    Ok(op) => {
                        rows += op.batch.append.len() + op.batch.remove.len();
                        group.push(op);
                    }
                    Err(_) => break,
                }
            }
        }
        commit(&log, &broker, &core, group).await;
    }
}

async fn commit(
    log: &Arc<dyn MessageLog>,
    broker: &Arc<Mutex<Broker>>,
    core: &std::sync::Weak<Core>,
    group: Vec<WriteOp>,
) {
    let mut batch = LogBatch::default();
    let mut visible = Vec::new();
    let mut waiters = Vec::new();
    for op in group {
        merge(&mut batch, op.batch);
        visible.extend(op.visible);
        waiters.extend(op.done);
    }
    let outcome = if batch.is_empty() {
        Ok(())
    } else {
        log.write(batch).await.map_err(|e| e.to_string())
    };
    match &outcome {
        Ok(()) => {
            if !visible.is_empty()
                && let Some(core) = core.upgrade()
            {
                let mut guard = broker.lock().unwrap_or_else(|p| p.into_inner());
                guard.make_visible(&*core, visible);
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "message log write failed; unconfirmed publishes are reported as failed");
        }
    }
    for waiter in waiters {
        let _ = waiter.send(outcome.clone());
    }
}
