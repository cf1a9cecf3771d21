//! Where documents live, as given on the command line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::StorageArgs;
use crate::redact;

pub struct Storage {
    /// Absolute.
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
}

impl Storage {
    /// Resolves the data directory, creating it when SQLite will live there.
    pub fn from_args(args: &StorageArgs) -> anyhow::Result<Self> {
        let data_dir = absolute(&args.data_dir)?;
        if args.database_url.is_none() {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        }
        Ok(Self {
            data_dir,
            database_url: args.database_url.clone(),
        })
    }

    pub async fn open(&self) -> anyhow::Result<oih_store::Backend> {
        oih_store::open(self.database_url.as_deref(), &self.data_dir)
            .await
            .with_context(|| format!("opening the database ({})", self.describe()))
    }

    /// For people: the database URL with its password masked, or the SQLite directory.
    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(url) => redact::url(url),
            None => format!("SQLite in {}", self.data_dir.display()),
        }
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}
