//! The embedded broker: RabbitMQ's model (exchanges, bindings, durable queues, prefetch,
//! ack/requeue/reject, TTL, dead-lettering) in process, persisted in the store's database.
//!
//! - Routing, queues and in-flight deliveries live in memory ([`broker`]), under one mutex.
//! - Every change that must survive a crash goes through one group-commit task ([`writer`]);
//!   a publish is confirmed, and its message deliverable, only after its write commits.
//! - On open, topology and pending messages are read back from the log, so a message that was
//!   confirmed and not acknowledged is delivered again after a crash (at least once).
//! - Acknowledgements are written in the background: after a crash, a message whose ack had
//!   not reached the disk yet is delivered again, never lost.
//!
//! One process owns a database's embedded bus at a time; several replicas need RabbitMQ.

mod broker;
mod codec;
mod writer;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use oih_store::{LogBatch, MessageLog, TopologyRecord, Transaction};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::broker::{Broker, Envelope, Host, Routed, Target};
use self::codec::{BindingSpec, ExchangeSpec};
use self::writer::WriteOp;
use crate::{
    BusError, ConsumeOptions, Consumer, Delivery, ExchangeKind, Message, MessageBus, QueueOptions,
    Result, Settle, Settlement,
};

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// A delivery not settled within this time goes back to its queue (RabbitMQ's
    /// `consumer_timeout` closes the channel after 30 minutes; we requeue just the message).
    pub visibility_timeout: Duration,
    /// Most appends plus removals merged into one log write.
    pub max_batch: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30 * 60),
            max_batch: 8192,
        }
    }
}

