//! The events IAM publishes on changes, with the payload keys their consumers read (`id`,
//! and `user` / `tenant` / `role`, which the audit log scopes entries by). A refused request
//! is made first each time: had it published, its payload would be the one received.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{expect_event, start};

#[tokio::test]
async fn user_and_tenant_modifications() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let mut events = t.events().await;

    let user_uri = format!("/api/v1/users/{}", a.user_id);
    let (status, _) = t
        .patch(&user_uri, &a.user, json!({"firstname": "nope"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = t
        .patch(&user_uri, &a.admin, json!({"firstname": "Jo"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let event = expect_event(&mut events, "iam.user.modified").await;
    assert_eq!(
        event.payload,
        json!({"id": a.user_id, "user": a.user_id, "username": "user@a.test"})
    );
    // PUT publishes the same.
    let (status, _) = t
        .call(
            Method::PUT,
            &user_uri,
            Some(&a.admin),
            Some(json!({"lastname": "Doe"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let event = expect_event(&mut events, "iam.user.modified").await;
    assert_eq!(event.payload["user"], a.user_id);

    let tenant_uri = format!("/api/v1/tenants/{}", a.tenant);
    let (status, _) = t.patch(&tenant_uri, &a.admin, json!({"name": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = t.patch(&tenant_uri, &a.admin, json!({"name": "a2"})).await;
    assert_eq!(status, StatusCode::OK);
    let event = expect_event(&mut events, "iam.tenant.modified").await;
    assert_eq!(event.payload, json!({"id": a.tenant, "tenant": a.tenant}));
    assert_eq!(event.headers.service_name, "accounts");
}

#[tokio::test]
async fn role_modification_and_deletion() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let (status, role) = t
        .post(
            "/api/v1/roles",
            &a.admin,
            json!({"name": "editors", "permissions": ["tenant.flows.read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{role}");
    let id = role["_id"].as_str().expect("id").to_owned();
    let uri = format!("/api/v1/roles/{id}");
    let mut events = t.events().await;

    let (status, _) = t
        .patch(&uri, &a.user, json!({"permissions": ["tenant.all"]}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = t
        .patch(
            &uri,
            &a.admin,
            json!({"permissions": ["tenant.flows.read", "tenant.flows.update"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let event = expect_event(&mut events, "iam.role.modified").await;
    assert_eq!(
        event.payload,
        json!({"id": id, "role": id, "tenant": a.tenant,
               "permissions": ["tenant.flows.read", "tenant.flows.update"]})
    );

    assert_eq!(t.delete(&uri, &a.user).await.0, StatusCode::FORBIDDEN);
    assert_eq!(t.delete(&uri, &a.admin).await.0, StatusCode::OK);
    let event = expect_event(&mut events, "iam.role.deleted").await;
    assert_eq!(
        event.payload,
        json!({"id": id, "role": id, "tenant": a.tenant})
    );
}

#[tokio::test]
async fn token_creation_and_deletion() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let mut events = t.events().await;

    // POST /tokens (a plain user may not) and POST /login both create one.
    let (status, _) = t
        .post("/api/v1/tokens", &a.user, json!({"accountId": a.user_id}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, minted) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": a.user_id, "new": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token_id = minted["id"].as_str().expect("id").to_owned();
    let event = expect_event(&mut events, "iam.token.created").await;
    assert_eq!(event.payload, json!({"id": token_id, "user": a.user_id}));
    let (status, login) = t
        .call(
            Method::POST,
            "/login",
            None,
            Some(json!({"username": "user@a.test", "password": "pw"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let event = expect_event(&mut events, "iam.token.created").await;
    assert_eq!(event.payload, json!({"id": login["id"], "user": a.user_id}));

    // DELETE /tokens/:id (a tenant admin may not).
    let uri = format!("/api/v1/tokens/{token_id}");
    assert_eq!(t.delete(&uri, &a.admin).await.0, StatusCode::FORBIDDEN);
    assert_eq!(t.delete(&uri, &t.admin).await.0, StatusCode::OK);
    let event = expect_event(&mut events, "iam.token.deleted").await;
    assert_eq!(event.payload, json!({"id": token_id, "user": a.user_id}));
    // Deleting it again is a 200 without an event: the next one comes from the logout.
    assert_eq!(t.delete(&uri, &t.admin).await.0, StatusCode::OK);

    let session = login["token"].as_str().expect("token");
    let (status, _) = t.call(Method::POST, "/logout", Some(session), None).await;
    assert_eq!(status, StatusCode::OK);
    let event = expect_event(&mut events, "iam.token.deleted").await;
    assert_eq!(event.payload, json!({"id": login["id"], "user": a.user_id}));

    // Deleting the account deletes its tokens: one event naming the account.
    let (status, _) = t
        .delete(&format!("/api/v1/users/{}", a.user_id), &t.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    let event = expect_event(&mut events, "iam.token.deleted").await;
    assert_eq!(
        event.payload,
        json!({"account": a.user_id, "user": a.user_id})
    );
}
