//! `HttpSchemaSource` resolving `$ref`s between schemas of a mocked meta-data repository, and
//! what ILS answers when it cannot.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use oih_core::Identity;
use oih_ils::schema::{MAX_REFERENCED_SCHEMAS, compile};
use oih_ils::{Caller, HttpSchemaSource, SchemaError, SchemaSource};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{BODY_TOKEN, Hub, assert_error};

const SCHEMAS: &str = "/api/v1/domains/dom1/schemas";

fn caller() -> Caller {
    Caller {
        identity: Identity::new("u1", Some("t1".into()), vec![]),
        token: "userToken".into(),
    }
}

/// The repository's URL of one of its schemas (what it writes into `$id` and `$ref`s).
fn url(base: &str, file: &str) -> String {
    format!("{base}{SCHEMAS}/{file}")
}

/// Serves `schema` at `file`, once, to the caller's token only.
async fn serve(server: &MockServer, file: &str, schema: Value) {
    Mock::given(method("GET"))
        .and(path(format!("{SCHEMAS}/{file}")))
        .and(header("authorization", "Bearer userToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(schema))
        .expect(1)
        .mount(server)
        .await;
}

async fn fetch(server: &MockServer, file: &str) -> Result<Option<Value>, SchemaError> {
    HttpSchemaSource::new(&server.uri(), Duration::from_secs(5))
        .expect("client")
        .schema("dom1", file, &caller())
        .await
}

/// person → address (absolute `$ref`) → street (relative to the address's `$id`).
async fn serve_person(server: &MockServer, base: &str) {
    serve(
        server,
        "person.json",
        json!({
            "$id": url(base, "person.json"),
            "type": "object",
            "properties": {
                "email": {"type": "string"},
                "address": {"$ref": url(base, "shared/address.json")}
            },
            "required": ["email", "address"]
        }),
    )
    .await;
    serve(
        server,
        "shared/address.json",
        json!({
            "$id": url(base, "shared/address.json"),
            "type": "object",
            "properties": {"street": {"$ref": "street.json#/definitions/street"}},
            "required": ["street"]
        }),
    )
    .await;
    serve(
        server,
        "shared/street.json",
        json!({
            "$id": url(base, "shared/street.json"),
            "definitions": {"street": {"type": "string", "minLength": 3}}
        }),
    )
    .await;
}

fn assert_validates_the_whole_person(schema: &Value) {
    let validator = compile(schema).expect("the bundle compiles");
    let person = |street: Value| json!({"email": "a@b.c", "address": {"street": street}});
    assert!(validator.is_valid(&person(json!("Main Street"))));
    // Each level's rule applies: the referenced, and the one it references.
    assert!(!validator.is_valid(&json!({"email": "a@b.c", "address": {}})));
    assert!(!validator.is_valid(&person(json!("ab"))));
    assert!(!validator.is_valid(&person(json!(42))));
}

#[tokio::test]
async fn referenced_schemas_are_fetched_transitively_and_bundled() {
    let server = MockServer::start().await;
    serve_person(&server, &server.uri()).await;
    let schema = fetch(&server, "person.json")
        .await
        .expect("fetch")
        .expect("found");
    assert_eq!(
        schema["definitions"]["oih-bundled-0"]["$id"],
        url(&server.uri(), "shared/address.json")
    );
    assert_validates_the_whole_person(&schema);
}

#[tokio::test]
async fn references_to_the_repositorys_public_url_are_fetched_from_the_configured_one() {
    // The repository writes its public BASE_URL into `$id`s; ILS reaches it elsewhere.
    let server = MockServer::start().await;
    serve_person(&server, "https://metadata.example.com").await;
    let schema = fetch(&server, "person.json")
        .await
        .expect("fetch")
        .expect("found");
    assert_validates_the_whole_person(&schema);
}

#[tokio::test]
async fn a_cycle_is_fetched_once_and_validates() {
    let server = MockServer::start().await;
    let base = server.uri();
    serve(
        &server,
        "person.json",
        json!({
            "$id": url(&base, "person.json"),
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "friends": {"$ref": url(&base, "friends.json")}
            },
            "required": ["name"]
        }),
    )
    .await;
    serve(
        &server,
        "friends.json",
        json!({"$id": url(&base, "friends.json"), "type": "array",
               "items": {"$ref": "person.json"}}),
    )
    .await;
    let schema = fetch(&server, "person.json")
        .await
        .expect("fetch")
        .expect("found");
    let validator = compile(&schema).expect("compiles");
    assert!(validator.is_valid(&json!({"name": "a", "friends": [{"name": "b", "friends": []}]})));
    assert!(!validator.is_valid(&json!({"name": "a", "friends": [{"friends": []}]})));
}

#[tokio::test]
async fn references_outside_the_repository_are_refused_unfetched() {
    let server = MockServer::start().await;
    let foreign = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"type": "string"})))
        .expect(0)
        .mount(&foreign)
        .await;
    let base = server.uri();
    for (file, reference) in [
        (
            "foreign.json",
            format!("{}/api/v1/domains/dom1/schemas/x.json", foreign.uri()),
        ),
        ("elsewhere.json", "/api/v1/users/me".to_owned()),
        ("climb.json", "../../../../secrets/x.json".to_owned()),
        ("query.json", format!("{base}{SCHEMAS}/x.json?redirect=1")),
    ] {
        Mock::given(path(format!("{SCHEMAS}/{file}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "$id": url(&base, file),
                "properties": {"a": {"$ref": reference}}
            })))
            .mount(&server)
            .await;
        match fetch(&server, file).await {
            Err(SchemaError::Reference(why)) => {
                assert!(why.contains("outside the meta-data repository"), "{why}");
            }
            other => panic!("{reference}: expected a refusal, got {other:?}"),
        }
    }
    // Only the four schemas asked for reached the repository.
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(4));
}

