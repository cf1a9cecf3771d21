//! One connection to RabbitMQ (a "link") and the supervisor that replaces it when it drops.
//!
//! Every operation borrows the current link from a `watch` channel. When an operation finds the
//! connection gone it pokes the supervisor and waits for a link of a later generation; the
//! supervisor reconnects with back-off, declares the recorded topology again, and only then
//! publishes the new link, so consumers that resubscribe find their queues in place.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::AmqpOptions;
use super::convert::bus_error;
use super::topology::Topology;
use crate::{BusError, Result};

/// Admin channels kept open between operations; more concurrent operations open more.
const SPARE_CHANNELS: usize = 4;

pub(super) struct Inner {
    pub url: String,
    pub opts: AmqpOptions,
    state: watch::Sender<State>,
    pub topology: Mutex<Topology>,
    /// Poked by operations that saw the connection fail, so the supervisor need not poll.
    lost: Notify,
    /// Cancelled by `close()` or by dropping the bus; ends the supervisor and every consumer.
    pub shutdown: CancellationToken,
}

#[derive(Clone)]
enum State {
    Down,
    Up(Arc<Link>),
    Closed,
}

/// A message ready to go on the wire; kept until confirmed so it can be published again on a
/// new connection.
pub(super) struct Outgoing {
    pub routing_key: ShortString,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

/// What became of one publishing round on a link.
pub(super) struct Sent {
    /// Indexes whose fate is unknown (not sent, or the channel died before the confirm):
    /// publish them again.
    pub unconfirmed: Vec<usize>,
    /// How many the broker refused (basic.nack).
    pub nacked: usize,
    /// Why `unconfirmed` is not empty.
    pub error: Option<lapin::Error>,
}

pub(super) struct Link {
    pub generation: u64,
    pub conn: Connection,
    /// Confirm-mode channels for publishing, opened on first use. A channel's lock is held
    /// while a round of messages is handed to lapin: confirm sequence numbers follow that
    /// order, and interleaving two rounds on one channel would pair confirms with the wrong
    /// messages. Several channels let concurrent publishers proceed in parallel; one round
    /// (one `publish_batch`) stays on one channel, so its order is kept.
    publishers: Vec<tokio::sync::Mutex<Option<Channel>>>,
    next_publisher: AtomicUsize,
    spare: Mutex<Vec<Channel>>,
    /// How long one exchange with the broker may take (`AmqpOptions::answer_timeout`).
    answer_timeout: Duration,
    /// Cancelled when the broker left a request unanswered: the connection still looks open to
    /// lapin but is treated as lost, so operations and consumers move to a fresh one.
    pub stalled: CancellationToken,
}

impl Link {
    async fn open(inner: &Inner, generation: u64) -> lapin::Result<Arc<Self>> {
        let props = ConnectionProperties::default()
            .with_connection_name(inner.opts.connection_name.as_str().into());
        let within = inner.opts.answer_timeout;
        let conn = answered(
            Instant::now() + within,
            within,
            "the connection handshake",
            Connection::connect(&inner.url, props),
        )
        .await?;
        let publishers = (0..inner.opts.publish_channels.max(1))
            .map(|_| tokio::sync::Mutex::new(None))
            .collect();
        Ok(Arc::new(Self {
            generation,
            conn,
            publishers,
            next_publisher: AtomicUsize::new(0),
            spare: Mutex::new(Vec::new()),
            answer_timeout: inner.opts.answer_timeout,
            stalled: CancellationToken::new(),
        }))
    }

    pub fn is_up(&self) -> bool {
        self.conn.status().connected() && !self.stalled.is_cancelled()
    }

    pub fn answer_timeout(&self) -> Duration {
        self.answer_timeout
    }

    /// Awaits one exchange with the broker on this link, for at most the answer timeout. A
    /// request left unanswered marks the link stalled, so callers retry on the next one
    /// instead of waiting forever.
    pub async fn bounded<T>(
        &self,
        what: &'static str,
        exchange: impl Future<Output = lapin::Result<T>>,
    ) -> lapin::Result<T> {
        self.bounded_until(Instant::now() + self.answer_timeout, what, exchange)
            .await
    }

