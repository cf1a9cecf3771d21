//! http-request against wiremock.

use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{bad_field, data_of, error_of, run, step};

/// Fields calling `server` at `/path`, retrying quickly.
fn fields(server: &MockServer, extra: serde_json::Value) -> serde_json::Value {
    let mut fields = json!({"url": format!("'{}/items'", server.uri()), "retryDelay": 10});
    for (k, v) in extra.as_object().expect("object") {
        fields[k] = v.clone();
    }
    fields
}

#[tokio::test]
async fn builds_the_request_from_expressions_and_emits_the_response() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders/42"))
        .and(query_param("v", "2"))
        .and(header("authorization", "Bearer t0k"))
        .and(header("x-count", "3"))
        .and(body_json(json!({"sku": "a", "qty": 3})))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("x-id", "o-1")
                .set_body_json(json!({"ok": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let request = step(
        "http-request",
        json!({
            "method": "POST",
            "url": format!("'{}/orders/' & $string(id) & '?v=2'", server.uri()),
            "headers": {"Authorization": "'Bearer ' & token", "X-Count": "qty"},
            "body": "{'sku': sku, 'qty': qty}",
        }),
    );
    let emits = run(
        request.as_ref(),
        json!({"id": 42, "token": "t0k", "sku": "a", "qty": 3}),
    )
    .await;
    let data = data_of(&emits);
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["statusCode"], 201);
    assert_eq!(data[0]["body"], json!({"ok": true}));
    assert_eq!(data[0]["headers"]["x-id"], "o-1");
}

#[tokio::test]
async fn text_bodies_and_answers_stay_text() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(header("content-type", "text/plain; charset=utf-8"))
        .respond_with(ResponseTemplate::new(200).set_body_string("plain answer"))
        .expect(1)
        .mount(&server)
        .await;
    let request = step(
        "http-request",
        fields(&server, json!({"method": "PUT", "body": "'hello'"})),
    );
    let data = data_of(&run(request.as_ref(), json!({})).await);
    assert_eq!(data[0]["body"], "plain answer");
}

#[tokio::test]
async fn retries_on_503_until_it_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .expect(1)
        .mount(&server)
        .await;
    let request = step("http-request", fields(&server, json!({})));
    let data = data_of(&run(request.as_ref(), json!({})).await);
    assert_eq!(data[0]["body"], json!([1]));
}

#[tokio::test]
async fn honours_retry_after_seconds_on_429() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let request = step("http-request", fields(&server, json!({})));
    let started = Instant::now();
    let data = data_of(&run(request.as_ref(), json!({})).await);
    // The server asked for a one-second pause, much longer than the 10 ms back-off.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(data[0]["statusCode"], 200);
    assert_eq!(data[0]["body"], json!(null));
}

#[tokio::test]
async fn gives_up_after_the_configured_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .expect(3)
        .mount(&server)
        .await;
    let request = step("http-request", fields(&server, json!({"retries": 2})));
    let message = error_of(&run(request.as_ref(), json!({})).await);
    assert!(
        message.contains("502") && message.contains("bad gateway"),
        "{message}"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_limit_is_not_waited_for() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "86400"))
        .expect(1)
        .mount(&server)
        .await;
    let request = step("http-request", fields(&server, json!({})));
    let message = error_of(&run(request.as_ref(), json!({})).await);
    assert!(message.contains("503"), "{message}");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "no such item"})))
        .expect(1)
        .mount(&server)
        .await;
    let request = step("http-request", fields(&server, json!({})));
    let message = error_of(&run(request.as_ref(), json!({})).await);
    assert!(
        message.contains("404") && message.contains("no such item"),
        "{message}"
    );
}

#[tokio::test]
async fn the_timeout_is_configurable_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    let request = step("http-request", fields(&server, json!({"timeout": 100})));
    let message = error_of(&run(request.as_ref(), json!({})).await);
    assert!(message.contains("no answer within 100 ms"), "{message}");
}

#[tokio::test]
async fn refused_connections_are_retried_then_reported() {
    // A port nothing listens on: take a free one and let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let uri = format!("http://127.0.0.1:{port}/");
    let request = step(
        "http-request",
        json!({"url": format!("'{uri}'"), "retries": 1, "retryDelay": 1}),
    );
    let message = error_of(&run(request.as_ref(), json!({})).await);
    assert!(message.starts_with("request failed"), "{message}");
}

#[tokio::test]
async fn bad_urls_are_step_errors() {
    let request = step("http-request", json!({"url": "target"}));
    for data in [
        json!({}),
        json!({"target": 5}),
        json!({"target": "not a url"}),
        json!({"target": "file:///etc/passwd"}),
    ] {
        let message = error_of(&run(request.as_ref(), data.clone()).await);
        assert!(message.contains("\"url\""), "{data}: {message}");
    }
}

#[test]
fn bad_config_names_the_field() {
    assert_eq!(bad_field("http-request", json!({})), "url");
    assert_eq!(
        bad_field("http-request", json!({"url": "'x'", "method": "FETCH"})),
        "method"
    );
    assert_eq!(
        bad_field("http-request", json!({"url": "'x'", "timeout": 0})),
        "timeout"
    );
    assert_eq!(
        bad_field("http-request", json!({"url": "'x'", "retries": 11})),
        "retries"
    );
    assert_eq!(
        bad_field("http-request", json!({"url": "'x'", "retryDelay": -1})),
        "retryDelay"
    );
    assert_eq!(bad_field("http-request", json!({"url": "'x' &"})), "url");
    assert_eq!(
        bad_field("http-request", json!({"url": "'x'", "body": "}"})),
        "body"
    );
    assert_eq!(
        bad_field(
            "http-request",
            json!({"url": "'x'", "headers": {"bad name": "'v'"}})
        ),
        "headers.bad name"
    );
    assert_eq!(
        bad_field(
            "http-request",
            json!({"url": "'x'", "headers": {"a": "(("}})
        ),
        "headers.a"
    );
}
