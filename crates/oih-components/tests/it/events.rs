//! Consumed events: `iam.user.deleted`, and the flow events behind "in use by an active flow".

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use oih_components::Config;
use oih_store::{
    Backend, Collection, CollectionSpec, DocStore, Document, Filter, FindOptions, StoreError,
    Transaction,
};
use serde_json::{Value, json};

use crate::support::{TestApp, docker, eventually};

fn flow(id: &str, tenant: &str, component_ids: &[&str]) -> Value {
    let nodes: Vec<Value> = component_ids
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"id": format!("step_{i}"), "componentId": c, "function": "run"}))
        .collect();
    json!({
        "id": id, "name": format!("flow {id}"), "tenant": tenant, "status": "starting",
        "graph": {"nodes": nodes, "edges": []}, "owners": [], "startedBy": "alice"
    })
}

const FLOW_A: &str = "6a0000000000000000000001";
const FLOW_B: &str = "6a0000000000000000000002";

#[tokio::test]
async fn a_component_used_by_an_active_flow_cannot_be_deleted() {
    let app = TestApp::start().await;
    let mut public = docker("used");
    public["access"] = json!("public");
    let used = app.component("alice", public).await;
    let other = app.component("alice", docker("unused")).await;
    let uri = format!("/components/{used}");

    app.publish("flow.starting", flow(FLOW_A, "t1", &[&used, &used]))
        .await;
    app.publish("flow.starting", flow(FLOW_B, "t2", &[&used]))
        .await;
    // Watch the projection: deleting to find out would delete the component.
    eventually("both flows recorded", || async {
        app.usage(FLOW_A).await.is_some() && app.usage(FLOW_B).await.is_some()
    })
    .await;
    assert_eq!(app.usage(FLOW_A).await, Some(json!([used])));
    let (status, body) = app.delete(&uri, "alice").await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Alice's tenant's flow is named; the other tenant's only counted.
    assert_eq!(
        body,
        json!({"errors": [{"message": format!("Component is used by active flows and cannot be deleted: \"flow {FLOW_A}\" ({FLOW_A}), 1 flow(s) of other tenants")}]})
    );
    let (_, admin_view) = app.delete(&uri, "admin").await;
    assert!(
        admin_view["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains(FLOW_B)
    );
    assert_eq!(
        app.delete(&format!("/components/{other}"), "alice").await.0,
        StatusCode::NO_CONTENT
    );

    app.publish("flow.stopped", json!({"id": FLOW_A})).await;
    app.publish(
        "flowrepo.flow.deleted",
        json!({"tenant": "t2", "user": "bob", "flowId": FLOW_B}),
    )
    .await;
    eventually("released", || async {
        app.usage(FLOW_A).await.is_none() && app.usage(FLOW_B).await.is_none()
    })
    .await;
    assert_eq!(app.delete(&uri, "alice").await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn restarting_a_flow_replaces_its_usage() {
    let app = TestApp::start().await;
    let first = app.component("alice", docker("first")).await;
    let second = app.component("alice", docker("second")).await;
    app.publish("flow.starting", flow(FLOW_A, "t1", &[&first]))
        .await;
    app.publish("flow.starting", flow(FLOW_A, "t1", &[&second]))
        .await;
    eventually("second in use", || async {
        app.usage(FLOW_A).await == Some(json!([second]))
    })
    .await;
    assert_eq!(
        app.delete(&format!("/components/{second}"), "alice")
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.delete(&format!("/components/{first}"), "alice").await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn malformed_flow_events_are_dead_lettered() {
    let app = TestApp::start().await;
    let id = app.component("alice", docker("c")).await;
    app.publish(
        "flow.starting",
        json!({"name": "no id", "graph": {"nodes": [{"componentId": id}]}}),
    )
    .await;
    app.publish("flow.starting", json!({"id": FLOW_A, "graph": "nope"}))
        .await;
    app.publish("flow.stopped", json!({"id": 42})).await;
    eventually("three dead letters", || async {
        app.bus_len("component-repository.deadletter").await == 3
    })
    .await;
    assert_eq!(
        app.delete(&format!("/components/{id}"), "alice").await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn deleted_users_stop_owning_components() {
    let app = TestApp::start().await;
    let mut shared = docker("shared");
    shared["owners"] = json!([{"id": "carol", "type": "user"}, {"id": "carol", "type": "tenant"}]);
    let a = app.component("alice", shared).await;
    let b = app.component("carol", docker("carol's")).await;
    // No matching component: acknowledged all the same (OIH leaves it unacknowledged).
    app.publish("iam.user.deleted", json!({"id": "nobody"}))
        .await;
    app.publish("iam.user.deleted", json!({"id": "carol"}))
        .await;
    eventually("carol removed", || async {
        let (_, body) = app.get(&format!("/components/{b}"), "admin").await;
        body["data"]["owners"] == json!([])
    })
    .await;
    let (_, body) = app.get(&format!("/components/{a}"), "admin").await;
    assert_eq!(
        body["data"]["owners"],
        json!([{"id": "carol", "type": "tenant"}, {"id": "alice", "type": "user"}])
    );
    eventually("queue drained", || async {
        app.bus_len("component-repository").await == 0
    })
    .await;
    assert_eq!(app.bus_len("component-repository.deadletter").await, 0);
}

/// A store whose deletes of flow usage fail a few times, as a briefly unavailable database
/// would.
struct FlakyDeletes {
    inner: Arc<dyn DocStore>,
    failures_left: AtomicUsize,
}

#[async_trait]
impl DocStore for FlakyDeletes {
    async fn ensure_collection(
        &self,
        coll: Collection,
        spec: &CollectionSpec,
    ) -> oih_store::Result<()> {
        self.inner.ensure_collection(coll, spec).await
    }
    async fn begin(&self) -> oih_store::Result<Box<dyn Transaction>> {
        self.inner.begin().await
    }
    async fn insert(
        &self,
        coll: Collection,
        id: &str,
        body: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> oih_store::Result<Document> {
        self.inner.insert(coll, id, body, expires_at).await
    }
    async fn get(&self, coll: Collection, id: &str) -> oih_store::Result<Option<Document>> {
        self.inner.get(coll, id).await
    }
    async fn update(
        &self,
        coll: Collection,
        id: &str,
        expected: Option<i64>,
        body: Value,
    ) -> oih_store::Result<Document> {
        self.inner.update(coll, id, expected, body).await
    }
    async fn delete(&self, coll: Collection, id: &str) -> oih_store::Result<bool> {
        if coll.0 == "components_flow_usage"
            && self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            // The only transient error constructible without the database driver.
            return Err(StoreError::Conflict {
                expected: 1,
                found: 2,
            });
        }
        self.inner.delete(coll, id).await
    }
    async fn find(
        &self,
        coll: Collection,
        filter: &Filter,
        opts: &FindOptions,
    ) -> oih_store::Result<Vec<Document>> {
        self.inner.find(coll, filter, opts).await
    }
    async fn count(&self, coll: Collection, filter: &Filter) -> oih_store::Result<u64> {
        self.inner.count(coll, filter).await
    }
    async fn delete_many(&self, coll: Collection, filter: &Filter) -> oih_store::Result<u64> {
        self.inner.delete_many(coll, filter).await
    }
    async fn purge_expired(&self) -> oih_store::Result<u64> {
        self.inner.purge_expired().await
    }
    async fn ping(&self) -> oih_store::Result<()> {
        self.inner.ping().await
    }
    fn engine(&self) -> &'static str {
        self.inner.engine()
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

#[tokio::test]
async fn store_failures_are_retried_not_dropped() {
    let backend = oih_store::open(Some("sqlite::memory:"), Path::new("."))
        .await
        .expect("store");
    let flaky = Arc::new(FlakyDeletes {
        inner: backend.docs.clone(),
        failures_left: AtomicUsize::new(2),
    });
    let app = TestApp::on(
        Backend {
            docs: flaky.clone(),
            log: backend.log.clone(),
        },
        Config::default(),
    )
    .await;
    let id = app.component("alice", docker("c")).await;
    let uri = format!("/components/{id}");
    app.publish("flow.starting", flow(FLOW_A, "t1", &[&id]))
        .await;
    eventually("in use", || async { app.usage(FLOW_A).await.is_some() }).await;
    app.publish("flow.stopped", json!({"id": FLOW_A})).await;
    eventually("released after retries", || async {
        app.usage(FLOW_A).await.is_none()
    })
    .await;
    assert_eq!(app.delete(&uri, "alice").await.0, StatusCode::NO_CONTENT);
    assert_eq!(flaky.failures_left.load(Ordering::SeqCst), 0);
    assert_eq!(app.bus_len("component-repository.deadletter").await, 0);
}

/// `flow.starting` as the Flow Repository publishes it: the whole stored flow (OIH's node
/// fields, owners with the tenant, `graphVersion`, timestamps) plus `startedBy`. A flow
/// without a tenant (an admin's) has no `tenant` key at all.
fn published_flow(id: &str, name: &str, tenant: Option<&str>, component_ids: &[&str]) -> Value {
    let nodes: Vec<Value> = component_ids
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "id": format!("step_{}", i + 1), "componentId": c.to_uppercase(),
                "function": "getPersonsPolling", "name": "a step", "description": "",
                "credentials_id": "5ca5c44c187c040010a9bb8c",
                "fields": {"username": "TestName"}, "nodeSettings": {"prefetch": 1}
            })
        })
        .collect();
    let edges: Vec<Value> = (1..component_ids.len())
        .map(|i| json!({"source": format!("step_{i}"), "target": format!("step_{}", i + 1)}))
        .collect();
    let mut owners = vec![json!({"id": "alice", "type": "user"})];
    if let Some(tenant) = tenant {
        owners.push(json!({"id": tenant, "type": "tenant"}));
    }
    let mut flow = json!({
        "id": id, "name": name, "description": "A description",
        "graph": {"nodes": nodes, "edges": edges},
        "type": "ordinary", "owners": owners, "status": "starting", "cron": "*/5 * * * *",
        "flowSettings": {"webhooks": {"auth": "none"}}, "graphVersion": 3,
        "createdAt": "2026-11-01T10:00:00.000Z", "updatedAt": "2026-11-02T10:00:00.000Z",
        "startedBy": "alice"
    });
    if let Some(tenant) = tenant {
        flow["tenant"] = json!(tenant);
    }
    flow
}

#[tokio::test]
async fn flows_started_by_the_flow_repository_block_deletion() {
    let app = TestApp::start().await;
    let used = app.component("alice", docker("used")).await;
    let helper = app.component("alice", docker("helper")).await;
    app.publish(
        "flow.starting",
        published_flow(FLOW_A, "Wice to Snazzy", Some("t1"), &[&used, &helper]),
    )
    .await;
    app.publish(
        "flow.starting",
        published_flow(FLOW_B, "admin's", None, &[&used]),
    )
    .await;
    eventually("both flows recorded", || async {
        app.usage(FLOW_A).await.is_some() && app.usage(FLOW_B).await.is_some()
    })
    .await;
    let mut expected = vec![used.clone(), helper.clone()];
    expected.sort();
    assert_eq!(app.usage(FLOW_A).await, Some(json!(expected)));

    let (status, body) = app.delete(&format!("/components/{used}"), "alice").await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The tenant's flow is named; the tenant-less one is not alice's tenant's.
    assert_eq!(
        body,
        json!({"errors": [{"message": format!("Component is used by active flows and cannot be deleted: \"Wice to Snazzy\" ({FLOW_A}), 1 flow(s) of other tenants")}]})
    );
    let (status, _) = app.delete(&format!("/components/{helper}"), "alice").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, still) = app.get(&format!("/components/{used}"), "alice").await;
    assert_eq!(still["data"]["name"], "used");

    // flow.stopped as the orchestrator sends it.
    app.publish("flow.stopped", json!({"id": FLOW_A})).await;
    eventually("flow A released", || async {
        app.usage(FLOW_A).await.is_none()
    })
    .await;
    assert_eq!(
        app.delete(&format!("/components/{helper}"), "alice")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/components/{used}"), "alice").await.0,
        StatusCode::CONFLICT,
        "still used by the admin's flow"
    );
}
