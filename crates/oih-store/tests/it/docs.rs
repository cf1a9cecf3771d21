//! Document CRUD, optimistic concurrency, unique constraints, TTL and collection names.

use std::time::Duration;

use chrono::Utc;
use oih_store::{Collection, CollectionSpec, DocStore, Filter, FindOptions, StoreError};
use serde_json::json;

use crate::support::Ctx;

const FLOWS: Collection = Collection("t_flows");

async fn plain(docs: &dyn DocStore, coll: Collection) -> anyhow::Result<()> {
    docs.ensure_collection(coll, &CollectionSpec::default())
        .await?;
    Ok(())
}

pub async fn crud_roundtrip(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    plain(docs, FLOWS).await?;

    let body = json!({"name": "flow", "graph": {"nodes": [1, 2]}, "n": 1.5, "ok": true});
    let inserted = docs.insert(FLOWS, "aaaa", body.clone(), None).await?;
    assert_eq!(inserted.id, "aaaa");
    assert_eq!(inserted.version, 1);
    assert_eq!(inserted.body, body);
    assert_eq!(inserted.created_at, inserted.updated_at);
    assert_eq!(inserted.expires_at, None);
    // What insert returns is exactly what a later read sees (timestamps included).
    assert_eq!(docs.get(FLOWS, "aaaa").await?, Some(inserted.clone()));

    tokio::time::sleep(Duration::from_millis(2)).await;
    let body2 = json!({"name": "flow2"});
    let updated = docs.update(FLOWS, "aaaa", Some(1), body2.clone()).await?;
    assert_eq!(updated.version, 2);
    assert_eq!(updated.body, body2);
    assert_eq!(updated.created_at, inserted.created_at);
    assert!(updated.updated_at > inserted.updated_at);
    assert_eq!(docs.get(FLOWS, "aaaa").await?, Some(updated.clone()));

    // No expected version: last writer wins, version still grows by one.
    let again = docs
        .update(FLOWS, "aaaa", None, json!({"name": "flow3"}))
        .await?;
    assert_eq!(again.version, 3);

    assert!(docs.delete(FLOWS, "aaaa").await?);
    assert_eq!(docs.get(FLOWS, "aaaa").await?, None);
    assert!(!docs.delete(FLOWS, "aaaa").await?);
    assert!(matches!(
        docs.update(FLOWS, "aaaa", None, json!({})).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        docs.update(FLOWS, "missing", Some(1), json!({})).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(docs.get(FLOWS, "missing").await?, None);
    Ok(())
}

pub async fn version_conflict(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    plain(docs, FLOWS).await?;
    docs.insert(FLOWS, "a", json!({"v": 0}), None).await?;
    docs.update(FLOWS, "a", Some(1), json!({"v": 1})).await?;
    match docs
        .update(FLOWS, "a", Some(1), json!({"v": "stale"}))
        .await
    {
        Err(StoreError::Conflict { expected, found }) => {
            assert_eq!((expected, found), (1, 2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The stale write changed nothing.
    let doc = docs.get(FLOWS, "a").await?.expect("doc");
    assert_eq!((doc.version, doc.body), (2, json!({"v": 1})));
    Ok(())
}

pub async fn duplicate_id(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    plain(docs, FLOWS).await?;
    docs.insert(FLOWS, "a", json!({"first": true}), None)
        .await?;
    let err = docs.insert(FLOWS, "a", json!({"second": true}), None).await;
    assert!(matches!(err, Err(StoreError::Duplicate(_))), "{err:?}");
    assert_eq!(
        docs.get(FLOWS, "a").await?.expect("doc").body,
        json!({"first": true})
    );
    Ok(())
}

pub async fn unique_single_sparse(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    let coll = Collection("t_users");
    let spec = CollectionSpec {
        unique: vec![vec!["username"]],
        indexed: vec!["tenant", "_createdAt"],
    };
    docs.ensure_collection(coll, &spec).await?;
    // Idempotent.
    docs.ensure_collection(coll, &spec).await?;

    docs.insert(coll, "a", json!({"username": "ann"}), None)
        .await?;
    let dup = docs
        .insert(coll, "b", json!({"username": "ann"}), None)
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    // Sparse: documents without the path, or with null there, are not constrained.
    docs.insert(coll, "c", json!({"other": 1}), None).await?;
    docs.insert(coll, "d", json!({"other": 2}), None).await?;
    docs.insert(coll, "e", json!({"username": null}), None)
        .await?;
    docs.insert(coll, "f", json!({"username": null}), None)
        .await?;
    // Typed: the number 1 and the string "1" are different values.
    docs.insert(coll, "g", json!({"username": 1}), None).await?;
    docs.insert(coll, "h", json!({"username": "1"}), None)
        .await?;
    let dup = docs.insert(coll, "i", json!({"username": 1.0}), None).await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");

    // An update into a taken value is refused too.
    let dup = docs
        .update(coll, "c", None, json!({"username": "ann"}))
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");

    // Freed values can be taken again.
    assert!(docs.delete(coll, "a").await?);
    docs.insert(coll, "b", json!({"username": "ann"}), None)
        .await?;
    Ok(())
}

pub async fn unique_compound_nested(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    let coll = Collection("t_secrets");
    let spec = CollectionSpec {
        unique: vec![vec!["owner.id", "name"], vec!["key"]],
        indexed: vec![],
    };
    docs.ensure_collection(coll, &spec).await?;
    docs.insert(coll, "a", json!({"owner": {"id": "u1"}, "name": "x"}), None)
        .await?;
    docs.insert(coll, "b", json!({"owner": {"id": "u2"}, "name": "x"}), None)
        .await?;
    docs.insert(coll, "c", json!({"owner": {"id": "u1"}, "name": "y"}), None)
        .await?;
    let dup = docs
        .insert(
            coll,
            "d",
            json!({"owner": {"id": "u1"}, "name": "x", "extra": 1}),
            None,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    // Missing one of the compound paths: unconstrained.
    docs.insert(coll, "e", json!({"owner": {"id": "u1"}}), None)
        .await?;
    docs.insert(coll, "f", json!({"owner": {"id": "u1"}}), None)
        .await?;
    docs.insert(coll, "g", json!({"name": "x"}), None).await?;
    docs.insert(coll, "h", json!({"name": "x"}), None).await?;
    // The second constraint holds independently.
    docs.insert(coll, "i", json!({"key": "k"}), None).await?;
    let dup = docs.insert(coll, "j", json!({"key": "k"}), None).await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    Ok(())
}

pub async fn ttl_expiry(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    let coll = Collection("t_tokens");
    let spec = CollectionSpec {
        unique: vec![vec!["token"]],
        indexed: vec![],
    };
    docs.ensure_collection(coll, &spec).await?;
    let past = Utc::now() - chrono::Duration::seconds(5);
    let future = Utc::now() + chrono::Duration::hours(1);

    docs.insert(coll, "old", json!({"token": "t1", "k": 1}), Some(past))
        .await?;
    let live = docs
        .insert(coll, "new", json!({"token": "t2", "k": 1}), Some(future))
        .await?;
    assert!(live.expires_at.is_some());
    assert_eq!(docs.get(coll, "new").await?, Some(live));

    // The expired document is invisible to every operation.
    assert_eq!(docs.get(coll, "old").await?, None);
    let found = docs
        .find(coll, &Filter::All, &FindOptions::default())
        .await?;
    assert_eq!(
        found.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["new"]
    );
    assert_eq!(docs.count(coll, &Filter::eq("k", 1)).await?, 1);
    assert!(matches!(
        docs.update(coll, "old", None, json!({})).await,
        Err(StoreError::NotFound)
    ));
    assert!(!docs.delete(coll, "old").await?);

    // Nor does it hold on to its id or its unique values.
    docs.insert(coll, "old", json!({"token": "t1"}), None)
        .await?;
    docs.insert(coll, "old2", json!({"token": "t3"}), Some(past))
        .await?;
    docs.insert(coll, "other", json!({"token": "t3"}), None)
        .await?;

    // purge_expired physically removes expired documents (in every collection).
    plain(docs, FLOWS).await?;
    docs.insert(FLOWS, "x", json!({}), Some(past)).await?;
    docs.insert(FLOWS, "y", json!({}), None).await?;
    assert_eq!(docs.purge_expired().await?, 1);
    assert_eq!(docs.purge_expired().await?, 0);
    assert_eq!(docs.count(FLOWS, &Filter::All).await?, 1);
    assert_eq!(docs.count(coll, &Filter::All).await?, 3);
    Ok(())
}

pub async fn collection_names(ctx: Ctx) -> anyhow::Result<()> {
    let docs = &*ctx.db.docs;
    for bad in [
        "",
        "Flows",
        "1flows",
        "_flows",
        "flows-x",
        "flows x",
        "flows;drop",
        "a23456789_123456789_123456789_123456789_123456789",
    ] {
        let coll = Collection(bad);
        let err = docs
            .ensure_collection(coll, &CollectionSpec::default())
            .await;
        assert!(
            matches!(err, Err(StoreError::Invalid(_))),
            "{bad:?}: {err:?}"
        );
        let err = docs.get(coll, "a").await;
        assert!(
            matches!(err, Err(StoreError::Invalid(_))),
            "{bad:?}: {err:?}"
        );
    }
    let longest = Collection("a23456789_123456789_123456789_123456789_12345678");
    plain(docs, longest).await?;
    docs.insert(longest, "a", json!({}), None).await?;

    // A valid name that was never declared is a clear error, not a raw SQL one.
    let err = docs.get(Collection("t_never_declared"), "a").await;
    assert!(
        matches!(err, Err(StoreError::Invalid(ref m)) if m.contains("ensure_collection")),
        "{err:?}"
    );

    // A collection named like the store's own tables does not collide with them.
    plain(docs, Collection("bus_messages")).await?;
    docs.insert(Collection("bus_messages"), "a", json!({}), None)
        .await?;
    ctx.db.log.load().await?;

    // Bad paths in a spec are refused before any SQL is run.
    let spec = CollectionSpec {
        unique: vec![vec!["name'); DROP TABLE x; --"]],
        indexed: vec![],
    };
    let err = docs
        .ensure_collection(Collection("t_bad_spec"), &spec)
        .await;
    assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
    Ok(())
}

/// Two backends (two processes) on one database: both declare the same collections at the
/// same time, then see each other's writes; the data survives closing and reopening.
pub async fn shared_and_reopened(ctx: Ctx) -> anyhow::Result<()> {
    let Some(other) = ctx.open_again().await? else {
        return Ok(()); // in-memory databases are private to their backend
    };
    let spec = CollectionSpec {
        unique: vec![vec!["name"]],
        indexed: vec!["tenant"],
    };
    let (a, b) = tokio::join!(
        ctx.db.docs.ensure_collection(FLOWS, &spec),
        other.docs.ensure_collection(FLOWS, &spec)
    );
    a?;
    b?;
    ctx.db
        .docs
        .insert(FLOWS, "a", json!({"name": "x"}), None)
        .await?;
    assert!(other.docs.get(FLOWS, "a").await?.is_some());
    let dup = other
        .docs
        .insert(FLOWS, "b", json!({"name": "x"}), None)
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    other.docs.close().await;

    ctx.db.docs.close().await;
    let reopened = ctx.open_again().await?.expect("reopenable");
    let doc = reopened.docs.get(FLOWS, "a").await?.expect("survived");
    assert_eq!(doc.body, json!({"name": "x"}));
    reopened.docs.ping().await?;
    reopened.docs.close().await;
    Ok(())
}

pub async fn engine_and_ping(ctx: Ctx) -> anyhow::Result<()> {
    ctx.db.docs.ping().await?;
    assert!(["sqlite", "postgres"].contains(&ctx.db.docs.engine()));
    Ok(())
}
