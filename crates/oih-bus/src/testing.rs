//! Helpers for the services' event tests (public on purpose; nothing here is used in
//! production paths).

use std::sync::Arc;
use std::time::Duration;

use oih_core::Event;
use serde_json::Value;

use crate::{EventBus, EventStream, MessageBus};

/// Publishes event `name` on `bus` as `service` would.
pub async fn publish_as(bus: Arc<dyn MessageBus>, service: &str, name: &str, payload: Value) {
    EventBus::new(bus, service)
        .await
        .expect("event bus")
        .publish(Event::new(name, payload))
        .await
        .expect("publish");
}

/// The next event called `name` on `stream`; the events before it are acknowledged and
/// skipped. Panics if none comes within `within`.
pub async fn next_named(stream: &mut EventStream, name: &str, within: Duration) -> Event {
    let wait = async {
        loop {
            let received = stream.next().await.expect("bus open");
            let event = received.event.clone();
            received.ack().await.expect("ack");
            if event.name() == name {
                return event;
            }
        }
    };
    tokio::time::timeout(within, wait)
        .await
        .unwrap_or_else(|_| panic!("no {name} event within {within:?}"))
}
