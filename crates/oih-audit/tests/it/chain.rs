//! Tamper evidence: chains verify, a row changed or removed behind the service's back is
//! named, concurrent appends stay linear, retention prunes whole prefixes with a checkpoint.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use oih_audit::Config;
use oih_audit::retention::{Policy, Pruner};
use oih_audit::store::LOGS;
use serde_json::{Value, json};

use crate::support::{Hub, OTHER_TENANT, TENANT};

crate::engines!(
    an_altered_row_is_reported,
    a_removed_row_is_reported,
    concurrent_appends_stay_one_chain,
    retention_prunes_a_prefix_and_records_a_checkpoint
);

fn entry(tenant: &str, n: u64) -> Value {
    json!({"headers": {"name": "x.done", "serviceName": "test"},
           "payload": {"tenant": tenant, "n": n, "user": "u", "nested": {"b": 1.50, "a": [1e3]}}})
}

pub async fn fill(hub: &Hub, tenant: &str, count: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 1..=count {
        ids.push(hub.push(entry(tenant, n)).await);
    }
    ids
}

async fn an_altered_row_is_reported(hub: Hub) {
    let ids = fill(&hub, TENANT, 5).await;
    fill(&hub, OTHER_TENANT, 2).await;
    let ok = hub.verify(TENANT).await;
    assert_eq!(ok["valid"], true, "{ok}");
    assert_eq!(ok["entries"], 5);
    assert_eq!(ok["head"]["seq"], 5);

    // Straight through the store, bypassing the service.
    let doc = hub
        .docs
        .get(LOGS, &ids[2])
        .await
        .expect("get")
        .expect("doc");
    let mut body = doc.body.clone();
    body["payload"]["n"] = json!(42);
    hub.docs
        .update(LOGS, &ids[2], None, body)
        .await
        .expect("tamper");
    let broken = hub.verify(TENANT).await;
    assert_eq!(broken["valid"], false, "{broken}");
    assert_eq!(broken["firstBroken"]["_id"], ids[2].as_str());
    assert_eq!(broken["firstBroken"]["seq"], 3);
    assert_eq!(broken["entries"], 2);
    // The other tenant's chain is unaffected.
    assert_eq!(hub.verify(OTHER_TENANT).await["valid"], true);
    let (_, all) = hub.get("/logs/verify", "adminToken").await;
    assert_eq!(all["meta"], json!({"total": 2, "valid": false}));

    // Restoring the value while faking the hash of a header change is caught too.
    let mut body = doc.body.clone();
    body["headers"]["name"] = json!("x.undone");
    hub.docs
        .update(LOGS, &ids[2], None, body)
        .await
        .expect("tamper");
    assert_eq!(hub.verify(TENANT).await["firstBroken"]["seq"], 3);
    let mut body = doc.body.clone();
    body["payload"]["added"] = json!(true);
    hub.docs
        .update(LOGS, &ids[2], None, body)
        .await
        .expect("tamper");
    let added = hub.verify(TENANT).await;
    assert!(
        added["firstBroken"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("added")),
        "{added}"
    );
    hub.docs
        .update(LOGS, &ids[2], None, doc.body)
        .await
        .expect("restore");
    assert_eq!(hub.verify(TENANT).await["valid"], true);
    hub.shutdown().await;
}

async fn a_removed_row_is_reported(hub: Hub) {
    let ids = fill(&hub, TENANT, 4).await;
    hub.docs.delete(LOGS, &ids[1]).await.expect("delete");
    let broken = hub.verify(TENANT).await;
    assert_eq!(broken["valid"], false);
    assert_eq!(broken["firstBroken"]["seq"], 2, "{broken}");
    assert_eq!(broken["firstBroken"]["_id"], Value::Null);

    let ids = fill(&hub, OTHER_TENANT, 3).await;
    hub.docs.delete(LOGS, &ids[2]).await.expect("delete last");
    let tail = hub.verify(OTHER_TENANT).await;
    assert_eq!(tail["valid"], false, "{tail}");
    assert_eq!(tail["firstBroken"]["seq"], 3);
    hub.shutdown().await;
}

