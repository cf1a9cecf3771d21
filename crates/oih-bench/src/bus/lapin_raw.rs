//! The reference: the same workload with lapin alone, written the way one would by hand — a
//! confirm channel per publisher sending a batch and then awaiting its confirms, a consumer
//! channel with the same prefetch acking each delivery.

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

use super::{Figures, ROUTING_KEY, Recorder, STALL, Workload};

pub async fn run(url: &str, w: &Workload) -> Result<Figures> {
    let props = ConnectionProperties::default().with_connection_name("oih-bench lapin".into());
    let conn = Connection::connect(url, props).await?;
    let admin = conn.create_channel().await?;
    let (exchange, queue) = Workload::names("lapin");
    admin
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    admin
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    admin
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let consumer_channel = conn.create_channel().await?;
    consumer_channel
        .basic_qos(w.prefetch, BasicQosOptions::default())
        .await?;
    let stream = consumer_channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consuming = tokio::spawn(consume(stream, Recorder::new(w.messages)?));

    let started = Instant::now();
    let mut publishers = Vec::new();
    for p in 0..w.publishers {
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        publishers.push(tokio::spawn(publish(
            channel,
            exchange.clone(),
            w.share(p),
            w.clone(),
        )));
    }
    for publisher in publishers {
        publisher.await??;
    }
    let publish = started.elapsed();
    let recorder = consuming.await??;
    let total = started.elapsed();

    admin
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    admin
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await?;
    conn.close(200, "done".into()).await?;
    Ok(Figures {
        backend: "lapin",
        publish,
        total,
        recorder,
    })
}

async fn publish(channel: lapin::Channel, exchange: String, count: u64, w: Workload) -> Result<()> {
    // delivery-mode 2, as our backend publishes.
    let props = BasicProperties::default().with_delivery_mode(2);
    let mut left = count;
    let mut confirms = Vec::with_capacity(w.batch);
    while left > 0 {
        let n = left.min(w.batch as u64);
        for _ in 0..n {
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    ROUTING_KEY.into(),
                    BasicPublishOptions::default(),
                    &w.body(),
                    props.clone(),
                )
                .await?;
            confirms.push(confirm);
        }
        for confirm in confirms.drain(..) {
            ensure!(confirm.await?.is_ack(), "the broker nacked a message");
        }
        left -= n;
    }
    Ok(())
}

async fn consume(mut stream: lapin::Consumer, mut recorder: Recorder) -> Result<Recorder> {
    while !recorder.done() {
        let delivery = tokio::time::timeout(STALL, stream.next())
            .await
            .context("the consumer stalled")?;
        let Some(delivery) = delivery else {
            bail!("the consumer ended early");
        };
        let delivery = delivery?;
        recorder.record(&delivery.data);
        delivery.acker.ack(BasicAckOptions::default()).await?;
    }
    Ok(recorder)
}