    async fn bounded_until<T>(
        &self,
        deadline: Instant,
        what: &'static str,
        exchange: impl Future<Output = lapin::Result<T>>,
    ) -> lapin::Result<T> {
        let result = answered(deadline, self.answer_timeout, what, exchange).await;
        if let Err(e) = &result
            && is_unanswered(e)
        {
            self.stalled.cancel();
        }
        result
    }

    /// Closes the connection, waiting at most the answer timeout for the broker's close-ok.
    pub async fn close(&self, code: u16, reason: &str) {
        let closing = self.conn.close(code, reason.into());
        let deadline = Instant::now() + self.answer_timeout;
        if let Err(e) = answered(deadline, self.answer_timeout, "connection.close", closing).await {
            debug!(error = %e, "closing the AMQP connection");
        }
    }

    fn spare(&self) -> MutexGuard<'_, Vec<Channel>> {
        // The list stays consistent even if a holder panicked: it is only pushed and popped.
        self.spare.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op` on an admin channel. A channel error (404, 406) closes the channel on the
    /// broker's side, so only channels that are still open go back to the pool.
    pub async fn admin<T, F, Fut>(&self, op: F) -> lapin::Result<T>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = lapin::Result<T>>,
    {
        let pooled = self.spare().pop();
        let channel = match pooled {
            Some(channel) if channel.status().connected() => channel,
            _ => {
                self.bounded("channel.open", self.conn.create_channel())
                    .await?
            }
        };
        let result = self.bounded("an admin request", op(channel.clone())).await;
        if result.is_ok() && channel.status().connected() {
            let mut spare = self.spare();
            if spare.len() < SPARE_CHANNELS {
                spare.push(channel);
            }
        }
        result
    }

    /// Publishes `items[which]` on one confirm channel and waits for their confirms.
    pub async fn publish(
        &self,
        exchange: &ShortString,
        items: &[Outgoing],
        which: &[usize],
    ) -> Sent {
        let mut confirms = Vec::with_capacity(which.len());
        let mut sent = Sent {
            unconfirmed: Vec::new(),
            nacked: 0,
            error: None,
        };
        {
            let mut publisher = self.publisher().await;
            let channel = match publisher.as_ref() {
                Some(channel) if channel.status().connected() => channel.clone(),
                _ => match self.open_publisher().await {
                    Ok(channel) => {
                        *publisher = Some(channel.clone());
                        channel
                    }
                    Err(e) => {
                        sent.unconfirmed = which.to_vec();
                        sent.error = Some(e);
                        return sent;
                    }
                },
            };
            for (pos, &i) in which.iter().enumerate() {
                let item = &items[i];
                let publishing = channel.basic_publish(
                    exchange.clone(),
                    item.routing_key.clone(),
                    BasicPublishOptions::default(),
                    &item.body,
                    item.properties.clone(),
                );
                let published = self.bounded("basic.publish", publishing).await;
                match published {
                    Ok(confirm) => confirms.push((i, confirm)),
                    Err(e) => {
                        sent.unconfirmed.extend_from_slice(&which[pos..]);
                        sent.error = Some(e);
                        break;
                    }
                }
            }
        }
        // One deadline for the whole round: the broker confirms in order, so a confirm that is
        // late past the answer timeout means the link stalled.
        let deadline = Instant::now() + self.answer_timeout;
        for (i, confirm) in confirms {
            match self
                .bounded_until(deadline, "a publisher confirm", confirm)
                .await
            {
                Ok(confirmation) if confirmation.is_nack() => sent.nacked += 1,
                Ok(_) => {}
                Err(e) => {
                    sent.unconfirmed.push(i);
                    sent.error.get_or_insert(e);
                }
            }
        }
        // Published again in their original order.
        sent.unconfirmed.sort_unstable();
        sent
    }

    /// A free publish channel slot if there is one, else the next in turn.
    async fn publisher(&self) -> tokio::sync::MutexGuard<'_, Option<Channel>> {
        let start = self.next_publisher.fetch_add(1, Ordering::Relaxed);
        let n = self.publishers.len();
        for i in 0..n {
            if let Ok(slot) = self.publishers[(start + i) % n].try_lock() {
                return slot;
            }
        }
        self.publishers[start % n].lock().await
    }

    async fn open_publisher(&self) -> lapin::Result<Channel> {
        let channel = self
            .bounded("channel.open", self.conn.create_channel())
            .await?;
        let select = channel.confirm_select(ConfirmSelectOptions::default());
        self.bounded("confirm.select", select).await?;
        Ok(channel)
    }
}

impl Inner {
    /// Connects once (no retry: a wrong URL should fail fast at startup) and starts the
    /// supervisor.
    pub async fn start(url: &str, opts: AmqpOptions) -> Result<Arc<Self>> {
        let (state, _) = watch::channel(State::Down);
        let inner = Arc::new(Self {
            url: url.to_string(),
            opts,
            state,
            topology: Mutex::new(Topology::default()),
            lost: Notify::new(),
            shutdown: CancellationToken::new(),
        });
        let link = Link::open(&inner, 1)
            .await
            .map_err(|e| BusError::Amqp(format!("cannot connect to RabbitMQ: {e}")))?;
        inner.state.send_replace(State::Up(link.clone()));
        tokio::spawn(supervise(inner.clone(), link));
        Ok(inner)
    }

    pub fn topology(&self) -> MutexGuard<'_, Topology> {
        self.topology.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current link if it is newer than generation `after`, waiting for a reconnect (until
    /// `deadline`, if any) otherwise.
    pub async fn link(&self, after: u64, deadline: Option<Instant>) -> Result<Arc<Link>> {
        let mut rx = self.state.subscribe();
        let wait = async {
            loop {
                match &*rx.borrow_and_update() {
                    State::Up(link) if link.generation > after => return Ok(link.clone()),
                    State::Closed => return Err(BusError::Closed),
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return Err(BusError::Closed);
                }
            }
        };
        match deadline {
            None => wait.await,
            Some(deadline) => tokio::time::timeout_at(deadline, wait)
                .await
                .unwrap_or_else(|_| {
                    Err(BusError::Amqp(format!(
                        "not connected to RabbitMQ (waited {:?} for a reconnect)",
                        self.opts.reconnect_timeout
                    )))
                }),
        }
    }

    pub fn current(&self) -> Option<Arc<Link>> {
        match &*self.state.borrow() {
            State::Up(link) => Some(link.clone()),
            _ => None,
        }
    }

    /// Tells the supervisor a link failed.
    pub fn lost(&self) {
        self.lost.notify_one();
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + self.opts.reconnect_timeout
    }

    /// Runs `op` on the current link; if the connection drops under it, waits for the next
    /// link and runs it again (until the reconnect timeout). Errors of a live connection (a
    /// channel error such as 404 or 406) are returned as they are.
    pub async fn on_link<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Arc<Link>) -> Fut,
        Fut: Future<Output = lapin::Result<T>>,
    {
        let deadline = self.deadline();
        let mut after = 0;
        loop {
            let link = self.link(after, Some(deadline)).await?;
            match op(link.clone()).await {
                Ok(value) => return Ok(value),
                Err(e) if !link.is_up() => {
                    debug!(error = %e, "AMQP operation interrupted by a connection loss; retrying");
                    self.lost();
                    after = link.generation;
                }
                Err(e) => return Err(bus_error(&e)),
            }
        }
    }

    /// Closes the current connection; the supervisor ends.
    pub async fn close(&self) {
        self.shutdown.cancel();
        let previous = self.state.send_replace(State::Closed);
        if let State::Up(link) = previous {
            link.close(200, "closed by oih").await;
        }
    }
}

async fn supervise(inner: Arc<Inner>, mut link: Arc<Link>) {
    loop {
        tokio::select! {
            () = inner.shutdown.cancelled() => break,
            () = until_lost(&inner, &link) => {}
        }
        warn!(
            generation = link.generation,
            "the connection to RabbitMQ was lost; reconnecting"
        );
        if link.conn.status().connected() {
            // Stalled, not dropped: let the broker free what it holds for the old connection.
            let stalled = link.clone();
            tokio::spawn(async move { stalled.close(320, "unanswered requests").await });
        }
        inner.state.send_if_modified(|state| match state {
            State::Closed => false,
            _ => {
                *state = State::Down;
                true
            }
        });
        match reconnect(&inner, link.generation + 1).await {
            Some(next) => link = next,
            None => break,
        }
        info!(generation = link.generation, "reconnected to RabbitMQ");
        let published = inner.state.send_if_modified(|state| match state {
            State::Closed => false,
            _ => {
                *state = State::Up(link.clone());
                true
            }
        });
        if !published {
            break;
        }
    }
    // Closed (by `close()`, or the bus was dropped): make sure the socket goes too.
    inner.state.send_replace(State::Closed);
    if link.conn.status().connected() {
        link.close(200, "closed by oih").await;
    }
}

/// Resolves when `link`'s connection is gone. lapin reports failures as events; operations
/// that hit one poke `lost`; a slow poll covers anything both miss.
async fn until_lost(inner: &Inner, link: &Link) {
    let mut events = link.conn.events_listener();
    let mut events_open = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while link.is_up() {
        tokio::select! {
            event = events.next(), if events_open => events_open = event.is_some(),
            () = inner.lost.notified() => {}
            _ = tick.tick() => {}
        }
    }
}

/// Connects with exponential back-off and replays the topology; None once the bus is closed.
async fn reconnect(inner: &Inner, generation: u64) -> Option<Arc<Link>> {
    let mut delay = inner.opts.backoff_min;
    loop {
        let attempt = async {
            let link = Link::open(inner, generation).await?;
            replay(inner, &link).await?;
            Ok::<_, lapin::Error>(link)
        };
        tokio::select! {
            () = inner.shutdown.cancelled() => return None,
            result = attempt => match result {
                Ok(link) => return Some(link),
                Err(e) => warn!(error = %e, retry_in = ?delay, "reconnecting to RabbitMQ failed"),
            },
        }
        tokio::select! {
            () = inner.shutdown.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(inner.opts.backoff_max);
    }
}

/// Declares the recorded topology on a new link. A declaration the broker refuses (someone
/// redeclared a queue with other arguments meanwhile) is logged and skipped: the rest of the
/// topology must still come back. Only a connection failure aborts the attempt.
async fn replay(inner: &Inner, link: &Link) -> lapin::Result<()> {
    let ops = inner.topology().replay();
    for op in &ops {
        if let Err(e) = link
            .admin(|channel| async move { op.run(&channel).await })
            .await
        {
            if !link.is_up() {
                return Err(e);
            }
            warn!(?op, error = %e, "could not restore AMQP topology after reconnecting");
        }
    }
    debug!(count = ops.len(), "AMQP topology restored");
    Ok(())
}

/// Awaits `exchange` until `deadline`; past that it fails with a timed-out I/O error, which
/// callers treat as a lost connection. `within` is only for the message.
async fn answered<T>(
    deadline: Instant,
    within: Duration,
    what: &'static str,
    exchange: impl Future<Output = lapin::Result<T>>,
) -> lapin::Result<T> {
    tokio::time::timeout_at(deadline, exchange)
        .await
        .unwrap_or_else(|_| Err(unanswered(what, within)))
}

fn unanswered(what: &str, within: Duration) -> lapin::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("RabbitMQ did not answer {what} within {within:?}"),
    )
    .into()
}

fn is_unanswered(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::IOError(io) if io.kind() == io::ErrorKind::TimedOut)
}
