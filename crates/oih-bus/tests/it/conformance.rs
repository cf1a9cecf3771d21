//! The `MessageBus` contract, written once and run against every backend (see
//! `support::conformance_tests!`). RabbitMQ's behaviour is the reference: each case here also
//! passes against a real broker.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use oih_bus::{BusError, ConsumeOptions, ExchangeKind, Message, Properties, QueueOptions};
use serde_json::json;
use tokio::time::Instant;

use crate::support::{ARRIVES_WITHIN, Fixture, drain, expect_nothing, recv, text};

fn prefetch(n: u16) -> ConsumeOptions {
    ConsumeOptions { prefetch: n }
}

pub async fn direct_routing(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let x = f.exchange("direct", ExchangeKind::Direct).await?;
    let qa = f.bound_queue("a", &x, "key.a").await?;
    let qb = f.bound_queue("b", &x, "key.b").await?;
    bus.publish(&x, "key.a", Message::new("to a")).await?;
    bus.publish(&x, "key.b", Message::new("to b")).await?;
    // A direct exchange compares keys literally: no pattern semantics.
    bus.publish(&x, "key.*", Message::new("nobody")).await?;

    let mut ca = bus.consume(&qa, ConsumeOptions::default()).await?;
    let d = recv(&mut ca).await?;
    assert_eq!(text(&d), "to a");
    assert_eq!(d.exchange, x);
    assert_eq!(d.routing_key, "key.a");
    assert!(!d.redelivered);
    d.ack().await?;
    expect_nothing(&mut ca).await?;

    let mut cb = bus.consume(&qb, ConsumeOptions::default()).await?;
    assert_eq!(drain(&mut cb, 1).await?, ["to b"]);
    Ok(())
}

pub async fn topic_star_and_hash(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let x = f.exchange("topic", ExchangeKind::Topic).await?;
    let star = f.bound_queue("star", &x, "flow.*").await?;
    let hash = f.bound_queue("hash", &x, "flow.#").await?;
    let dead = f.bound_queue("dead", &x, "*.deadletter").await?;
    let all = f.bound_queue("all", &x, "#").await?;
    let keys = ["flow", "flow.started", "flow.a.b", "x.deadletter", "other"];
    for key in keys {
        bus.publish(&x, key, Message::new(key)).await?;
    }
    let mut c = bus.consume(&star, ConsumeOptions::default()).await?;
    assert_eq!(drain(&mut c, 1).await?, ["flow.started"]);
    let mut c = bus.consume(&hash, ConsumeOptions::default()).await?;
    assert_eq!(
        drain(&mut c, 3).await?,
        ["flow", "flow.started", "flow.a.b"]
    );
    let mut c = bus.consume(&dead, ConsumeOptions::default()).await?;
    assert_eq!(drain(&mut c, 1).await?, ["x.deadletter"]);
    let mut c = bus.consume(&all, ConsumeOptions::default()).await?;
    assert_eq!(drain(&mut c, keys.len()).await?, keys);
    Ok(())
}

pub async fn fanout_ignores_routing_key(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let x = f.exchange("fanout", ExchangeKind::Fanout).await?;
    let q1 = f.bound_queue("one", &x, "").await?;
    let q2 = f.bound_queue("two", &x, "some.key").await?;
    bus.publish(&x, "whatever", Message::new("everyone"))
        .await?;
    for q in [&q1, &q2] {
        let mut c = bus.consume(q, ConsumeOptions::default()).await?;
        let d = recv(&mut c).await?;
        assert_eq!(text(&d), "everyone");
        assert_eq!(d.routing_key, "whatever");
        d.ack().await?;
        expect_nothing(&mut c).await?;
    }
    Ok(())
}

