//! RabbitMQ backend (lapin).
//!
//! - One connection. Publishes go through one confirm-mode channel and return once the broker
//!   confirmed them; admin operations use a small pool of channels (a refused declaration
//!   closes its channel, so a failing operation never disturbs the others); each consumer has
//!   its own channel, so prefetch and unacked deliveries are per consumer.
//! - Reconnect: when the connection drops, a supervisor reconnects with back-off, declares
//!   every exchange, queue and binding this bus declared again, and consumers resubscribe
//!   behind the same [`Consumer`]. Operations issued meanwhile wait for the new connection (up
//!   to [`AmqpOptions::reconnect_timeout`]) and are retried; a publish is only reported Ok
//!   once a broker confirmed it, so a message may be delivered twice but is never lost
//!   silently. Deliveries received on the old connection can no longer be settled (settling
//!   returns an error); the broker delivers them again.

mod consumer;
mod convert;
mod link;
mod topology;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::Channel;
use lapin::options::{QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::FieldTable;
use tokio::time::Instant;

use crate::{
    BusError, ConsumeOptions, Consumer, ExchangeKind, Message, MessageBus, QueueOptions, Result,
};
use convert::{bus_error, short, to_basic_properties};
use link::{Inner, Outgoing};
use topology::{Binding, Op};

/// Pause before publishing again on a fresh channel after the publish channel died under a
/// live connection, so a persistent fault does not spin.
const REPUBLISH_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// The name RabbitMQ shows for the connection (management UI, `rabbitmqctl
    /// list_connections client_properties`).
    pub connection_name: String,
    /// How long an operation waits for a lost connection to come back before it fails.
    pub reconnect_timeout: Duration,
    /// First and longest pause between reconnect attempts (doubling in between).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long one request may wait for the broker's answer (a declaration, a publisher
    /// confirm, opening a channel, the handshake). A broker that stays silent longer is taken
    /// for lost: the connection is replaced and the request retried on the new one, within
    /// `reconnect_timeout`. Without it, one unanswered request would hold its caller forever.
    pub answer_timeout: Duration,
    /// Confirm channels publishes are spread over, so concurrent publishers do not queue
    /// behind each other (each `publish`/`publish_batch` uses one).
    pub publish_channels: usize,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        Self {
            connection_name: "oih".into(),
            reconnect_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            answer_timeout: Duration::from_secs(15),
            publish_channels: 4,
        }
    }
}

pub struct AmqpBus {
    inner: Arc<Inner>,
}

impl AmqpBus {
    /// Connects to `url` (`amqp://user:pass@host:5672/%2f`). The first connection is tried
    /// once, so a wrong URL fails here; later losses are reconnected.
    pub async fn connect(url: &str, opts: AmqpOptions) -> Result<Arc<AmqpBus>> {
        let inner = Inner::start(url, opts).await?;
        Ok(Arc::new(AmqpBus { inner }))
    }

    /// Closes the current connection from our side, as a broker restart would, to exercise
    /// reconnection (tests, drills). The bus reconnects on its own.
    pub async fn force_reconnect(&self) {
        if let Some(link) = self.inner.current() {
            link.close(320, "forced reconnect").await;
            self.inner.lost();
        }
    }

    /// Which connection the bus is on: 1 for the first, +1 per reconnect; 0 while
    /// disconnected.
    pub fn connection_generation(&self) -> u64 {
        self.inner.current().map_or(0, |link| link.generation)
    }

    /// Runs `op` on an admin channel of the current connection (see `Inner::on_link`).
    async fn admin<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = lapin::Result<T>>,
    {
        let op = &op;
        self.inner
            .on_link(|link| async move { link.admin(op).await })
            .await
    }

    /// Applies a topology change and records it for replay after a reconnect.
    async fn change(&self, op: Op) -> Result<u64> {
        let op_ref = &op;
        let result = self
            .admin(|channel| async move { op_ref.run(&channel).await })
            .await;
        if result.is_ok() {
            self.inner.topology().record(&op);
        }
        result
    }

