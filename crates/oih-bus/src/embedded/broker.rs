//! The in-memory side of the embedded broker: exchanges, bindings, queues, consumers and
//! in-flight deliveries. Everything here runs under one mutex and never awaits; what must be
//! made durable is handed to the writer as a [`WriteOp`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use oih_store::{LogBatch, StoredMessage};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::codec::{self, BindingSpec};
use super::writer::WriteOp;
use crate::{BusError, ExchangeKind, Message, QueueOptions, Result, topic_matches};

/// A message in a queue, ready or in flight.
#[derive(Debug, Clone)]
pub(super) struct Envelope {
    pub id: i64,
    pub exchange: Arc<str>,
    pub routing_key: Arc<str>,
    pub message: Arc<Message>,
    pub enqueued_at: i64,
    pub expires_at: Option<i64>,
    /// Deliveries so far that were not acknowledged.
    pub delivery_count: i32,
}

impl Envelope {
    pub fn to_stored(&self, queue: &str) -> StoredMessage {
        StoredMessage {
            id: self.id,
            queue: queue.to_owned(),
            exchange: self.exchange.to_string(),
            routing_key: self.routing_key.to_string(),
            props: super::codec::encode_props(&self.message.properties),
            body: self.message.body.clone(),
            enqueued_at: self.enqueued_at,
            expires_at: self.expires_at,
            delivery_count: self.delivery_count,
        }
    }
}

/// An envelope destined for a queue, to be made visible once its write is durable.
#[derive(Debug)]
pub(super) struct Routed {
    pub queue: Arc<str>,
    pub envelope: Envelope,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Target {
    Queue(String),
    Exchange(String),
}

#[derive(Debug)]
pub(super) struct Binding {
    pub target: Target,
    pub pattern: String,
}

#[derive(Debug)]
pub(super) struct Exchange {
    pub kind: ExchangeKind,
    bindings: Vec<Binding>,
}

/// What a consumer's delivery channel carries; built by the caller, which owns the settle
/// handle type.
pub(super) type DeliverySender = mpsc::Sender<crate::Delivery>;

struct ConsumerSlot {
    id: u64,
    tx: DeliverySender,
    prefetch: usize,
    in_flight: usize,
}

struct InFlight {
    envelope: Envelope,
    consumer: u64,
    /// Past this instant the delivery is requeued (visibility timeout).
    deadline: i64,
}

pub(super) struct Queue {
    pub name: Arc<str>,
    pub opts: QueueOptions,
    ready: VecDeque<Envelope>,
    unacked: HashMap<u64, InFlight>,
    consumers: Vec<ConsumerSlot>,
    cursor: usize,
    /// The earliest expiry check already scheduled for this queue, so each queue has at most
    /// a few timer entries however many messages it holds.
    expiry_scheduled: Option<i64>,
}

impl Queue {
    fn new(name: &str, opts: QueueOptions) -> Self {
        Self {
            name: Arc::from(name),
            opts,
            ready: VecDeque::new(),
            unacked: HashMap::new(),
            consumers: Vec::new(),
            cursor: 0,
            expiry_scheduled: None,
        }
    }

