//! OIH's control-plane event bus (`@openintegrationhub/event-bus`) on any [`MessageBus`]:
//! topic exchange `event-bus`, routing key = event name, JSON envelope
//! `{"headers":{"name","createdAt","serviceName"},"payload":…}`, one durable queue per service
//! named after it and bound once per subscribed topic.
//!
//! Unlike OIH, a nack dead-letters instead of dropping: each service queue has
//! `x-dead-letter-exchange: event-bus.deadletter` and `x-dead-letter-routing-key: <service>`,
//! and the queue `<service>.deadletter` keeps what the service rejected or could not parse.
//!
//! [`EventStream::consume_with`] is the one consume loop every service's worker runs, so that
//! acknowledging, retrying and dead-lettering mean the same everywhere.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use oih_core::Event;
use tokio_util::sync::CancellationToken;

use crate::{
    BusError, ConsumeOptions, Consumer, Delivery, ExchangeKind, Message, MessageBus, QueueOptions,
    Result,
};

pub const EXCHANGE: &str = "event-bus";
pub const DEAD_LETTER_EXCHANGE: &str = "event-bus.deadletter";

/// A service's handle on the event bus.
#[derive(Clone)]
pub struct EventBus {
    bus: Arc<dyn MessageBus>,
    service: String,
}

impl EventBus {
    /// Declares the `event-bus` exchange; `service` names this service's queue and is stamped
    /// as `serviceName` on what it publishes.
    pub async fn new(bus: Arc<dyn MessageBus>, service: impl Into<String>) -> Result<Self> {
        bus.declare_exchange(EXCHANGE, ExchangeKind::Topic).await?;
        Ok(Self {
            bus,
            service: service.into(),
        })
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// The message that publishing `event` puts on the wire.
    pub fn encode(&self, mut event: Event) -> Message {
        event.headers.service_name = self.service.clone();
        if event.headers.created_at == 0 {
            event.headers.created_at = chrono::Utc::now().timestamp_millis();
        }
        // An Event is plain JSON data; serialising it cannot fail.
        Message::new(serde_json::to_vec(&event).unwrap_or_default())
    }

    /// Publishes with the event's name as routing key; returns once the bus confirmed it.
    pub async fn publish(&self, event: Event) -> Result<()> {
        if event.name().is_empty() {
            return Err(BusError::Invalid(
                "an event needs a name: it is the routing key".into(),
            ));
        }
        let key = event.name().to_owned();
        self.bus.publish(EXCHANGE, &key, self.encode(event)).await
    }

    /// Declares this service's queue (and its dead-letter queue), binds it to each topic
    /// (patterns such as `flow.*` or `#` allowed) and starts consuming.
    pub async fn subscribe(&self, topics: &[&str], prefetch: u16) -> Result<EventStream> {
        let queue = self.service.as_str();
        let dead = format!("{queue}.deadletter");
        self.bus
            .declare_exchange(DEAD_LETTER_EXCHANGE, ExchangeKind::Direct)
            .await?;
        self.bus
            .declare_queue(&dead, &QueueOptions::default())
            .await?;
        self.bus
            .bind_queue(&dead, DEAD_LETTER_EXCHANGE, queue)
            .await?;
        let opts = QueueOptions {
            dead_letter_exchange: Some(DEAD_LETTER_EXCHANGE.into()),
            dead_letter_routing_key: Some(queue.into()),
            message_ttl: None,
        };
        self.bus.declare_queue(queue, &opts).await?;
        for topic in topics {
            self.bus.bind_queue(queue, EXCHANGE, topic).await?;
        }
        let consumer = self.bus.consume(queue, ConsumeOptions { prefetch }).await?;
        Ok(EventStream {
            consumer,
            queue: queue.to_owned(),
        })
    }
}

impl EventBus {
    /// Unbinds this service's queue from `topics` (bindings of an earlier start persist with
    /// the queue). Events already in the queue stay there.
    pub async fn unsubscribe(&self, topics: &[&str]) -> Result<()> {
        for topic in topics {
            self.bus
                .unbind_queue(&self.service, EXCHANGE, topic)
                .await?;
        }
        Ok(())
    }
}

/// Events delivered to one service.
pub struct EventStream {
    consumer: Consumer,
    /// Named in the consume loop's logs: in one process every service logs the same events.
    queue: String,
}

impl EventStream {
    /// The next well-formed event. Messages that are not an event envelope are dead-lettered
    /// (OIH acks and drops them) and skipped. None once the bus closes.
    pub async fn next(&mut self) -> Option<ReceivedEvent> {
        loop {
            let delivery = self.consumer.next().await?;
            match serde_json::from_slice::<Event>(delivery.body()) {
                Ok(event) => return Some(ReceivedEvent { event, delivery }),
                Err(err) => {
                    tracing::warn!(routing_key = %delivery.routing_key, error = %err, "unparseable event dead-lettered");
                    if let Err(err) = delivery.reject().await {
                        tracing::warn!(error = %err, "could not dead-letter an unparseable event");
                    }
                }
            }
        }
    }

