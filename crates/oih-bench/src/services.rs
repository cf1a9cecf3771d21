//! Service-level figures: Meta Data Repository validation (documents/s against a cached,
//! compiled schema) and Audit Log ingest from the event bus (events/s stored, hash-chained).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use clap::Args;
use oih_bus::embedded::{EmbeddedBus, EmbeddedOptions};
use oih_bus::{EventBus, MessageBus, event_bus};
use oih_core::Event;
use oih_store::{DocStore, Filter};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct MdrArgs {
    /// Documents validated.
    #[arg(long, default_value_t = 100_000)]
    documents: usize,
    /// OIH's schema data: the folder holding oih-dev-schemas.zip and oih-models.
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
}

/// Imports OIH's dev archive and standard models, then validates alternately a valid and an
/// invalid person against `Addresses/personV2.json` through the repository's validator cache.
pub async fn mdr(args: MdrArgs) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = oih_store::open(None, dir.path()).await?;
    let config = oih_metadata::Config::default();
    let mut domain = String::new();
    for source in [
        args.data.join("oih-dev-schemas.zip"),
        args.data.join("oih-models"),
    ] {
        let report =
            oih_metadata::import_dir_or_archive(backend.docs.clone(), &config, &source, "bench")
                .await
                .with_context(|| format!("importing {} (see --data)", source.display()))?;
        domain = report.domain_id;
    }
    let store = oih_metadata::store::MetaStore::open(backend.docs.clone()).await?;
    let uri = oih_metadata::processing::schema_uri(&domain, "Addresses/personV2.json");
    let schema = store.schema(&uri).await?.context("personV2 was imported")?;
    let cache = oih_metadata::validation::ValidatorCache::default();
    let valid = json!({"firstName": "Ann", "gender": "female", "oihApplicationRecords": [{"applicationUid": "crm", "recordUid": "1"}]});
    let invalid = json!({"firstName": "Ann", "gender": "robot"});
    // The first call compiles; every later one is a cache hit, as in the service.
    cache.validator(&store, config.base(), &schema).await?;
    let start = Instant::now();
    let mut failures = 0;
    for i in 0..args.documents {
        let validator = cache.validator(&store, config.base(), &schema).await?;
        let doc = if i % 2 == 0 { &valid } else { &invalid };
        let report = oih_metadata::validation::report(&validator, doc);
        if report["valid"] == false {
            failures += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        failures == args.documents / 2,
        "every other document is invalid; got {failures} failures"
    );
    let rate = args.documents as f64 / secs;
    println!(
        "mdr validation: {} documents against personV2 (with its $refs) in {secs:.2} s: {rate:.0} documents/s",
        args.documents
    );
    println!(
        "{}",
        json!({"bench": "mdr-validate", "documents": args.documents, "docs_per_s": rate.round()})
    );
    backend.docs.close().await;
    Ok(())
}

#[derive(Args)]
pub struct AuditArgs {
    /// Events published and stored.
    #[arg(long, default_value_t = 5_000)]
    events: usize,
}

/// Publishes `flowrepo.flow.created` events in batches on the embedded bus and measures how
/// fast the Audit Log's ingest worker stores them (each in the tenant's hash chain).
pub async fn audit(args: AuditArgs) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let backend = oih_store::open(None, dir.path()).await?;
    let bus: Arc<dyn MessageBus> =
        EmbeddedBus::open(backend.log.clone(), EmbeddedOptions::default()).await?;
    let deps = oih_audit::Deps {
        docs: backend.docs.clone(),
        bus: bus.clone(),
    };
    let module = oih_audit::module(oih_audit::Config::default(), deps).await?;
    let cancel = CancellationToken::new();
    let workers: Vec<_> = module
        .workers
        .into_iter()
        .map(|w| tokio::spawn(w.run(cancel.child_token())))
        .collect();

    let publisher = EventBus::new(bus.clone(), "flow-repository").await?;
    let start = Instant::now();
    for chunk in (0..args.events).collect::<Vec<_>>().chunks(500) {
        let items = chunk
            .iter()
            .map(|i| {
                let event = Event::new(
                    "flowrepo.flow.created",
                    json!({"tenant": format!("t{}", i % 4), "user": "u1", "flowId": i.to_string()}),
                );
                ("flowrepo.flow.created".to_owned(), publisher.encode(event))
            })
            .collect();
        bus.publish_batch(event_bus::EXCHANGE, items).await?;
    }
    let published = start.elapsed().as_secs_f64();
    let docs: &dyn DocStore = &*backend.docs;
    let deadline = Instant::now() + Duration::from_secs(600);
    while (docs.count(oih_audit::store::LOGS, &Filter::All).await? as usize) < args.events {
        ensure!(
            Instant::now() < deadline,
            "ingest did not finish in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = args.events as f64 / secs;
    println!(
        "audit ingest: {} events (4 tenant chains) published in {published:.2} s, all stored in {secs:.2} s: {rate:.0} events/s",
        args.events
    );
    println!(
        "{}",
        json!({"bench": "audit-ingest", "events": args.events, "events_per_s": rate.round()})
    );
    cancel.cancel();
    for w in workers {
        let _ = w.await;
    }
    bus.close().await;
    backend.docs.close().await;
    Ok(())
}
