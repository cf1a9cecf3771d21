//! `POST /chunks` (create, merge, checks in OIH's order), `POST /chunks/validate`, reads and
//! expiry.

use std::time::Duration;

use axum::http::StatusCode;
use oih_ils::Config;
use serde_json::{Value, json};

use crate::support::{BODY_TOKEN, Hub, assert_error, chunk, person_def, person_schema};

#[tokio::test]
async fn creates_and_merges_until_the_chunk_is_valid() {
    let hub = Hub::start().await;
    let (status, first) = hub
        .post(
            "/chunks",
            "userToken",
            chunk("ila1", person_def(), json!({"email": "a@x.io", "age": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["meta"], json!({}));
    let created = &first["data"];
    assert_eq!(created["ilaId"], "ila1");
    assert_eq!(created["cid"], "email");
    assert_eq!(created["def"], person_def());
    assert_eq!(created["meta"], json!({}));
    assert_eq!(created["valid"], false);
    assert!(created.get("scope").is_none() && created.get("mergeKey").is_none());
    // Invalid chunks are not listed.
    assert_error(
        hub.get("/chunks/ila1", "userToken").await,
        404,
        "No chunks found!",
    );

    let (status, second) = hub
        .post(
            "/chunks",
            "colleagueToken",
            chunk(
                "ila1",
                person_def(),
                json!({"email": "a@x.io", "name": "Ann", "age": 4}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let merged = &second["data"];
    assert_eq!(
        merged["payload"],
        json!({"email": "a@x.io", "age": 4, "name": "Ann"})
    );
    assert_eq!(merged["valid"], true);
    let expire = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["expireAt"].as_str().expect("expireAt"))
            .expect("date")
    };
    assert!(expire(merged) >= expire(created));

    let (status, list) = hub.get("/chunks/ila1", "userToken").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["meta"], json!({"total": 1}));
    assert_eq!(list["data"][0], *merged);
    assert_eq!(hub.stored().await, 1, "a merge leaves one chunk");
}

#[tokio::test]
async fn inline_schemas_validate_too() {
    let hub = Hub::start().await;
    let def = json!({"schema": person_schema()});
    let (status, body) = hub
        .post(
            "/chunks",
            "userToken",
            chunk(
                "ila1",
                def.clone(),
                json!({"email": "b@x.io", "name": "Bo"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["valid"], true);
    assert_eq!(body["data"]["def"], def);
    // The repository is not asked for inline schemas.
    assert!(hub.schemas.calls().is_empty());
}

#[tokio::test]
async fn repository_schemas_are_fetched_with_the_callers_token_and_cached() {
    let hub = Hub::start().await;
    for email in ["a@x.io", "b@x.io"] {
        let (status, body) = hub
            .post(
                "/chunks",
                "userToken",
                chunk("ila1", person_def(), json!({"email": email, "name": "N"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(
        hub.schemas.calls(),
        vec![("dom1".into(), "person.json".into(), "userToken".into())]
    );
}

#[tokio::test]
async fn checks_run_in_oihs_order_and_change_nothing() {
    let hub = Hub::start().await;
    let good = chunk("ila1", person_def(), json!({"email": "a@x.io"}));
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let cases = [
        // 1. request schema, before the ilaId characters
        (
            with("token", json!("short")),
            400,
            "Input does not match schema!",
        ),
        (
            json!({"ilaId": "a/b", "token": "short"}),
            400,
            "Input does not match schema!",
        ),
        (
            with("payload", json!([1])),
            400,
            "Input does not match schema!",
        ),
        (json!([1, 2]), 400, "Input does not match schema!"),
        // 2. ilaId characters, before the def
        (
            json!({"ilaId": "a$b", "token": BODY_TOKEN, "cid": "email", "def": {}, "payload": {}}),
            400,
            "ilaId must not contain special characters!",
        ),
        // 4./5. def
        (
            with("def", json!({"domainId": "dom1"})),
            404,
            "Domain ID and Schema URI or custom schema must be specified!",
        ),
        (
            with(
                "def",
                json!({"domainId": "dom1", "schemaUri": "person.json", "schema": {"type": "object"}}),
            ),
            405,
            "Either domainId with schemaUri or custom schema must be specified, but not both!",
        ),
        // 6. repository
        (
            with("def", json!({"domainId": "dom1", "schemaUri": "nope.json"})),
            404,
            "DomainId or schemaUri not found!",
        ),
        (
            with(
                "def",
                json!({"domainId": "forbidden", "schemaUri": "x.json"}),
            ),
            403,
            "Insufficient permissions",
        ),
        // 7. inline schema
        (
            with("def", json!({"schema": {}})),
            400,
            "Schema is invalid!",
        ),
        (
            with("def", json!({"schema": {"type": 12}})),
            400,
            "Schema is invalid!",
        ),
        // 8. cid, after the schema
        (
            with("payload", json!({"name": "x"})),
            400,
            "Payload does not contain cid!",
        ),
    ];
    for (body, status, message) in cases {
        assert_error(
            hub.post("/chunks", "userToken", body).await,
            status,
            message,
        );
    }
    let (status, body) = hub
        .call("POST", "/chunks", Some("userToken"), Some("{not json"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], 400, "{body}");
    assert_eq!(hub.stored().await, 0);
}

#[tokio::test]
async fn merging_needs_the_same_cid_and_schema() {
    let hub = Hub::start().await;
    let (status, _) = hub
        .post(
            "/chunks",
            "userToken",
            chunk("ila1", person_def(), json!({"email": "a@x.io"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let other_schema = chunk(
        "ila1",
        json!({"schema": {"type": "object"}}),
        json!({"email": "a@x.io", "name": "changed"}),
    );
    assert_error(
        hub.post("/chunks", "userToken", other_schema).await,
        400,
        "CID and def must match with other flow!",
    );
    // The stored chunk is untouched.
    let (_, body) = hub
        .post(
            "/chunks",
            "userToken",
            chunk("ila1", person_def(), json!({"email": "a@x.io"})),
        )
        .await;
    assert!(body["data"]["payload"].get("name").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_for_one_cid_end_in_one_merged_chunk() {
    race(Hub::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_for_one_cid_end_in_one_merged_chunk_on_postgres() {
    if let Some(hub) = Hub::start_postgres().await {
        race(hub).await;
    }
}

async fn race(hub: Hub) {
    let hub = std::sync::Arc::new(hub);
    let def = json!({"schema": {"type": "object"}});
    let posts: Vec<_> = (0..8)
        .map(|i| {
            let hub = hub.clone();
            let body = chunk(
                "ila1",
                def.clone(),
                json!({"email": "a@x.io", format!("f{i}"): i}),
            );
            tokio::spawn(async move { hub.post("/chunks", "userToken", body).await })
        })
        .collect();
    for post in posts {
        let (status, body) = post.await.expect("task");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, list) = hub.get("/chunks/ila1", "userToken").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["meta"]["total"], 1, "{list}");
    let payload = list["data"][0]["payload"].as_object().expect("payload");
    for i in 0..8 {
        assert_eq!(payload[&format!("f{i}")], i, "field f{i} lost: {list}");
    }
    assert_eq!(hub.stored().await, 1);
}

#[tokio::test]
async fn chunks_expire_after_their_lifetime() {
    let hub = Hub::with_config(Config {
        ils_chunk_ttl: 1,
        ..Config::default()
    })
    .await;
    let body = chunk(
        "ila1",
        json!({"schema": {"type": "object"}}),
        json!({"email": "e"}),
    );
    let (status, _) = hub.post("/chunks", "userToken", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hub.get("/chunks/ila1", "userToken").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_error(
        hub.get("/chunks/ila1", "userToken").await,
        404,
        "No chunks found!",
    );
    // A post after expiry starts a new chunk instead of merging into the expired one.
    let (_, fresh) = hub
        .post(
            "/chunks",
            "userToken",
            chunk(
                "ila1",
                json!({"schema": {"type": "object"}}),
                json!({"email": "e", "n": 1}),
            ),
        )
        .await;
    assert_eq!(fresh["data"]["payload"], json!({"email": "e", "n": 1}));
}

#[tokio::test]
async fn validate_answers_without_storing() {
    let hub = Hub::start().await;
    let body = |payload: Value, def: Value| json!({"ilaId": "ila1", "token": BODY_TOKEN, "cid": "email", "def": def, "payload": payload});
    let (status, verdict) = hub
        .post(
            "/chunks/validate",
            "userToken",
            body(json!({"email": "a", "name": "b"}), person_def()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(verdict, json!({"data": {"valid": true}, "meta": {}}));
    let (_, verdict) = hub
        .post(
            "/chunks/validate",
            "userToken",
            body(json!({"email": "a"}), person_def()),
        )
        .await;
    assert_eq!(verdict["data"]["valid"], false);
    // Order: ilaId characters before the request schema.
    assert_error(
        hub.post("/chunks/validate", "userToken", json!({"ilaId": "a*b"}))
            .await,
        400,
        "ilaId must not contain special characters!",
    );
    assert_error(
        hub.post("/chunks/validate", "userToken", json!({"ilaId": "ab"}))
            .await,
        400,
        "Input does not match schema!",
    );
    assert_error(
        hub.post(
            "/chunks/validate",
            "userToken",
            body(json!({"name": "b"}), person_def()),
        )
        .await,
        400,
        "Payload does not contain cid!",
    );
    assert_error(
        hub.post(
            "/chunks/validate",
            "userToken",
            body(json!({"email": "a"}), json!({"schema": person_schema()})),
        )
        .await,
        404,
        "Domain ID and Schema URI must be specified!",
    );
    assert_error(
        hub.post(
            "/chunks/validate",
            "userToken",
            body(
                json!({"email": "a"}),
                json!({"domainId": "dom1", "schemaUri": "x"}),
            ),
        )
        .await,
        404,
        "DomainId or schemaUri not found!",
    );
    assert_eq!(hub.stored().await, 0);
}

#[tokio::test]
async fn read_rejects_the_literal_undefined() {
    let hub = Hub::start().await;
    assert_error(
        hub.get("/chunks/undefined", "userToken").await,
        400,
        "Integration Layer Adapter ID required!",
    );
}
