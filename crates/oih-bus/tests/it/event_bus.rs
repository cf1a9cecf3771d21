//! OIH's event bus on each backend: the wire envelope, per-service queues with topic patterns,
//! competing replicas, and dead-lettering where OIH would drop.

use anyhow::{Result, ensure};
use oih_bus::{ConsumeOptions, EventBus, Message, event_bus};
use oih_core::Event;
use serde_json::{Value, json};

use crate::support::{Fixture, QUIET_FOR, recv, unique};

/// A service name unique to the test, with its two queues registered for cleanup.
fn service(f: &Fixture, label: &str) -> String {
    let name = unique(label);
    f.track_queue(&name);
    f.track_queue(&format!("{name}.deadletter"));
    name
}

pub async fn events_carry_oih_envelope_and_routing_key(f: &Fixture) -> Result<()> {
    let topic = unique("flow");
    let publisher = EventBus::new(f.bus.clone(), "flow-repository").await?;
    let subscriber = EventBus::new(f.bus.clone(), service(f, "orchestrator")).await?;
    let mut stream = subscriber.subscribe(&[&format!("{topic}.*")], 10).await?;

    publisher
        .publish(Event::new(
            format!("{topic}.starting"),
            json!({"id": "f1", "startedBy": "u1"}),
        ))
        .await?;
    let received = tokio::time::timeout(crate::support::ARRIVES_WITHIN, stream.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("stream ended"))?;
    ensure!(received.event.name() == format!("{topic}.starting"));
    ensure!(received.event.headers.service_name == "flow-repository");
    ensure!(received.event.headers.created_at > 0);
    ensure!(received.event.payload == json!({"id": "f1", "startedBy": "u1"}));
    received.ack().await?;

    // The raw wire form is OIH's: headers.name is the routing key, body is the envelope.
    let raw = f.queue("raw", &Default::default()).await?;
    f.bus
        .bind_queue(&raw, event_bus::EXCHANGE, &format!("{topic}.#"))
        .await?;
    publisher
        .publish(Event::new(format!("{topic}.stopped"), json!({"id": "f1"})))
        .await?;
    let mut consumer = f.bus.consume(&raw, ConsumeOptions::default()).await?;
    let d = recv(&mut consumer).await?;
    ensure!(d.routing_key == format!("{topic}.stopped"));
    let wire: Value = serde_json::from_slice(d.body())?;
    ensure!(wire["headers"]["name"] == json!(format!("{topic}.stopped")));
    ensure!(wire["headers"]["serviceName"] == json!("flow-repository"));
    ensure!(wire["headers"]["createdAt"].is_i64());
    ensure!(wire["payload"] == json!({"id": "f1"}));
    d.ack().await?;
    Ok(())
}

pub async fn unsubscribed_topics_are_not_delivered(f: &Fixture) -> Result<()> {
    let topic = unique("iam");
    let bus = EventBus::new(f.bus.clone(), service(f, "audit")).await?;
    let mut stream = bus
        .subscribe(&[&format!("{topic}.user.deleted")], 10)
        .await?;
    bus.publish(Event::new(format!("{topic}.user.created"), json!({})))
        .await?;
    bus.publish(Event::new(
        format!("{topic}.user.deleted"),
        json!({"user": "u1"}),
    ))
    .await?;
    let got = tokio::time::timeout(crate::support::ARRIVES_WITHIN, stream.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("stream ended"))?;
    ensure!(got.event.name() == format!("{topic}.user.deleted"));
    got.ack().await?;
    ensure!(
        tokio::time::timeout(QUIET_FOR, stream.next())
            .await
            .is_err(),
        "an unsubscribed event arrived"
    );
    Ok(())
}

pub async fn nacked_and_unparseable_events_are_dead_lettered(f: &Fixture) -> Result<()> {
    let topic = unique("secrets");
    let name = service(f, "webhooks");
    let bus = EventBus::new(f.bus.clone(), name.clone()).await?;
    let mut stream = bus.subscribe(&[&format!("{topic}.#")], 10).await?;

    bus.publish(Event::new(
        format!("{topic}.secret.created"),
        json!({"id": "s1"}),
    ))
    .await?;
    let got = tokio::time::timeout(crate::support::ARRIVES_WITHIN, stream.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("stream ended"))?;
    got.nack().await?;
    // Not JSON at all: skipped by the stream, dead-lettered rather than dropped.
    f.bus
        .publish(
            event_bus::EXCHANGE,
            &format!("{topic}.garbage"),
            Message::new("not json"),
        )
        .await?;
    ensure!(
        tokio::time::timeout(QUIET_FOR, stream.next())
            .await
            .is_err(),
        "garbage reached the handler"
    );

    let mut dead = f
        .bus
        .consume(&format!("{name}.deadletter"), ConsumeOptions::default())
        .await?;
    let first = recv(&mut dead).await?;
    let second = recv(&mut dead).await?;
    let mut bodies = vec![
        String::from_utf8_lossy(first.body()).into_owned(),
        String::from_utf8_lossy(second.body()).into_owned(),
    ];
    bodies.sort();
    ensure!(bodies[0] == "not json", "{bodies:?}");
    ensure!(bodies[1].contains("secret.created"), "{bodies:?}");
    first.ack().await?;
    second.ack().await?;
    Ok(())
}

pub async fn replicas_of_a_service_compete(f: &Fixture) -> Result<()> {
    let topic = unique("flow");
    let name = service(f, "scheduler");
    let a = EventBus::new(f.bus.clone(), name.clone()).await?;
    let b = EventBus::new(f.bus.clone(), name).await?;
    let pattern = format!("{topic}.started");
    let mut stream_a = a.subscribe(&[&pattern], 1).await?;
    let mut stream_b = b.subscribe(&[&pattern], 1).await?;
    for i in 0..10 {
        a.publish(Event::new(pattern.clone(), json!({"id": i})))
            .await?;
    }
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let next = tokio::select! {
            e = stream_a.next() => e,
            e = stream_b.next() => e,
            () = tokio::time::sleep(crate::support::ARRIVES_WITHIN) => None,
        };
        let event =
            next.ok_or_else(|| anyhow::anyhow!("only {} of 10 events arrived", seen.len()))?;
        seen.push(event.event.payload["id"].as_i64().unwrap_or(-1));
        event.ack().await?;
    }
    seen.sort_unstable();
    ensure!(
        seen == (0..10).collect::<Vec<i64>>(),
        "each event exactly once across replicas: {seen:?}"
    );
    Ok(())
}

pub async fn an_event_without_a_name_is_refused(f: &Fixture) -> Result<()> {
    let bus = EventBus::new(f.bus.clone(), "nameless").await?;
    ensure!(bus.publish(Event::new("", json!({}))).await.is_err());
    Ok(())
}
