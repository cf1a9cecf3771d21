//! Entries from the event bus: what other services publish appears in the audit log, nothing
//! is lost while the store is away, and `iam.user.deleted` anonymises.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use oih_audit::events::Ingest;
use oih_bus::{EventBus, EventHandler};
use oih_core::Event;
use serde_json::{Value, json};

use crate::support::{Hub, TENANT};

crate::engines!(
    an_event_published_by_the_flow_repository_is_recorded,
    every_audit_worthy_family_is_recorded_by_pattern,
    a_redelivered_event_is_recorded_once,
    gdpr_anonymises_and_the_chains_still_verify
);

async fn an_event_published_by_the_flow_repository_is_recorded(hub: Hub) {
    // Exactly as the flow repository publishes it.
    EventBus::new(hub.bus.clone(), "flow-repository")
        .await
        .expect("event bus")
        .publish(Event::new(
            "flowrepo.flow.created",
            json!({"tenant": TENANT, "user": "userId", "flowId": "5ca5c44c187c040010a9bb8b"}),
        ))
        .await
        .expect("publish");
    let body = hub
        .wait_for("/logs", "the event", |b| b["meta"]["total"] == 1)
        .await;
    let entry = &body["data"][0];
    assert_eq!(entry["headers"]["name"], "flowrepo.flow.created");
    assert_eq!(entry["headers"]["serviceName"], "flow-repository");
    assert_eq!(entry["payload"]["flowId"], "5ca5c44c187c040010a9bb8b");
    assert_eq!(entry["chain"]["tenant"], TENANT);
    // The tenant's users see it.
    let (_, mine) = hub.get("/logs", "userToken").await;
    assert_eq!(mine["meta"]["total"], 1);
    let verified = hub.verify(TENANT).await;
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["entries"], 1);
    hub.shutdown().await;
}

