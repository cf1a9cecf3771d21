//! Behaviour only the RabbitMQ backend has: surviving connection loss.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use oih_bus::amqp::{AmqpBus, AmqpOptions};
use oih_bus::{BusError, ConsumeOptions, ExchangeKind, Message, MessageBus, QueueOptions};
use tokio::time::Instant;

use crate::backends::{amqp_bus, amqp_bus_with, amqp_url};
use crate::proxy::{Proxy, split_amqp_url};
use crate::support::{Fixture, expect_nothing, guarded, recv, text, unique};

const RECONNECT_WITHIN: Duration = Duration::from_secs(15);

fn quick_reconnect(name: &str) -> AmqpOptions {
    AmqpOptions {
        connection_name: name.to_string(),
        reconnect_timeout: Duration::from_secs(20),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(250),
        ..AmqpOptions::default()
    }
}

async fn wait_for_generation(bus: &AmqpBus, at_least: u64) -> Result<()> {
    let deadline = Instant::now() + RECONNECT_WITHIN;
    while bus.connection_generation() < at_least {
        ensure!(
            Instant::now() < deadline,
            "no reconnect within {RECONNECT_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn wait_until_down(bus: &AmqpBus) -> Result<()> {
    let deadline = Instant::now() + RECONNECT_WITHIN;
    while bus.connection_generation() != 0 {
        ensure!(
            Instant::now() < deadline,
            "the bus did not notice the outage"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn rabbitmqctl(args: &[&str]) -> Result<String> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .context("running rabbitmqctl")?;
    ensure!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn rabbitmqctl_available() -> bool {
    rabbitmqctl(&["-q", "version"]).is_ok()
}

/// Has the broker itself close our connection (CONNECTION_FORCED, as on a broker shutdown).
/// The connection is found by the name we gave it.
async fn broker_closes_connection(connection_name: String) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let list = rabbitmqctl(&[
                "-q",
                "list_connections",
                "--no-table-headers",
                "pid",
                "client_properties",
            ])?;
            let pid = list
                .lines()
                .find(|line| line.contains(&connection_name))
                .and_then(|line| line.split_whitespace().next());
            if let Some(pid) = pid {
                rabbitmqctl(&["-q", "close_connection", pid, "test: broker-side close"])?;
                return Ok(());
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "connection {connection_name} not listed by rabbitmqctl"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_broker_closing_the_connection() -> Result<()> {
    if amqp_url().is_none() {
        return Ok(());
    }
    if !rabbitmqctl_available() {
        eprintln!("skipping: rabbitmqctl not available to close a connection broker-side");
        return Ok(());
    }
    let name = unique("conn");
    let Some(bus) = amqp_bus_with(quick_reconnect(&name)).await else {
        return Ok(());
    };
    let f = Fixture::new(bus.clone());
    guarded(&f, broker_close_case(&f, &bus, name), amqp_bus).await
}

async fn broker_close_case(f: &Fixture, bus: &AmqpBus, name: String) -> Result<()> {
    let x = f.exchange("survive", ExchangeKind::Topic).await?;
    let q = f.bound_queue("survive", &x, "k.#").await?;
    let mut c = bus.consume(&q, ConsumeOptions { prefetch: 10 }).await?;
    bus.publish(&x, "k.1", Message::new("before")).await?;
    let held = recv(&mut c).await?;

    broker_closes_connection(name).await?;
    wait_for_generation(bus, 2).await?;

    // The delivery belongs to the dead connection: settling it fails (without panicking)...
    ensure!(
        held.ack().await.is_err(),
        "an ack on a dead channel cannot have succeeded"
    );
    // ...and the broker hands it out again, to the same Consumer.
    let again = recv(&mut c).await?;
    assert_eq!(text(&again), "before");
    assert!(again.redelivered);
    again.ack().await?;

    bus.publish(&x, "k.2", Message::new("after")).await?;
    let d = recv(&mut c).await?;
    assert_eq!(text(&d), "after");
    d.ack().await?;
    expect_nothing(&mut c).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_reconnect_keeps_the_consumer_stream() -> Result<()> {
    let Some(bus) = amqp_bus_with(quick_reconnect(&unique("force"))).await else {
        return Ok(());
    };
    let f = Fixture::new(bus.clone());
    guarded(&f, force_reconnect_case(&f, &bus), amqp_bus).await
}

async fn force_reconnect_case(f: &Fixture, bus: &AmqpBus) -> Result<()> {
    let q = f.queue("force", &QueueOptions::default()).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    for round in 0..3 {
        bus.force_reconnect().await;
        wait_for_generation(bus, round + 2).await?;
        bus.publish("", &q, Message::new(format!("round {round}")))
            .await?;
        let d = recv(&mut c).await?;
        assert_eq!(text(&d), format!("round {round}"));
        d.ack().await?;
    }
    Ok(())
}

/// A bus that reaches RabbitMQ through a proxy that can simulate an outage, and a second,
/// direct bus to look at (and tamper with) the broker meanwhile.
struct Outage {
    proxy: Proxy,
    bus: Arc<AmqpBus>,
}

/// `query` is appended to the URL (e.g. `?heartbeat=1`).
async fn through_proxy(opts: AmqpOptions, query: &str) -> Result<Option<Outage>> {
    let Some(url) = amqp_url() else {
        return Ok(None);
    };
    let Some((prefix, upstream, rest)) = split_amqp_url(&url) else {
        bail!("cannot parse {url}");
    };
    let proxy = Proxy::start(upstream).await?;
    let url = format!("{prefix}{}{rest}{query}", proxy.addr);
    let bus = AmqpBus::connect(&url, opts).await?;
    Ok(Some(Outage { proxy, bus }))
}

/// A broker restart that lost the topology: after reconnecting, the bus declares its exchange,
/// queue (with the same arguments) and binding again, resubscribes its consumer, and a
/// publish issued during the outage completes once the broker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_restores_topology_consumers_and_pending_publishes() -> Result<()> {
    let Some(outage) = through_proxy(quick_reconnect(&unique("outage")), "").await? else {
        return Ok(());
    };
    let Some(direct) = amqp_bus().await else {
        return Ok(());
    };
    let f = Fixture::new(direct);
    guarded(&f, outage_case(&f, &outage), amqp_bus).await?;
    outage.bus.close().await;
    Ok(())
}

async fn outage_case(f: &Fixture, outage: &Outage) -> Result<()> {
    let bus = &outage.bus;
    let x = f.exchange_name("outage");
    let q = f.queue_name("outage");
    let opts = QueueOptions {
        message_ttl: Some(Duration::from_secs(600)),
        ..QueueOptions::default()
    };
    bus.declare_exchange(&x, ExchangeKind::Topic).await?;
    bus.declare_queue(&q, &opts).await?;
    bus.bind_queue(&q, &x, "k.#").await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    bus.publish(&x, "k.1", Message::new("before")).await?;
    recv(&mut c).await?.ack().await?;

    outage.proxy.cut();
    wait_until_down(bus).await?;
    // The "restarted broker" lost everything.
    f.bus.delete_queue(&q).await?;
    f.bus.delete_exchange(&x).await?;

    let pending = tokio::spawn({
        let bus = bus.clone();
        let x = x.clone();
        async move { bus.publish(&x, "k.2", Message::new("during")).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        !pending.is_finished(),
        "a publish during the outage cannot have been confirmed"
    );
    outage.proxy.restore();
    tokio::time::timeout(RECONNECT_WITHIN, pending)
        .await
        .context("the pending publish did not complete after the reconnect")???;

    let d = recv(&mut c).await?;
    assert_eq!(text(&d), "during");
    assert!(!d.redelivered);
    d.ack().await?;
    assert!(bus.connection_generation() >= 2);
    // Declared again with the same arguments, not as a default queue.
    f.bus.declare_queue(&q, &opts).await?;
    let err = f.bus.declare_queue(&q, &QueueOptions::default()).await;
    assert!(
        matches!(err, Err(BusError::PreconditionFailed(_))),
        "{err:?}"
    );
    Ok(())
}

/// A broker that stops answering on an open connection (hung, or a half-open TCP link) holds
/// nobody: past the answer timeout the bus takes the connection for lost, reconnects, and the
/// publish and the consumer carry on on the new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_answering_is_replaced() -> Result<()> {
    let opts = AmqpOptions {
        answer_timeout: Duration::from_millis(500),
        ..quick_reconnect(&unique("hung"))
    };
    // Heartbeats (60 s by default) would notice the silence too, but far later.
    let Some(outage) = through_proxy(opts, "").await? else {
        return Ok(());
    };
    let Some(direct) = amqp_bus().await else {
        return Ok(());
    };
    let f = Fixture::new(direct);
    guarded(&f, hung_broker_case(&f, &outage), amqp_bus).await?;
    outage.bus.close().await;
    Ok(())
}

async fn hung_broker_case(f: &Fixture, outage: &Outage) -> Result<()> {
    let bus = &outage.bus;
    let q = f.queue("hung", &QueueOptions::default()).await?;
    // Prefetch 1 and "before" left unacked: the broker cannot hand "after" to the old
    // subscription, stuck on the frozen connection, so it must reach the new one.
    let mut c = bus.consume(&q, ConsumeOptions { prefetch: 1 }).await?;
    bus.publish("", &q, Message::new("before")).await?;
    let before = recv(&mut c).await?;
    assert_eq!(text(&before), "before");

    outage.proxy.freeze();
    let started = Instant::now();
    tokio::time::timeout(RECONNECT_WITHIN, bus.publish("", &q, Message::new("after")))
        .await
        .context("a publish to a silent broker hung")??;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the publish cannot have been confirmed on the frozen connection"
    );
    assert!(
        bus.connection_generation() >= 2,
        "a new connection was made"
    );
    let d = recv(&mut c).await?;
    assert_eq!(
        text(&d),
        "after",
        "the consumer resubscribed on the new connection"
    );
    d.ack().await?;
    drop(before);
    Ok(())
}

/// Every publish that returned Ok is delivered, across an outage in the middle of a stream
/// of publishes (duplicates are allowed: at-least-once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_publishes_survive_an_outage() -> Result<()> {
    let Some(outage) = through_proxy(quick_reconnect(&unique("stream")), "").await? else {
        return Ok(());
    };
    let Some(direct) = amqp_bus().await else {
        return Ok(());
    };
    let f = Fixture::new(direct);
    guarded(&f, publish_stream_case(&f, &outage), amqp_bus).await?;
    outage.bus.close().await;
    Ok(())
}

async fn publish_stream_case(f: &Fixture, outage: &Outage) -> Result<()> {
    let q = f.queue("stream", &QueueOptions::default()).await?;
    let total = 300;
    let publisher = tokio::spawn({
        let bus = outage.bus.clone();
        let q = q.clone();
        async move {
            let mut confirmed = Vec::new();
            for i in 0..total {
                if bus
                    .publish("", &q, Message::new(i.to_string()))
                    .await
                    .is_ok()
                {
                    confirmed.push(i.to_string());
                }
            }
            confirmed
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    outage.proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    outage.proxy.restore();
    let confirmed = tokio::time::timeout(Duration::from_secs(60), publisher).await??;
    assert_eq!(
        confirmed.len(),
        total,
        "with a 20 s reconnect timeout every publish succeeds"
    );

    let mut c = f.bus.consume(&q, ConsumeOptions { prefetch: 100 }).await?;
    let mut seen = BTreeSet::new();
    while let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(1), c.next()).await {
        seen.insert(text(&d));
        d.ack().await?;
    }
    let missing: Vec<_> = confirmed.iter().filter(|m| !seen.contains(*m)).collect();
    ensure!(missing.is_empty(), "confirmed but lost: {missing:?}");
    Ok(())
}

/// With the broker gone for longer than the reconnect timeout, a publish fails (it is never
/// reported Ok without a confirm), and the bus recovers once the broker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_gives_up_after_the_reconnect_timeout() -> Result<()> {
    let opts = AmqpOptions {
        reconnect_timeout: Duration::from_secs(1),
        ..quick_reconnect(&unique("timeout"))
    };
    let Some(outage) = through_proxy(opts, "").await? else {
        return Ok(());
    };
    let Some(direct) = amqp_bus().await else {
        return Ok(());
    };
    let f = Fixture::new(direct);
    guarded(&f, timeout_case(&f, &outage), amqp_bus).await?;
    outage.bus.close().await;
    Ok(())
}

async fn timeout_case(f: &Fixture, outage: &Outage) -> Result<()> {
    let q = f.queue("timeout", &QueueOptions::default()).await?;
    outage.proxy.cut();
    wait_until_down(&outage.bus).await?;
    let started = Instant::now();
    let result = outage.bus.publish("", &q, Message::new("lost")).await;
    ensure!(result.is_err(), "published without a broker: {result:?}");
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "gave up too late"
    );
    assert_eq!(f.bus.queue_len(&q).await?, 0);

    outage.proxy.restore();
    wait_for_generation(&outage.bus, 2).await?;
    outage.bus.publish("", &q, Message::new("kept")).await?;
    assert_eq!(f.bus.queue_len(&q).await?, 1);
    Ok(())
}
