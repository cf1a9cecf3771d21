//! `open`: URL handling and the SQLite file in the data directory. Engine-specific, so not
//! part of the conformance macro.

use oih_store::{Collection, CollectionSpec, StoreError, open};
use serde_json::json;
use sqlx::Connection;

const C: Collection = Collection("t_open");

#[tokio::test]
async fn default_is_a_wal_sqlite_file_in_the_data_dir() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("nested").join("data");
    let db = open(None, &data_dir).await?;
    assert_eq!(db.docs.engine(), "sqlite");
    db.docs
        .ensure_collection(C, &CollectionSpec::default())
        .await?;
    db.docs.insert(C, "a", json!({"x": 1}), None).await?;
    db.docs.close().await;

    let file = data_dir.join("oih.db");
    assert!(file.is_file(), "{} missing", file.display());
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display())).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(mode, "wal");
    conn.close().await?;

    // A sqlite: URL to the same file opens the same data.
    let url = format!("sqlite://{}", file.display());
    let db = open(Some(&url), tmp.path()).await?;
    assert!(db.docs.get(C, "a").await?.is_some());
    db.docs.close().await;
    Ok(())
}

#[tokio::test]
async fn memory_databases_are_private() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let one = open(Some("sqlite::memory:"), tmp.path()).await?;
    let two = open(Some("sqlite::memory:"), tmp.path()).await?;
    one.docs
        .ensure_collection(C, &CollectionSpec::default())
        .await?;
    two.docs
        .ensure_collection(C, &CollectionSpec::default())
        .await?;
    one.docs.insert(C, "a", json!({}), None).await?;
    assert!(one.docs.get(C, "a").await?.is_some());
    assert!(two.docs.get(C, "a").await?.is_none());
    one.docs.close().await;
    two.docs.close().await;
    // Nothing was written to the data dir.
    assert_eq!(std::fs::read_dir(tmp.path())?.count(), 0);
    Ok(())
}

#[tokio::test]
async fn unknown_scheme_is_invalid_without_leaking_the_url() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    for url in [
        "mysql://root:hunter2@db/oih",
        "mongodb://u:hunter2@h/db",
        "oih.db",
    ] {
        match open(Some(url), tmp.path()).await {
            Err(StoreError::Invalid(msg)) => {
                assert!(!msg.contains("hunter2"), "{msg}");
                assert!(msg.contains("postgres://"), "{msg}");
            }
            Err(other) => panic!("{url}: {other}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }
    Ok(())
}

/// Several processes starting at once against a new database: all of them open, migrate and
/// declare collections without stepping on each other.
#[tokio::test]
async fn concurrent_first_open_sqlite() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let opens = (0..4).map(|_| open(None, &dir));
    let backends: Vec<_> = futures::future::try_join_all(opens).await?;
    declare_everywhere(&backends).await
}

#[tokio::test]
async fn concurrent_first_open_postgres() -> anyhow::Result<()> {
    let Some(base) = oih_store::testing::pg_url() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let schema = oih_store::testing::PgSchema::create(&base).await?;
    let opens = (0..4).map(|_| open(Some(schema.url()), tmp.path()));
    let backends: Vec<_> = futures::future::try_join_all(opens).await?;
    declare_everywhere(&backends).await
}

async fn declare_everywhere(backends: &[oih_store::Backend]) -> anyhow::Result<()> {
    let spec = CollectionSpec {
        unique: vec![vec!["name"]],
        indexed: vec!["tenant"],
    };
    let declares = backends.iter().map(|b| b.docs.ensure_collection(C, &spec));
    futures::future::try_join_all(declares).await?;
    backends[0]
        .docs
        .insert(C, "a", json!({"name": "x"}), None)
        .await?;
    for b in backends {
        assert!(b.docs.get(C, "a").await?.is_some());
        b.docs.close().await;
    }
    Ok(())
}

/// Commits do not checkpoint the WAL (a checkpoint would hold up every write queued behind
/// them); a task of the store does, and starts the WAL over even while writes go on, so it
/// does not grow with every write.
#[tokio::test]
async fn the_wal_is_checkpointed_in_the_background_and_reused() -> anyhow::Result<()> {
    const DOCS: usize = 3_000;
    let tmp = tempfile::tempdir()?;
    let db = open(None, tmp.path()).await?;
    db.docs
        .ensure_collection(C, &CollectionSpec::default())
        .await?;
    let pad = "x".repeat(16 * 1024);
    let written = u64::try_from(DOCS * pad.len())?;
    for i in 0..DOCS {
        db.docs
            .insert(C, &i.to_string(), json!({"pad": pad}), None)
            .await?;
    }
    let wal = std::fs::metadata(tmp.path().join("oih.db-wal"))?.len();
    assert!(
        wal < written / 2,
        "the WAL holds {wal} bytes after {written} bytes were written without a pause: not reused"
    );
    db.docs.close().await;
    Ok(())
}
