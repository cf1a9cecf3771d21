//! The `flow.execute` event, the answer, unknown/inactive flows, paths and idempotency.

use std::time::Instant;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Hub, NOT_FOUND_DELAY, flow_payload, hook_uri, open_flow};

#[tokio::test]
async fn post_publishes_oihs_flow_execute_field_by_field() {
    let mut hub = Hub::start().await;
    let flow = open_flow(&hub).await;
    let id = flow["id"].as_str().expect("id");
    let uri = format!("/hook/{id}/orders?x=1&y=a%20b");
    let (status, body) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            r#"{"order":42,"price":1.50}"#,
            &[("x-request-id", "req-1"), ("x-custom", "v")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"data": {"requestId": "req-1", "message": "thank you"}})
    );

    let event = hub.expect_execute().await;
    assert_eq!(event.headers.name, "flow.execute");
    assert_eq!(event.headers.service_name, "webhooks");
    assert_eq!(event.headers.extra.get("type"), Some(&json!("webhooks")));
    let payload = &event.payload;
    assert_eq!(
        payload["flow"],
        json!({
            "_id": id,
            "graph": flow["graph"],
            "status": "active",
            "flowSettings": flow["flowSettings"],
            "tenant": "tenant1",
            "owners": flow["owners"],
            "startedBy": "ownerId",
            "__v": 0
        })
    );
    let msg = &payload["msg"];
    let msg_id = msg["id"].as_str().expect("msg.id");
    assert_eq!(msg_id.len(), 36);
    assert_eq!(msg_id.matches('-').count(), 4);
    assert_eq!(msg["attachments"], json!({}));
    assert_eq!(msg["data"], json!({"order": 42, "price": 1.50}));
    assert_eq!(msg["headers"]["content-type"], "application/json");
    assert_eq!(msg["headers"]["x-custom"], "v");
    assert_eq!(msg["headers"]["x-request-id"], "req-1");
    assert_eq!(
        msg["metadata"],
        json!({"source": {"name": "webhooks", "type": "webhook", "externalExecId": "req-1"}})
    );
    assert_eq!(msg["url"], uri);
    assert_eq!(msg["originalUrl"], uri);
    assert_eq!(msg["method"], "POST");
    assert_eq!(msg["query"], json!({"x": "1", "y": "a b"}));
    assert_eq!(msg["params"], json!({"id": id, "0": "/orders"}));
    // OIH sends the whole path here (a bug); the suffix is what the field is for.
    assert_eq!(msg["pathSuffix"], "/orders");
    let opts = &payload["msgOpts"]["headers"];
    assert_eq!(opts["taskId"], id);
    assert_eq!(opts["userId"], "DOES_NOT_MATTER");
    let exec_id = opts["execId"].as_str().expect("execId");
    assert_eq!(exec_id.len(), 32);
    assert!(exec_id.chars().all(|c| c.is_ascii_hexdigit()));
    hub.shutdown().await;
}

