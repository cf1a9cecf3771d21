//! OIH's "Flow Operations", paging, filters, bulk and delete cases.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Hub, TENANT, UNKNOWN_ID, messages, sample_flow};

crate::engines!(
    create_read_and_owners,
    unknown_and_malformed_ids,
    visibility_paging_filters_search_and_sort,
    filter_user_cannot_widen_the_view,
    update_and_delete,
    bulk_create_and_update
);

async fn create_read_and_owners(mut hub: Hub) {
    let (status, res) = hub
        .post("/flows", "adminToken", sample_flow("WiceToSnazzy"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{res}");
    assert_eq!(res["meta"], json!({}));
    let flow = &res["data"];
    let id = flow["id"].as_str().expect("id");
    assert_eq!(flow["owners"], json!([{"id": "adminId", "type": "user"}]));
    assert_eq!(flow["status"], "inactive");
    assert_eq!(flow["graphVersion"], 1);
    assert!(flow.get("_id").is_none() && flow.get("__v").is_none());
    let created = hub.expect_event("flowrepo.flow.created").await;
    assert_eq!(
        created,
        json!({"tenant": "", "user": "adminId", "flowId": id})
    );

    let (status, res) = hub
        .post("/flows", "guestToken", sample_flow("tenant flow"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        res["data"]["owners"],
        json!([{"id": "guestId", "type": "user"}, {"id": TENANT, "type": "tenant"}])
    );
    assert_eq!(res["data"]["tenant"], TENANT);
    let created = hub.expect_event("flowrepo.flow.created").await;
    assert_eq!(created["tenant"], TENANT);
    assert_eq!(created["user"], "guestId");

    let (status, res) = hub.get(&format!("/flows/{id}"), "adminToken").await;
    assert_eq!(status, StatusCode::OK);
    let flow = &res["data"];
    assert_eq!(flow["name"], "WiceToSnazzy");
    assert_eq!(
        flow["graph"]["nodes"][0]["credentials_id"],
        "5ca5c44c187c040010a9bb8c"
    );
    assert_eq!(flow["graph"]["nodes"][0]["fields"]["username"], "TestName");
    assert_eq!(
        flow["graph"]["edges"],
        json!([{"source": "NodeOne", "target": "NodeTwo"}])
    );
    assert!(
        flow["createdAt"]
            .as_str()
            .expect("createdAt")
            .ends_with('Z')
    );
    assert!(flow["updatedAt"].is_string());

    // A non-admin cannot plant a flow in another tenant.
    let mut foreign = sample_flow("foreign");
    foreign["tenant"] = json!("someoneElse");
    let (_, res) = hub.post("/flows", "guestToken", foreign).await;
    assert_eq!(res["data"]["tenant"], TENANT);
    hub.shutdown().await;
}

async fn unknown_and_malformed_ids(hub: Hub) {
    let (status, res) = hub.get(&format!("/flows/{UNKNOWN_ID}"), "guestToken").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        res,
        json!({"errors": [{"message": "No flow found", "code": 404}]})
    );
    for (method, uri, message) in [
        ("PATCH", format!("/flows/{UNKNOWN_ID}"), "Flow not found"),
        ("DELETE", format!("/flows/{UNKNOWN_ID}"), "Flow not found"),
    ] {
        let body = (method == "PATCH").then(|| json!({"name": "x"}));
        let (status, res) = hub.call(method, &uri, Some("guestToken"), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(messages(&res), [message]);
    }
    for (method, uri) in [
        ("GET", "/flows/123456789012"),
        ("GET", "/flows/not-an-id"),
        ("PATCH", "/flows/not-an-id"),
        ("DELETE", "/flows/not-an-id"),
        ("GET", "/flows/not-an-id/versions"),
    ] {
        let body = (method == "PATCH").then(|| json!({"name": "x"}));
        let (status, res) = hub.call(method, uri, Some("guestToken"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}");
        assert_eq!(
            res,
            json!({"errors": [{"message": "Invalid id", "code": 400}]})
        );
    }
    hub.shutdown().await;
}

async fn visibility_paging_filters_search_and_sort(hub: Hub) {
    let first = hub.create("adminToken", sample_flow("Alpha")).await;
    let mut second_flow = sample_flow("beta");
    second_flow["type"] = json!("long_running");
    second_flow["description"] = json!("no match here");
    let second = hub.create("adminToken", second_flow).await;
    let guest = hub.create("guestToken", sample_flow("Gamma")).await;

    // Another user of the same tenant sees the tenant-owned flow only.
    let (_, res) = hub.get("/flows", "permitToken").await;
    assert_eq!(res["meta"]["total"], 1);
    assert_eq!(res["data"][0]["id"], guest.as_str());
    let (status, _) = hub.get(&format!("/flows/{first}"), "permitToken").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, page1) = hub
        .get("/flows?page[size]=1&page[number]=1", "adminToken")
        .await;
    let (_, page2) = hub
        .get("/flows?page%5Bsize%5D=1&page%5Bnumber%5D=2", "adminToken")
        .await;
    assert_eq!(page1["data"][0]["id"], first.as_str());
    assert_eq!(page2["data"][0]["id"], second.as_str());
    assert_eq!(
        page2["meta"],
        json!({"page": 2, "perPage": 1, "total": 3, "totalPages": 3})
    );

    let count = |body: &serde_json::Value| body["meta"]["total"].as_u64().expect("total");
    let (_, res) = hub.get("/flows?filter[status]=0", "adminToken").await;
    assert_eq!(count(&res), 3);
    let (_, res) = hub.get("/flows?filter[status]=active", "adminToken").await;
    assert_eq!(count(&res), 0);
    let (_, res) = hub.get("/flows?filter[type]=ordinary", "adminToken").await;
    assert_eq!(count(&res), 2);
    let (_, res) = hub.get("/flows?filter[user]=guestId", "adminToken").await;
    assert_eq!(count(&res), 1);
    let (_, res) = hub.get("/flows?search=desc", "adminToken").await;
    assert_eq!(count(&res), 2);
    let (_, res) = hub.get("/flows?search=%20%20ALPHA%24", "adminToken").await;
    assert_eq!(count(&res), 1, "sanitized, case-insensitive");

    let (_, res) = hub.get("/flows?sort=-name", "adminToken").await;
    let names: Vec<&str> = res["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["beta", "Gamma", "Alpha"]);
    let (_, res) = hub.get("/flows?sort=-createdAt", "adminToken").await;
    assert_eq!(res["data"][0]["id"], guest.as_str());

    for (query, message) in [
        ("filter[status]=2", "Invalid filter[status] parameter"),
        ("filter[type]=realtime", "Invalid filter[type] parameter"),
        (
            "filter[fromTemplate]=nope",
            "Invalid filter[fromTemplate] parameter",
        ),
        ("sort=password", "Invalid sort parameter"),
        ("sort=a-b", "Invalid sort parameter"),
        ("page[size]=abc", "Invalid page[size] parameter"),
    ] {
        let (status, res) = hub.get(&format!("/flows?{query}"), "adminToken").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(messages(&res), [message], "{query}");
        // OIH sends no code with these; ours has the one every other 400 has.
        assert_eq!(res["errors"][0]["code"], 400, "{query}");
    }
    hub.shutdown().await;
}

async fn filter_user_cannot_widen_the_view(hub: Hub) {
    hub.create("adminToken", sample_flow("admin's")).await;
    let (_, res) = hub.get("/flows?filter[user]=adminId", "guestToken").await;
    assert_eq!(
        res["meta"]["total"], 0,
        "OIH would list the admin's flow here"
    );
    hub.shutdown().await;
}

async fn update_and_delete(mut hub: Hub) {
    let id = hub.create("guestToken", sample_flow("before")).await;
    hub.expect_event("flowrepo.flow.created").await;
    let uri = format!("/flows/{id}");

    let (status, res) = hub
        .patch(
            &uri,
            "permitToken",
            json!({"name": "after", "id": "ignored", "bogus": 1, "owners": []}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["data"]["name"], "after");
    assert_eq!(res["data"]["id"], id.as_str());
    assert!(res["data"].get("bogus").is_none());
    assert_eq!(
        res["data"]["owners"],
        json!([{"id": "permitId", "type": "user"}]),
        "the editor is re-added"
    );
    assert_eq!(
        res["data"]["description"], "A description",
        "untouched fields stay"
    );
    let modified = hub.expect_event("flowrepo.flow.modified").await;
    assert_eq!(
        modified,
        json!({"tenant": TENANT, "user": "permitId", "flowId": id})
    );

    let (status, res) = hub.delete(&uri, "permitToken").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res, json!({"msg": "Flow was successfully deleted"}));
    let deleted = hub.expect_event("flowrepo.flow.deleted").await;
    assert_eq!(deleted["flowId"], id.as_str());
    let (status, _) = hub.get(&uri, "adminToken").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = hub.delete(&uri, "permitToken").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    hub.shutdown().await;
}

async fn bulk_create_and_update(hub: Hub) {
    let invalid = json!({"graph": {"nodes": [
        {"id": "a", "componentId": "5ca5c44c187c040010a9bb8b", "function": "f"},
        {"id": "b", "componentId": "5ca5c44c187c040010a9bb8b", "function": "f"}
    ], "edges": []}});
    let (status, res) = hub
        .post(
            "/flows",
            "bulkToken",
            json!([sample_flow("one"), invalid, sample_flow("three"), "junk"]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{res}");
    let data = res["data"].as_array().expect("data");
    assert_eq!(data.len(), 4);
    assert_eq!(data[0]["name"], "one");
    assert_eq!(
        messages(&data[1]),
        ["Flows with more than one node require edges."]
    );
    assert_eq!(data[1]["errors"][0]["code"], 400);
    assert_eq!(data[2]["name"], "three");
    assert_eq!(data[3]["errors"][0]["code"], 400);
    let one = data[0]["id"].as_str().expect("id").to_owned();
    let three = data[2]["id"].as_str().expect("id").to_owned();

    let (status, res) = hub
        .patch(
            "/flows/bulk",
            "bulkToken",
            json!([
                {"id": one, "description": "new one"},
                {"id": three, "graph": {"nodes": [{"id": "x", "componentId": "5ca5c44c187c040010a9bb8b", "function": "newFunction"}]}},
                {"id": UNKNOWN_ID, "name": "ghost"},
                {"id": "bad", "name": "bad"},
                {"name": "no id"},
                {"id": one, "cron": "nonsense"}
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    let data = res["data"].as_array().expect("data");
    assert_eq!(data[0]["description"], "new one");
    assert_eq!(data[1]["graph"]["nodes"][0]["function"], "newFunction");
    assert_eq!(
        data[2],
        json!({"errors": [{"message": format!("Flow {UNKNOWN_ID} not found"), "code": 404}]})
    );
    assert_eq!(messages(&data[3]), ["Invalid id"]);
    assert_eq!(messages(&data[4]), ["Invalid id"]);
    assert_eq!(messages(&data[5]), ["Invalid cron expression."]);
    let (_, flow) = hub.get(&format!("/flows/{one}"), "bulkToken").await;
    assert_eq!(flow["data"]["description"], "new one");
    assert!(flow["data"].get("cron").is_none());
    hub.shutdown().await;
}
