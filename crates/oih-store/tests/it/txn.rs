//! Transactions: documents and message-log rows commit together or not at all, and
//! after-commit hooks run only for a commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use oih_store::{
    Collection, CollectionSpec, Filter, FindOptions, LogBatch, NewDocument, StoreError,
    StoredMessage,
};
use serde_json::json;

use crate::support::Ctx;

const C: Collection = Collection("t_tx");

fn message(id: i64) -> StoredMessage {
    StoredMessage {
        id,
        queue: "q".into(),
        exchange: "ex".into(),
        routing_key: "rk".into(),
        props: vec![1, 2],
        body: b"hello".to_vec(),
        enqueued_at: 1_700_000_000_000,
        expires_at: None,
        delivery_count: 0,
    }
}

fn append(ids: &[i64]) -> LogBatch {
    LogBatch {
        append: ids.iter().copied().map(message).collect(),
        ..LogBatch::default()
    }
}

fn counter_hook(counter: &Arc<AtomicUsize>) -> Box<dyn FnOnce() + Send> {
    let counter = counter.clone();
    Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    })
}

async fn setup(ctx: &Ctx) -> anyhow::Result<()> {
    let spec = CollectionSpec {
        unique: vec![vec!["name"]],
        indexed: vec![],
    };
    ctx.db.docs.ensure_collection(C, &spec).await?;
    Ok(())
}

pub async fn commit_publishes_docs_log_and_hooks(ctx: Ctx) -> anyhow::Result<()> {
    setup(&ctx).await?;
    let docs = &*ctx.db.docs;
    docs.insert(C, "pre", json!({"name": "pre", "n": 0}), None)
        .await?;
    let hooks = Arc::new(AtomicUsize::new(0));

    let mut tx = docs.begin().await?;
    tx.insert(C, "a", json!({"name": "a"}), None).await?;
    let updated = tx
        .update(C, "pre", Some(1), json!({"name": "pre", "n": 1}))
        .await?;
    assert_eq!(updated.version, 2);
    // The transaction sees its own writes.
    assert!(tx.get(C, "a").await?.is_some());
    assert_eq!(tx.count(C, &Filter::All).await?, 2);
    let found = tx
        .find(C, &Filter::eq("n", 1), &FindOptions::default())
        .await?;
    assert_eq!(found.len(), 1);
    // Conflicts and constraints are reported inside the transaction as well.
    assert!(matches!(
        tx.update(C, "pre", Some(1), json!({})).await,
        Err(StoreError::Conflict {
            expected: 1,
            found: 2
        })
    ));
    tx.log(append(&[1, 2])).await?;
    tx.after_commit(counter_hook(&hooks));
    tx.after_commit(counter_hook(&hooks));

    // Nothing is visible outside before the commit.
    assert_eq!(docs.get(C, "a").await?, None);
    assert_eq!(docs.get(C, "pre").await?.map(|d| d.version), Some(1));
    assert_eq!(hooks.load(Ordering::SeqCst), 0);

    tx.commit().await?;
    assert_eq!(hooks.load(Ordering::SeqCst), 2);
    assert!(docs.get(C, "a").await?.is_some());
    assert_eq!(docs.get(C, "pre").await?.map(|d| d.version), Some(2));
    let log = ctx.db.log.load().await?;
    assert_eq!(log.messages, vec![message(1), message(2)]);
    Ok(())
}

pub async fn rollback_and_drop_leave_nothing(ctx: Ctx) -> anyhow::Result<()> {
    setup(&ctx).await?;
    let docs = &*ctx.db.docs;
    let hooks = Arc::new(AtomicUsize::new(0));

    let mut tx = docs.begin().await?;
    tx.insert(C, "a", json!({"name": "a"}), None).await?;
    tx.log(append(&[1])).await?;
    tx.after_commit(counter_hook(&hooks));
    tx.rollback().await?;

    let mut tx = docs.begin().await?;
    tx.insert(C, "b", json!({"name": "b"}), None).await?;
    tx.log(append(&[2])).await?;
    tx.after_commit(counter_hook(&hooks));
    drop(tx);

    assert_eq!(hooks.load(Ordering::SeqCst), 0);
    assert_eq!(docs.count(C, &Filter::All).await?, 0);
    assert!(ctx.db.log.load().await?.messages.is_empty());

    // The store is fully usable afterwards (the dropped transaction's connection was
    // rolled back before reuse), including for the same ids and unique values.
    docs.insert(C, "b", json!({"name": "b"}), None).await?;
    let mut tx = docs.begin().await?;
    tx.insert(C, "a", json!({"name": "a"}), None).await?;
    tx.commit().await?;
    ctx.db.log.write(append(&[3])).await?;
    assert_eq!(docs.count(C, &Filter::All).await?, 2);
    assert_eq!(ctx.db.log.load().await?.messages, vec![message(3)]);
    Ok(())
}

