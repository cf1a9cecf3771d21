//! `POST /chunks/split`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Hub, assert_error, person_def};

fn split(schema: Value) -> Value {
    json!({
        "ilaId": "ila1",
        "payload": {"firstName": "Ann", "lastName": "Lee", "email": "a@x.io"},
        "splitSchema": schema,
    })
}

#[tokio::test]
async fn splits_into_one_chunk_per_element() {
    let hub = Hub::start().await;
    let (status, body) = hub
        .post(
            "/chunks/split",
            "userToken",
            split(json!([
                {"meta": {"splitKey": "person", "userId": "u1"}, "payload": {"firstName": 1, "email": 1}},
                {"meta": {"splitKey": "contact"}, "payload": {"email": 1, "phone": 1}},
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let parts = body.as_array().expect("array");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["meta"], json!({}));
    let person = &parts[0]["data"];
    assert_eq!(
        person["payload"],
        json!({"firstName": "Ann", "email": "a@x.io"})
    );
    assert_eq!(person["splitKey"], "person");
    assert_eq!(
        person["meta"],
        json!({"splitKey": "person", "userId": "u1"})
    );
    assert_eq!(person["valid"], false);
    assert!(person.get("cid").is_none());
    assert_eq!(
        parts[1]["data"]["payload"],
        json!({"email": "a@x.io", "phone": ""})
    );

    let (status, list) = hub.get("/chunks/ila1?key=contact", "userToken").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["meta"]["total"], 1);
    assert_eq!(list["data"][0], parts[1]["data"]);
    assert_error(
        hub.get("/chunks/ila1?key=other", "userToken").await,
        404,
        "No chunks found!",
    );
}

#[tokio::test]
async fn split_chunks_are_validated_when_the_element_names_a_schema() {
    let hub = Hub::start().await;
    let (status, body) = hub
        .post(
            "/chunks/split",
            "userToken",
            split(json!([
                {"meta": {"splitKey": "full"}, "payload": {"email": 1, "firstName": 1}, "def": person_def()},
                {"meta": {"splitKey": "inline"}, "payload": {"email": 1}, "def": {"schema": {"type": "object", "required": ["email"]}}},
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The person schema needs `name`, which the projection lacks.
    assert_eq!(body[0]["data"]["valid"], false);
    assert_eq!(body[0]["data"]["def"], person_def());
    assert_eq!(body[1]["data"]["valid"], true);
    // Valid split chunks are listed with the valid ones.
    let (_, list) = hub.get("/chunks/ila1", "userToken").await;
    assert_eq!(list["meta"]["total"], 1);
    assert_eq!(list["data"][0]["splitKey"], "inline");
}

#[tokio::test]
async fn bad_split_requests_store_nothing() {
    let hub = Hub::start().await;
    let missing = json!({"ilaId": "ila1", "payload": {"a": 1}});
    assert_error(
        hub.post("/chunks/split", "userToken", missing).await,
        400,
        "Split schema is not defined!",
    );
    for bad in [
        json!([]),
        json!({"a": 1}),
        json!([{"meta": {"splitKey": "k"}}]),
    ] {
        assert_error(
            hub.post("/chunks/split", "userToken", split(bad)).await,
            400,
            "Split schema is not valid!",
        );
    }
    let one_bad = json!([
        {"meta": {"splitKey": "good"}, "payload": {"email": 1}},
        {"meta": {}, "payload": {"email": 1}},
    ]);
    assert_error(
        hub.post("/chunks/split", "userToken", split(one_bad)).await,
        400,
        "Split key must be defined!",
    );
    let unknown_schema = json!([
        {"meta": {"splitKey": "good"}, "payload": {"email": 1}},
        {"meta": {"splitKey": "k"}, "payload": {"email": 1}, "def": {"domainId": "dom1", "schemaUri": "nope"}},
    ]);
    assert_error(
        hub.post("/chunks/split", "userToken", split(unknown_schema))
            .await,
        404,
        "DomainId or schemaUri not found!",
    );
    let mut bad_ila = split(json!([{"meta": {"splitKey": "k"}, "payload": {"email": 1}}]));
    bad_ila["ilaId"] = json!("a@b");
    assert_error(
        hub.post("/chunks/split", "userToken", bad_ila).await,
        400,
        "ilaId must not contain special characters!",
    );
    assert_eq!(hub.stored().await, 0);
}