#[tokio::test]
async fn get_sends_the_query_as_data_and_other_methods_work() {
    let mut hub = Hub::start().await;
    let flow = open_flow(&hub).await;
    let uri = hook_uri(&flow);
    let (status, body) = hub
        .hook("GET", &format!("{uri}?a=1&a=2&b=c"), None, "")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = hub.expect_execute().await;
    assert_eq!(
        event.payload["msg"]["data"],
        json!({"a": ["1", "2"], "b": "c"})
    );
    assert_eq!(event.payload["msg"]["method"], "GET");
    assert_eq!(event.payload["msg"]["params"], json!({"id": flow["id"]}));
    assert_eq!(event.payload["msg"]["pathSuffix"], "");

    // OIH answers these with a 500; here they execute like POST.
    for method in ["PUT", "PATCH", "DELETE"] {
        let (status, body) = hub
            .hook(method, &uri, Some("application/json"), r#"{"m":1}"#)
            .await;
        assert_eq!(status, StatusCode::OK, "{method}: {body}");
        let event = hub.expect_execute().await;
        assert_eq!(event.payload["msg"]["method"], method);
        assert_eq!(event.payload["msg"]["data"], json!({"m": 1}));
    }
    let (status, body) = hub.hook("OPTIONS", &uri, None, "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, json!({"error": "Method not allowed"}));
    hub.shutdown().await;
}

#[tokio::test]
async fn a_request_id_is_made_up_when_missing_and_reuse_still_executes() {
    let mut hub = Hub::start().await;
    let flow = open_flow(&hub).await;
    let uri = hook_uri(&flow);
    let (status, body) = hub.post_json(&uri, &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let made_up = body["data"]["requestId"].as_str().expect("request id");
    assert!(!made_up.is_empty());
    hub.expect_only(made_up).await;

    // OIH silently drops the second execution of a reused x-request-id; both run here,
    // each with its own execution id.
    let mut exec_ids = Vec::new();
    for _ in 0..2 {
        let (status, _) = hub
            .hook_with(
                "POST",
                &uri,
                Some("application/json"),
                "{}",
                &[("x-request-id", "same")],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let event = hub.expect_only("same").await;
        exec_ids.push(event.payload["msgOpts"]["headers"]["execId"].clone());
    }
    assert_ne!(exec_ids[0], exec_ids[1]);
    hub.shutdown().await;
}

#[tokio::test]
async fn unknown_and_inactive_flows_answer_the_same_404_after_the_same_delay() {
    let mut hub = Hub::start().await;
    let flow = flow_payload(json!({}));
    let uri = hook_uri(&flow);
    let id = flow["id"].as_str().expect("id");
    let expected = json!({"error": format!("Flow {id} either does not exist or is inactive.")});

    let started = Instant::now();
    let unknown = hub.post_json(&uri, &json!({})).await;
    assert!(started.elapsed() >= NOT_FOUND_DELAY);
    assert_eq!(unknown, (StatusCode::NOT_FOUND, expected.clone()));

    hub.starting(&flow).await;
    for method in ["POST", "GET", "HEAD"] {
        let started = Instant::now();
        let (status, body) = hub.hook(method, &uri, Some("application/json"), "{}").await;
        assert!(started.elapsed() >= NOT_FOUND_DELAY, "{method}");
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        if method != "HEAD" {
            assert_eq!(body, expected, "{method}");
        }
    }

    // A malformed id (OIH: 500) is just another unknown flow.
    let (status, body) = hub.post_json("/hook/nope", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "Flow nope either does not exist or is inactive."})
    );

    let open = open_flow(&hub).await;
    let (status, body) = hub
        .hook_with(
            "POST",
            &hook_uri(&open),
            Some("application/json"),
            "{}",
            &[("x-request-id", "after")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nothing was published for the refused requests.
    hub.expect_only("after").await;
    hub.shutdown().await;
}

#[tokio::test]
async fn paths_beyond_one_word_segment_are_not_hooks() {
    let hub = Hub::start().await;
    let flow = open_flow(&hub).await;
    let uri = hook_uri(&flow);
    for path in [
        format!("{uri}/a/b"),
        format!("{uri}/a-b"),
        format!("{uri}/a.b"),
    ] {
        let (status, _) = hub.post_json(&path, &json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = hub.post_json(&format!("{uri}/word_1"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    hub.shutdown().await;
}

#[tokio::test]
async fn a_flow_without_first_node_is_refused() {
    let mut hub = Hub::start().await;
    let mut flow = flow_payload(json!({}));
    // Two nodes and no edge: OIH's getFirstNode finds none.
    flow["graph"]["edges"] = json!([]);
    hub.activate(&flow).await;
    let (status, body) = hub.post_json(&hook_uri(&flow), &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "Flow has no first node"}));
    let open = open_flow(&hub).await;
    hub.hook_with("GET", &hook_uri(&open), None, "", &[("x-request-id", "ok")])
        .await;
    hub.expect_only("ok").await;
    hub.shutdown().await;
}

async fn send_keyed(hub: &Hub, uri: &str, key: &str, request_id: &str) -> (StatusCode, Value) {
    hub.hook_with(
        "POST",
        uri,
        Some("application/json"),
        r#"{"n":1}"#,
        &[("idempotency-key", key), ("x-request-id", request_id)],
    )
    .await
}

async fn idempotency(mut hub: Hub) {
    let flow = open_flow(&hub).await;
    let other = open_flow(&hub).await;
    let uri = hook_uri(&flow);
    let first = send_keyed(&hub, &uri, "k1", "r1").await;
    assert_eq!(first.0, StatusCode::OK);
    // The repeat answers like the first, with the first request id.
    let repeat = send_keyed(&hub, &uri, "k1", "r2").await;
    assert_eq!(repeat, first);
    // Another key, or the same key on another flow, is another request.
    let second = send_keyed(&hub, &uri, "k2", "r3").await;
    assert_eq!(second.1["data"]["requestId"], "r3");
    let elsewhere = send_keyed(&hub, &hook_uri(&other), "k1", "r4").await;
    assert_eq!(elsewhere.1["data"]["requestId"], "r4");

    hub.expect_only("r1").await;
    hub.expect_only("r3").await;
    hub.expect_only("r4").await;

    let (status, body) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            "{}",
            &[("idempotency-key", "")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("Idempotency-Key")
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn an_idempotency_key_publishes_once_and_replays_the_first_answer() {
    idempotency(Hub::start().await).await;
}

#[tokio::test]
async fn an_idempotency_key_publishes_once_postgres() {
    if let Some(hub) = Hub::start_postgres().await {
        idempotency(hub).await;
    }
}

#[tokio::test]
async fn concurrent_repeats_of_one_key_publish_once() {
    let mut hub = Hub::start().await;
    let flow = open_flow(&hub).await;
    let uri = hook_uri(&flow);
    let (a, b) = tokio::join!(
        send_keyed(&hub, &uri, "same", "first"),
        send_keyed(&hub, &uri, "same", "second"),
    );
    assert_eq!(a.0, StatusCode::OK);
    assert_eq!(a, b);
    let winner = a.1["data"]["requestId"].as_str().expect("id").to_owned();
    hub.expect_only(&winner).await;
    let (status, _) = hub
        .hook_with("GET", &uri, None, "", &[("x-request-id", "next")])
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.expect_only("next").await;
    hub.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_store_is_a_503_and_publishes_nothing() {
    let (mut hub, flaky) = Hub::start_flaky().await;
    let flow = open_flow(&hub).await;
    let uri = hook_uri(&flow);
    flaky
        .fail_gets
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = hub.post_json(&uri, &json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"error": "The database is temporarily unavailable"})
    );
    let (status, _) = hub
        .hook_with("GET", &uri, None, "", &[("x-request-id", "later")])
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.expect_only("later").await;
    hub.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_lists_the_hooks() {
    let hub = Hub::start().await;
    let (status, doc) = hub
        .hook("GET", "/api-docs/webhooks/openapi.json", None, "")
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/hook/{id}", "/hook/{id}/{suffix}"] {
        for method in ["head", "get", "post", "put", "patch", "delete"] {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn cors_serves_whitelisted_origins_and_refuses_others() {
    let mut hub = Hub::start_with(oih_webhooks::Config {
        cors_origin_whitelist: "https://app.example, https://other.example".into(),
        ..crate::support::config()
    })
    .await;
    let flow = open_flow(&hub).await;
    let uri = hook_uri(&flow);

    let (status, body) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            "{}",
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"error": "Not allowed by CORS"}));

    let res = hub
        .raw(
            axum::http::Request::builder()
                .method("POST")
                .uri(&uri)
                .header("origin", "https://app.example")
                .header("content-type", "application/json")
                .header("x-request-id", "cors")
                .body(axum::body::Body::from("{}"))
                .expect("request"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    // Only the allowed request was published.
    hub.expect_only("cors").await;

    let res = hub
        .raw(
            axum::http::Request::builder()
                .method("OPTIONS")
                .uri(&uri)
                .header("origin", "https://other.example")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type,x-hmac")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://other.example"
    );
    assert_eq!(
        res.headers()["access-control-allow-methods"],
        "GET,HEAD,PUT,PATCH,POST,DELETE"
    );
    assert_eq!(
        res.headers()["access-control-allow-headers"],
        "content-type,x-hmac"
    );
    hub.shutdown().await;
}
