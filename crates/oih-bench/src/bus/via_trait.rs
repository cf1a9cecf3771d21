//! The workload through `Arc<dyn MessageBus>`: the same code measures every backend of ours.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use oih_bus::{ConsumeOptions, Consumer, ExchangeKind, Message, MessageBus, QueueOptions};

use super::{Figures, ROUTING_KEY, Recorder, STALL, Workload};

pub async fn run(bus: Arc<dyn MessageBus>, backend: &'static str, w: &Workload) -> Result<Figures> {
    let (exchange, queue) = Workload::names(backend);
    bus.declare_exchange(&exchange, ExchangeKind::Direct)
        .await?;
    bus.declare_queue(&queue, &QueueOptions::default()).await?;
    bus.bind_queue(&queue, &exchange, ROUTING_KEY).await?;
    let consumer = bus
        .consume(
            &queue,
            ConsumeOptions {
                prefetch: w.prefetch,
            },
        )
        .await?;
    let consuming = tokio::spawn(consume(consumer, Recorder::new(w.messages)?));

    let started = Instant::now();
    let publishers: Vec<_> = (0..w.publishers)
        .map(|p| {
            tokio::spawn(publish(
                bus.clone(),
                exchange.clone(),
                w.share(p),
                w.clone(),
            ))
        })
        .collect();
    for publisher in publishers {
        publisher.await??;
    }
    let publish = started.elapsed();
    let recorder = consuming.await??;
    let total = started.elapsed();

    bus.delete_queue(&queue).await?;
    bus.delete_exchange(&exchange).await?;
    bus.close().await;
    Ok(Figures {
        backend,
        publish,
        total,
        recorder,
    })
}

async fn publish(
    bus: Arc<dyn MessageBus>,
    exchange: String,
    count: u64,
    w: Workload,
) -> Result<()> {
    let mut left = count;
    while left > 0 {
        let n = left.min(w.batch as u64);
        let batch = (0..n)
            .map(|_| (ROUTING_KEY.to_string(), Message::new(w.body())))
            .collect();
        bus.publish_batch(&exchange, batch).await?;
        left -= n;
    }
    Ok(())
}

async fn consume(mut consumer: Consumer, mut recorder: Recorder) -> Result<Recorder> {
    while !recorder.done() {
        let delivery = tokio::time::timeout(STALL, consumer.next())
            .await
            .context("the consumer stalled")?;
        let Some(delivery) = delivery else {
            bail!("the consumer ended early");
        };
        recorder.record(delivery.body());
        delivery.ack().await?;
    }
    Ok(recorder)
}
