//! Another tenant's flow ids behave like unknown ids on every endpoint, and nothing changes.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Hub, messages, sample_flow};

crate::engines!(another_tenants_flows_are_invisible_everywhere);

async fn another_tenants_flows_are_invisible_everywhere(hub: Hub) {
    let id = hub.create("controlToken", sample_flow("mine")).await;
    let other = "otherTenantToken";

    let (_, list) = hub.get("/flows", other).await;
    assert_eq!(list["meta"]["total"], 0);
    let (_, list) = hub.get("/flows?filter[user]=controlId", other).await;
    assert_eq!(list["meta"]["total"], 0);

    for (method, uri, message) in [
        ("GET", format!("/flows/{id}"), "No flow found"),
        ("PATCH", format!("/flows/{id}"), "Flow not found"),
        ("DELETE", format!("/flows/{id}"), "Flow not found"),
        (
            "POST",
            format!("/flows/{id}/start"),
            "No flow with this ID found",
        ),
        (
            "POST",
            format!("/flows/{id}/stop"),
            "No flow with this ID found",
        ),
        ("GET", format!("/flows/{id}/versions"), "No flow found"),
        ("GET", format!("/flows/{id}/versions/1"), "No flow found"),
    ] {
        let body = (method == "PATCH").then(|| json!({"name": "stolen"}));
        let (status, res) = hub.call(method, &uri, Some(other), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {res}");
        assert_eq!(messages(&res), [message], "{method} {uri}");
    }
    let (status, res) = hub
        .patch("/flows/bulk", other, json!([{"id": id, "name": "stolen"}]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res["data"][0]["errors"][0]["code"], 404);
    for action in ["start", "stop"] {
        let (status, res) = hub
            .post(&format!("/flows/multiple/{action}"), other, json!([id]))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            res,
            json!([{"errors": [{"message": "No flow with this ID found", "code": 404, "flowId": id}]}])
        );
    }

    let (status, flow) = hub.get(&format!("/flows/{id}"), "controlToken").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(flow["data"]["name"], "mine");
    assert_eq!(flow["data"]["status"], "inactive");
    hub.shutdown().await;
}
