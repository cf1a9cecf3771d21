//! `GET /executions` and `GET /executions/{id}`: authentication, the required filter, tenant
//! isolation.

use serde_json::json;

use crate::engines;
use crate::support::{Hub, OTHER_TENANT, TENANT, linear_flow};

engines!(executions_are_tenant_scoped, bad_requests_are_rejected);

async fn executions_are_tenant_scoped(mut hub: Hub) {
    let mine = linear_flow(TENANT, "userId");
    let theirs = linear_flow(OTHER_TENANT, "otherId");
    hub.started(&mine).await;
    hub.started(&theirs).await;
    let my_exec = hub.execute(&mine, json!({"n": 1})).await;
    let their_exec = hub.execute(&theirs, json!({"n": 2})).await;
    hub.finished(&my_exec).await;
    hub.finished(&their_exec).await;
    let mine_id = mine["id"].as_str().expect("id");
    let theirs_id = theirs["id"].as_str().expect("id");

    let (status, body) = hub
        .get(&format!("/executions/{my_exec}"), Some("userToken"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["flowExecId"], my_exec.as_str());
    assert_eq!(body["data"]["status"], "succeeded");

    let (status, body) = hub
        .get(
            &format!("/executions?filter[flowId]={mine_id}"),
            Some("userToken"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));

    // Another tenant's execution looks like an unknown one; its list is empty.
    let (status, body) = hub
        .get(&format!("/executions/{their_exec}"), Some("userToken"))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body,
        json!({"errors": [{"message": "Execution not found", "code": 404}]})
    );
    let (status, body) = hub
        .get(
            &format!("/executions?filter[flowId]={theirs_id}"),
            Some("userToken"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!([]));
    let (status, _) = hub
        .get(&format!("/executions/{my_exec}"), Some("otherTenantToken"))
        .await;
    assert_eq!(status, 404);

    // Admins see everything.
    let (status, _) = hub
        .get(&format!("/executions/{their_exec}"), Some("adminToken"))
        .await;
    assert_eq!(status, 200);
    hub.shutdown().await;
}

async fn bad_requests_are_rejected(hub: Hub) {
    let (status, body) = hub.get("/executions?filter[flowId]=x", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = hub.get("/executions/abc", Some("badToken")).await;
    assert_eq!(status, 401);
    let (status, body) = hub.get("/executions", Some("userToken")).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["message"], "filter[flowId] is required.");
    let (status, _) = hub.get("/executions/unknown", Some("adminToken")).await;
    assert_eq!(status, 404);
    hub.shutdown().await;
}