/// Shared state reachable from deliveries and background tasks (through `Weak`, so dropping
/// the bus frees it).
pub(crate) struct Core {
    me: Weak<Core>,
    broker: Arc<Mutex<Broker>>,
    ops: mpsc::UnboundedSender<WriteOp>,
    next_id: AtomicI64,
    next_tag: AtomicU64,
    visibility_ms: i64,
    timer: Notify,
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, Broker> {
        // The broker never panics mid-change by design; if a panic did poison the lock, the
        // state is still the last consistent one, so keep serving.
        self.broker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Host for Core {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn next_tag(&self) -> u64 {
        self.next_tag.fetch_add(1, Ordering::Relaxed)
    }

    fn visibility_ms(&self) -> i64 {
        self.visibility_ms
    }

    fn make_delivery(&self, queue: &Arc<str>, tag: u64, envelope: &Envelope) -> Delivery {
        // Deliveries hold the core weakly: a delivery kept after the bus is gone settles to an
        // error instead of keeping the bus alive.
        let core = self.me.clone();
        Delivery::new(
            (*envelope.message).clone(),
            envelope.exchange.to_string(),
            envelope.routing_key.to_string(),
            envelope.delivery_count > 0,
            Box::new(EmbeddedSettle {
                core,
                queue: queue.clone(),
                tag,
            }),
        )
    }

    fn submit(&self, op: WriteOp) {
        // Fails only once the writer has stopped (bus closed); the change is then lost from
        // memory only, and the log still holds the message, so it comes back on restart.
        let _ = self.ops.send(op);
    }

    fn wake_timer(&self) {
        self.timer.notify_one();
    }
}

struct EmbeddedSettle {
    core: Weak<Core>,
    queue: Arc<str>,
    tag: u64,
}

#[async_trait]
impl Settle for EmbeddedSettle {
    async fn settle(&self, how: Settlement) -> Result<()> {
        let core = self.core.upgrade().ok_or(BusError::Closed)?;
        core.lock().settle(&*core, &self.queue, self.tag, how);
        Ok(())
    }
}

/// Cancels a consumer when its [`Consumer`] is dropped.
struct ConsumerGuard {
    core: Weak<Core>,
    queue: String,
    id: u64,
}

impl Drop for ConsumerGuard {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade() {
            core.lock().remove_consumer(&*core, &self.queue, self.id);
        }
    }
}

pub struct EmbeddedBus {
    core: Arc<Core>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl EmbeddedBus {
    /// Reads topology and pending messages back from `log` and starts the writer and timer.
    pub async fn open(log: Arc<dyn MessageLog>, opts: EmbeddedOptions) -> Result<Arc<Self>> {
        let snapshot = log.load().await?;
        let mut broker = Broker::default();
        restore_topology(&mut broker, &snapshot.topology)?;
        let next_id = snapshot.messages.iter().map(|m| m.id).max().unwrap_or(0) + 1;

        let (ops_tx, ops_rx) = mpsc::unbounded_channel();
        let broker = Arc::new(Mutex::new(broker));
        let core = Arc::new_cyclic(|weak: &Weak<Core>| Core {
            me: weak.clone(),
            broker: broker.clone(),
            ops: ops_tx,
            next_id: AtomicI64::new(next_id),
            next_tag: AtomicU64::new(1),
            visibility_ms: opts.visibility_timeout.as_millis() as i64,
            timer: Notify::new(),
        });

        let mut orphans = Vec::new();
        {
            let mut guard = core.lock();
            for stored in snapshot.messages {
                let queue = stored.queue.clone();
                let id = stored.id;
                let envelope = Envelope {
                    id,
                    exchange: Arc::from(stored.exchange.as_str()),
                    routing_key: Arc::from(stored.routing_key.as_str()),
                    message: Arc::new(Message {
                        body: stored.body,
                        properties: codec::decode_props(&stored.props)?,
                    }),
                    enqueued_at: stored.enqueued_at,
                    expires_at: stored.expires_at,
                    delivery_count: stored.delivery_count,
                };
                if !guard.restore(&*core, &queue, envelope) {
                    orphans.push(id);
                }
            }
        }
        if !orphans.is_empty() {
            // Messages routed to a queue that was deleted before they were written.
            core.submit(WriteOp::background(LogBatch {
                remove: orphans,
                ..LogBatch::default()
            }));
        }

        let cancel = CancellationToken::new();
        let writer = tokio::spawn(writer::run(
            log,
            broker,
            Arc::downgrade(&core),
            ops_rx,
            opts.max_batch.max(1),
            cancel.clone(),
        ));
        let timer = tokio::spawn(run_timer(Arc::downgrade(&core), cancel.clone()));
        Ok(Arc::new(Self {
            core,
            cancel,
            tasks: Mutex::new(vec![writer, timer]),
        }))
    }

    /// Publishes inside a store transaction (the transactional outbox): the message is written
    /// with the transaction's other changes and becomes deliverable only if it commits.
    pub async fn publish_in(
        &self,
        tx: &mut dyn Transaction,
        exchange: &str,
        routing_key: &str,
        message: Message,
    ) -> Result<()> {
        self.ensure_open()?;
        let routed =
            self.core
                .lock()
                .prepare(&*self.core, exchange, routing_key, Arc::new(message))?;
        if routed.is_empty() {
            return Ok(());
        }
        let append = routed
            .iter()
            .map(|r| r.envelope.to_stored(&r.queue))
            .collect();
        tx.log(LogBatch {
            append,
            ..LogBatch::default()
        })
        .await?;
        let core = Arc::downgrade(&self.core);
        tx.after_commit(Box::new(move || {
            if let Some(core) = core.upgrade() {
                core.lock().make_visible(&*core, routed);
            }
        }));
        Ok(())
    }

    fn ensure_open(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(BusError::Closed)
        } else {
            Ok(())
        }
    }

    async fn write(&self, batch: LogBatch, visible: Vec<Routed>) -> Result<()> {
        let (op, done) = WriteOp::confirmed(batch, visible);
        self.core.submit(op);
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(BusError::Invalid(format!(
                "message log write failed: {err}"
            ))),
            Err(_) => Err(BusError::Closed),
        }
    }

    async fn write_topology(
        &self,
        upsert: Vec<TopologyRecord>,
        delete: Vec<(String, String)>,
        purge: Vec<String>,
    ) -> Result<()> {
        let batch = LogBatch {
            upsert_topology: upsert,
            delete_topology: delete,
            purge_queues: purge,
            ..LogBatch::default()
        };
        self.write(batch, Vec::new()).await
    }

    async fn publish_routed(&self, routed: Vec<Routed>) -> Result<()> {
        if routed.is_empty() {
            return Ok(());
        }
        let append = routed
            .iter()
            .map(|r| r.envelope.to_stored(&r.queue))
            .collect();
        self.write(
            LogBatch {
                append,
                ..LogBatch::default()
            },
            routed,
        )
        .await
    }
}