    async fn publish_all(&self, exchange: &str, items: Vec<(String, Message)>) -> Result<()> {
        let exchange = short(exchange, "an exchange name")?;
        let outgoing = items
            .into_iter()
            .map(|(routing_key, message)| {
                Ok(Outgoing {
                    routing_key: short(&routing_key, "a routing key")?,
                    properties: to_basic_properties(&message.properties)?,
                    body: message.body,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let deadline = self.inner.deadline();
        let mut pending: Vec<usize> = (0..outgoing.len()).collect();
        let mut after = 0;
        while !pending.is_empty() {
            let link = self.inner.link(after, Some(deadline)).await?;
            let sent = link.publish(&exchange, &outgoing, &pending).await;
            if sent.nacked > 0 {
                return Err(BusError::NotConfirmed);
            }
            pending = sent.unconfirmed;
            let Some(error) = sent.error else { continue };
            if !link.is_up() {
                self.inner.lost();
                after = link.generation;
                continue;
            }
            let error = bus_error(&error);
            // Publishing to a missing exchange closes the channel with 404. If it names our
            // exchange it is our answer; otherwise another publisher's mistake closed the
            // shared channel and ours go again on a fresh one.
            let ours =
                matches!(&error, BusError::ExchangeNotFound(name) if name == exchange.as_str());
            if ours || Instant::now() >= deadline {
                return Err(error);
            }
            after = link.generation - 1;
            tokio::time::sleep(REPUBLISH_PAUSE).await;
        }
        Ok(())
    }
}

impl Drop for AmqpBus {
    fn drop(&mut self) {
        // The supervisor and consumer tasks hold `inner`; this lets them end and close the
        // connection even if nobody called close().
        self.inner.shutdown.cancel();
    }
}

#[async_trait]
impl MessageBus for AmqpBus {
    async fn declare_exchange(&self, name: &str, kind: ExchangeKind) -> Result<()> {
        let op = Op::DeclareExchange(short(name, "an exchange name")?, kind);
        self.change(op).await.map(drop)
    }

    async fn delete_exchange(&self, name: &str) -> Result<()> {
        let op = Op::DeleteExchange(short(name, "an exchange name")?);
        match self.change(op.clone()).await {
            Ok(_) => Ok(()),
            // Deleting what does not exist is a no-op in our contract.
            Err(BusError::ExchangeNotFound(_)) => {
                self.inner.topology().record(&op);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn declare_queue(&self, name: &str, opts: &QueueOptions) -> Result<()> {
        self.change(Op::declare_queue(name, opts)?).await.map(drop)
    }

    async fn delete_queue(&self, name: &str) -> Result<u64> {
        self.change(Op::DeleteQueue(short(name, "a queue name")?))
            .await
    }

    async fn purge_queue(&self, name: &str) -> Result<u64> {
        let queue = short(name, "a queue name")?;
        let count = self
            .admin(|channel| {
                let queue = queue.clone();
                async move {
                    channel
                        .queue_purge(queue, QueuePurgeOptions::default())
                        .await
                }
            })
            .await?;
        Ok(u64::from(count))
    }

    async fn queue_len(&self, name: &str) -> Result<u64> {
        let queue = short(name, "a queue name")?;
        // A passive declare only reports on an existing queue (404 otherwise).
        let opts = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = self
            .admin(|channel| {
                let queue = queue.clone();
                async move {
                    channel
                        .queue_declare(queue, opts, FieldTable::default())
                        .await
                }
            })
            .await?;
        Ok(u64::from(declared.message_count()))
    }

    async fn bind_queue(&self, queue: &str, exchange: &str, pattern: &str) -> Result<()> {
        let op = Op::BindQueue(Binding::new(queue, exchange, pattern)?);
        self.change(op).await.map(drop)
    }

    async fn unbind_queue(&self, queue: &str, exchange: &str, pattern: &str) -> Result<()> {
        let op = Op::UnbindQueue(Binding::new(queue, exchange, pattern)?);
        self.change(op).await.map(drop)
    }

    async fn bind_exchange(&self, destination: &str, source: &str, pattern: &str) -> Result<()> {
        let op = Op::BindExchange(Binding::new(destination, source, pattern)?);
        self.change(op).await.map(drop)
    }

    async fn unbind_exchange(&self, destination: &str, source: &str, pattern: &str) -> Result<()> {
        let op = Op::UnbindExchange(Binding::new(destination, source, pattern)?);
        self.change(op).await.map(drop)
    }

    async fn publish(&self, exchange: &str, routing_key: &str, message: Message) -> Result<()> {
        self.publish_all(exchange, vec![(routing_key.to_string(), message)])
            .await
    }

    async fn publish_batch(&self, exchange: &str, items: Vec<(String, Message)>) -> Result<()> {
        self.publish_all(exchange, items).await
    }

    async fn consume(&self, queue: &str, opts: ConsumeOptions) -> Result<Consumer> {
        let queue = short(queue, "a queue name")?;
        let subscription = {
            let queue = &queue;
            self.inner
                .on_link(|link| consumer::subscribe(link, queue, opts.prefetch))
                .await?
        };
        Ok(consumer::start(
            self.inner.clone(),
            queue,
            opts.prefetch,
            subscription,
        ))
    }

    async fn close(&self) {
        self.inner.close().await;
    }

    fn backend(&self) -> &'static str {
        "amqp"
    }
}