pub async fn default_exchange_routes_by_queue_name(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("by-name", &QueueOptions::default()).await?;
    let other = f.queue("other", &QueueOptions::default()).await?;
    bus.publish("", &q, Message::new("direct to queue")).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    let d = recv(&mut c).await?;
    assert_eq!(text(&d), "direct to queue");
    assert_eq!(d.exchange, "");
    assert_eq!(d.routing_key, q);
    d.ack().await?;
    assert_eq!(bus.queue_len(&other).await?, 0);
    Ok(())
}

pub async fn unroutable_message_is_dropped(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let x = f.exchange("unroutable", ExchangeKind::Topic).await?;
    // Confirmed although it goes nowhere, as RabbitMQ does without `mandatory`.
    bus.publish(&x, "no.binding", Message::new("lost")).await?;
    let q = f.bound_queue("late", &x, "#").await?;
    assert_eq!(
        bus.queue_len(&q).await?,
        0,
        "a later binding must not see it"
    );
    bus.publish(&x, "no.binding", Message::new("kept")).await?;
    assert_eq!(bus.queue_len(&q).await?, 1);
    Ok(())
}

/// OIH copies everything published to a flow exchange into `component-events-collector`
/// (exchange-to-exchange binding `#`), where `flow-snapshots` picks up `#.snapshot`.
pub async fn exchange_to_exchange_binding(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let collector = f.exchange("collector", ExchangeKind::Topic).await?;
    let flow = f.exchange("flow", ExchangeKind::Topic).await?;
    bus.bind_exchange(&collector, &flow, "#").await?;
    let snapshots = f.bound_queue("snapshots", &collector, "#.snapshot").await?;
    let step = f.bound_queue("step", &flow, "flow.step_1.input").await?;

    bus.publish(&flow, "flow.step_1.snapshot", Message::new("snap"))
        .await?;
    bus.publish(&flow, "flow.step_1.input", Message::new("input"))
        .await?;

    let mut c = bus.consume(&snapshots, ConsumeOptions::default()).await?;
    let d = recv(&mut c).await?;
    assert_eq!(text(&d), "snap");
    // The delivery names the exchange the publisher used, not the one it passed through.
    assert_eq!(d.exchange, flow);
    assert_eq!(d.routing_key, "flow.step_1.snapshot");
    d.ack().await?;
    expect_nothing(&mut c).await?;

    let mut c = bus.consume(&step, ConsumeOptions::default()).await?;
    assert_eq!(drain(&mut c, 1).await?, ["input"]);
    Ok(())
}

pub async fn headers_and_properties_round_trip(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("props", &QueueOptions::default()).await?;
    let sent = Message {
        body: vec![0, 159, 146, 150, 255, b'x'],
        properties: Properties {
            headers: [
                ("taskId".to_string(), json!("t-1")),
                ("reboundIteration".to_string(), json!(3)),
                ("negative".to_string(), json!(-7)),
                ("ratio".to_string(), json!(0.25)),
                ("flag".to_string(), json!(true)),
                ("nothing".to_string(), json!(null)),
                ("list".to_string(), json!([1, "two", {"three": 3}])),
                (
                    "nested".to_string(),
                    json!({"user": {"id": "u1", "roles": ["admin"]}, "n": 1}),
                ),
            ]
            .into_iter()
            .collect(),
            content_type: Some("application/json".into()),
            content_encoding: Some("utf8".into()),
            correlation_id: Some("corr-1".into()),
            reply_to: Some("replies".into()),
            message_id: Some("msg-1".into()),
            timestamp: Some(1_700_000_000),
            expiration: Some(Duration::from_secs(600)),
        },
    };
    bus.publish("", &q, sent.clone()).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    let d = recv(&mut c).await?;
    assert_eq!(d.message, sent);
    d.ack().await?;
    Ok(())
}