impl Drop for EmbeddedBus {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn binding_topology(kind: &'static str, spec: &BindingSpec) -> TopologyRecord {
    TopologyRecord {
        kind: kind.into(),
        name: spec.record_name(),
        spec: codec::encode(spec),
    }
}

fn restore_topology(broker: &mut Broker, records: &[TopologyRecord]) -> Result<()> {
    for r in records.iter().filter(|r| r.kind == codec::EXCHANGE) {
        let spec: ExchangeSpec = codec::decode(&r.spec, "exchange")?;
        broker.declare_exchange(&r.name, spec.kind)?;
    }
    for r in records.iter().filter(|r| r.kind == codec::QUEUE) {
        let opts: QueueOptions = codec::decode(&r.spec, "queue")?;
        broker.declare_queue(&r.name, &opts)?;
    }
    for r in records
        .iter()
        .filter(|r| r.kind == codec::BINDING || r.kind == codec::EXCHANGE_BINDING)
    {
        let spec: BindingSpec = codec::decode(&r.spec, "binding")?;
        let target = if r.kind == codec::BINDING {
            Target::Queue(spec.destination.clone())
        } else {
            Target::Exchange(spec.destination.clone())
        };
        if let Err(err) = broker.bind(&spec.source, target, &spec.pattern) {
            tracing::warn!(error = %err, "dropping a stored binding whose ends no longer exist");
        }
    }
    Ok(())
}

/// Fires message expiry checks when due and scans for overdue deliveries a few times per
/// visibility timeout. Holds the core only while it runs: the bus's drop cancels it.
async fn run_timer(core: Weak<Core>, cancel: CancellationToken) {
    let mut next_scan = 0_i64;
    loop {
        let Some(strong) = core.upgrade() else { return };
        let now = strong.now_ms();
        let scan_every = (strong.visibility_ms / 4).clamp(10, 1_000);
        if now >= next_scan {
            strong.lock().requeue_overdue(&*strong);
            next_scan = now + scan_every;
        }
        let next = strong
            .lock()
            .next_expiry_check()
            .map_or(next_scan, |at| at.min(next_scan));
        let ms = (next - now).clamp(0, scan_every);
        let due = tokio::select! {
            () = cancel.cancelled() => return,
            () = strong.timer.notified() => false,
            () = tokio::time::sleep(Duration::from_millis(ms as u64)) => true,
        };
        if due {
            strong.lock().fire_expiry_checks(&*strong);
        }
    }
}

#[async_trait]
impl MessageBus for EmbeddedBus {
    async fn declare_exchange(&self, name: &str, kind: ExchangeKind) -> Result<()> {
        self.ensure_open()?;
        if !self.core.lock().declare_exchange(name, kind)? {
            return Ok(());
        }
        let record = TopologyRecord {
            kind: codec::EXCHANGE.into(),
            name: name.into(),
            spec: codec::encode(&ExchangeSpec { kind }),
        };
        self.write_topology(vec![record], Vec::new(), Vec::new())
            .await
    }

    async fn delete_exchange(&self, name: &str) -> Result<()> {
        self.ensure_open()?;
        let Some(gone) = self.core.lock().delete_exchange(name) else {
            return Ok(());
        };
        let mut delete: Vec<(String, String)> = gone
            .iter()
            .map(|(k, s)| ((*k).to_owned(), s.record_name()))
            .collect();
        delete.push((codec::EXCHANGE.into(), name.into()));
        self.write_topology(Vec::new(), delete, Vec::new()).await
    }

    async fn declare_queue(&self, name: &str, opts: &QueueOptions) -> Result<()> {
        self.ensure_open()?;
        if !self.core.lock().declare_queue(name, opts)? {
            return Ok(());
        }
        let record = TopologyRecord {
            kind: codec::QUEUE.into(),
            name: name.into(),
            spec: codec::encode_queue(opts),
        };
        self.write_topology(vec![record], Vec::new(), Vec::new())
            .await
    }

