//! Maintenance commands that work on the database directly, with the hub stopped or running:
//! `oih secrets …` and `oih metadata import`. They print what they did on stdout.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::cli::StorageArgs;
use crate::storage::Storage;

#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// reencrypt: re-encrypt every secret and auth client with its tenant's newest data key.
    /// rewrap (or rotate-key): re-wrap the data keys with the current master key (after
    /// --previous-master-key). import-oih: import an OIH secret store from `mongoexport`
    /// files (one JSON document per line), decrypted with OIH's CRYPTO_KEY.
    action: SecretsAction,
    /// With reencrypt: first give every tenant a new data key.
    #[arg(long)]
    rotate_data_keys: bool,
    /// With import-oih: export of OIH's `secrets` collection.
    #[arg(long, value_name = "FILE")]
    secrets: Option<PathBuf>,
    /// With import-oih: export of OIH's `authclients` collection.
    #[arg(long, value_name = "FILE")]
    auth_clients: Option<PathBuf>,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    config: oih_secrets::Config,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SecretsAction {
    Reencrypt,
    /// Also `rotate-key`, the name for moving to a new master key.
    #[value(alias = "rotate-key")]
    Rewrap,
    ImportOih,
}

pub async fn secrets(args: SecretsArgs) -> anyhow::Result<()> {
    if matches!(args.action, SecretsAction::ImportOih) {
        anyhow::ensure!(
            args.secrets.is_some() || args.auth_clients.is_some(),
            "import-oih needs --secrets FILE and/or --auth-clients FILE"
        );
    }
    let storage = Storage::from_args(&args.storage)?;
    let mut config = args.config;
    config.data_dir = storage.data_dir.clone();
    let backend = storage.open().await?;
    let docs = backend.docs.clone();
    let outcome = async {
        match args.action {
            SecretsAction::Reencrypt => {
                let report =
                    oih_secrets::reencrypt_all(&config, docs, args.rotate_data_keys).await?;
                println!(
                    "re-encrypted {} secrets and {} auth clients; {} tenants got a new data key",
                    report.secrets, report.auth_clients, report.rotated_scopes
                );
            }
            SecretsAction::Rewrap => {
                let count = oih_secrets::rewrap_data_keys(&config, docs).await?;
                println!("re-wrapped {count} data keys with the current master key");
            }
            SecretsAction::ImportOih => {
                if let Some(path) = &args.auth_clients {
                    let export = read(path)?;
                    let report =
                        oih_secrets::import_oih_auth_clients(&config, docs.clone(), &export)
                            .await?;
                    print_import("auth clients", &report);
                }
                if let Some(path) = &args.secrets {
                    let export = read(path)?;
                    let password = config.crypto_key.clone();
                    let report = oih_secrets::import_oih(
                        &config,
                        docs.clone(),
                        &export,
                        password.as_deref(),
                    )
                    .await?;
                    print_import("secrets", &report);
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    backend.docs.close().await;
    outcome
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn print_import(what: &str, report: &oih_secrets::ImportReport) {
    println!(
        "{what}: {} imported, {} already present, {} failed",
        report.imported,
        report.already_present,
        report.failed.len()
    );
    for (id, reason) in &report.failed {
        println!("  {id}: {reason}");
    }
}

#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// import: import a directory or archive (.zip, .tgz, .tar.gz) of JSON Schemas into a
    /// domain, created (public, shared by all tenants) when no domain has that name.
    action: MetadataAction,
    /// Directory or archive of JSON Schemas.
    path: PathBuf,
    /// Name of the domain to import into.
    #[arg(long)]
    domain: String,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    config: oih_metadata::Config,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MetadataAction {
    Import,
}

pub async fn metadata(args: MetadataArgs) -> anyhow::Result<()> {
    let storage = Storage::from_args(&args.storage)?;
    let backend = storage.open().await?;
    let outcome = async {
        match args.action {
            MetadataAction::Import => {
                let report = oih_metadata::import_dir_or_archive(
                    backend.docs.clone(),
                    &args.config,
                    &args.path,
                    &args.domain,
                )
                .await?;
                println!(
                    "imported {} schemas into domain {} ({})",
                    report.schemas.len(),
                    args.domain,
                    report.domain_id
                );
                for uri in &report.schemas {
                    println!("  {uri}");
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    backend.docs.close().await;
    outcome
}