pub async fn failed_statement_then_rollback(ctx: Ctx) -> anyhow::Result<()> {
    setup(&ctx).await?;
    let docs = &*ctx.db.docs;
    docs.insert(C, "a", json!({"name": "taken"}), None).await?;

    let mut tx = docs.begin().await?;
    tx.insert(C, "b", json!({"name": "free"}), None).await?;
    let dup = tx.insert(C, "c", json!({"name": "taken"}), None).await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    let dup = tx.update(C, "b", None, json!({"name": "taken"})).await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    tx.rollback().await?;

    assert_eq!(docs.get(C, "b").await?, None);
    assert_eq!(docs.count(C, &Filter::All).await?, 1);
    Ok(())
}

/// Transactions from concurrent tasks serialise or interleave, but never lose updates when
/// callers use expected versions.
pub async fn concurrent_increments(ctx: Ctx) -> anyhow::Result<()> {
    setup(&ctx).await?;
    ctx.db.docs.insert(C, "ctr", json!({"n": 0}), None).await?;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let docs = ctx.db.docs.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < 5 {
                let mut tx = docs.begin().await?;
                let doc = tx.get(C, "ctr").await?.expect("counter");
                let n = doc.body["n"].as_i64().unwrap_or_default();
                match tx
                    .update(C, "ctr", Some(doc.version), json!({"n": n + 1}))
                    .await
                {
                    Ok(_) => {
                        tx.commit().await?;
                        done += 1;
                    }
                    Err(StoreError::Conflict { .. }) => tx.rollback().await?,
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let doc = ctx.db.docs.get(C, "ctr").await?.expect("counter");
    assert_eq!(doc.body["n"], json!(20));
    assert_eq!(doc.version, 21);
    Ok(())
}

/// Many documents in one insert: each gets the outcome a single insert would give it (a
/// stored id, a taken unique value or an id repeated in the batch is a duplicate; an expired
/// document holds nothing), and only a commit keeps them.
pub async fn insert_many_reports_each_outcome(ctx: Ctx) -> anyhow::Result<()> {
    setup(&ctx).await?;
    let docs = &*ctx.db.docs;
    docs.insert(C, "stored", json!({"name": "stored"}), None)
        .await?;
    let past = chrono::Utc::now() - chrono::Duration::seconds(5);
    docs.insert(C, "expired", json!({"name": "old"}), Some(past))
        .await?;
    let new = |id: &str, name: &str| NewDocument {
        id: id.into(),
        body: json!({"name": name}),
        expires_at: None,
    };
    // 75 fresh ones cover the multi-row statements of every size the engine uses.
    let mut batch: Vec<NewDocument> = (0..75)
        .map(|i| new(&format!("n{i}"), &format!("n{i}")))
        .collect();
    batch.insert(3, new("stored", "other"));
    batch.insert(10, new("n0", "again"));
    batch.insert(20, new("x", "stored"));
    batch.push(new("expired", "old"));

    let mut tx = docs.begin().await?;
    let outcomes = tx.insert_many(C, batch.clone()).await?;
    tx.rollback().await?;
    assert_eq!(outcomes.len(), batch.len());
    assert_eq!(docs.count(C, &Filter::All).await?, 1, "rolled back");

    let mut tx = docs.begin().await?;
    let outcomes = tx.insert_many(C, batch.clone()).await?;
    tx.commit().await?;
    for (doc, outcome) in batch.iter().zip(&outcomes) {
        let duplicate = matches!(outcome, Err(StoreError::Duplicate(_)));
        let expected = ["stored", "x"].contains(&doc.id.as_str())
            || (doc.id == "n0" && doc.body["name"] == "again");
        assert_eq!(duplicate, expected, "{}: {outcome:?}", doc.id);
        if let Ok(inserted) = outcome {
            assert_eq!(
                (inserted.id.as_str(), inserted.version),
                (doc.id.as_str(), 1)
            );
            assert_eq!(docs.get(C, &doc.id).await?.as_ref(), Some(inserted));
        }
    }
    assert_eq!(docs.count(C, &Filter::All).await?, 1 + 75 + 1);
    assert_eq!(
        docs.get(C, "n0").await?.map(|d| d.body),
        Some(json!({"name": "n0"}))
    );
    assert_eq!(
        docs.get(C, "stored").await?.map(|d| d.body),
        Some(json!({"name": "stored"}))
    );
    Ok(())
}