    async fn delete_queue(&self, name: &str) -> Result<u64> {
        self.ensure_open()?;
        let Some((held, gone)) = self.core.lock().delete_queue(name) else {
            return Ok(0);
        };
        let mut delete: Vec<(String, String)> = gone
            .iter()
            .map(|(k, s)| ((*k).to_owned(), s.record_name()))
            .collect();
        delete.push((codec::QUEUE.into(), name.into()));
        self.write_topology(Vec::new(), delete, vec![name.to_owned()])
            .await?;
        Ok(held)
    }

    async fn purge_queue(&self, name: &str) -> Result<u64> {
        self.ensure_open()?;
        let ids = self.core.lock().purge(name)?;
        let count = ids.len() as u64;
        if count > 0 {
            self.write(
                LogBatch {
                    remove: ids,
                    ..LogBatch::default()
                },
                Vec::new(),
            )
            .await?;
        }
        Ok(count)
    }

    async fn queue_len(&self, name: &str) -> Result<u64> {
        self.core.lock().ready_len(name)
    }

    async fn bind_queue(&self, queue: &str, exchange: &str, pattern: &str) -> Result<()> {
        self.bind(exchange, Target::Queue(queue.to_owned()), pattern)
            .await
    }

    async fn unbind_queue(&self, queue: &str, exchange: &str, pattern: &str) -> Result<()> {
        self.unbind(exchange, Target::Queue(queue.to_owned()), pattern)
            .await
    }

    async fn bind_exchange(&self, destination: &str, source: &str, pattern: &str) -> Result<()> {
        self.bind(source, Target::Exchange(destination.to_owned()), pattern)
            .await
    }

    async fn unbind_exchange(&self, destination: &str, source: &str, pattern: &str) -> Result<()> {
        self.unbind(source, Target::Exchange(destination.to_owned()), pattern)
            .await
    }

    async fn publish(&self, exchange: &str, routing_key: &str, message: Message) -> Result<()> {
        self.ensure_open()?;
        let routed =
            self.core
                .lock()
                .prepare(&*self.core, exchange, routing_key, Arc::new(message))?;
        self.publish_routed(routed).await
    }

    async fn publish_batch(&self, exchange: &str, items: Vec<(String, Message)>) -> Result<()> {
        self.ensure_open()?;
        let mut routed = Vec::with_capacity(items.len());
        {
            let guard = self.core.lock();
            for (key, message) in items {
                routed.extend(guard.prepare(&*self.core, exchange, &key, Arc::new(message))?);
            }
        }
        self.publish_routed(routed).await
    }

    async fn consume(&self, queue: &str, opts: ConsumeOptions) -> Result<Consumer> {
        self.ensure_open()?;
        let prefetch = usize::from(opts.prefetch);
        // Prefetch 0 means unlimited in AMQP; the channel still needs a bound.
        let capacity = if prefetch == 0 { 65_536 } else { prefetch };
        let (tx, rx) = mpsc::channel(capacity);
        let id = self
            .core
            .lock()
            .add_consumer(&*self.core, queue, tx, prefetch)?;
        let guard = ConsumerGuard {
            core: Arc::downgrade(&self.core),
            queue: queue.to_owned(),
            id,
        };
        Ok(Consumer::new(rx, Box::new(guard)))
    }

    async fn close(&self) {
        self.cancel.cancel();
        self.core.lock().drop_consumers();
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

impl EmbeddedBus {
    async fn bind(&self, source: &str, target: Target, pattern: &str) -> Result<()> {
        self.ensure_open()?;
        let (kind, spec) = {
            let mut guard = self.core.lock();
            if !guard.bind(source, target.clone(), pattern)? {
                return Ok(());
            }
            broker::binding_record(
                source,
                &broker::Binding {
                    target,
                    pattern: pattern.to_owned(),
                },
            )
        };
        self.write_topology(vec![binding_topology(kind, &spec)], Vec::new(), Vec::new())
            .await
    }

    async fn unbind(&self, source: &str, target: Target, pattern: &str) -> Result<()> {
        self.ensure_open()?;
        let (kind, spec) = broker::binding_record(
            source,
            &broker::Binding {
                target: target.clone(),
                pattern: pattern.to_owned(),
            },
        );
        if !self.core.lock().unbind(source, &target, pattern) {
            return Ok(());
        }
        self.write_topology(
            Vec::new(),
            vec![(kind.to_owned(), spec.record_name())],
            Vec::new(),
        )
        .await
    }
}