async fn every_audit_worthy_family_is_recorded_by_pattern(hub: Hub) {
    let events = [
        (
            "iam",
            "iam.user.created",
            json!({"id": "u1", "username": "a@b.c"}),
        ),
        ("iam", "iam.group.created", json!({"id": "g1"})),
        (
            "secret-service",
            "secrets.secret.created",
            json!({"name": "s"}),
        ),
        (
            "meta-data-repository",
            "metadata.schema.created",
            json!({"id": "m"}),
        ),
        (
            "flow-repository",
            "flowrepo.flow.deleted",
            json!({"tenant": "", "user": "u", "flowId": "f"}),
        ),
        (
            "flow-repository",
            "flow.starting",
            json!({"id": "f", "tenant": TENANT, "startedBy": "u"}),
        ),
        ("flow-repository", "flow.stopping", json!({"id": "f"})),
        ("component-orchestrator", "flow.started", json!({"id": "f"})),
        ("component-orchestrator", "flow.stopped", json!({"id": "f"})),
        ("component-orchestrator", "flow.failed", json!({"id": "f"})),
        (
            "component-repository",
            "component.starting",
            json!({"_id": "c"}),
        ),
        (
            "component-orchestrator",
            "component.started",
            json!({"id": "c"}),
        ),
    ];
    for (service, name, payload) in &events {
        hub.publish(service, name, payload.clone()).await;
    }
    // Step data is not audited.
    hub.publish(
        "webhooks",
        "flow.execute",
        json!({"flow": {}, "msg": {"data": 1}}),
    )
    .await;
    let body = hub
        .wait_for("/logs?page[size]=50", "every event", |b| {
            b["meta"]["total"] == events.len()
        })
        .await;
    let mut names: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["headers"]["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    let mut expected: Vec<&str> = events.iter().map(|(_, n, _)| *n).collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert_eq!(hub.queue_len("audit-log").await, 0);
    hub.shutdown().await;
}

async fn a_redelivered_event_is_recorded_once(hub: Hub) {
    let ingest = Ingest::new(hub.logs.clone());
    let mut event = Event::new("iam.token.deleted", json!({"id": "t1"}));
    event.headers.service_name = "iam".into();
    ingest.handle(&event).await.expect("first");
    ingest.handle(&event).await.expect("again");
    let (_, body) = hub.get("/logs", "adminToken").await;
    assert_eq!(body["meta"]["total"], 1);
    assert_eq!(hub.verify("").await["valid"], true);
    hub.shutdown().await;
}

#[tokio::test]
async fn nothing_is_lost_while_the_store_is_away() {
    let (hub, flaky) = Hub::start_flaky().await;
    // Over HTTP the caller learns it at once.
    flaky.fail_begins.store(1, Ordering::SeqCst);
    let (status, res) = hub
        .post(
            "/logs",
            "adminToken",
            json!({"headers": {"name": "a", "serviceName": "b"}}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{res}");
    assert_eq!(res["errors"][0]["code"], 503);
    // From the bus it is retried until stored.
    flaky.fail_begins.store(3, Ordering::SeqCst);
    hub.publish(
        "iam",
        "iam.user.modified",
        json!({"id": "u1", "username": "x"}),
    )
    .await;
    hub.wait_for("/logs", "the retried event", |b| b["meta"]["total"] == 1)
        .await;
    assert_eq!(flaky.fail_begins.load(Ordering::SeqCst), 0);
    assert_eq!(hub.queue_len("audit-log.deadletter").await, 0);
    hub.shutdown().await;
}

#[tokio::test]
async fn an_event_that_cannot_be_stored_faithfully_is_dead_lettered() {
    let hub = Hub::start().await;
    hub.publish("iam", "iam.user.modified", json!("not an object"))
        .await;
    hub.publish("iam", "iam.user.modified", json!({"username": "nul\u{0}"}))
        .await;
    hub.publish("iam", "iam.user.created", json!({"id": "ok"}))
        .await;
    hub.wait_for("/logs", "the good event", |b| b["meta"]["total"] == 1)
        .await;
    for _ in 0..100 {
        if hub.queue_len("audit-log.deadletter").await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.queue_len("audit-log.deadletter").await, 2);
    hub.shutdown().await;
}

async fn gdpr_anonymises_and_the_chains_still_verify(hub: Hub) {
    let user = "abcdef12345";
    hub.publish(
        "iam",
        "iam.user.created",
        json!({"id": user, "username": "test@org.de"}),
    )
    .await;
    hub.publish(
        "flow-repository",
        "flowrepo.flow.created",
        json!({"tenant": TENANT, "user": user, "flowId": "f1"}),
    )
    .await;
    hub.publish(
        "flow-repository",
        "flow.starting",
        json!({"id": "f1", "tenant": TENANT, "startedBy": user, "name": "keep"}),
    )
    .await;
    hub.publish(
        "iam",
        "iam.user.created",
        json!({"id": "someoneElse", "username": "other@org.de"}),
    )
    .await;
    hub.wait_for("/logs", "the seed", |b| b["meta"]["total"] == 4)
        .await;
    hub.publish("iam", "iam.user.deleted", json!({"id": user}))
        .await;
    let body = hub
        .wait_for("/logs?page[size]=20", "anonymisation", |b| {
            b["meta"]["total"] == 5
                && b["data"]
                    .as_array()
                    .is_some_and(|d| d.iter().all(|e| !e["payload"].to_string().contains(user)))
        })
        .await;
    let payload_of = |name: &str, key: &str, value: &str| -> Value {
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .find(|e| e["headers"]["name"] == name && e["payload"][key] == value)
            .map(|e| e["payload"].clone())
            .unwrap_or_else(|| panic!("no {name} with {key}={value}: {body}"))
    };
    assert_eq!(
        payload_of("iam.user.created", "id", "XXXXXXXXXX"),
        json!({"id": "XXXXXXXXXX", "username": "XXXXXXXXXX"})
    );
    assert_eq!(
        payload_of("flowrepo.flow.created", "user", "XXXXXXXXXX")["flowId"],
        "f1"
    );
    assert_eq!(
        payload_of("flow.starting", "startedBy", "XXXXXXXXXX")["name"],
        "keep"
    );
    assert_eq!(
        payload_of("iam.user.deleted", "id", "XXXXXXXXXX"),
        json!({"id": "XXXXXXXXXX"})
    );
    // Another user's entry is untouched.
    assert_eq!(
        payload_of("iam.user.created", "id", "someoneElse")["username"],
        "other@org.de"
    );
    let (status, verified) = hub.get("/logs/verify", "adminToken").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["meta"]["valid"], true, "{verified}");
    assert_eq!(verified["meta"]["total"], 2);
    hub.shutdown().await;
}