    /// Hands the events to `handler` one at a time until `cancel` fires or the bus closes:
    /// a handled event is acknowledged; one that failed for good is dead-lettered; one that
    /// may succeed later is requeued after [`EventHandler::RETRY_DELAY`], so that a store or
    /// bus outage is no busy loop. Cancelling cuts that pause short; the event is still
    /// requeued, so nothing is lost at shutdown.
    pub async fn consume_with<H: EventHandler>(mut self, handler: H, cancel: CancellationToken) {
        loop {
            let received = tokio::select! {
                () = cancel.cancelled() => return,
                next = self.next() => match next {
                    Some(received) => received,
                    None => return,
                },
            };
            let name = received.event.name().to_owned();
            let settled = match handler.handle(&received.event).await {
                Ok(()) => received.ack().await,
                Err(err) if err.is_permanent() => {
                    tracing::warn!(queue = %self.queue, event = %name, error = %err, "event dead-lettered");
                    received.nack().await
                }
                Err(err) => {
                    tracing::warn!(queue = %self.queue, event = %name, error = %err, "event handling failed; will retry");
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = tokio::time::sleep(H::RETRY_DELAY) => {}
                    }
                    received.retry().await
                }
            };
            // Settling fails only when the connection is gone; the broker then redelivers the
            // unacknowledged event by itself.
            if let Err(err) = settled {
                tracing::warn!(queue = %self.queue, event = %name, error = %err, "could not settle an event");
            }
        }
    }
}

/// A service's reaction to the events of its queue, run by [`EventStream::consume_with`].
pub trait EventHandler: Send + Sync {
    /// How long an event whose handling may succeed later waits before it is requeued.
    const RETRY_DELAY: Duration = Duration::from_millis(500);

    type Error: EventFailure;

    /// Handles one event; Ok acknowledges it. Redeliveries happen (at-least-once), so handling
    /// must be idempotent.
    fn handle(&self, event: &Event) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Why an [`EventHandler`] could not handle an event.
pub trait EventFailure: Display + Send {
    /// True when handling the same event again can never succeed (a malformed payload, a
    /// write the store refuses): it is dead-lettered to `<service>.deadletter`. False when a
    /// later attempt may (the store or the bus was away): it is retried.
    fn is_permanent(&self) -> bool;
}

/// An event with its delivery, to be acknowledged once handled.
#[derive(Debug)]
pub struct ReceivedEvent {
    pub event: Event,
    delivery: Delivery,
}

impl ReceivedEvent {
    pub fn redelivered(&self) -> bool {
        self.delivery.redelivered
    }

    pub async fn ack(self) -> Result<()> {
        self.delivery.ack().await
    }

    /// Handling failed for good: the event goes to `<service>.deadletter`.
    pub async fn nack(self) -> Result<()> {
        self.delivery.reject().await
    }

    /// Handling failed for now (for example the store is briefly down): deliver it again.
    pub async fn retry(self) -> Result<()> {
        self.delivery.requeue().await
    }
}