pub async fn publish_batch_delivers_all_in_order(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let x = f.exchange("batch", ExchangeKind::Direct).await?;
    let even = f.bound_queue("even", &x, "even").await?;
    let odd = f.bound_queue("odd", &x, "odd").await?;
    bus.publish_batch(&x, Vec::new()).await?;
    let items = (0..50)
        .map(|i| {
            let key = if i % 2 == 0 { "even" } else { "odd" };
            (key.to_string(), Message::new(i.to_string()))
        })
        .collect();
    bus.publish_batch(&x, items).await?;
    assert_eq!(bus.queue_len(&even).await?, 25);
    assert_eq!(bus.queue_len(&odd).await?, 25);
    let mut c = bus.consume(&odd, ConsumeOptions::default()).await?;
    let expected: Vec<String> = (0..50)
        .filter(|i| i % 2 == 1)
        .map(|i| i.to_string())
        .collect();
    assert_eq!(drain(&mut c, 25).await?, expected);
    Ok(())
}

pub async fn ack_removes_the_message(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("ack", &QueueOptions::default()).await?;
    bus.publish("", &q, Message::new("once")).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    recv(&mut c).await?.ack().await?;
    drop(c);
    // Had the ack been lost, closing the consumer would put the message back.
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    expect_nothing(&mut c).await?;
    assert_eq!(bus.queue_len(&q).await?, 0);
    Ok(())
}

pub async fn requeue_redelivers_marked_redelivered(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("requeue", &QueueOptions::default()).await?;
    bus.publish("", &q, Message::new("again")).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    let first = recv(&mut c).await?;
    assert!(!first.redelivered);
    first.requeue().await?;
    let second = recv(&mut c).await?;
    assert_eq!(text(&second), "again");
    assert!(
        second.redelivered,
        "a requeued message is marked redelivered"
    );
    second.ack().await?;
    expect_nothing(&mut c).await?;
    Ok(())
}

pub async fn reject_dead_letters_to_dlx(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let dlx = f.exchange("dlx", ExchangeKind::Topic).await?;
    let dead_keyed = f.bound_queue("dead-keyed", &dlx, "work.deadletter").await?;
    let dead_any = f.bound_queue("dead-any", &dlx, "original.#").await?;
    // With a dead-letter routing key the message is re-routed with it...
    let keyed = f
        .queue(
            "keyed",
            &QueueOptions {
                dead_letter_exchange: Some(dlx.clone()),
                dead_letter_routing_key: Some("work.deadletter".into()),
                message_ttl: None,
            },
        )
        .await?;
    // ...without one it keeps its own.
    let unkeyed = f
        .queue(
            "unkeyed",
            &QueueOptions {
                dead_letter_exchange: Some(dlx.clone()),
                ..QueueOptions::default()
            },
        )
        .await?;
    let work = f.exchange("work", ExchangeKind::Topic).await?;
    bus.bind_queue(&keyed, &work, "keyed.#").await?;
    bus.bind_queue(&unkeyed, &work, "original.#").await?;
    bus.publish(&work, "keyed.1", Message::new("bad input"))
        .await?;
    bus.publish(&work, "original.1", Message::new("also bad"))
        .await?;

    for q in [&keyed, &unkeyed] {
        let mut c = bus.consume(q, ConsumeOptions::default()).await?;
        recv(&mut c).await?.reject().await?;
        expect_nothing(&mut c).await?;
    }
    let mut c = bus.consume(&dead_keyed, ConsumeOptions::default()).await?;
    let d = recv(&mut c).await?;
    assert_eq!(text(&d), "bad input");
    assert_eq!(d.exchange, dlx);
    assert_eq!(d.routing_key, "work.deadletter");
    d.ack().await?;
    expect_nothing(&mut c).await?;

    let mut c = bus.consume(&dead_any, ConsumeOptions::default()).await?;
    let d = recv(&mut c).await?;
    assert_eq!(text(&d), "also bad");
    assert_eq!(d.routing_key, "original.1");
    d.ack().await?;
    assert_eq!(bus.queue_len(&keyed).await?, 0);
    assert_eq!(bus.queue_len(&unkeyed).await?, 0);
    Ok(())
}

