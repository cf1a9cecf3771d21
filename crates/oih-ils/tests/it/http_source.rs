//! `HttpSchemaSource` against a mocked meta-data repository.

use std::time::Duration;

use oih_core::Identity;
use oih_ils::{Caller, HttpSchemaSource, SchemaError, SchemaSource};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn caller() -> Caller {
    Caller {
        identity: Identity::new("u1", Some("t1".into()), vec![]),
        token: "callerToken".into(),
    }
}

async fn source(server: &MockServer) -> HttpSchemaSource {
    HttpSchemaSource::new(&server.uri(), Duration::from_secs(5)).expect("client")
}

#[tokio::test]
async fn fetches_the_bare_schema_with_the_callers_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/domains/dom1/schemas/person/v1.json"))
        .and(header("accept", "application/schema+json"))
        .and(header("authorization", "Bearer callerToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"type": "object"})))
        .expect(1)
        .mount(&server)
        .await;
    let schema = source(&server)
        .await
        .schema("dom1", "person/v1.json", &caller())
        .await
        .expect("fetch");
    assert_eq!(schema, Some(json!({"type": "object"})));
}

#[tokio::test]
async fn unwraps_oihs_envelope() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/domains/dom1/schemas/s.json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"uri": "x", "value": {"type": "string"}}})),
        )
        .mount(&server)
        .await;
    let schema = source(&server)
        .await
        .schema("dom1", "s.json", &caller())
        .await
        .expect("fetch");
    assert_eq!(schema, Some(json!({"type": "string"})));
}

#[tokio::test]
async fn not_found_is_none_and_errors_carry_status_and_message() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/domains/dom1/schemas/missing.json"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "no"})))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/domains/dom2/schemas/s.json"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"errors": [{"message": "Forbidden here", "code": 403}]})),
        )
        .mount(&server)
        .await;
    let source = source(&server).await;
    assert_eq!(
        source
            .schema("dom1", "missing.json", &caller())
            .await
            .expect("fetch"),
        None
    );
    match source.schema("dom2", "s.json", &caller()).await {
        Err(SchemaError::Upstream { status, message }) => {
            assert_eq!(status, 403);
            assert_eq!(message, "Forbidden here");
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

#[tokio::test]
async fn ids_cannot_leave_the_schemas_path() {
    let server = MockServer::start().await;
    // Only the escaped form may arrive; anything else hits no mock and answers 404.
    Mock::given(path("/api/v1/domains/a%2F..%2Fb/schemas/s.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"type": "object"})))
        .expect(1)
        .mount(&server)
        .await;
    let schema = source(&server)
        .await
        .schema("a/../b", "s.json", &caller())
        .await
        .expect("fetch");
    assert!(schema.is_some());
}

#[tokio::test]
async fn an_unreachable_repository_is_unavailable() {
    // Nothing listens on port 1: the connection is refused.
    let source =
        HttpSchemaSource::new("http://127.0.0.1:1", Duration::from_secs(2)).expect("client");
    assert!(matches!(
        source.schema("d", "s", &caller()).await,
        Err(SchemaError::Unavailable(_))
    ));
}