async fn concurrent_appends_stay_one_chain(hub: Hub) {
    let hub = std::sync::Arc::new(hub);
    let mut tasks = Vec::new();
    for n in 0..24_u64 {
        let hub = hub.clone();
        tasks.push(tokio::spawn(async move {
            if n % 2 == 0 {
                hub.push(entry(TENANT, n)).await;
            } else {
                hub.publish(
                    "flow-repository",
                    "flowrepo.flow.modified",
                    json!({"tenant": TENANT, "user": "u", "flowId": n.to_string()}),
                )
                .await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let verified = loop {
        let v = hub.verify(TENANT).await;
        if v["entries"] == 24 {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["head"]["seq"], 24);
    let hub = std::sync::Arc::into_inner(hub).expect("sole owner");
    hub.shutdown().await;
}

async fn retention_prunes_a_prefix_and_records_a_checkpoint(hub: Hub) {
    fill(&hub, TENANT, 6).await;
    fill(&hub, OTHER_TENANT, 2).await;
    let by_size = Pruner::new(
        hub.logs.clone(),
        Policy {
            max_age: None,
            max_entries: Some(3),
        },
    );
    assert_eq!(by_size.prune_all(Utc::now()).await.expect("prune"), 4);
    // Nothing more to do: the limit holds.
    assert_eq!(by_size.prune_all(Utc::now()).await.expect("prune"), 0);
    let (_, left) = hub
        .get(
            "/logs?filter[tenant]=TestTenant&page[size]=20",
            "adminToken",
        )
        .await;
    assert_eq!(left["meta"]["total"], 3, "{left}");
    let newest = &left["data"][0];
    let checkpoint = left["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|e| e["headers"]["name"] == "audit.retention.checkpoint")
        .expect("checkpoint");
    assert_eq!(checkpoint["headers"]["serviceName"], "audit-log");
    assert_eq!(checkpoint["payload"]["prunedThrough"], 4);
    assert_eq!(checkpoint["chain"]["seq"], 7);
    assert!(newest["chain"]["seq"].as_u64() >= Some(5));
    let verified = hub.verify(TENANT).await;
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["entries"], 3);
    assert_eq!(hub.verify(OTHER_TENANT).await["entries"], 2);

    // By age: everything recorded before the cutoff goes, the new checkpoint stays.
    let by_age = Pruner::new(
        hub.logs.clone(),
        Policy {
            max_age: Some(Duration::from_secs(60)),
            max_entries: None,
        },
    );
    let later = Utc::now() + chrono::Duration::hours(1);
    assert_eq!(by_age.prune_all(later).await.expect("prune"), 5);
    for tenant in [TENANT, OTHER_TENANT] {
        let verified = hub.verify(tenant).await;
        assert_eq!(verified["valid"], true, "{verified}");
        assert_eq!(verified["entries"], 1, "{verified}");
    }
    // A checkpoint is as tamper-evident as any entry.
    let (_, left) = hub
        .get("/logs?filter[tenant]=TestTenant", "adminToken")
        .await;
    let id = left["data"][0]["_id"].as_str().expect("id").to_owned();
    let doc = hub.docs.get(LOGS, &id).await.expect("get").expect("doc");
    let mut body = doc.body;
    body["payload"]["prunedThrough"] = json!(1);
    hub.docs
        .update(LOGS, &id, None, body)
        .await
        .expect("tamper");
    assert_eq!(hub.verify(TENANT).await["valid"], false);
    hub.shutdown().await;
}

#[tokio::test]
async fn the_retention_worker_runs_when_a_limit_is_set() {
    let hub = Hub::start_with(Config {
        audit_retention_max_entries: Some(2),
        audit_retention_interval_secs: 1,
        ..Config::default()
    })
    .await;
    fill(&hub, TENANT, 5).await;
    let left = hub
        .wait_for("/logs?filter[tenant]=TestTenant", "pruning", |b| {
            b["meta"]["total"] == 2
        })
        .await;
    assert_eq!(
        left["data"][0]["headers"]["name"],
        "audit.retention.checkpoint"
    );
    let (status, verified) = hub.get("/logs/verify", "adminToken").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["meta"]["valid"], true);
    hub.shutdown().await;
}
