//! Graph versions (beyond OIH): every graph a flow had stays readable by number.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Hub, UNKNOWN_ID, messages, sample_flow};

crate::engines!(
    every_graph_change_is_a_new_immutable_version,
    versions_outlive_their_flow,
    deleted_users_lose_access_to_versions_of_deleted_flows,
    version_lookups_check_their_input
);

async fn every_graph_change_is_a_new_immutable_version(mut hub: Hub) {
    let id = hub.create("guestToken", sample_flow("versioned")).await;
    let original = sample_flow("versioned")["graph"].clone();
    let uri = format!("/flows/{id}");

    // Not a graph change: no new version.
    let (_, res) = hub
        .patch(&uri, "guestToken", json!({"name": "renamed"}))
        .await;
    assert_eq!(res["data"]["graphVersion"], 1);

    let new_graph = json!({"nodes": [{"id": "only", "componentId": "5ca5c44c187c040010a9bb8b", "function": "f"}], "edges": []});
    let (status, res) = hub
        .patch(&uri, "guestToken", json!({"graph": new_graph}))
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["data"]["graphVersion"], 2);

    let (status, res) = hub.get(&format!("{uri}/versions"), "permitToken").await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(
        res["meta"],
        json!({"page": 1, "perPage": 10, "total": 2, "totalPages": 1})
    );
    assert_eq!(res["data"][0]["version"], 1);
    assert_eq!(res["data"][0]["flowId"], id.as_str());
    assert_eq!(res["data"][0]["createdBy"], "guestId");
    assert_eq!(res["data"][0]["graph"], original);
    assert_eq!(res["data"][1]["version"], 2);
    assert_eq!(res["data"][1]["graph"], new_graph);

    let (status, res) = hub.get(&format!("{uri}/versions/1"), "guestToken").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res["data"]["graph"], original);
    assert_eq!(res["meta"], json!({}));

    // The version a run names is what flow.starting carries.
    let (_, _) = hub
        .post(&format!("/flows/{id}/start"), "adminToken", json!({}))
        .await;
    let starting = hub.expect_event("flow.starting").await;
    assert_eq!(starting["graphVersion"], 2);

    let (status, res) = hub.get(&format!("{uri}/versions/3"), "guestToken").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(messages(&res), ["No flow version found"]);
    for bad in ["0", "-1", "x", "1.5"] {
        let (status, res) = hub
            .get(&format!("{uri}/versions/{bad}"), "guestToken")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(messages(&res), ["Invalid version"]);
    }
    hub.shutdown().await;
}

/// An execution record outlives its flow: the graphs stay readable by whoever could read the
/// flow when it was deleted, and by no one else.
async fn versions_outlive_their_flow(mut hub: Hub) {
    let id = hub.create("guestToken", sample_flow("short-lived")).await;
    let original = sample_flow("short-lived")["graph"].clone();
    let new_graph = json!({"nodes": [{"id": "only", "componentId": "5ca5c44c187c040010a9bb8b", "function": "f"}], "edges": []});
    let (status, _) = hub
        .patch(
            &format!("/flows/{id}"),
            "guestToken",
            json!({"graph": new_graph}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub.delete(&format!("/flows/{id}"), "guestToken").await;
    assert_eq!(status, StatusCode::OK);
    hub.expect_event("flowrepo.flow.deleted").await;
    let (status, _) = hub.get(&format!("/flows/{id}"), "guestToken").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the flow itself is gone");

    // The creator, a tenant colleague (the tenant is an owner) and an admin read them.
    for token in ["guestToken", "permitToken", "adminToken"] {
        let (status, res) = hub.get(&format!("/flows/{id}/versions"), token).await;
        assert_eq!(status, StatusCode::OK, "{token}: {res}");
        assert_eq!(res["meta"]["total"], 2, "{token}");
        assert_eq!(res["data"][0]["graph"], original, "{token}");
        assert_eq!(res["data"][1]["graph"], new_graph, "{token}");
        let (status, res) = hub.get(&format!("/flows/{id}/versions/1"), token).await;
        assert_eq!(status, StatusCode::OK, "{token}: {res}");
        assert_eq!(res["data"]["graph"], original);
        assert_eq!(res["data"]["flowId"], id.as_str());
    }
    // Another tenant: as if the flow never existed.
    for uri in [
        format!("/flows/{id}/versions"),
        format!("/flows/{id}/versions/1"),
    ] {
        let (status, res) = hub.get(&uri, "otherTenantToken").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(messages(&res), ["No flow found"]);
        let (status, _) = hub.get(&uri, "unpermitToken").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
    }
    let (status, res) = hub
        .get(&format!("/flows/{id}/versions/3"), "guestToken")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(messages(&res), ["No flow version found"]);
    hub.shutdown().await;
}

/// GDPR: a deleted user stops owning what is kept of deleted flows.
async fn deleted_users_lose_access_to_versions_of_deleted_flows(hub: Hub) {
    let id = hub.create("adminToken", sample_flow("admin's")).await;
    let (status, res) = hub
        .patch(
            &format!("/flows/{id}"),
            "adminToken",
            json!({"owners": [{"id": "adminId", "type": "user"}, {"id": "guestId", "type": "user"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let (status, _) = hub.delete(&format!("/flows/{id}"), "adminToken").await;
    assert_eq!(status, StatusCode::OK);
    let uri = format!("/flows/{id}/versions/1");
    assert_eq!(hub.get(&uri, "guestToken").await.0, StatusCode::OK);

    hub.publish("iam", "iam.user.deleted", json!({"id": "guestId"}))
        .await;
    // The same id, were it ever issued again, must not inherit the access.
    let mut revoked = false;
    for _ in 0..100 {
        if hub.get(&uri, "guestToken").await.0 == StatusCode::NOT_FOUND {
            revoked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(revoked, "guestId still reads the deleted flow's versions");
    assert_eq!(hub.get(&uri, "adminToken").await.0, StatusCode::OK);
    hub.shutdown().await;
}

/// 404 for an unknown flow, 400 for a malformed id or bad paging; nothing else leaks.
async fn version_lookups_check_their_input(hub: Hub) {
    let id = hub.create("guestToken", sample_flow("paged")).await;
    for uri in [
        format!("/flows/{UNKNOWN_ID}/versions/1"),
        format!("/flows/{UNKNOWN_ID}/versions"),
    ] {
        let (status, res) = hub.get(&uri, "guestToken").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {res}");
        assert_eq!(messages(&res), ["No flow found"], "{uri}");
    }
    for uri in ["/flows/not-an-id/versions/1", "/flows/not-an-id/versions"] {
        let (status, res) = hub.get(uri, "guestToken").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {res}");
        assert_eq!(messages(&res), ["Invalid id"], "{uri}");
        assert_eq!(res["errors"][0]["code"], 400);
    }
    for (query, message) in [
        ("page[size]=abc", "Invalid page[size] parameter"),
        ("page[number]=abc", "Invalid page[number] parameter"),
    ] {
        let (status, res) = hub
            .get(&format!("/flows/{id}/versions?{query}"), "guestToken")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {res}");
        assert_eq!(messages(&res), [message], "{query}");
    }
    let (status, res) = hub
        .get(
            &format!("/flows/{id}/versions?page[size]=1&page[number]=2"),
            "guestToken",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["data"], json!([]));
    assert_eq!(
        res["meta"],
        json!({"page": 2, "perPage": 1, "total": 1, "totalPages": 1})
    );
    hub.shutdown().await;
}
