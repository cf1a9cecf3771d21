//! Behaviour only the embedded backend has: persistence across a crash and a restart, the
//! transactional outbox, the visibility timeout.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use oih_bus::embedded::{EmbeddedBus, EmbeddedOptions};
use oih_bus::{ConsumeOptions, ExchangeKind, Message, MessageBus, QueueOptions};
use oih_store::{Collection, CollectionSpec};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

async fn open(dir: &Path, opts: EmbeddedOptions) -> (oih_store::Backend, Arc<EmbeddedBus>) {
    let backend = oih_store::open(None, dir).await.expect("open store");
    let bus = EmbeddedBus::open(backend.log.clone(), opts)
        .await
        .expect("open bus");
    (backend, bus)
}

fn seq(delivery: &oih_bus::Delivery) -> u64 {
    std::str::from_utf8(delivery.body())
        .expect("utf8")
        .parse()
        .expect("number")
}

const CRASH_MESSAGES: u64 = 500;
const CRASH_CHILD_ENV: &str = "OIH_TEST_CRASH_CHILD_DIR";

/// Runs in the child process: publishes confirmed messages, takes some deliveries without
/// settling them, says READY, and waits to be killed.
async fn crash_child(dir: &Path) -> ! {
    let (_backend, bus) = open(dir, EmbeddedOptions::default()).await;
    bus.declare_exchange("crash", ExchangeKind::Direct)
        .await
        .expect("exchange");
    bus.declare_queue("crash-q", &QueueOptions::default())
        .await
        .expect("queue");
    bus.bind_queue("crash-q", "crash", "k").await.expect("bind");
    for chunk in (0..CRASH_MESSAGES).collect::<Vec<_>>().chunks(50) {
        let items = chunk
            .iter()
            .map(|i| ("k".to_owned(), Message::new(i.to_string())))
            .collect();
        bus.publish_batch("crash", items)
            .await
            .expect("confirmed publish");
    }
    let mut consumer = bus
        .consume("crash-q", ConsumeOptions { prefetch: 40 })
        .await
        .expect("consume");
    let mut held = Vec::new();
    let mut acked = 0;
    while held.len() < 40 {
        let d = tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("delivery in time")
            .expect("open");
        // Ack a few so the test also covers acks that may or may not have reached the disk.
        if acked < 10 {
            d.ack().await.expect("ack");
            acked += 1;
        } else {
            held.push(d);
        }
    }
    println!("READY");
    std::io::Write::flush(&mut std::io::stdout()).expect("flush");
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

#[tokio::test]
async fn confirmed_messages_survive_a_killed_process() {
    if let Ok(dir) = std::env::var(CRASH_CHILD_ENV) {
        crash_child(Path::new(&dir)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "embedded::confirmed_messages_survive_a_killed_process",
            "--exact",
            "--nocapture",
        ])
        .env(CRASH_CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.trim() == "READY")
    });
    let ready = tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .expect("child ready in time")
        .expect("join");
    assert!(ready, "child exited before publishing");
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap");

    let (_backend, bus) = open(dir.path(), EmbeddedOptions::default()).await;
    let mut consumer = bus
        .consume("crash-q", ConsumeOptions { prefetch: 100 })
        .await
        .expect("consume after crash");
    let mut seen = BTreeSet::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(500), consumer.next()).await {
            Ok(Some(d)) => {
                seen.insert(seq(&d));
                d.ack().await.expect("ack");
            }
            Ok(None) => panic!("consumer closed"),
            Err(_) => break,
        }
    }
    // Every confirmed message that was not acknowledged comes back; acknowledged ones may
    // (at least once), so at least CRASH_MESSAGES - 10 arrive and none is unknown.
    let missing: Vec<u64> = (10..CRASH_MESSAGES).filter(|i| !seen.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "confirmed messages lost after the crash: {missing:?}"
    );
    assert!(seen.iter().all(|i| *i < CRASH_MESSAGES));
    assert!(seen.len() as u64 >= CRASH_MESSAGES - 10);
}

#[tokio::test]
async fn topology_and_pending_messages_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (backend, bus) = open(dir.path(), EmbeddedOptions::default()).await;
        bus.declare_exchange("events", ExchangeKind::Topic)
            .await
            .expect("exchange");
        bus.declare_exchange("collector", ExchangeKind::Topic)
            .await
            .expect("exchange");
        bus.bind_exchange("collector", "events", "#")
            .await
            .expect("e2e bind");
        let opts = QueueOptions {
            dead_letter_exchange: Some("events".into()),
            ..QueueOptions::default()
        };
        bus.declare_queue("q", &opts).await.expect("queue");
        bus.declare_queue("all", &QueueOptions::default())
            .await
            .expect("queue");
        bus.bind_queue("q", "events", "flow.*").await.expect("bind");
        bus.bind_queue("all", "collector", "#").await.expect("bind");
        bus.publish(
            "events",
            "flow.started",
            Message::new("one").with_header("h", json!({"n": 1})),
        )
        .await
        .expect("publish");
        bus.close().await;
        backend.docs.close().await;
    }
    let (_backend, bus) = open(dir.path(), EmbeddedOptions::default()).await;
    assert_eq!(bus.queue_len("q").await.expect("len"), 1);
    assert_eq!(bus.queue_len("all").await.expect("len"), 1);
    // Redeclaring with the same arguments is accepted; with others it is refused, so the
    // queue's arguments were restored.
    let opts = QueueOptions {
        dead_letter_exchange: Some("events".into()),
        ..QueueOptions::default()
    };
    bus.declare_queue("q", &opts).await.expect("same args");
    assert!(
        bus.declare_queue("q", &QueueOptions::default())
            .await
            .is_err()
    );
    // Bindings were restored: a new publish routes through both.
    bus.publish("events", "flow.stopped", Message::new("two"))
        .await
        .expect("publish");
    assert_eq!(bus.queue_len("q").await.expect("len"), 2);
    assert_eq!(bus.queue_len("all").await.expect("len"), 2);
    let mut consumer = bus
        .consume("q", ConsumeOptions::default())
        .await
        .expect("consume");
    let first = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("in time")
        .expect("delivery");
    assert_eq!(first.body(), b"one");
    assert_eq!(first.routing_key, "flow.started");
    assert_eq!(first.headers().get("h"), Some(&json!({"n": 1})));
    first.ack().await.expect("ack");
}

