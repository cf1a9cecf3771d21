//! The embedded broker on a fresh SQLite database in a temporary directory.

use anyhow::Result;
use oih_bus::embedded::{EmbeddedBus, EmbeddedOptions};

use super::{Figures, Workload, via_trait};

pub async fn run(w: &Workload) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    let store = oih_store::open(None, dir.path()).await?;
    let bus = EmbeddedBus::open(store.log.clone(), EmbeddedOptions::default()).await?;
    // `dir` outlives the run: the database lives in it.
    via_trait::run(bus, "embedded", w).await
}
