//! OIH's control-plane event bus (`@openintegrationhub/event-bus`) on any [`MessageBus`]:
//! topic exchange `event-bus`, routing key = event name, JSON envelope
//! `{"headers":{"name","createdAt","serviceName"},"payload":…}`, one durable queue per service
//! named after it and bound once per subscribed topic.
//!
//! Unlike OIH, a nack dead-letters instead of dropping: each service queue has
//! `x-dead-letter-exchange: event-bus.deadletter` and `x-dead-letter-routing-key: <service>`,
//! and the queue `<service>.deadletter` keeps what the service rejected or could not parse.

use std::sync::Arc;

use oih_core::Event;

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
        Ok(EventStream { consumer })
    }
}

/// Events delivered to one service.
pub struct EventStream {
    consumer: Consumer,
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
