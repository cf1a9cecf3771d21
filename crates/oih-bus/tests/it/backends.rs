//! How each backend under test is opened. A backend that is not available returns None and
//! says why on stderr; its tests then pass without running.

use std::sync::Arc;

use oih_bus::MessageBus;
use oih_bus::amqp::{AmqpBus, AmqpOptions};

/// RabbitMQ URL for the tests, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
pub const AMQP_URL_ENV: &str = "OIH_TEST_AMQP_URL";

pub fn amqp_url() -> Option<String> {
    match std::env::var(AMQP_URL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipping: {AMQP_URL_ENV} not set");
            None
        }
    }
}

pub async fn amqp_bus() -> Option<Arc<dyn MessageBus>> {
    let bus: Arc<dyn MessageBus> = amqp_bus_with(AmqpOptions::default()).await?;
    Some(bus)
}

/// With the URL set, an unreachable broker fails the test rather than skipping it.
pub async fn amqp_bus_with(opts: AmqpOptions) -> Option<Arc<AmqpBus>> {
    let url = amqp_url()?;
    Some(
        AmqpBus::connect(&url, opts)
            .await
            .expect("connect to the RabbitMQ named by OIH_TEST_AMQP_URL"),
    )
}

/// The embedded broker on a fresh in-memory SQLite database (the file-backed cases, crash and
/// restart, are in `embedded.rs`).
pub async fn embedded_bus() -> Option<Arc<dyn MessageBus>> {
    let backend = oih_store::open(Some("sqlite::memory:"), std::path::Path::new("."))
        .await
        .expect("open an in-memory store");
    let bus = oih_bus::embedded::EmbeddedBus::open(
        backend.log,
        oih_bus::embedded::EmbeddedOptions::default(),
    )
    .await
    .expect("open the embedded bus");
    Some(bus)
}

/// The embedded broker with its log on a fresh schema of the PostgreSQL named by
/// `OIH_TEST_DATABASE_URL` (skipped when unset). The schema outlives the bus on purpose: the
/// cleanup of a test may reopen it; later runs sweep it once stale.
pub async fn embedded_pg_bus() -> Option<Arc<dyn MessageBus>> {
    let base = oih_store::testing::pg_url()?;
    let schema = oih_store::testing::PgSchema::create(&base)
        .await
        .expect("create a test schema");
    let backend = oih_store::open(Some(schema.url()), std::path::Path::new("."))
        .await
        .expect("open the store on PostgreSQL");
    std::mem::forget(schema);
    let bus = oih_bus::embedded::EmbeddedBus::open(
        backend.log,
        oih_bus::embedded::EmbeddedOptions::default(),
    )
    .await
    .expect("open the embedded bus");
    Some(bus)
}
