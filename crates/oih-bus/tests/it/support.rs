//! Test plumbing: unique names that are cleaned up afterwards, bounded waits for deliveries,
//! and the macro that instantiates the conformance suite per backend.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use futures::FutureExt;
use oih_bus::{BusError, Consumer, Delivery, ExchangeKind, MessageBus, QueueOptions};

/// How long a delivery that should come may take: generous, so a slow CI box does not flake,
/// yet a broken backend fails instead of hanging.
pub const ARRIVES_WITHIN: Duration = Duration::from_secs(5);
/// How long we watch for a delivery that should NOT come.
pub const QUIET_FOR: Duration = Duration::from_millis(300);
/// How long one guarded case, its cleanup included, may take: a case that waits forever on
/// the broker fails with this instead of holding the whole suite.
pub const CASE_WITHIN: Duration = Duration::from_secs(120);

/// Tests run in parallel against one broker (nextest: a process per test), so every name is
/// unique to the test: pid, clock and a counter.
pub fn unique(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "it-{label}-{:x}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A bus plus the names a test created, deleted at the end even if the test panicked.
pub struct Fixture {
    pub bus: Arc<dyn MessageBus>,
    exchanges: Mutex<Vec<String>>,
    queues: Mutex<Vec<String>>,
}

impl Fixture {
    pub fn new(bus: Arc<dyn MessageBus>) -> Self {
        Self {
            bus,
            exchanges: Mutex::new(Vec::new()),
            queues: Mutex::new(Vec::new()),
        }
    }

    /// A unique exchange name, deleted at cleanup (the exchange itself is not declared).
    pub fn exchange_name(&self, label: &str) -> String {
        let name = unique(label);
        self.exchanges
            .lock()
            .expect("fixture lock")
            .push(name.clone());
        name
    }

    /// Registers a queue created under a name the test chose, for cleanup.
    pub fn track_queue(&self, name: &str) {
        self.queues
            .lock()
            .expect("fixture lock")
            .push(name.to_owned());
    }

    pub fn queue_name(&self, label: &str) -> String {
        let name = unique(label);
        self.queues.lock().expect("fixture lock").push(name.clone());
        name
    }

    pub async fn exchange(&self, label: &str, kind: ExchangeKind) -> Result<String> {
        let name = self.exchange_name(label);
        self.bus.declare_exchange(&name, kind).await?;
        Ok(name)
    }

    pub async fn queue(&self, label: &str, opts: &QueueOptions) -> Result<String> {
        let name = self.queue_name(label);
        self.bus.declare_queue(&name, opts).await?;
        Ok(name)
    }

    /// A plain queue bound to `exchange` with `pattern`.
    pub async fn bound_queue(&self, label: &str, exchange: &str, pattern: &str) -> Result<String> {
        let name = self.queue(label, &QueueOptions::default()).await?;
        self.bus.bind_queue(&name, exchange, pattern).await?;
        Ok(name)
    }

    /// Deletes what the test created. A test may have closed its bus, so a fresh one from
    /// `reopen` is used then.
    pub async fn cleanup<F, Fut>(&self, reopen: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Arc<dyn MessageBus>>>,
    {
        let queues = std::mem::take(&mut *self.queues.lock().expect("fixture lock"));
        let exchanges = std::mem::take(&mut *self.exchanges.lock().expect("fixture lock"));
        if queues.is_empty() && exchanges.is_empty() {
            return;
        }
        let probe = match queues.first() {
            Some(q) => self.bus.delete_queue(q).await.map(drop),
            None => self.bus.delete_exchange(&exchanges[0]).await,
        };
        let bus = match probe {
            Err(BusError::Closed) => match reopen().await {
                Some(bus) => bus,
                None => return,
            },
            _ => self.bus.clone(),
        };
        for q in &queues {
            let _ = bus.delete_queue(q).await;
        }
        for x in &exchanges {
            let _ = bus.delete_exchange(x).await;
        }
        if !Arc::ptr_eq(&bus, &self.bus) {
            bus.close().await;
        }
    }
}

/// Runs `test`, then deletes what it created and closes the bus, even if it panicked; all of
/// it within [`CASE_WITHIN`].
pub async fn guarded<T, F, Fut>(fixture: &Fixture, test: T, reopen: F) -> Result<()>
where
    T: Future<Output = Result<()>>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<Arc<dyn MessageBus>>>,
{
    let run = async {
        let outcome = AssertUnwindSafe(test).catch_unwind().await;
        fixture.cleanup(reopen).await;
        fixture.bus.close().await;
        outcome
    };
    let Ok(outcome) = tokio::time::timeout(CASE_WITHIN, run).await else {
        bail!("the case and its cleanup did not finish within {CASE_WITHIN:?}");
    };
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The next delivery, failing the test if none comes in time or the consumer ended.
pub async fn recv(consumer: &mut Consumer) -> Result<Delivery> {
    match tokio::time::timeout(ARRIVES_WITHIN, consumer.next()).await {
        Ok(Some(d)) => Ok(d),
        Ok(None) => bail!("the consumer ended while a delivery was expected"),
        Err(_) => bail!("no delivery within {ARRIVES_WITHIN:?}"),
    }
}

/// Fails if a delivery arrives within [`QUIET_FOR`].
pub async fn expect_nothing(consumer: &mut Consumer) -> Result<()> {
    match tokio::time::timeout(QUIET_FOR, consumer.next()).await {
        Ok(Some(d)) => bail!(
            "unexpected delivery {:?} (routing key {}) ",
            text(&d),
            d.routing_key
        ),
        Ok(None) | Err(_) => Ok(()),
    }
}

/// Receives `n` deliveries, acks them, and returns their bodies in arrival order; then checks
/// nothing else is coming.
pub async fn drain(consumer: &mut Consumer, n: usize) -> Result<Vec<String>> {
    let mut bodies = Vec::with_capacity(n);
    for _ in 0..n {
        let d = recv(consumer).await?;
        bodies.push(text(&d));
        d.ack().await?;
    }
    expect_nothing(consumer).await?;
    Ok(bodies)
}

pub fn text(d: &Delivery) -> String {
    String::from_utf8_lossy(d.body()).into_owned()
}

/// Instantiates every test of `crate::conformance` for one backend: `$make` is an async fn
/// returning `Option<Arc<dyn MessageBus>>` (None = backend unavailable, test skipped).
macro_rules! conformance_tests {
    ($backend:ident, $make:path) => {
        mod $backend {
            $crate::support::conformance_tests!(@each $make;
                direct_routing,
                topic_star_and_hash,
                fanout_ignores_routing_key,
                default_exchange_routes_by_queue_name,
                unroutable_message_is_dropped,
                exchange_to_exchange_binding,
                headers_and_properties_round_trip,
                publish_batch_delivers_all_in_order,
                ack_removes_the_message,
                requeue_redelivers_marked_redelivered,
                reject_dead_letters_to_dlx,
                reject_without_dlx_drops,
                dropped_delivery_is_redelivered,
                prefetch_limits_unsettled_deliveries,
                dropped_consumer_requeues_its_unacked,
                rebound_queue_ttl_dead_letters_back_to_messages_queue,
                per_message_expiration,
                redeclare_queue_with_other_arguments_fails,
                redeclare_exchange_with_other_kind_fails,
                queue_len_purge_and_delete_count,
                competing_consumers_share_the_queue,
                single_consumer_keeps_order,
                missing_exchange_or_queue_is_an_error,
                unbind_stops_routing,
                deleting_unknown_exchange_is_a_no_op,
                deleting_the_queue_ends_its_consumer,
                close_ends_consumers,
            );
            $crate::support::conformance_tests!(@each_in event_bus, $make;
                events_carry_oih_envelope_and_routing_key,
                unsubscribed_topics_are_not_delivered,
                nacked_and_unparseable_events_are_dead_lettered,
                replicas_of_a_service_compete,
                an_event_without_a_name_is_refused,
                consume_loop_acks_retries_and_dead_letters,
                cancelling_cuts_the_retry_pause_and_keeps_the_event,
                consume_loop_ends_when_the_bus_closes,
            );
        }
    };
    (@each $make:path; $($test:ident),* $(,)?) => {
        $crate::support::conformance_tests!(@each_in conformance, $make; $($test),*);
    };
    (@each_in $module:ident, $make:path; $($test:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() -> anyhow::Result<()> {
            let Some(bus) = $make().await else { return Ok(()) };
            let fixture = $crate::support::Fixture::new(bus);
            $crate::support::guarded(&fixture, $crate::$module::$test(&fixture), $make).await
        }
    )*};
}
pub(crate) use conformance_tests;
