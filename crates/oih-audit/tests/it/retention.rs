//! Per-tenant retention: an admin overrides the default limits of one tenant's chain through
//! `/logs/retention`; the pruning pass applies the override and leaves other chains alone.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use oih_audit::Config;
use oih_audit::retention::{Policy, Pruner};
use serde_json::{Value, json};

use crate::chain::fill;
use crate::support::{Hub, OTHER_TENANT, TENANT, messages};

crate::engines!(
    overrides_are_set_read_and_removed,
    overrides_survive_a_restart,
    a_tenants_override_replaces_the_default,
    bad_retention_input_is_400_and_changes_nothing,
    only_admins_manage_retention
);

const URI: &str = "/logs/retention/TestTenant";

async fn entries(hub: &Hub, tenant: &str) -> Value {
    let verified = hub.verify(tenant).await;
    assert_eq!(verified["valid"], true, "{verified}");
    verified["entries"].clone()
}

async fn listed(hub: &Hub) -> Value {
    let (status, body) = hub.get("/logs/retention", "adminToken").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

async fn overrides_are_set_read_and_removed(hub: Hub) {
    let data = listed(&hub).await;
    assert_eq!(
        data,
        json!({"defaults": {"maxAgeSecs": null, "maxEntries": null}, "intervalSecs": 3600,
               "tenants": []})
    );
    // Without an override a tenant gets the defaults.
    let (status, body) = hub.get(URI, "adminToken").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"tenantId": TENANT, "effective": {"maxAgeSecs": null, "maxEntries": null}})
    );

    let (status, body) = hub
        .put(URI, "adminToken", json!({"maxAgeSecs": 86_400}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"tenantId": TENANT, "maxAgeSecs": 86_400,
               "effective": {"maxAgeSecs": 86_400, "maxEntries": null}})
    );
    // A PUT replaces the whole override.
    let (status, body) = hub.put(URI, "adminToken", json!({"maxEntries": 5})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, other) = hub
        .put(
            "/logs/retention/OtherTenant",
            "adminToken",
            json!({"maxAgeSecs": null, "maxEntries": 7}),
        )
        .await;
    assert_eq!(
        other["data"],
        json!({"tenantId": OTHER_TENANT, "maxAgeSecs": null, "maxEntries": 7,
               "effective": {"maxAgeSecs": null, "maxEntries": 7}})
    );
    let (_, read) = hub.get(URI, "adminToken").await;
    assert_eq!(
        read["data"],
        json!({"tenantId": TENANT, "maxEntries": 5,
               "effective": {"maxAgeSecs": null, "maxEntries": 5}})
    );
    let tenants = listed(&hub).await["tenants"].clone();
    assert_eq!(tenants[0]["tenantId"], OTHER_TENANT);
    assert_eq!(tenants[1], read["data"]);

    let (status, _) = hub.call("DELETE", URI, Some("adminToken"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = hub.call("DELETE", URI, Some("adminToken"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["errors"][0]["code"], 404);
    let tenants = listed(&hub).await["tenants"].clone();
    assert_eq!(tenants.as_array().map(Vec::len), Some(1), "{tenants}");
    // Ids are taken as written: escaped characters and all.
    let (status, body) = hub
        .put(
            "/logs/retention/a%20b%2Fc",
            "adminToken",
            json!({"maxEntries": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["tenantId"], "a b/c");
    hub.shutdown().await;
}

async fn overrides_survive_a_restart(hub: Hub) {
    let (status, body) = hub
        .put(
            URI,
            "adminToken",
            json!({"maxEntries": 2, "maxAgeSecs": 60}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hub = hub.restart().await;
    let (status, read) = hub.get(URI, "adminToken").await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        read["data"]["effective"],
        json!({"maxAgeSecs": 60, "maxEntries": 2})
    );
    // And the restarted service prunes by it.
    fill(&hub, TENANT, 4).await;
    let pruner = Pruner::new(hub.logs.clone(), Policy::default());
    assert_eq!(pruner.prune_all(Utc::now()).await.expect("prune"), 3);
    assert_eq!(entries(&hub, TENANT).await, 2);
    hub.shutdown().await;
}

async fn a_tenants_override_replaces_the_default(hub: Hub) {
    const THIRD: &str = "ThirdTenant";
    fill(&hub, TENANT, 6).await;
    fill(&hub, OTHER_TENANT, 6).await;
    fill(&hub, THIRD, 6).await;
    let pruner = Pruner::new(
        hub.logs.clone(),
        Policy {
            max_age: None,
            max_entries: Some(5),
        },
    );
    // Tighter for one tenant, lifted for another, the default for the third.
    hub.put(URI, "adminToken", json!({"maxEntries": 3})).await;
    hub.put(
        "/logs/retention/OtherTenant",
        "adminToken",
        json!({"maxEntries": null}),
    )
    .await;
    // 4 entries and a checkpoint go from TestTenant's chain, 2 and one from ThirdTenant's.
    assert_eq!(pruner.prune_all(Utc::now()).await.expect("prune"), 6);
    assert_eq!(entries(&hub, TENANT).await, 3);
    assert_eq!(entries(&hub, OTHER_TENANT).await, 6);
    assert_eq!(entries(&hub, THIRD).await, 5);
    assert_eq!(pruner.prune_all(Utc::now()).await.expect("prune"), 0);

    // By age, for one tenant only: the default has no age limit.
    hub.put(URI, "adminToken", json!({"maxAgeSecs": 60})).await;
    let later = Utc::now() + chrono::Duration::hours(1);
    assert_eq!(pruner.prune_all(later).await.expect("prune"), 3);
    assert_eq!(entries(&hub, TENANT).await, 1);
    assert_eq!(entries(&hub, OTHER_TENANT).await, 6);
    assert_eq!(entries(&hub, THIRD).await, 5);
    let (_, left) = hub
        .get("/logs?filter[tenant]=TestTenant", "adminToken")
        .await;
    assert_eq!(
        left["data"][0]["headers"]["name"],
        "audit.retention.checkpoint"
    );

    // Removed: the tenant is back to the default.
    hub.call(
        "DELETE",
        "/logs/retention/OtherTenant",
        Some("adminToken"),
        None,
    )
    .await;
    assert_eq!(pruner.prune_all(Utc::now()).await.expect("prune"), 2);
    assert_eq!(entries(&hub, OTHER_TENANT).await, 5);
    let (_, all) = hub.get("/logs/verify", "adminToken").await;
    assert_eq!(all["meta"], json!({"total": 3, "valid": true}));
    hub.shutdown().await;
}

async fn bad_retention_input_is_400_and_changes_nothing(hub: Hub) {
    let must_be = |key: &str| format!("{key} must be a positive integer, or null for no limit");
    let cases = [
        (json!([]), vec!["The body must be an object".to_owned()]),
        (
            json!({}),
            vec!["Set maxAgeSecs or maxEntries (DELETE removes the override)".to_owned()],
        ),
        (json!({"maxEntries": 0}), vec![must_be("maxEntries")]),
        (json!({"maxEntries": -3}), vec![must_be("maxEntries")]),
        (json!({"maxEntries": 2.5}), vec![must_be("maxEntries")]),
        (
            json!({"maxAgeSecs": "86400", "maxEntries": true}),
            vec![must_be("maxAgeSecs"), must_be("maxEntries")],
        ),
        (
            json!({"maxAgeSecs": 9_223_372_036_854_775_808_u64}),
            vec![must_be("maxAgeSecs")],
        ),
        (
            json!({"maxEntries": 5, "maxAgeDays": 1}),
            vec![
                "Unknown field \"maxAgeDays\": only maxAgeSecs and maxEntries can be set"
                    .to_owned(),
            ],
        ),
    ];
    for (body, expected) in cases {
        let (status, res) = hub.put(URI, "adminToken", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {res}");
        assert_eq!(messages(&res), expected, "{body}");
        assert_eq!(res["errors"][0]["code"], 400);
    }
    let (_, res) = hub.put(URI, "adminToken", json!({"maxEntries": 0})).await;
    assert_eq!(res["errors"][0]["field"], "maxEntries");

    let malformed = Request::put(URI)
        .header("authorization", "Bearer adminToken")
        .header("content-type", "application/json")
        .body(Body::from("{\"maxEntries\": "))
        .expect("request");
    let (status, res) = hub.send(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["errors"][0]["code"], 400);
    let text = Request::put(URI)
        .header("authorization", "Bearer adminToken")
        .header("content-type", "text/plain")
        .body(Body::from("{\"maxEntries\": 1}"))
        .expect("request");
    let (status, _) = hub.send(text).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let long = format!("/logs/retention/{}", "t".repeat(257));
    for uri in [
        long.as_str(),
        "/logs/retention/a%01b",
        "/logs/retention/%20",
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let body = (method == "PUT").then(|| json!({"maxEntries": 1}));
            let (status, res) = hub.call(method, uri, Some("adminToken"), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {res}");
            assert_eq!(res["errors"][0]["code"], 400);
        }
    }
    assert_eq!(listed(&hub).await["tenants"], json!([]));
    hub.shutdown().await;
}

async fn only_admins_manage_retention(hub: Hub) {
    hub.put(URI, "adminToken", json!({"maxEntries": 3})).await;
    let calls = [
        ("GET", "/logs/retention", None),
        ("GET", URI, None),
        ("PUT", URI, Some(json!({"maxEntries": 100}))),
        // The permission is checked before the body is looked at.
        ("PUT", URI, Some(json!("garbage"))),
        ("DELETE", URI, None),
    ];
    // Reading or pushing entries, or administering a tenant, is not enough.
    for token in [
        "userToken",
        "readToken",
        "tenantAdminToken",
        "unpermitToken",
    ] {
        for (method, uri, body) in &calls {
            let (status, res) = hub.call(method, uri, Some(token), body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{token} {method} {uri}");
            assert_eq!(messages(&res), ["MISSING_PERMISSION"]);
            assert_eq!(res["errors"][0]["details"], "[\"all\"]");
        }
    }
    for (method, uri, body) in calls {
        let (status, res) = hub.call(method, uri, None, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(res["errors"][0]["code"], 401);
    }
    let (_, read) = hub.get(URI, "adminToken").await;
    assert_eq!(read["data"]["maxEntries"], 3);
    hub.shutdown().await;
}

#[tokio::test]
async fn the_retention_worker_applies_an_override_without_a_default() {
    let hub = Hub::start_with(Config {
        audit_retention_interval_secs: 1,
        ..Config::default()
    })
    .await;
    let (status, body) = hub.put(URI, "adminToken", json!({"maxEntries": 2})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    fill(&hub, TENANT, 5).await;
    fill(&hub, OTHER_TENANT, 5).await;
    hub.wait_for("/logs?filter[tenant]=TestTenant", "pruning", |b| {
        b["meta"]["total"] == 2
    })
    .await;
    assert_eq!(entries(&hub, TENANT).await, 2);
    assert_eq!(entries(&hub, OTHER_TENANT).await, 5);
    hub.shutdown().await;
}