pub async fn reject_without_dlx_drops(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("no-dlx", &QueueOptions::default()).await?;
    bus.publish("", &q, Message::new("poison")).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    recv(&mut c).await?.reject().await?;
    expect_nothing(&mut c).await?;
    drop(c);
    assert_eq!(bus.queue_len(&q).await?, 0);
    Ok(())
}

pub async fn dropped_delivery_is_redelivered(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("dropped", &QueueOptions::default()).await?;
    bus.publish("", &q, Message::new("forgotten")).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    drop(recv(&mut c).await?);
    let d = recv(&mut c).await?;
    assert_eq!(text(&d), "forgotten");
    assert!(d.redelivered);
    d.ack().await?;
    expect_nothing(&mut c).await?;
    Ok(())
}

pub async fn prefetch_limits_unsettled_deliveries(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("prefetch", &QueueOptions::default()).await?;
    let items = (0..5)
        .map(|i| (q.clone(), Message::new(i.to_string())))
        .collect();
    bus.publish_batch("", items).await?;
    let mut c = bus.consume(&q, prefetch(2)).await?;
    let d0 = recv(&mut c).await?;
    let d1 = recv(&mut c).await?;
    expect_nothing(&mut c).await?;
    d0.ack().await?;
    let d2 = recv(&mut c).await?;
    expect_nothing(&mut c).await?;
    assert_eq!([text(&d1), text(&d2)], ["1", "2"]);
    d1.ack().await?;
    d2.ack().await?;
    assert_eq!(drain(&mut c, 2).await?, ["3", "4"]);
    Ok(())
}

pub async fn dropped_consumer_requeues_its_unacked(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("handover", &QueueOptions::default()).await?;
    let items = (0..3)
        .map(|i| (q.clone(), Message::new(i.to_string())))
        .collect();
    bus.publish_batch("", items).await?;
    let mut first = bus.consume(&q, prefetch(10)).await?;
    // Held, not settled, while the consumer goes away.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(recv(&mut first).await?);
    }
    drop(first);

    let mut second = bus.consume(&q, prefetch(10)).await?;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let d = recv(&mut second).await?;
        assert!(d.redelivered, "{} should be marked redelivered", text(&d));
        bodies.push(text(&d));
        d.ack().await?;
    }
    assert_eq!(bodies, ["0", "1", "2"]);
    // Settling a delivery of the dropped consumer must not panic nor redeliver again.
    for d in held {
        let _ = d.ack().await;
    }
    expect_nothing(&mut second).await?;
    Ok(())
}

/// OIH's rebound: the step republishes to `<flow>.<step>.rebound`; that lands in the
/// `:rebounds` queue (TTL, DLX = the flow exchange, DL key `<flow>.<step>.requeue`), and on
/// expiry comes back to the `:messages` queue bound to `.requeue`. OIH uses a 10 minute TTL.
pub async fn rebound_queue_ttl_dead_letters_back_to_messages_queue(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let flow = f.exchange("flow", ExchangeKind::Topic).await?;
    let step = format!("{flow}.step_1");
    let messages = f
        .queue(
            &format!("{flow}:step_1:messages"),
            &QueueOptions {
                dead_letter_exchange: Some(flow.clone()),
                dead_letter_routing_key: Some(format!("{step}.deadletter")),
                message_ttl: None,
            },
        )
        .await?;
    bus.bind_queue(&messages, &flow, &format!("{step}.input"))
        .await?;
    bus.bind_queue(&messages, &flow, &format!("{step}.requeue"))
        .await?;
    let ttl = Duration::from_millis(500);
    let rebounds = f
        .queue(
            &format!("{flow}:step_1:rebounds"),
            &QueueOptions {
                dead_letter_exchange: Some(flow.clone()),
                dead_letter_routing_key: Some(format!("{step}.requeue")),
                message_ttl: Some(ttl),
            },
        )
        .await?;
    bus.bind_queue(&rebounds, &flow, &format!("{step}.rebound"))
        .await?;

    let started = Instant::now();
    let msg = Message::json(&json!({"data": {"n": 1}})).with_header("reboundIteration", 1);
    bus.publish(&flow, &format!("{step}.rebound"), msg).await?;
    assert_eq!(bus.queue_len(&rebounds).await?, 1);
    assert_eq!(bus.queue_len(&messages).await?, 0);

    let mut c = bus.consume(&messages, ConsumeOptions::default()).await?;
    let d = recv(&mut c).await?;
    let waited = started.elapsed();
    assert!(
        waited >= ttl - Duration::from_millis(50),
        "came back after {waited:?}"
    );
    assert_eq!(d.routing_key, format!("{step}.requeue"));
    assert_eq!(d.exchange, flow);
    assert_eq!(d.headers().get("reboundIteration"), Some(&json!(1)));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(d.body())?,
        json!({"data": {"n": 1}})
    );
    d.ack().await?;
    assert_eq!(bus.queue_len(&rebounds).await?, 0);
    Ok(())
}

