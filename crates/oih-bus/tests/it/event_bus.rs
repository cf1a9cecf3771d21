//! OIH's event bus on each backend: the wire envelope, per-service queues with topic patterns,
//! competing replicas, dead-lettering where OIH would drop, and the services' consume loop.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use oih_bus::{
    ConsumeOptions, EventBus, EventFailure, EventHandler, EventStream, Message, event_bus,
};
use oih_core::Event;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::{ARRIVES_WITHIN, Fixture, QUIET_FOR, recv, unique};

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

/// A handler that follows the script in each event's payload: `{"id", "script": [..]}` where
/// attempt n of that event ends as `script[n]` (the last entry repeats): `"done"`, `"retry"`
/// or `"dead"`. It reports every attempt as `(id, step)`. `PAUSE_MS` is its retry delay.
struct Scripted<const PAUSE_MS: u64> {
    attempts: Mutex<HashMap<String, usize>>,
    seen: mpsc::UnboundedSender<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
enum ScriptedFailure {
    #[error("scripted: for good")]
    ForGood,
    #[error("scripted: for now")]
    ForNow,
}

impl EventFailure for ScriptedFailure {
    fn is_permanent(&self) -> bool {
        matches!(self, Self::ForGood)
    }
}

impl<const PAUSE_MS: u64> EventHandler for Scripted<PAUSE_MS> {
    const RETRY_DELAY: Duration = Duration::from_millis(PAUSE_MS);
    type Error = ScriptedFailure;

    async fn handle(&self, event: &Event) -> Result<(), ScriptedFailure> {
        let id = event.payload["id"].as_str().unwrap_or_default().to_owned();
        let script = event.payload["script"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let attempt = {
            let mut attempts = self.attempts.lock().expect("attempts lock");
            let n = attempts.entry(id.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let step = script
            .get(attempt.min(script.len().saturating_sub(1)))
            .and_then(Value::as_str)
            .unwrap_or("done")
            .to_owned();
        let _ = self.seen.send((id, step.clone()));
        match step.as_str() {
            "retry" => Err(ScriptedFailure::ForNow),
            "dead" => Err(ScriptedFailure::ForGood),
            _ => Ok(()),
        }
    }
}

/// Runs `stream.consume_with` on a [`Scripted`] handler in a task; returns what it reports.
fn spawn_scripted<const PAUSE_MS: u64>(
    stream: EventStream,
    cancel: &CancellationToken,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<(String, String)>,
) {
    let (seen, reports) = mpsc::unbounded_channel();
    let handler = Scripted::<PAUSE_MS> {
        attempts: Mutex::default(),
        seen,
    };
    let task = tokio::spawn(stream.consume_with(handler, cancel.clone()));
    (task, reports)
}

async fn next_report(
    reports: &mut mpsc::UnboundedReceiver<(String, String)>,
) -> Result<(String, String)> {
    tokio::time::timeout(ARRIVES_WITHIN, reports.recv())
        .await
        .context("the handler was not called in time")?
        .context("the consume loop ended")
}

pub async fn consume_loop_acks_retries_and_dead_letters(f: &Fixture) -> Result<()> {
    let topic = unique("consume");
    let name = service(f, "consumer");
    let bus = EventBus::new(f.bus.clone(), name.clone()).await?;
    let stream = bus.subscribe(&[&format!("{topic}.#")], 10).await?;
    let cancel = CancellationToken::new();
    let (task, mut reports) = spawn_scripted::<10>(stream, &cancel);

    let scripts = [
        ("ok", json!(["done"])),
        ("flaky", json!(["retry", "retry", "done"])),
        ("bad", json!(["dead"])),
    ];
    for (id, script) in &scripts {
        bus.publish(Event::new(
            format!("{topic}.{id}"),
            json!({"id": id, "script": script}),
        ))
        .await?;
    }
    let mut steps: HashMap<String, Vec<String>> = HashMap::new();
    while steps.values().map(Vec::len).sum::<usize>() < 5 {
        let (id, step) = next_report(&mut reports).await?;
        steps.entry(id).or_default().push(step);
    }
    ensure!(steps["ok"] == ["done"], "{steps:?}");
    ensure!(steps["flaky"] == ["retry", "retry", "done"], "{steps:?}");
    ensure!(steps["bad"] == ["dead"], "{steps:?}");

    let mut dead = f
        .bus
        .consume(&format!("{name}.deadletter"), ConsumeOptions::default())
        .await?;
    let dead_one = recv(&mut dead).await?;
    ensure!(String::from_utf8_lossy(dead_one.body()).contains(&format!("{topic}.bad")));
    dead_one.ack().await?;

    cancel.cancel();
    tokio::time::timeout(ARRIVES_WITHIN, task).await??;
    // Acknowledged events do not come back to the service's next consumer.
    let mut again = bus.subscribe(&[&format!("{topic}.#")], 10).await?;
    ensure!(
        tokio::time::timeout(QUIET_FOR, again.next()).await.is_err(),
        "a handled event was delivered again"
    );
    Ok(())
}

pub async fn cancelling_cuts_the_retry_pause_and_keeps_the_event(f: &Fixture) -> Result<()> {
    let topic = unique("consume");
    let name = service(f, "consumer");
    let bus = EventBus::new(f.bus.clone(), name).await?;
    let stream = bus.subscribe(&[&format!("{topic}.#")], 10).await?;
    let cancel = CancellationToken::new();
    // A pause far longer than the test may wait: only cancellation can end it.
    let (task, mut reports) = spawn_scripted::<3_600_000>(stream, &cancel);

    bus.publish(Event::new(
        format!("{topic}.flaky"),
        json!({"id": "flaky", "script": ["retry"]}),
    ))
    .await?;
    ensure!(next_report(&mut reports).await? == ("flaky".into(), "retry".into()));
    cancel.cancel();
    tokio::time::timeout(ARRIVES_WITHIN, task)
        .await
        .context("the consume loop did not stop when cancelled")??;

    let mut again = bus.subscribe(&[&format!("{topic}.#")], 10).await?;
    let back = tokio::time::timeout(ARRIVES_WITHIN, again.next())
        .await?
        .context("stream ended")?;
    ensure!(back.event.payload["id"] == "flaky");
    ensure!(back.redelivered());
    back.ack().await?;
    Ok(())
}

pub async fn consume_loop_ends_when_the_bus_closes(f: &Fixture) -> Result<()> {
    let topic = unique("consume");
    let bus = EventBus::new(f.bus.clone(), service(f, "consumer")).await?;
    let stream = bus.subscribe(&[&format!("{topic}.#")], 10).await?;
    let cancel = CancellationToken::new();
    let (task, _reports) = spawn_scripted::<10>(stream, &cancel);
    f.bus.close().await;
    tokio::time::timeout(ARRIVES_WITHIN, task)
        .await
        .context("the consume loop outlived the bus")??;
    Ok(())
}
