//! Consumers: one channel each (so its prefetch and its unacked deliveries are its own), fed
//! into the [`Consumer`]'s mpsc by a task that also resubscribes after a reconnect, so the user
//! sees one continuous stream.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{Acker, Channel};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::convert::{bus_error, from_basic_properties};
use super::link::{Inner, Link};
use crate::{BusError, Consumer, Delivery, Message, Result, Settle, Settlement};

/// A live `basic.consume` on its own channel.
pub(super) struct Subscription {
    link: Arc<Link>,
    channel: Channel,
    stream: lapin::Consumer,
}

pub(super) async fn subscribe(
    link: Arc<Link>,
    queue: &ShortString,
    prefetch: u16,
) -> lapin::Result<Subscription> {
    let channel = link
        .bounded("channel.open", link.conn.create_channel())
        .await?;
    let qos = channel.basic_qos(prefetch, BasicQosOptions::default());
    link.bounded("basic.qos", qos).await?;
    // An empty tag lets the broker choose a unique one.
    let consuming = channel.basic_consume(
        queue.clone(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    );
    let stream = link.bounded("basic.consume", consuming).await?;
    Ok(Subscription {
        link,
        channel,
        stream,
    })
}

/// Starts forwarding `first`'s deliveries into a new [`Consumer`].
pub(super) fn start(
    inner: Arc<Inner>,
    queue: ShortString,
    prefetch: u16,
    first: Subscription,
) -> Consumer {
    // Enough room for everything the broker may have in flight to us; with an unlimited
    // prefetch, lapin's own buffer absorbs the rest.
    let capacity = if prefetch == 0 {
        256
    } else {
        usize::from(prefetch)
    };
    let (tx, rx) = mpsc::channel(capacity);
    let cancel = inner.shutdown.child_token();
    let guard = cancel.clone().drop_guard();
    tokio::spawn(run(inner, queue, prefetch, first, tx, cancel));
    Consumer::new(rx, Box::new(guard))
}

enum Ended {
    /// The Consumer was dropped or the bus closed.
    Stopped,
    /// lapin's stream ended; `error` says why, if it knows.
    Stream { error: Option<lapin::Error> },
}

async fn run(
    inner: Arc<Inner>,
    queue: ShortString,
    prefetch: u16,
    mut sub: Subscription,
    tx: mpsc::Sender<Delivery>,
    cancel: CancellationToken,
) {
    loop {
        match forward(&mut sub, &tx, &cancel).await {
            Ended::Stopped => break,
            Ended::Stream { error } => {
                if sub.link.is_up() && error.is_none() {
                    // The broker cancelled us on a live connection: the queue was deleted.
                    debug!(%queue, "consumer cancelled by the broker");
                    break;
                }
                if let Some(e) = &error {
                    debug!(%queue, error = %e, "consumer interrupted; resubscribing");
                }
                match resubscribe(&inner, &queue, prefetch, &sub.link, &cancel).await {
                    Some(next) => sub = next,
                    None => break,
                }
            }
        }
    }
    // Closing the channel hands every unacknowledged delivery back to the queue.
    if sub.channel.status().connected() {
        let closing = sub.channel.close(200, "consumer dropped".into());
        let _ = sub.link.bounded("channel.close", closing).await;
    }
}

async fn forward(
    sub: &mut Subscription,
    tx: &mpsc::Sender<Delivery>,
    cancel: &CancellationToken,
) -> Ended {
    let mut error = None;
    loop {
        let item = tokio::select! {
            () = cancel.cancelled() => return Ended::Stopped,
            // lapin still sees the connection open, but the broker has stopped answering on
            // it: resubscribe on the next one.
            () = sub.link.stalled.cancelled() => return Ended::Stream { error },
            item = sub.stream.next() => item,
        };
        match item {
            Some(Ok(d)) => {
                let delivery = Delivery::new(
                    Message {
                        properties: from_basic_properties(&d.properties),
                        body: d.data,
                    },
                    d.exchange.to_string(),
                    d.routing_key.to_string(),
                    d.redelivered,
                    Box::new(AmqpSettle {
                        acker: d.acker,
                        within: sub.link.answer_timeout(),
                    }),
                );
                tokio::select! {
                    () = cancel.cancelled() => return Ended::Stopped,
                    sent = tx.send(delivery) => if sent.is_err() {
                        return Ended::Stopped;
                    },
                }
            }
            // lapin follows an error with the end of the stream.
            Some(Err(e)) => error = Some(e),
            None => return Ended::Stream { error },
        }
    }
}

/// Subscribes again after `failed` stopped delivering: on the same link if only the channel
/// died, else on the next one. None if the consumer was dropped, the bus closed, or the queue
/// no longer exists.
async fn resubscribe(
    inner: &Inner,
    queue: &ShortString,
    prefetch: u16,
    failed: &Link,
    cancel: &CancellationToken,
) -> Option<Subscription> {
    let mut after = if failed.is_up() {
        failed.generation - 1
    } else {
        inner.lost();
        failed.generation
    };
    let mut delay = inner.opts.backoff_min;
    loop {
        let link = tokio::select! {
            () = cancel.cancelled() => return None,
            link = inner.link(after, None) => link.ok()?,
        };
        match subscribe(link.clone(), queue, prefetch).await {
            Ok(sub) => return Some(sub),
            Err(e) if !link.is_up() => {
                inner.lost();
                after = link.generation;
                debug!(%queue, error = %e, "resubscribing interrupted by a connection loss");
            }
            Err(e) => match bus_error(&e) {
                BusError::QueueNotFound(_) => return None,
                other => {
                    warn!(%queue, error = %other, retry_in = ?delay, "resubscribing failed");
                    tokio::select! {
                        () = cancel.cancelled() => return None,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(inner.opts.backoff_max);
                    after = link.generation - 1;
                }
            },
        }
    }
}

struct AmqpSettle {
    acker: Acker,
    /// How long handing the settlement to the connection may take. It needs no answer from the
    /// broker, but a connection that stopped moving must not hold the consumer.
    within: Duration,
}

#[async_trait]
impl Settle for AmqpSettle {
    async fn settle(&self, how: Settlement) -> Result<()> {
        let settling = async {
            match how {
                Settlement::Ack => self.acker.ack(BasicAckOptions::default()).await,
                Settlement::Requeue => {
                    let requeue = BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    };
                    self.acker.nack(requeue).await
                }
                // Without requeue the broker dead-letters to the queue's DLX, or drops.
                Settlement::Reject => {
                    let reject = BasicRejectOptions { requeue: false };
                    self.acker.reject(reject).await
                }
            }
        };
        let done = tokio::time::timeout(self.within, settling)
            .await
            .map_err(|_| {
                BusError::Amqp(format!(
                    "settling a delivery took longer than {:?}; the broker will redeliver it \
                     if the connection is lost",
                    self.within
                ))
            })?
            .map_err(|e| bus_error(&e))?;
        if done {
            Ok(())
        } else {
            // lapin refuses acks for a channel that has closed (consumer dropped, connection
            // lost): the broker has already put the message back and will deliver it again.
            Err(BusError::Amqp(
                "the delivery's channel is closed; the broker will redeliver it".into(),
            ))
        }
    }
}