pub async fn per_message_expiration(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let dlx = f.exchange("expired", ExchangeKind::Fanout).await?;
    let dead = f.bound_queue("dead", &dlx, "").await?;
    let with_dlx = f
        .queue(
            "with-dlx",
            &QueueOptions {
                dead_letter_exchange: Some(dlx.clone()),
                ..QueueOptions::default()
            },
        )
        .await?;
    let plain = f.queue("plain", &QueueOptions::default()).await?;
    let expiring = |body: &str, ms: u64| {
        let mut m = Message::new(body);
        m.properties.expiration = Some(Duration::from_millis(ms));
        m
    };

    // Expired messages are dead-lettered when the queue has a DLX...
    let started = Instant::now();
    bus.publish("", &with_dlx, expiring("short", 200)).await?;
    let mut c = bus.consume(&dead, ConsumeOptions::default()).await?;
    let d = recv(&mut c).await?;
    assert_eq!(text(&d), "short");
    assert!(started.elapsed() >= Duration::from_millis(150));
    d.ack().await?;
    assert_eq!(bus.queue_len(&with_dlx).await?, 0);

    // ...and simply dropped otherwise; an unexpired one stays.
    bus.publish("", &plain, expiring("short", 100)).await?;
    bus.publish("", &plain, expiring("long", 60_000)).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut c = bus.consume(&plain, ConsumeOptions::default()).await?;
    assert_eq!(drain(&mut c, 1).await?, ["long"]);
    Ok(())
}

pub async fn redeclare_queue_with_other_arguments_fails(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let opts = QueueOptions {
        message_ttl: Some(Duration::from_secs(600)),
        ..QueueOptions::default()
    };
    let q = f.queue("redeclare", &opts).await?;
    bus.declare_queue(&q, &opts).await?;
    let other_ttl = QueueOptions {
        message_ttl: Some(Duration::from_secs(60)),
        ..QueueOptions::default()
    };
    let err = bus.declare_queue(&q, &other_ttl).await;
    assert!(
        matches!(err, Err(BusError::PreconditionFailed(_))),
        "{err:?}"
    );
    let with_dlx = QueueOptions {
        dead_letter_exchange: Some("elsewhere".into()),
        ..opts.clone()
    };
    let err = bus.declare_queue(&q, &with_dlx).await;
    assert!(
        matches!(err, Err(BusError::PreconditionFailed(_))),
        "{err:?}"
    );

    // The bus still works after the refusals.
    bus.declare_queue(&q, &opts).await?;
    bus.publish("", &q, Message::new("still fine")).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    assert_eq!(drain(&mut c, 1).await?, ["still fine"]);
    Ok(())
}

