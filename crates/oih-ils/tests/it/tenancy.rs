//! Authentication and tenant isolation on every endpoint (OIH has neither).

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Hub, assert_error, chunk};

#[tokio::test]
async fn every_endpoint_needs_a_token() {
    let hub = Hub::start().await;
    let body = chunk(
        "ila1",
        json!({"schema": {"type": "object"}}),
        json!({"email": "e"}),
    );
    for (method, uri) in [
        ("POST", "/chunks"),
        ("POST", "/chunks/validate"),
        ("POST", "/chunks/split"),
        ("GET", "/chunks/ila1"),
    ] {
        let payload = (method == "POST").then(|| body.to_string());
        let (status, res) = hub.call(method, uri, None, payload.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {res}");
        assert_eq!(res["errors"][0]["code"], 401, "{res}");
        let (status, _) = hub
            .call(method, uri, Some("unknownToken"), payload.as_deref())
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    assert_eq!(hub.stored().await, 0);
}

#[tokio::test]
async fn another_tenant_neither_sees_nor_merges_chunks() {
    let hub = Hub::start().await;
    let def = json!({"schema": {"type": "object"}});
    let (status, mine) = hub
        .post(
            "/chunks",
            "userToken",
            chunk("ila1", def.clone(), json!({"email": "a@x.io", "secret": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let (status, split) = hub
        .post(
            "/chunks/split",
            "userToken",
            json!({"ilaId": "ila1", "payload": {"email": "a@x.io"},
                   "splitSchema": [{"meta": {"splitKey": "k"}, "payload": {"email": 1}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{split}");

    // Reads: nothing of tenant1 is visible to tenant2.
    assert_error(
        hub.get("/chunks/ila1", "otherToken").await,
        404,
        "No chunks found!",
    );
    assert_error(
        hub.get("/chunks/ila1?key=k", "otherToken").await,
        404,
        "No chunks found!",
    );
    // A post with the same channel and common id starts tenant2's own chunk.
    let (status, theirs) = hub
        .post(
            "/chunks",
            "otherToken",
            chunk("ila1", def.clone(), json!({"email": "a@x.io", "other": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert_eq!(
        theirs["data"]["payload"],
        json!({"email": "a@x.io", "other": 2})
    );
    // tenant1's chunk is unchanged, and a colleague in tenant1 sees it.
    let (_, list) = hub.get("/chunks/ila1", "colleagueToken").await;
    assert_eq!(list["meta"]["total"], 1);
    assert_eq!(list["data"][0], mine["data"]);
    let (_, list) = hub.get("/chunks/ila1", "otherToken").await;
    assert_eq!(list["data"][0], theirs["data"]);
}

#[tokio::test]
async fn cached_schemas_are_not_shared_across_tenants() {
    let hub = Hub::start().await;
    let body = chunk(
        "ila1",
        json!({"domainId": "dom1", "schemaUri": "person.json"}),
        json!({"email": "e", "name": "n"}),
    );
    for token in ["userToken", "colleagueToken", "otherToken"] {
        let (status, res) = hub.post("/chunks/validate", token, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{res}");
        assert_eq!(res["data"]["valid"], true);
    }
    // One fetch per tenant, each with that tenant's caller token: the repository decides
    // access for every tenant itself.
    let tokens: Vec<String> = hub.schemas.calls().into_iter().map(|c| c.2).collect();
    assert_eq!(tokens, vec!["userToken", "otherToken"]);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let hub = Hub::start().await;
    let big = "x".repeat(oih_http::DEFAULT_BODY_LIMIT + 1);
    let body = chunk(
        "ila1",
        json!({"schema": {"type": "object"}}),
        json!({"email": "e", "blob": big}),
    );
    let (status, res) = hub.post("/chunks", "userToken", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{res}");
    assert_eq!(res["errors"][0]["code"], 413);
    assert_eq!(hub.stored().await, 0);
}
