//! Graph versions (beyond OIH): every graph a flow had stays readable by number.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Hub, messages, sample_flow};

crate::engines!(
    every_graph_change_is_a_new_immutable_version,
    versions_go_with_their_flow
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

async fn versions_go_with_their_flow(hub: Hub) {
    let id = hub.create("guestToken", sample_flow("short-lived")).await;
    let (status, _) = hub.delete(&format!("/flows/{id}"), "guestToken").await;
    assert_eq!(status, StatusCode::OK);
    let (status, res) = hub
        .get(&format!("/flows/{id}/versions"), "adminToken")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(messages(&res), ["No flow found"]);
    let left = hub
        .docs
        .count(oih_flows::store::VERSIONS, &oih_store::Filter::All)
        .await
        .expect("count");
    assert_eq!(left, 0);
    hub.shutdown().await;
}