pub async fn redeclare_exchange_with_other_kind_fails(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let x = f.exchange("kind", ExchangeKind::Topic).await?;
    bus.declare_exchange(&x, ExchangeKind::Topic).await?;
    for kind in [ExchangeKind::Direct, ExchangeKind::Fanout] {
        let err = bus.declare_exchange(&x, kind).await;
        assert!(
            matches!(err, Err(BusError::PreconditionFailed(_))),
            "{kind:?}: {err:?}"
        );
    }
    let q = f.bound_queue("kind", &x, "a.#").await?;
    bus.publish(&x, "a.b", Message::new("topic still")).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    assert_eq!(drain(&mut c, 1).await?, ["topic still"]);
    Ok(())
}

pub async fn queue_len_purge_and_delete_count(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("counts", &QueueOptions::default()).await?;
    assert_eq!(bus.queue_len(&q).await?, 0);
    let batch = |n: usize| {
        (0..n)
            .map(|i| (q.clone(), Message::new(i.to_string())))
            .collect()
    };
    bus.publish_batch("", batch(3)).await?;
    assert_eq!(bus.queue_len(&q).await?, 3);
    assert_eq!(bus.purge_queue(&q).await?, 3);
    assert_eq!(bus.queue_len(&q).await?, 0);
    bus.publish_batch("", batch(2)).await?;
    assert_eq!(bus.delete_queue(&q).await?, 2);
    let err = bus.queue_len(&q).await;
    assert!(
        matches!(&err, Err(BusError::QueueNotFound(name)) if *name == q),
        "{err:?}"
    );
    let err = bus.purge_queue(&q).await;
    assert!(matches!(err, Err(BusError::QueueNotFound(_))), "{err:?}");
    let err = bus.consume(&q, ConsumeOptions::default()).await.map(drop);
    assert!(matches!(err, Err(BusError::QueueNotFound(_))), "{err:?}");
    Ok(())
}

pub async fn competing_consumers_share_the_queue(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("compete", &QueueOptions::default()).await?;
    let consumers = [
        bus.consume(&q, prefetch(5)).await?,
        bus.consume(&q, prefetch(5)).await?,
    ];
    let total = 100;
    let items = (0..total)
        .map(|i| (q.clone(), Message::new(i.to_string())))
        .collect();
    bus.publish_batch("", items).await?;

    let tasks: Vec<_> = consumers
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                // Each takes until the queue has been idle for a while.
                while let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(1), c.next()).await
                {
                    got.push(text(&d));
                    // Slow enough that the other consumer gets its share.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    d.ack().await.expect("ack");
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let got = task.await?;
        ensure!(
            !got.is_empty(),
            "one consumer got nothing: they do not compete"
        );
        all.extend(got);
    }
    assert_eq!(all.len(), total, "each message is delivered exactly once");
    let distinct: BTreeSet<_> = all.into_iter().collect();
    let expected: BTreeSet<_> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(distinct, expected);
    Ok(())
}

pub async fn single_consumer_keeps_order(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("order", &QueueOptions::default()).await?;
    let n = 1000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let items = chunk
            .iter()
            .map(|i| (q.clone(), Message::new(i.to_string())))
            .collect();
        bus.publish_batch("", items).await?;
    }
    let mut c = bus.consume(&q, prefetch(100)).await?;
    for expected in 0..n {
        let d = recv(&mut c).await?;
        assert_eq!(text(&d), expected.to_string());
        assert!(!d.redelivered);
        d.ack().await?;
    }
    expect_nothing(&mut c).await?;
    Ok(())
}