/// `chain/<n>.json` references `chain/<n+1>.json`, without end.
struct Endless;

impl Respond for Endless {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let n: u64 = req
            .url
            .path()
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|n| n.parse().ok())
            .expect("a numbered schema");
        ResponseTemplate::new(200)
            .set_body_json(json!({"properties": {"next": {"$ref": format!("{}.json", n + 1)}}}))
    }
}

#[tokio::test]
async fn the_number_of_referenced_schemas_is_capped() {
    let server = MockServer::start().await;
    Mock::given(path_regex(
        r"^/api/v1/domains/dom1/schemas/chain/\d+\.json$",
    ))
    .respond_with(Endless)
    .mount(&server)
    .await;
    match fetch(&server, "chain/0.json").await {
        Err(SchemaError::Reference(why)) => {
            assert!(why.contains("references more than 64 schemas"), "{why}");
        }
        other => panic!("expected the cap, got {other:?}"),
    }
    let requests = server.received_requests().await.map(|r| r.len());
    assert_eq!(requests, Some(MAX_REFERENCED_SCHEMAS + 1));
}

/// A chunk posted to `/chunks/validate` whose schema is `person.json` of the mocked repository.
async fn verdict(server: &MockServer, payload: Value) -> (StatusCode, Value) {
    let source = HttpSchemaSource::new(&server.uri(), Duration::from_secs(5)).expect("client");
    let hub = Hub::with_source(Arc::new(source)).await;
    let body = json!({"ilaId": "ila1", "token": BODY_TOKEN, "cid": "email",
                      "def": {"domainId": "dom1", "schemaUri": "person.json"},
                      "payload": payload});
    hub.post("/chunks/validate", "userToken", body).await
}

#[tokio::test]
async fn ils_validates_chunks_against_the_full_schema() {
    let server = MockServer::start().await;
    serve_person(&server, &server.uri()).await;
    let (status, body) = verdict(
        &server,
        json!({"email": "a@b.c", "address": {"street": "ab"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["valid"], false);
    let server = MockServer::start().await;
    serve_person(&server, &server.uri()).await;
    let (status, body) = verdict(
        &server,
        json!({"email": "a@b.c", "address": {"street": "Main Street"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["valid"], true);
}

#[tokio::test]
async fn a_referenced_schema_the_repository_lacks_or_fails_on_is_an_error() {
    for (status, answer, expected_status) in [
        (404, json!({"message": "Schema not found"}), 400),
        (500, json!({"message": "database down"}), 500),
        (403, json!({"message": "Insufficient permissions"}), 403),
    ] {
        let server = MockServer::start().await;
        let base = server.uri();
        serve(
            &server,
            "person.json",
            json!({"$id": url(&base, "person.json"),
                   "properties": {"address": {"$ref": url(&base, "address.json")}}}),
        )
        .await;
        Mock::given(path(format!("{SCHEMAS}/address.json")))
            .respond_with(ResponseTemplate::new(status).set_body_json(answer.clone()))
            .mount(&server)
            .await;
        let got = verdict(&server, json!({"email": "a@b.c"})).await;
        let message = match status {
            404 => format!(
                "Schema is invalid! {} in {}: no such schema in the meta-data repository",
                url(&base, "address.json"),
                url(&base, "person.json")
            ),
            _ => answer["message"].as_str().expect("message").to_owned(),
        };
        assert_error(got, expected_status, &message);
    }
}
