//! OIH's "Flow Validation" cases: the same bodies, messages, counts and order.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Hub, messages, sample_flow};

crate::engines!(
    oih_validation_cases,
    errors_name_their_field,
    patch_applies_the_same_rules,
    wrong_types_are_cast_errors
);

async fn rejected(hub: &Hub, body: Value) -> Vec<String> {
    let (status, res) = hub.post("/flows", "adminToken", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    for error in res["errors"].as_array().expect("errors") {
        assert_eq!(error["code"], 400);
    }
    messages(&res)
}

fn two_nodes() -> Value {
    json!([
        {"id": "NodeId", "name": "nodeName", "function": "function",
         "componentId": "5ca5c44c187c040010a9bb8b"},
        {"id": "NodeId2", "name": "nodeName", "function": "function",
         "componentId": "5ca5c44c187c040010a9bb8c"}
    ])
}

async fn oih_validation_cases(hub: Hub) {
    assert_eq!(
        rejected(
            &hub,
            json!({"name": "emptyFlow", "description": "no graph"})
        )
        .await,
        ["Flows require a graph."]
    );
    assert_eq!(
        rejected(&hub, json!({"name": "emptyFlow", "graph": {}})).await,
        ["Flows require at least one node."]
    );
    assert_eq!(
        rejected(&hub, json!({"graph": {"nodes": [{"name": "nodeName"}]}})).await,
        [
            "Flow nodes require a function.",
            "Flow nodes require a componentId.",
            "Flow nodes require an id."
        ]
    );
    let several_nodes_no_edges = rejected(
        &hub,
        json!({"graph": {"nodes": [
            {"id": "NodeId", "name": "nodeName", "function": "function",
             "componentId": "5ca5c44c187c040010a9bb8b", "credentials_id": "IncorrectSecret"},
            {"id": "NodeId", "name": "nodeName", "function": "function", "componentId": "abc"}
        ]}}),
    )
    .await;
    assert_eq!(
        several_nodes_no_edges.len(),
        3,
        "{several_nodes_no_edges:?}"
    );
    assert!(
        several_nodes_no_edges.contains(&"Flows with more than one node require edges.".to_owned())
    );
    assert!(
        several_nodes_no_edges
            .iter()
            .any(|m| m.contains("\"IncorrectSecret\"") && m.contains("credentials_id"))
    );
    assert!(
        several_nodes_no_edges
            .iter()
            .any(|m| m.contains("\"abc\"") && m.contains("componentId"))
    );

    assert_eq!(
        rejected(
            &hub,
            json!({"graph": {"nodes": two_nodes(), "edges": [
                {"id": "EmptyEdge"},
                {"source": "NotANode", "target": "NodeId"},
                {"source": "NodeId2", "target": "NotANode2"}
            ]}})
        )
        .await,
        [
            "Flow edges require a target.",
            "Flow edges require a source.",
            "Edge source with id \"undefined\" could not be found among nodes.",
            "Edge target with id \"undefined\" could not be found among nodes.",
            "Edge source with id \"NotANode\" could not be found among nodes.",
            "Edge target with id \"NotANode2\" could not be found among nodes.",
        ]
    );
    assert_eq!(
        rejected(
            &hub,
            json!({
                "cron": "abcde", "status": "active",
                "owners": [{"id": "12345"}, {"type": "user"}],
                "graph": {"nodes": two_nodes(), "edges": [{"source": "NodeId2", "target": "NodeId"}]}
            })
        )
        .await,
        [
            "Flow owners require a type.",
            "Flow owners require an id.",
            "Flow status cannot be set manually. Use the flow start/stop end points instead.",
            "Invalid cron expression.",
        ]
    );
    let (_, list) = hub.get("/flows", "adminToken").await;
    assert_eq!(list["meta"]["total"], 0, "nothing invalid was stored");
    hub.shutdown().await;
}

async fn errors_name_their_field(hub: Hub) {
    let (_, res) = hub
        .post(
            "/flows",
            "adminToken",
            json!({"graph": {"nodes": [{"name": "n"}]}, "cron": "x"}),
        )
        .await;
    let fields: Vec<&str> = res["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        [
            "graph.nodes.0.function",
            "graph.nodes.0.componentId",
            "graph.nodes.0.id",
            "cron"
        ]
    );
    hub.shutdown().await;
}

async fn patch_applies_the_same_rules(hub: Hub) {
    let id = hub.create("adminToken", sample_flow("patched")).await;
    let (status, res) = hub
        .patch(
            &format!("/flows/{id}"),
            "adminToken",
            json!({
                "name": "emptyFlow",
                "cron": "abcde",
                "status": "active",
                "owners": [{"id": "12345"}, {"type": "user"}],
                "graph": {
                    "nodes": [
                        {"id": "NodeId", "name": "nodeName", "componentId": "abcd"},
                        {"id": "NodeId2", "name": "nodeName", "function": "function",
                         "componentId": "5ca5c44c187c040010a9bb8c"}
                    ],
                    "edges": [
                        {"id": "EmptyEdge"},
                        {"source": "NotANode", "target": "NodeId"},
                        {"source": "NodeId2", "target": "NotANode2"}
                    ]
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // OIH's order, as for POST: schema errors (per subdocument in reverse declaration order,
    // elements by index), then status, edge ends and cron.
    assert_eq!(
        messages(&res),
        [
            "Flow nodes require a function.",
            "Cast to ObjectId failed for value \"abcd\" (type string) at path \"componentId\"",
            "Flow edges require a target.",
            "Flow edges require a source.",
            "Flow owners require a type.",
            "Flow owners require an id.",
            "Flow status cannot be set manually. Use the flow start/stop end points instead.",
            "Edge source with id \"undefined\" could not be found among nodes.",
            "Edge target with id \"undefined\" could not be found among nodes.",
            "Edge source with id \"NotANode\" could not be found among nodes.",
            "Edge target with id \"NotANode2\" could not be found among nodes.",
            "Invalid cron expression.",
        ],
        "{res}"
    );
    for error in res["errors"].as_array().expect("errors") {
        assert_eq!(error["code"], 400);
    }
    let (_, flow) = hub.get(&format!("/flows/{id}"), "adminToken").await;
    assert_eq!(flow["data"]["name"], "patched", "the flow is unchanged");
    hub.shutdown().await;
}

async fn wrong_types_are_cast_errors(hub: Hub) {
    let errors = rejected(
        &hub,
        json!({"name": {"a": 1}, "owners": "me", "graph": {"nodes": "n", "edges": 3}}),
    )
    .await;
    assert_eq!(
        errors,
        [
            "Cast to string failed for value \"{\"a\":1}\" (type Object) at path \"name\"",
            "Cast to [node] failed for value \"n\" (type string) at path \"nodes\"",
            "Flows require at least one node.",
            "Cast to [edge] failed for value \"3\" (type number) at path \"edges\"",
            "Cast to [owner] failed for value \"me\" (type string) at path \"owners\"",
        ]
    );
    hub.shutdown().await;
}