pub async fn missing_exchange_or_queue_is_an_error(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let x = f.exchange("present", ExchangeKind::Topic).await?;
    let q = f.queue("present", &QueueOptions::default()).await?;
    let missing_x = f.exchange_name("missing");
    let missing_q = f.queue_name("missing");

    let err = bus.bind_queue(&q, &missing_x, "#").await;
    assert!(
        matches!(&err, Err(BusError::ExchangeNotFound(n)) if *n == missing_x),
        "{err:?}"
    );
    let err = bus.bind_queue(&missing_q, &x, "#").await;
    assert!(
        matches!(&err, Err(BusError::QueueNotFound(n)) if *n == missing_q),
        "{err:?}"
    );
    let err = bus.bind_exchange(&x, &missing_x, "#").await;
    assert!(matches!(err, Err(BusError::ExchangeNotFound(_))), "{err:?}");
    let err = bus.bind_exchange(&missing_x, &x, "#").await;
    assert!(matches!(err, Err(BusError::ExchangeNotFound(_))), "{err:?}");
    let err = bus.publish(&missing_x, "k", Message::new("nowhere")).await;
    assert!(
        matches!(&err, Err(BusError::ExchangeNotFound(n)) if *n == missing_x),
        "{err:?}"
    );
    let err = bus
        .consume(&missing_q, ConsumeOptions::default())
        .await
        .map(drop);
    assert!(matches!(err, Err(BusError::QueueNotFound(_))), "{err:?}");

    // None of that broke the bus.
    bus.bind_queue(&q, &x, "#").await?;
    bus.publish(&x, "k", Message::new("somewhere")).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    assert_eq!(drain(&mut c, 1).await?, ["somewhere"]);
    Ok(())
}

pub async fn unbind_stops_routing(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let source = f.exchange("source", ExchangeKind::Topic).await?;
    let dest = f.exchange("dest", ExchangeKind::Topic).await?;
    let direct = f.bound_queue("direct", &source, "k.#").await?;
    bus.bind_exchange(&dest, &source, "#").await?;
    let via = f.bound_queue("via", &dest, "#").await?;

    bus.publish(&source, "k.1", Message::new("bound")).await?;
    assert_eq!(bus.queue_len(&direct).await?, 1);
    assert_eq!(bus.queue_len(&via).await?, 1);

    bus.unbind_queue(&direct, &source, "k.#").await?;
    bus.unbind_exchange(&dest, &source, "#").await?;
    bus.publish(&source, "k.2", Message::new("unbound")).await?;
    assert_eq!(bus.queue_len(&direct).await?, 1);
    assert_eq!(bus.queue_len(&via).await?, 1);
    Ok(())
}

pub async fn deleting_unknown_exchange_is_a_no_op(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let name = f.exchange_name("never-declared");
    bus.delete_exchange(&name).await?;
    let x = f.exchange("deleted", ExchangeKind::Topic).await?;
    let q = f.bound_queue("orphan", &x, "#").await?;
    bus.delete_exchange(&x).await?;
    bus.delete_exchange(&x).await?;
    // Its bindings went with it.
    let err = bus.publish(&x, "k", Message::new("gone")).await;
    assert!(matches!(err, Err(BusError::ExchangeNotFound(_))), "{err:?}");
    bus.declare_exchange(&x, ExchangeKind::Topic).await?;
    bus.publish(&x, "k", Message::new("unbound")).await?;
    assert_eq!(bus.queue_len(&q).await?, 0);
    Ok(())
}

pub async fn deleting_the_queue_ends_its_consumer(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("deleted", &QueueOptions::default()).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    bus.delete_queue(&q).await?;
    let next = tokio::time::timeout(ARRIVES_WITHIN, c.next()).await;
    assert!(matches!(next, Ok(None)), "expected the end of the stream");
    Ok(())
}

pub async fn close_ends_consumers(f: &Fixture) -> Result<()> {
    let bus = &f.bus;
    let q = f.queue("closing", &QueueOptions::default()).await?;
    let mut c = bus.consume(&q, ConsumeOptions::default()).await?;
    bus.close().await;
    let next = tokio::time::timeout(ARRIVES_WITHIN, c.next()).await;
    assert!(matches!(next, Ok(None)), "expected the end of the stream");
    let err = bus.publish("", &q, Message::new("after close")).await;
    assert!(err.is_err(), "publishing on a closed bus must fail");
    Ok(())
}
