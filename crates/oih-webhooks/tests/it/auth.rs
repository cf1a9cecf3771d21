//! Per-flow authorization from `flowSettings.webhooks` (runtime.md §5.4), on every method.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::{Hub, SECRET_ID, flow_payload, hook_uri, sign};

const UNAUTHORIZED: (StatusCode, &str) = (StatusCode::FORBIDDEN, "Unauthorized");

async fn protected(hub: &Hub, settings: Value) -> String {
    let flow = flow_payload(settings);
    hub.activate(&flow).await;
    hook_uri(&flow)
}

/// Status of a POST (JSON `{}`), a GET and a HEAD with `headers`.
async fn statuses(hub: &Hub, uri: &str, headers: &[(&str, &str)]) -> [StatusCode; 3] {
    let post = hub
        .hook_with("POST", uri, Some("application/json"), "{}", headers)
        .await;
    let get = hub.hook_with("GET", uri, None, "", headers).await;
    let head = hub.hook_with("HEAD", uri, None, "", headers).await;
    if post.0 == StatusCode::FORBIDDEN {
        assert_eq!(post.1, json!({"error": UNAUTHORIZED.1}));
        assert_eq!(get.1, json!({"error": UNAUTHORIZED.1}));
    }
    [post.0, get.0, head.0]
}

const ALLOWED: [StatusCode; 3] = [StatusCode::OK; 3];
const REFUSED: [StatusCode; 3] = [UNAUTHORIZED.0; 3];

#[tokio::test]
async fn no_auth_unless_required() {
    let hub = Hub::start().await;
    let uri = protected(
        &hub,
        json!({"requireWebhookAuth": false, "hmacAuthSecret": SECRET_ID}),
    )
    .await;
    assert_eq!(statuses(&hub, &uri, &[]).await, ALLOWED);
    hub.shutdown().await;
}

#[tokio::test]
async fn bearer_needs_permission_and_ownership_on_every_method() {
    let hub = Hub::start().await;
    let uri = protected(&hub, json!({"requireWebhookAuth": true})).await;
    assert_eq!(statuses(&hub, &uri, &[]).await, REFUSED, "no credentials");
    let bearer = |token: &'static str| [("authorization", format!("Bearer {token}"))];
    for (token, expected) in [
        ("ownerToken", ALLOWED),
        ("adminToken", ALLOWED),
        // Owner without webhooks.execute.
        ("noPermToken", REFUSED),
        // Same tenant, not an owner, allTenantUsers off.
        ("memberToken", REFUSED),
        // Another tenant.
        ("otherToken", REFUSED),
        ("unknownToken", REFUSED),
    ] {
        let header = bearer(token);
        let headers: Vec<(&str, &str)> = header.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(statuses(&hub, &uri, &headers).await, expected, "{token}");
    }
    let (status, _) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            "{}",
            &[("authorization", "Token x")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    hub.shutdown().await;
}

#[tokio::test]
async fn all_tenant_users_lets_members_of_the_flows_tenant_in() {
    let hub = Hub::start().await;
    let uri = protected(
        &hub,
        json!({"requireWebhookAuth": true, "allTenantUsers": true}),
    )
    .await;
    let member = [("authorization", "Bearer memberToken")];
    assert_eq!(statuses(&hub, &uri, &member).await, ALLOWED);
    let other = [("authorization", "Bearer otherToken")];
    assert_eq!(statuses(&hub, &uri, &other).await, REFUSED);
    hub.shutdown().await;
}

#[tokio::test]
async fn basic_credentials_are_logged_in() {
    let hub = Hub::start().await;
    let mut flow = flow_payload(json!({"requireWebhookAuth": true}));
    flow["owners"] = json!([{"id": "basicId", "type": "USER"}]);
    hub.activate(&flow).await;
    let uri = hook_uri(&flow);
    let good = format!("Basic {}", STANDARD.encode("basicUser:pw"));
    assert_eq!(
        statuses(&hub, &uri, &[("authorization", &good)]).await,
        ALLOWED
    );
    let bad = format!("Basic {}", STANDARD.encode("basicUser:wrong"));
    assert_eq!(
        statuses(&hub, &uri, &[("authorization", &bad)]).await,
        REFUSED
    );
    assert_eq!(
        statuses(&hub, &uri, &[("authorization", "Basic %%%")]).await,
        REFUSED
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn hmac_signs_the_raw_body() {
    let mut hub = Hub::start().await;
    let uri = protected(
        &hub,
        json!({"requireWebhookAuth": true, "hmacAuthSecret": SECRET_ID}),
    )
    .await;
    let body = r#"{"signed":true}"#;
    let signature = sign(body.as_bytes());
    let (status, answer) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            body,
            &[("x-hmac", &signature), ("x-request-id", "signed")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    hub.expect_only("signed").await;

    // Another body, no header, or a Bearer token instead: refused.
    let (status, _) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            r#"{"signed":false}"#,
            &[("x-hmac", &signature)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = hub.hook("POST", &uri, Some("application/json"), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            body,
            &[("authorization", "Bearer ownerToken")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // GET signs the empty body.
    let empty = sign(b"");
    let (status, _) = hub
        .hook_with("GET", &uri, None, "", &[("x-hmac", &empty)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub.hook("GET", &uri, None, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    hub.shutdown().await;
}

#[tokio::test]
async fn hmac_header_and_algorithm_come_from_the_flow() {
    let hub = Hub::start().await;
    let uri = protected(
        &hub,
        json!({"requireWebhookAuth": true, "hmacAuthSecret": SECRET_ID, "hmacHeaderKey": "X-Signature"}),
    )
    .await;
    let signature = sign(b"{}");
    let (status, _) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            "{}",
            &[("x-signature", &signature)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            "{}",
            &[("x-hmac", &signature)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The test Secret Service knows sha256 only: the flow's algorithm is what it is asked.
    let uri = protected(
        &hub,
        json!({"requireWebhookAuth": true, "hmacAuthSecret": SECRET_ID, "hmacAlgorithm": "sha512"}),
    )
    .await;
    let (status, _) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            "{}",
            &[("x-hmac", &signature)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    hub.shutdown().await;
}

#[tokio::test]
async fn the_authorization_header_is_not_passed_to_the_flow() {
    let mut hub = Hub::start().await;
    let uri = protected(&hub, json!({"requireWebhookAuth": true})).await;
    let (status, _) = hub
        .hook_with(
            "POST",
            &uri,
            Some("application/json"),
            "{}",
            &[("authorization", "Bearer ownerToken")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let event = hub.expect_execute().await;
    assert!(
        event.payload["msg"]["headers"]
            .get("authorization")
            .is_none()
    );
    assert_eq!(
        event.payload["msg"]["headers"]["content-type"],
        "application/json"
    );
    hub.shutdown().await;
}
