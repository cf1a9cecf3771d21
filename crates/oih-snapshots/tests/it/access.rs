//! Who reaches which snapshot: 401 without a token, the flow's starter, its tenant's admin and
//! admins see it; anyone else gets the answers of a missing snapshot.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{FLOW, Hub, data, persistent, scoped, step_uri, steps_uri};

crate::engines!(
    a_missing_or_unknown_token_is_401,
    another_user_or_tenant_sees_nothing,
    a_step_snapshot_is_deleted_by_its_owner_only,
    deleting_an_execution_needs_an_admin,
    a_step_token_reads_its_own_steps_snapshot_only,
);

async fn seed(hub: &Hub) {
    hub.seed(
        FLOW,
        &[(persistent(FLOW, "step_1"), br#"{"secret": "state"}"#)],
    )
    .await;
}

async fn a_missing_or_unknown_token_is_401(hub: Hub) {
    seed(&hub).await;
    for (method, uri) in [
        ("GET", step_uri(FLOW, "step_1")),
        ("GET", steps_uri(FLOW)),
        ("DELETE", step_uri(FLOW, "step_1")),
        ("DELETE", "/snapshots?flowExecId=e1".to_owned()),
    ] {
        let (status, body) = hub.call(method, &uri, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        // The Koa services' shape: no `code`.
        assert_eq!(
            body,
            json!({"errors": [{"message": "Missing authorization header."}]})
        );
        let (status, body) = hub.call(method, &uri, Some("nobody")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Token invalid")),
            "{body}"
        );
    }
    // Nothing was deleted.
    let (_, body) = hub.get(&steps_uri(FLOW), "adminToken").await;
    assert_eq!(data(&body).len(), 1);
    hub.shutdown().await;
}

async fn another_user_or_tenant_sees_nothing(hub: Hub) {
    seed(&hub).await;
    let hidden = json!({"data": {}});
    for token in ["colleagueToken", "otherAdminToken"] {
        let (status, one) = hub.get(&step_uri(FLOW, "step_1"), token).await;
        assert_eq!((status, &one), (StatusCode::OK, &hidden), "{token}");
        let (status, list) = hub.get(&steps_uri(FLOW), token).await;
        assert_eq!(
            (status, list),
            (StatusCode::OK, json!({"data": []})),
            "{token}"
        );
    }
    // The starter, their tenant's admin and an admin see it.
    for token in ["starterToken", "tenantAdminToken", "adminToken"] {
        let (status, one) = hub.get(&step_uri(FLOW, "step_1"), token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one, json!({"data": {"secret": "state"}}), "{token}");
    }
    hub.shutdown().await;
}

async fn a_step_snapshot_is_deleted_by_its_owner_only(hub: Hub) {
    seed(&hub).await;
    // Someone else's delete answers as for a missing snapshot and changes nothing.
    assert_eq!(
        hub.delete(&step_uri(FLOW, "step_1"), "colleagueToken")
            .await,
        StatusCode::NO_CONTENT
    );
    let (_, still) = hub.get(&step_uri(FLOW, "step_1"), "starterToken").await;
    assert_eq!(still, json!({"data": {"secret": "state"}}));
    assert_eq!(
        hub.delete(&step_uri(FLOW, "step_1"), "starterToken").await,
        StatusCode::NO_CONTENT
    );
    let (_, gone) = hub.get(&step_uri(FLOW, "step_1"), "starterToken").await;
    assert_eq!(gone, json!({"data": {}}));
    // Deleting what is not there is fine too (OIH).
    assert_eq!(
        hub.delete(&step_uri(FLOW, "step_1"), "starterToken").await,
        StatusCode::NO_CONTENT
    );
    hub.shutdown().await;
}

async fn deleting_an_execution_needs_an_admin(hub: Hub) {
    hub.seed(
        FLOW,
        &[
            (scoped(FLOW, "step_1", "e1"), b"1"),
            (scoped(FLOW, "step_2", "e1"), b"2"),
            (scoped(FLOW, "step_1", "e2"), b"3"),
        ],
    )
    .await;
    let (status, body) = hub
        .call("DELETE", "/snapshots?flowExecId=e1", Some("starterToken"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"errors": [{"message": "Forbidden"}]}));
    for uri in ["/snapshots", "/snapshots?flowExecId="] {
        let (status, body) = hub.call("DELETE", uri, Some("adminToken")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body["errors"][0]["message"].is_string());
    }
    let (_, all) = hub.get(&steps_uri(FLOW), "adminToken").await;
    assert_eq!(data(&all).len(), 3);
    assert_eq!(
        hub.delete("/snapshots?flowExecId=e1", "adminToken").await,
        StatusCode::NO_CONTENT
    );
    let (_, left) = hub.get(&steps_uri(FLOW), "adminToken").await;
    let left: Vec<&Value> = data(&left).iter().map(|s| &s["flowExecId"]).collect();
    assert_eq!(left, [&json!("e2")]);
    // An empty filter is refused on the list too.
    let (status, _) = hub
        .get(&format!("{}?flowExecId=", steps_uri(FLOW)), "adminToken")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    hub.shutdown().await;
}

async fn a_step_token_reads_its_own_steps_snapshot_only(hub: Hub) {
    seed(&hub).await;
    hub.publish_snapshot(persistent(FLOW, "step_2"), br#"{"other": "state"}"#)
        .await;
    hub.wait_for(&steps_uri(FLOW), "step_2", |b| data(b).len() == 2)
        .await;
    let (status, own) = hub.get(&step_uri(FLOW, "step_1"), "stepToken").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own, json!({"data": {"secret": "state"}}));
    let (status, other) = hub.get(&step_uri(FLOW, "step_2"), "stepToken").await;
    assert_eq!((status, other), (StatusCode::OK, json!({"data": {}})));
    // Listing and deleting are for users, not steps.
    let (status, _) = hub.get(&steps_uri(FLOW), "stepToken").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        hub.delete(&step_uri(FLOW, "step_1"), "stepToken").await,
        StatusCode::FORBIDDEN
    );
    let (_, kept) = hub.get(&step_uri(FLOW, "step_1"), "adminToken").await;
    assert_eq!(kept, json!({"data": {"secret": "state"}}));
    hub.shutdown().await;
}
