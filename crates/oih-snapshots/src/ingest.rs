//! The `flow-snapshots` queue (runtime.md §2.2, §7) and its consumer.
//!
//! Steps publish snapshots to `component-events-collector` with the routing key
//! `flow-<flowId>.<stepId>.snapshot`; every flow exchange is bound into the collector too, so
//! the queue bound with `#.snapshot` sees them whichever way they are sent.
//!
//! A snapshot is acknowledged once stored. Messages are handled one at a time, in queue
//! order, so a later snapshot of a step replaces the earlier one; a store failure is retried
//! in place (requeueing would let the next snapshot of the same step overtake it). What can
//! never be stored is dead-lettered to `flow-snapshots.deadletter` (OIH requeued such poison
//! messages forever).

use std::time::Duration;

use oih_bus::{
    BusError, ConsumeOptions, Consumer, Delivery, ExchangeKind, MessageBus, QueueOptions,
};
use oih_store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::model::NewSnapshot;
use crate::store::{Put, SnapshotStore};

/// Where steps publish snapshots (declared by the orchestrator too).
pub const COLLECTOR: &str = "component-events-collector";
/// OIH's queue name.
pub const QUEUE: &str = "flow-snapshots";
pub const DEAD_LETTER_QUEUE: &str = "flow-snapshots.deadletter";
pub const BINDING: &str = "#.snapshot";

/// First pause after a failed write; it doubles up to [`MAX_RETRY_DELAY`].
const RETRY_DELAY: Duration = Duration::from_millis(250);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Attempts before a message whose write fails with a database error is dead-lettered: such
/// an error may be passing (a deadlock) or caused by the message (a value the database
/// refuses). An unreachable database is waited for without limit.
const MAX_DATABASE_ATTEMPTS: u32 = 5;

/// Declares the collector exchange, the queue (dead-lettering through the default exchange to
/// its dead-letter queue) and its binding, and starts consuming. Idempotent.
pub async fn consume(bus: &dyn MessageBus, prefetch: u16) -> Result<Consumer, BusError> {
    bus.declare_exchange(COLLECTOR, ExchangeKind::Topic).await?;
    bus.declare_queue(DEAD_LETTER_QUEUE, &QueueOptions::default())
        .await?;
    let opts = QueueOptions {
        dead_letter_exchange: Some(String::new()),
        dead_letter_routing_key: Some(DEAD_LETTER_QUEUE.into()),
        message_ttl: None,
    };
    bus.declare_queue(QUEUE, &opts).await?;
    bus.bind_queue(QUEUE, COLLECTOR, BINDING).await?;
    bus.consume(QUEUE, ConsumeOptions { prefetch }).await
}

/// Stores snapshots until cancelled.
pub struct Ingest {
    store: SnapshotStore,
}

impl Ingest {
    pub fn new(store: SnapshotStore) -> Self {
        Self { store }
    }

    pub async fn run(self, mut consumer: Consumer, cancel: CancellationToken) {
        loop {
            let delivery = tokio::select! {
                () = cancel.cancelled() => return,
                next = consumer.next() => match next {
                    Some(delivery) => delivery,
                    None => return,
                },
            };
            self.settle(delivery, &cancel).await;
        }
    }

    async fn settle(&self, delivery: Delivery, cancel: &CancellationToken) {
        let key = delivery.routing_key.clone();
        let snapshot = match NewSnapshot::from_message(delivery.headers(), delivery.body()) {
            Ok(snapshot) => snapshot,
            Err(why) => {
                tracing::warn!(routing_key = %key, why, "malformed snapshot dead-lettered");
                return finish(delivery.reject().await, &key);
            }
        };
        let mut attempt = 0;
        let mut delay = RETRY_DELAY;
        loop {
            attempt += 1;
            let err = match self.store.put(&snapshot).await {
                Ok(Put::Stored) => return finish(delivery.ack().await, &key),
                Ok(Put::Discarded) => {
                    tracing::debug!(routing_key = %key, "snapshot of a purged execution or flow dropped");
                    return finish(delivery.ack().await, &key);
                }
                Err(err) => err,
            };
            if !worth_retrying(&err, attempt) {
                tracing::error!(routing_key = %key, error = %err, "snapshot cannot be stored; dead-lettered");
                return finish(delivery.reject().await, &key);
            }
            tracing::warn!(routing_key = %key, error = %err, attempt, "snapshot not stored; will retry");
            tokio::select! {
                () = cancel.cancelled() => return finish(delivery.requeue().await, &key),
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        }
    }
}

fn worth_retrying(err: &StoreError, attempt: u32) -> bool {
    match err {
        StoreError::Unavailable(_) | StoreError::Conflict { .. } | StoreError::Duplicate(_) => true,
        StoreError::Database(_) => attempt < MAX_DATABASE_ATTEMPTS,
        _ => false,
    }
}

fn finish(settled: Result<(), BusError>, key: &str) {
    if let Err(err) = settled {
        tracing::warn!(routing_key = %key, error = %err, "could not settle a snapshot message");
    }
}
