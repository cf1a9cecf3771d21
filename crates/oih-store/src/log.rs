//! The durable half of the embedded message bus. `oih-bus` keeps queues, bindings and
//! in-flight state in memory and tells the log what must survive a crash; on start it reads the
//! whole log back with [`MessageLog::load`].

use async_trait::async_trait;

use crate::Result;

/// A message sitting in one queue. `id` is assigned by the bus (monotonic per database);
/// `props` is the bus's own serialisation of headers and properties.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: i64,
    pub queue: String,
    pub exchange: String,
    pub routing_key: String,
    pub props: Vec<u8>,
    pub body: Vec<u8>,
    /// Milliseconds since the epoch at which the message entered this queue.
    pub enqueued_at: i64,
    /// Milliseconds since the epoch after which the message is dead (from `x-message-ttl` or
    /// the message's own expiration).
    pub expires_at: Option<i64>,
    /// How many times the message has been delivered and not acknowledged.
    pub delivery_count: i32,
}

/// A declared exchange, queue or binding. `kind` is `"exchange"`, `"queue"`, `"binding"` or
/// `"exchange_binding"`; `name` identifies it uniquely within its kind; `spec` is the bus's
/// serialisation of its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyRecord {
    pub kind: String,
    pub name: String,
    pub spec: Vec<u8>,
}

/// Changes applied atomically, in this order: topology deletes, topology upserts, message
/// removals, delivery-count updates, appends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogBatch {
    pub delete_topology: Vec<(String, String)>,
    pub upsert_topology: Vec<TopologyRecord>,
    pub remove: Vec<i64>,
    /// `(message id, new delivery count)`: recorded so that redelivery counts survive a restart.
    pub set_delivery_count: Vec<(i64, i32)>,
    pub append: Vec<StoredMessage>,
    /// Removes every message of these queues (queue purge or delete).
    pub purge_queues: Vec<String>,
}

impl LogBatch {
    pub fn is_empty(&self) -> bool {
        self.delete_topology.is_empty()
            && self.upsert_topology.is_empty()
            && self.remove.is_empty()
            && self.set_delivery_count.is_empty()
            && self.append.is_empty()
            && self.purge_queues.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogSnapshot {
    pub topology: Vec<TopologyRecord>,
    /// Every pending message, ordered by id.
    pub messages: Vec<StoredMessage>,
}

#[async_trait]
pub trait MessageLog: Send + Sync {
    /// Applies the batch in one database transaction (the bus's group commit): when this
    /// returns Ok, every change in it is durable.
    async fn write(&self, batch: LogBatch) -> Result<()>;
    async fn load(&self) -> Result<LogSnapshot>;
}
