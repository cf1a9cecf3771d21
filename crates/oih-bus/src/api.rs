//! The contract both backends implement; `tests/it/conformance.rs` is the suite that proves it
//! against each.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    Direct,
    Topic,
    Fanout,
}

/// Queue arguments. Queues are always durable: OIH declares every queue it uses as durable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueOptions {
    /// `x-dead-letter-exchange`: where rejected and expired messages go.
    pub dead_letter_exchange: Option<String>,
    /// `x-dead-letter-routing-key`: the routing key they get there (default: their own).
    pub dead_letter_routing_key: Option<String>,
    /// `x-message-ttl`: how long a message may wait in this queue.
    pub message_ttl: Option<Duration>,
}

/// AMQP header table. Values are JSON: strings, numbers, booleans, null, arrays and objects
/// map to the AMQP field types and back.
pub type Headers = BTreeMap<String, Value>;

/// The basic properties OIH and Ferryman use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Properties {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: Headers,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Seconds since the epoch, as AMQP's timestamp property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Per-message TTL (AMQP `expiration`); the shorter of it and the queue's TTL applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub body: Vec<u8>,
    pub properties: Properties,
}

impl Message {
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            properties: Properties::default(),
        }
    }

    pub fn json(value: &Value) -> Self {
        let mut msg = Self::new(value.to_string());
        msg.properties.content_type = Some("application/json".into());
        msg
    }

    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.headers.insert(key.into(), value.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// How many deliveries may be unsettled at once (AMQP `basic.qos` prefetch count).
    pub prefetch: u16,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self { prefetch: 64 }
    }
}

/// How a delivery was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Ack,
    /// Back to the head of its queue, marked redelivered.
    Requeue,
    /// Dead-lettered to the queue's `x-dead-letter-exchange`, or dropped if it has none.
    Reject,
}

/// The backend side of a delivery: settles it exactly once.
#[async_trait]
pub trait Settle: Send + Sync {
    async fn settle(&self, how: Settlement) -> Result<()>;
}

/// One message handed to a consumer. Settle it with [`Delivery::ack`], [`Delivery::requeue`]
/// or [`Delivery::reject`]. A delivery dropped unsettled is requeued, as when an AMQP channel
/// closes with unacknowledged messages.
pub struct Delivery {
    pub message: Message,
    pub exchange: String,
    pub routing_key: String,
    pub redelivered: bool,
    settle: Option<Box<dyn Settle>>,
}

impl Delivery {
    pub fn new(
        message: Message,
        exchange: String,
        routing_key: String,
        redelivered: bool,
        settle: Box<dyn Settle>,
    ) -> Self {
        Self {
            message,
            exchange,
            routing_key,
            redelivered,
            settle: Some(settle),
        }
    }

    pub fn body(&self) -> &[u8] {
        &self.message.body
    }

    pub fn headers(&self) -> &Headers {
        &self.message.properties.headers
    }

    pub async fn ack(mut self) -> Result<()> {
        self.finish(Settlement::Ack).await
    }

    pub async fn requeue(mut self) -> Result<()> {
        self.finish(Settlement::Requeue).await
    }

    pub async fn reject(mut self) -> Result<()> {
        self.finish(Settlement::Reject).await
    }

    /// Forgets the settle handle without settling: for a delivery that never reached a
    /// consumer.
    pub(crate) fn disarm(mut self) {
        self.settle = None;
    }

    async fn finish(&mut self, how: Settlement) -> Result<()> {
        match self.settle.take() {
            Some(s) => s.settle(how).await,
            None => Ok(()),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(s) = self.settle.take() {
            // Settling is async; hand it to the runtime. Outside a runtime (process exit) the
            // broker requeues on its own when the consumer goes away.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = s.settle(Settlement::Requeue).await;
                });
            }
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("redelivered", &self.redelivered)
            .field("bytes", &self.message.body.len())
            .finish()
    }
}

/// A stream of deliveries from one queue. Dropping it cancels the consumer; its unsettled
/// deliveries are requeued.
pub struct Consumer {
    rx: mpsc::Receiver<Delivery>,
    _guard: Box<dyn Send + Sync>,
}

impl Consumer {
    /// `guard` is dropped with the consumer; backends use it to cancel consuming.
    pub fn new(rx: mpsc::Receiver<Delivery>, guard: Box<dyn Send + Sync>) -> Self {
        Self { rx, _guard: guard }
    }

    /// The next delivery, or None once the consumer has been cancelled (bus closed, queue
    /// deleted).
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }
}

#[async_trait]
pub trait MessageBus: Send + Sync {
    /// Declares an exchange; redeclaring with the same kind is a no-op, with another kind is
    /// `PreconditionFailed`.
    async fn declare_exchange(&self, name: &str, kind: ExchangeKind) -> Result<()>;
    /// Deletes the exchange and every binding from or to it. Unknown names are a no-op.
    async fn delete_exchange(&self, name: &str) -> Result<()>;
    /// Declares a durable queue; redeclaring with the same options is a no-op, with other
    /// options is `PreconditionFailed`.
    async fn declare_queue(&self, name: &str, opts: &QueueOptions) -> Result<()>;
    /// Deletes the queue, its messages and its bindings; returns how many messages it held.
    async fn delete_queue(&self, name: &str) -> Result<u64>;
    /// Removes every ready message from the queue; returns how many.
    async fn purge_queue(&self, name: &str) -> Result<u64>;
    /// Ready (undelivered) messages in the queue.
    async fn queue_len(&self, name: &str) -> Result<u64>;
    /// Binds a queue to an exchange with a routing pattern (`*`/`#` for topic exchanges).
    async fn bind_queue(&self, queue: &str, exchange: &str, pattern: &str) -> Result<()>;
    async fn unbind_queue(&self, queue: &str, exchange: &str, pattern: &str) -> Result<()>;
    /// Exchange-to-exchange binding: what is published to `source` and matches `pattern` is
    /// also routed through `destination`.
    async fn bind_exchange(&self, destination: &str, source: &str, pattern: &str) -> Result<()>;
    async fn unbind_exchange(&self, destination: &str, source: &str, pattern: &str) -> Result<()>;
    /// Publishes and waits for the publisher confirm: when this returns Ok, the message is
    /// durably in every queue it routes to. A message that routes nowhere is dropped (as
    /// RabbitMQ does without `mandatory`). The default exchange `""` routes to the queue named
    /// by the routing key.
    async fn publish(&self, exchange: &str, routing_key: &str, message: Message) -> Result<()>;
    /// Publishes many messages with one confirm round (one group commit).
    async fn publish_batch(&self, exchange: &str, items: Vec<(String, Message)>) -> Result<()>;
    async fn consume(&self, queue: &str, opts: ConsumeOptions) -> Result<Consumer>;
    /// Closes connections and cancels every consumer.
    async fn close(&self);
    /// `"embedded"` or `"amqp"`.
    fn backend(&self) -> &'static str;
}