const OUTBOX: Collection = Collection("bus_test_outbox");

#[tokio::test]
async fn a_document_and_a_message_commit_together_or_not_at_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (backend, bus) = open(dir.path(), EmbeddedOptions::default()).await;
    backend
        .docs
        .ensure_collection(OUTBOX, &CollectionSpec::default())
        .await
        .expect("collection");
    bus.declare_exchange("outbox", ExchangeKind::Fanout)
        .await
        .expect("exchange");
    bus.declare_queue("outbox-q", &QueueOptions::default())
        .await
        .expect("queue");
    bus.bind_queue("outbox-q", "outbox", "")
        .await
        .expect("bind");

    let mut tx = backend.docs.begin().await.expect("begin");
    tx.insert(OUTBOX, "doc-rolled-back", json!({"n": 1}), None)
        .await
        .expect("insert");
    bus.publish_in(&mut *tx, "outbox", "", Message::new("rolled back"))
        .await
        .expect("publish in tx");
    tx.rollback().await.expect("rollback");
    assert_eq!(bus.queue_len("outbox-q").await.expect("len"), 0);
    assert!(
        backend
            .docs
            .get(OUTBOX, "doc-rolled-back")
            .await
            .expect("get")
            .is_none()
    );

    let mut tx = backend.docs.begin().await.expect("begin");
    tx.insert(OUTBOX, "doc-committed", json!({"n": 2}), None)
        .await
        .expect("insert");
    bus.publish_in(&mut *tx, "outbox", "", Message::new("committed"))
        .await
        .expect("publish in tx");
    assert_eq!(
        bus.queue_len("outbox-q").await.expect("len"),
        0,
        "invisible before commit"
    );
    tx.commit().await.expect("commit");
    assert!(
        backend
            .docs
            .get(OUTBOX, "doc-committed")
            .await
            .expect("get")
            .is_some()
    );
    let mut consumer = bus
        .consume("outbox-q", ConsumeOptions::default())
        .await
        .expect("consume");
    let d = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("in time")
        .expect("delivery");
    assert_eq!(d.body(), b"committed");
    drop(d);
    drop(consumer);
    bus.close().await;
    drop(bus);

    // The committed message was durable: it is there after reopening, the rolled-back one not.
    let (_backend, bus) = open(dir.path(), EmbeddedOptions::default()).await;
    let mut consumer = bus
        .consume("outbox-q", ConsumeOptions::default())
        .await
        .expect("consume");
    let d = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("in time")
        .expect("delivery");
    assert_eq!(d.body(), b"committed");
    d.ack().await.expect("ack");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), consumer.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_unsettled_delivery_is_requeued_after_the_visibility_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = EmbeddedOptions {
        visibility_timeout: Duration::from_millis(200),
        ..EmbeddedOptions::default()
    };
    let (_backend, bus) = open(dir.path(), opts).await;
    bus.declare_queue("slow", &QueueOptions::default())
        .await
        .expect("queue");
    bus.publish("", "slow", Message::new("work"))
        .await
        .expect("publish");
    let mut consumer = bus
        .consume("slow", ConsumeOptions { prefetch: 1 })
        .await
        .expect("consume");
    let stuck = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("in time")
        .expect("delivery");
    assert!(!stuck.redelivered);
    // Held, never settled: after the timeout the same message is offered again.
    let again = tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("redelivered in time")
        .expect("delivery");
    assert_eq!(again.body(), b"work");
    assert!(again.redelivered);
    // The late settlement of the stale delivery is ignored; the fresh one counts.
    stuck.ack().await.expect("stale ack is harmless");
    again.ack().await.expect("ack");
    assert_eq!(bus.queue_len("slow").await.expect("len"), 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), consumer.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn publishing_after_close_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_backend, bus) = open(dir.path(), EmbeddedOptions::default()).await;
    bus.declare_queue("q", &QueueOptions::default())
        .await
        .expect("queue");
    let mut consumer = bus
        .consume("q", ConsumeOptions::default())
        .await
        .expect("consume");
    bus.close().await;
    assert!(matches!(
        bus.publish("", "q", Message::new("late")).await,
        Err(oih_bus::BusError::Closed)
    ));
    assert!(
        consumer.next().await.is_none(),
        "consumers end when the bus closes"
    );
}
