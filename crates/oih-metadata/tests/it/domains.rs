//! `/api/v1/domains`: OIH's domain spec, with its quirks fixed.

use axum::http::StatusCode;
use serde_json::json;

use crate::engines;
use crate::support::{Hub, TENANT, message, schema_id};

engines!(
    empty_list_has_oih_meta,
    create_then_read,
    list_total_counts_what_is_listed,
    public_flag_only_for_admins,
    update_keeps_owner_and_tenant,
    delete_removes_domain_and_schemas,
    delete_refused_while_another_domain_references_it,
);

async fn empty_list_has_oih_meta(hub: Hub) {
    let (status, body) = hub.get("/api/v1/domains?page[size]=10", "user1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));
    assert_eq!(
        body["meta"],
        json!({"page": 1, "perPage": 10, "total": 0, "totalPages": 1})
    );
}

async fn create_then_read(mut hub: Hub) {
    let (status, body) = hub
        .post(
            "/api/v1/domains",
            "user1",
            json!({"name": "n", "description": "d", "owners": [{"id": "x", "type": "USER"}], "tenant": "evil"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let domain = &body["data"];
    assert_eq!(domain["owners"], json!([{"id": "u1", "type": "USER"}]));
    assert_eq!(domain["tenant"], TENANT);
    assert_eq!(domain["public"], false);
    let id = domain["id"].as_str().expect("id");
    let created = hub.expect_event("metadata.domain.created").await;
    assert_eq!(created["id"], id);
    let (status, read) = hub.get(&format!("/api/v1/domains/{id}"), "user3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["data"]["name"], "n");
    assert_eq!(read["data"]["description"], "d");
}

/// OIH counted only the caller's tenant; public domains of other tenants are listed too.
async fn list_total_counts_what_is_listed(hub: Hub) {
    for i in 0..4 {
        hub.domain("user1", &format!("d{i}")).await;
    }
    let (status, _) = hub
        .post(
            "/api/v1/domains",
            "admin",
            json!({"name": "pub", "public": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.domain("admin", "private-b").await;
    hub.domain("other", "c").await;
    let (_, body) = hub.get("/api/v1/domains?page[size]=2", "user3").await;
    assert_eq!(body["meta"]["total"], 5, "{body}");
    assert_eq!(body["meta"]["totalPages"], 3);
    assert_eq!(body["data"].as_array().expect("list").len(), 2);
    let (_, last) = hub
        .get("/api/v1/domains?page[size]=2&page[number]=3", "user3")
        .await;
    assert_eq!(last["data"][0]["name"], "pub");
    let (_, other) = hub.get("/api/v1/domains", "other").await;
    assert_eq!(other["meta"]["total"], 2);
}

async fn public_flag_only_for_admins(hub: Hub) {
    let (_, body) = hub
        .post(
            "/api/v1/domains",
            "user1",
            json!({"name": "x", "public": true}),
        )
        .await;
    assert_eq!(body["data"]["public"], false);
    let id = body["data"]["id"].as_str().expect("id");
    let (status, put) = hub
        .put(
            &format!("/api/v1/domains/{id}"),
            "admin",
            json!({"name": "x", "public": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["data"]["public"], true);
    let (status, _) = hub.get(&format!("/api/v1/domains/{id}"), "other").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "public domains are readable by everyone"
    );
    let (_, put) = hub
        .put(
            &format!("/api/v1/domains/{id}"),
            "user1",
            json!({"name": "y", "public": true}),
        )
        .await;
    assert_eq!(put["data"]["public"], false);
}

/// OIH moved the domain into the updater's tenant; here owners and tenant stay.
async fn update_keeps_owner_and_tenant(mut hub: Hub) {
    let id = hub.domain("user1", "before").await;
    let (status, body) = hub
        .put(
            &format!("/api/v1/domains/{id}"),
            "admin",
            json!({"name": "after", "description": "new", "owners": [], "tenant": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "after");
    assert_eq!(body["data"]["tenant"], TENANT);
    assert_eq!(
        body["data"]["owners"],
        json!([{"id": "u1", "type": "USER"}])
    );
    let modified = hub.expect_event("metadata.domain.modified").await;
    assert_eq!(modified["id"], id.as_str());
    let (status, body) = hub
        .put(
            &format!("/api/v1/domains/{id}"),
            "user1",
            json!({"name": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&body), "name must be a string");
}

async fn delete_removes_domain_and_schemas(mut hub: Hub) {
    let id = hub.domain("user1", "gone").await;
    let (status, _) = hub
        .schema(
            "user1",
            &id,
            json!({"$id": "https://x.org/a.json", "type": "object"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Any user of the domain's tenant may delete it (OIH's empty permission list).
    let (status, body) = hub.delete(&format!("/api/v1/domains/{id}"), "user3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({}));
    let deleted = hub.expect_event("metadata.domain.deleted").await;
    assert_eq!(deleted["schema"], id.as_str());
    let (status, _) = hub.get(&format!("/api/v1/domains/{id}"), "user1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = hub
        .get(&format!("/api/v1/domains/{id}/schemas/a.json"), "admin")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn delete_refused_while_another_domain_references_it(hub: Hub) {
    let shared = hub.domain("user1", "shared").await;
    let s = json!({"$id": "https://x.org/base.json", "type": "object"});
    assert_eq!(hub.schema("user1", &shared, s).await.0, StatusCode::OK);
    let user = hub.domain("user1", "user").await;
    let uses = json!({"$id": "https://x.org/uses.json", "$ref": schema_id(&shared, "base.json")});
    assert_eq!(hub.schema("user1", &user, uses).await.0, StatusCode::OK);
    let (status, body) = hub
        .delete(&format!("/api/v1/domains/{shared}"), "user1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("uses.json"), "{body}");
    assert_eq!(
        hub.delete(&format!("/api/v1/domains/{user}"), "user1")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        hub.delete(&format!("/api/v1/domains/{shared}"), "user1")
            .await
            .0,
        StatusCode::OK
    );
}