    fn ttl_deadline(&self, now: i64, message: &Message) -> Option<i64> {
        let queue_ttl = self.opts.message_ttl.map(|d| now + d.as_millis() as i64);
        let msg_ttl = message
            .properties
            .expiration
            .map(|d| now + d.as_millis() as i64);
        match (queue_ttl, msg_ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Why a message left its queue for the dead-letter exchange (RabbitMQ's `x-death` reasons).
#[derive(Debug, Clone, Copy)]
pub(super) enum DeathReason {
    Rejected,
    Expired,
}

impl DeathReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }
}

/// Hooks the broker needs from its owner while holding the lock: id allocation, delivery
/// construction and the writer queue.
pub(super) trait Host {
    fn now_ms(&self) -> i64;
    fn next_id(&self) -> i64;
    fn next_tag(&self) -> u64;
    fn visibility_ms(&self) -> i64;
    fn make_delivery(&self, queue: &Arc<str>, tag: u64, envelope: &Envelope) -> crate::Delivery;
    fn submit(&self, op: WriteOp);
    fn wake_timer(&self);
}

#[derive(Default)]
pub(super) struct Broker {
    pub exchanges: HashMap<String, Exchange>,
    pub queues: HashMap<String, Queue>,
    /// When to look at a queue's head for expired messages (RabbitMQ expires messages only
    /// at the head of a queue).
    expiry_checks: BinaryHeap<Reverse<(i64, Arc<str>)>>,
    next_consumer: u64,
}

impl Broker {
    // ---- topology -------------------------------------------------------------------------

    /// Returns true when the exchange is new.
    pub fn declare_exchange(&mut self, name: &str, kind: ExchangeKind) -> Result<bool> {
        if name.is_empty() || name.starts_with("amq.") {
            return Err(BusError::PreconditionFailed(format!(
                "exchange name {name:?} is reserved"
            )));
        }
        match self.exchanges.get(name) {
            Some(ex) if ex.kind == kind => Ok(false),
            Some(ex) => Err(BusError::PreconditionFailed(format!(
                "exchange {name:?} exists with type {:?}, not {kind:?}",
                ex.kind
            ))),
            None => {
                self.exchanges.insert(
                    name.to_owned(),
                    Exchange {
                        kind,
                        bindings: Vec::new(),
                    },
                );
                Ok(true)
            }
        }
    }

    /// Removes the exchange, its bindings and bindings to it; returns the binding records gone.
    pub fn delete_exchange(&mut self, name: &str) -> Option<Vec<(&'static str, BindingSpec)>> {
        let exchange = self.exchanges.remove(name)?;
        let mut gone: Vec<(&'static str, BindingSpec)> = exchange
            .bindings
            .into_iter()
            .map(|b| binding_record(name, &b))
            .collect();
        gone.extend(self.unbind_target(&Target::Exchange(name.to_owned())));
        Some(gone)
    }

    /// Removes every binding to `target`; returns their records.
    fn unbind_target(&mut self, target: &Target) -> Vec<(&'static str, BindingSpec)> {
        let mut gone = Vec::new();
        for (source, ex) in self.exchanges.iter_mut() {
            ex.bindings.retain(|b| {
                let keep = b.target != *target;
                if !keep {
                    gone.push(binding_record(source, b));
                }
                keep
            });
        }
        gone
    }

    /// Returns true when the queue is new.
    pub fn declare_queue(&mut self, name: &str, opts: &QueueOptions) -> Result<bool> {
        if name.is_empty() {
            return Err(BusError::PreconditionFailed(
                "queue names must not be empty".into(),
            ));
        }
        match self.queues.get(name) {
            Some(q) if q.opts == *opts => Ok(false),
            Some(q) => Err(BusError::PreconditionFailed(format!(
                "queue {name:?} exists with other arguments ({:?}, not {opts:?})",
                q.opts
            ))),
            None => {
                self.queues
                    .insert(name.to_owned(), Queue::new(name, opts.clone()));
                Ok(true)
            }
        }
    }

    /// Removes the queue with its messages, consumers and bindings; returns (messages held,
    /// binding records gone).
    pub fn delete_queue(&mut self, name: &str) -> Option<(u64, Vec<(&'static str, BindingSpec)>)> {
        let queue = self.queues.remove(name)?;
        let held = (queue.ready.len() + queue.unacked.len()) as u64;
        Some((held, self.unbind_target(&Target::Queue(name.to_owned()))))
    }

    pub fn bind(&mut self, source: &str, target: Target, pattern: &str) -> Result<bool> {
        match &target {
            Target::Queue(q) if !self.queues.contains_key(q) => {
                return Err(BusError::QueueNotFound(q.clone()));
            }
            Target::Exchange(e) if !self.exchanges.contains_key(e) => {
                return Err(BusError::ExchangeNotFound(e.clone()));
            }
            _ => {}
        }
        let exchange = self
            .exchanges
            .get_mut(source)
            .ok_or_else(|| BusError::ExchangeNotFound(source.to_owned()))?;
        if exchange
            .bindings
            .iter()
            .any(|b| b.target == target && b.pattern == pattern)
        {
            return Ok(false);
        }
        exchange.bindings.push(Binding {
            target,
            pattern: pattern.to_owned(),
        });
        Ok(true)
    }

    pub fn unbind(&mut self, source: &str, target: &Target, pattern: &str) -> bool {
        let Some(exchange) = self.exchanges.get_mut(source) else {
            return false;
        };
        let before = exchange.bindings.len();
        exchange
            .bindings
            .retain(|b| !(b.target == *target && b.pattern == pattern));
        before != exchange.bindings.len()
    }

    // ---- routing --------------------------------------------------------------------------

    /// The queues a message published to `exchange` with `routing_key` lands in, each once,
    /// following exchange-to-exchange bindings (cycles are cut).
    pub fn route(&self, exchange: &str, routing_key: &str) -> Result<Vec<Arc<str>>> {
        if exchange.is_empty() {
            return Ok(self
                .queues
                .get(routing_key)
                .map(|q| vec![q.name.clone()])
                .unwrap_or_default());
        }
        if !self.exchanges.contains_key(exchange) {
            return Err(BusError::ExchangeNotFound(exchange.to_owned()));
        }
        let mut queues: Vec<Arc<str>> = Vec::new();
        let mut seen_queues: HashSet<&str> = HashSet::new();
        let mut seen_exchanges: HashSet<&str> = HashSet::from([exchange]);
        let mut pending: Vec<&str> = vec![exchange];
        while let Some(name) = pending.pop() {
            let Some(ex) = self.exchanges.get(name) else {
                continue;
            };
            for binding in &ex.bindings {
                let hit = match ex.kind {
                    ExchangeKind::Fanout => true,
                    ExchangeKind::Direct => binding.pattern == routing_key,
                    ExchangeKind::Topic => topic_matches(&binding.pattern, routing_key),
                };
                if !hit {
                    continue;
                }
                match &binding.target {
                    Target::Queue(q) => {
                        if let Some(queue) = self.queues.get(q)
                            && seen_queues.insert(q.as_str())
                        {
                            queues.push(queue.name.clone());
                        }
                    }
                    Target::Exchange(e) => {
                        if seen_exchanges.insert(e.as_str()) {
                            pending.push(e.as_str());
                        }
                    }
                }
            }
        }
        Ok(queues)
    }

    /// Routes a new message: allocates one envelope per destination queue.
    pub fn prepare(
        &self,
        host: &dyn Host,
        exchange: &str,
        routing_key: &str,
        message: Arc<Message>,
    ) -> Result<Vec<Routed>> {
        let now = host.now_ms();
        let exchange_name: Arc<str> = Arc::from(exchange);
        let key: Arc<str> = Arc::from(routing_key);
        Ok(self
            .route(exchange, routing_key)?
            .into_iter()
            .filter_map(|queue| {
                let q = self.queues.get(&*queue)?;
                let envelope = Envelope {
                    id: host.next_id(),
                    exchange: exchange_name.clone(),
                    routing_key: key.clone(),
                    expires_at: q.ttl_deadline(now, &message),
                    message: message.clone(),
                    enqueued_at: now,
                    delivery_count: 0,
                };
                Some(Routed { queue, envelope })
            })
            .collect())
    }

    // ---- delivery -------------------------------------------------------------------------

    /// Appends durable envelopes to their queues (dropping those whose queue is gone) and
    /// delivers what consumers can take.
    pub fn make_visible(&mut self, host: &dyn Host, routed: Vec<Routed>) {
        let mut touched: Vec<Arc<str>> = Vec::new();
        for Routed { queue, envelope } in routed {
            let Some(q) = self.queues.get_mut(&*queue) else {
                continue;
            };
            schedule_expiry(&mut self.expiry_checks, q, envelope.expires_at, host);
            q.ready.push_back(envelope);
            if touched.last() != Some(&queue) {
                touched.push(queue);
            }
        }
        touched.dedup();
        for queue in touched {
            self.dispatch(host, &queue);
        }
    }

    pub fn add_consumer(
        &mut self,
        host: &dyn Host,
        queue: &str,
        tx: DeliverySender,
        prefetch: usize,
    ) -> Result<u64> {
        let q = self
            .queues
            .get_mut(queue)
            .ok_or_else(|| BusError::QueueNotFound(queue.to_owned()))?;
        self.next_consumer += 1;
        let id = self.next_consumer;
        q.consumers.push(ConsumerSlot {
            id,
            tx,
            prefetch,
            in_flight: 0,
        });
        let name = q.name.clone();
        self.dispatch(host, &name);
        Ok(id)
    }

    /// Cancels a consumer: its unsettled deliveries go back to the head of the queue.
    pub fn remove_consumer(&mut self, host: &dyn Host, queue: &str, consumer: u64) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        q.consumers.retain(|c| c.id != consumer);
        let tags: Vec<u64> = q
            .unacked
            .iter()
            .filter(|(_, f)| f.consumer == consumer)
            .map(|(t, _)| *t)
            .collect();
        let mut back: Vec<Envelope> = tags
            .into_iter()
            .filter_map(|t| q.unacked.remove(&t))
            .map(|f| f.envelope)
            .collect();
        requeue_front(q, &mut back, host);
        let name = q.name.clone();
        self.dispatch(host, &name);
    }

    /// Hands ready messages to consumers with spare prefetch, round-robin. Expired heads are
    /// dead-lettered on the way.
    pub fn dispatch(&mut self, host: &dyn Host, queue: &str) {
        let now = host.now_ms();
        let mut dead: Vec<Envelope> = Vec::new();
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        loop {
            while q
                .ready
                .front()
                .is_some_and(|e| e.expires_at.is_some_and(|at| at <= now))
            {
                if let Some(e) = q.ready.pop_front() {
                    dead.push(e);
                }
            }
            if q.ready.is_empty() || q.consumers.is_empty() {
                break;
            }
            let Some(slot) = pick_consumer(q) else { break };
            let Some(mut envelope) = q.ready.pop_front() else {
                break;
            };
            let tag = host.next_tag();
            let delivery = host.make_delivery(&q.name, tag, &envelope);
            match q.consumers[slot].tx.try_send(delivery) {
                Ok(()) => {
                    q.consumers[slot].in_flight += 1;
                    envelope.delivery_count += 1;
                    let deadline = now + host.visibility_ms();
                    q.unacked.insert(
                        tag,
                        InFlight {
                            envelope,
                            consumer: q.consumers[slot].id,
                            deadline,
                        },
                    );
                }
                Err(mpsc::error::TrySendError::Full(delivery)) => {
                    // Only an unlimited-prefetch consumer can fill its channel; wait for it to
                    // drain. The delivery was never recorded, so it must not requeue itself.
                    delivery.disarm();
                    q.ready.push_front(envelope);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(delivery)) => {
                    // The consumer went away; its guard removes it properly, but stop offering
                    // it messages now.
                    delivery.disarm();
                    q.ready.push_front(envelope);
                    let id = q.consumers[slot].id;
                    q.consumers.retain(|c| c.id != id);
                }
            }
        }
        let head_expiry = q.ready.front().and_then(|e| e.expires_at);
        schedule_expiry(&mut self.expiry_checks, q, head_expiry, host);
        let opts = q.opts.clone();
        let name = q.name.clone();
        if !dead.is_empty() {
            self.dead_letter(host, &name, &opts, dead, DeathReason::Expired);
        }
    }

    /// Settles one delivery. Unknown tags (already settled, or requeued by the visibility
    /// timeout) are ignored.
    pub fn settle(&mut self, host: &dyn Host, queue: &str, tag: u64, how: crate::Settlement) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        let Some(InFlight {
            envelope, consumer, ..
        }) = q.unacked.remove(&tag)
        else {
            return;
        };
        if let Some(c) = q.consumers.iter_mut().find(|c| c.id == consumer) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        match how {
            crate::Settlement::Ack => {
                host.submit(WriteOp::background(LogBatch {
                    remove: vec![envelope.id],
                    ..LogBatch::default()
                }));
            }
            crate::Settlement::Requeue => {
                let mut back = vec![envelope];
                requeue_front(q, &mut back, host);
            }
            crate::Settlement::Reject => {
                let opts = q.opts.clone();
                let name = q.name.clone();
                self.dead_letter(host, &name, &opts, vec![envelope], DeathReason::Rejected);
            }
        }
        let name = self.queues.get(queue).map(|q| q.name.clone());
        if let Some(name) = name {
            self.dispatch(host, &name);
        }
    }

    /// Moves messages out of `queue`: to its dead-letter exchange when it has one (with an
    /// `x-death` header as RabbitMQ adds), else drops them. Atomic in the log: the removal and
    /// the new copies are one write.
    fn dead_letter(
        &mut self,
        host: &dyn Host,
        queue: &Arc<str>,
        opts: &QueueOptions,
        dead: Vec<Envelope>,
        why: DeathReason,
    ) {
        let mut batch = LogBatch {
            remove: dead.iter().map(|e| e.id).collect(),
            ..LogBatch::default()
        };
        let mut routed = Vec::new();
        if let Some(dlx) = &opts.dead_letter_exchange {
            for envelope in dead {
                let key = opts
                    .dead_letter_routing_key
                    .clone()
                    .unwrap_or_else(|| envelope.routing_key.to_string());
                let mut message = (*envelope.message).clone();
                // RabbitMQ drops the per-message expiration when dead-lettering, so the copy does
                // not expire again at once.
                message.properties.expiration = None;
                record_death(&mut message, queue, &envelope, why);
                match self.prepare(host, dlx, &key, Arc::new(message)) {
                    Ok(copies) => routed.extend(copies),
                    Err(err) => {
                        tracing::warn!(queue = %queue, error = %err, "dead-letter exchange missing; message dropped")
                    }
                }
            }
        }
        batch.append = routed
            .iter()
            .map(|r| r.envelope.to_stored(&r.queue))
            .collect();
        host.submit(WriteOp::visible_after(batch, routed));
    }

    // ---- timers ---------------------------------------------------------------------------

    pub fn next_expiry_check(&self) -> Option<i64> {
        self.expiry_checks.peek().map(|Reverse((at, _))| *at)
    }

    /// Dead-letters expired heads of the queues whose check is due.
    pub fn fire_expiry_checks(&mut self, host: &dyn Host) {
        let now = host.now_ms();
        let mut due: Vec<Arc<str>> = Vec::new();
        while self
            .expiry_checks
            .peek()
            .is_some_and(|Reverse((at, _))| *at <= now)
        {
            if let Some(Reverse((_, queue))) = self.expiry_checks.pop() {
                due.push(queue);
            }
        }
        due.sort();
        due.dedup();
        for queue in due {
            if let Some(q) = self.queues.get_mut(&*queue) {
                q.expiry_scheduled = None;
                self.dispatch(host, &queue);
            }
        }
    }

    /// Requeues deliveries held past the visibility timeout. In-flight deliveries are bounded
    /// by the consumers' prefetch, so a scan is cheap.
    pub fn requeue_overdue(&mut self, host: &dyn Host) {
        let now = host.now_ms();
        let mut touched = Vec::new();
        for q in self.queues.values_mut() {
            let overdue: Vec<u64> = q
                .unacked
                .iter()
                .filter(|(_, f)| f.deadline <= now)
                .map(|(t, _)| *t)
                .collect();
            if overdue.is_empty() {
                continue;
            }
            tracing::warn!(queue = %q.name, count = overdue.len(), "deliveries not settled within the visibility timeout; requeued");
            let mut back = Vec::new();
            for tag in overdue {
                if let Some(InFlight {
                    envelope, consumer, ..
                }) = q.unacked.remove(&tag)
                {
                    if let Some(c) = q.consumers.iter_mut().find(|c| c.id == consumer) {
                        c.in_flight = c.in_flight.saturating_sub(1);
                    }
                    back.push(envelope);
                }
            }
            requeue_front(q, &mut back, host);
            touched.push(q.name.clone());
        }
        for queue in touched {
            self.dispatch(host, &queue);
        }
    }

    // ---- inspection -----------------------------------------------------------------------

    pub fn ready_len(&self, queue: &str) -> Result<u64> {
        self.queues
            .get(queue)
            .map(|q| q.ready.len() as u64)
            .ok_or_else(|| BusError::QueueNotFound(queue.to_owned()))
    }

    /// Drops every ready message; returns their ids.
    pub fn purge(&mut self, queue: &str) -> Result<Vec<i64>> {
        let q = self
            .queues
            .get_mut(queue)
            .ok_or_else(|| BusError::QueueNotFound(queue.to_owned()))?;
        Ok(q.ready.drain(..).map(|e| e.id).collect())
    }

    /// Restores a message read back from the log at start-up.
    pub fn restore(&mut self, host: &dyn Host, queue: &str, envelope: Envelope) -> bool {
        let Some(q) = self.queues.get_mut(queue) else {
            return false;
        };
        schedule_expiry(&mut self.expiry_checks, q, envelope.expires_at, host);
        q.ready.push_back(envelope);
        true
    }

    /// Ends every consumer (their `next()` returns None); used when the bus closes.
    pub fn drop_consumers(&mut self) {
        for q in self.queues.values_mut() {
            q.consumers.clear();
        }
    }
}

/// The log record of a binding: its kind and spec.
pub(super) fn binding_record(source: &str, binding: &Binding) -> (&'static str, BindingSpec) {
    let (kind, destination) = match &binding.target {
        Target::Queue(q) => (codec::BINDING, q.clone()),
        Target::Exchange(e) => (codec::EXCHANGE_BINDING, e.clone()),
    };
    (
        kind,
        BindingSpec {
            source: source.to_owned(),
            destination,
            pattern: binding.pattern.clone(),
        },
    )
}

/// Puts envelopes back at the head of the queue in id order, and records their delivery counts
/// so a restart still reports them as redelivered.
fn requeue_front(q: &mut Queue, back: &mut Vec<Envelope>, host: &dyn Host) {
    if back.is_empty() {
        return;
    }
    back.sort_by_key(|e| Reverse(e.id));
    let counts = back.iter().map(|e| (e.id, e.delivery_count)).collect();
    for envelope in back.drain(..) {
        q.ready.push_front(envelope);
    }
    host.submit(WriteOp::background(LogBatch {
        set_delivery_count: counts,
        ..LogBatch::default()
    }));
}

/// Makes sure the queue is checked for expired messages no later than `at`.
fn schedule_expiry(
    checks: &mut BinaryHeap<Reverse<(i64, Arc<str>)>>,
    q: &mut Queue,
    at: Option<i64>,
    host: &dyn Host,
) {
    let Some(at) = at else { return };
    if q.expiry_scheduled.is_some_and(|s| s <= at) {
        return;
    }
    q.expiry_scheduled = Some(at);
    checks.push(Reverse((at, q.name.clone())));
    host.wake_timer();
}

/// The next consumer with spare prefetch after the cursor, if any.
fn pick_consumer(q: &mut Queue) -> Option<usize> {
    let n = q.consumers.len();
    for step in 0..n {
        let i = (q.cursor + step) % n;
        let c = &q.consumers[i];
        if c.prefetch == 0 || c.in_flight < c.prefetch {
            q.cursor = (i + 1) % n;
            return Some(i);
        }
    }
    None
}

/// Adds or bumps the `x-death` entry for (queue, reason), newest first, as RabbitMQ does.
fn record_death(message: &mut Message, queue: &str, envelope: &Envelope, why: DeathReason) {
    let headers = &mut message.properties.headers;
    let mut deaths = match headers.remove("x-death") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let existing = deaths.iter().position(|d| {
        d.get("queue").and_then(Value::as_str) == Some(queue)
            && d.get("reason").and_then(Value::as_str) == Some(why.as_str())
    });
    let mut entry = match existing {
        Some(i) => deaths.remove(i),
        None => json!({
            "queue": queue,
            "reason": why.as_str(),
            "exchange": envelope.exchange.as_ref(),
            "routing-keys": [envelope.routing_key.as_ref()],
            "count": 0,
        }),
    };
    let count = entry.get("count").and_then(Value::as_i64).unwrap_or(0) + 1;
    entry["count"] = json!(count);
    deaths.insert(0, entry);
    headers.insert("x-death".into(), Value::Array(deaths));
}
