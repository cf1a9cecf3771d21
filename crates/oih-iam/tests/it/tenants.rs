//! /api/v1/tenants, with tenant isolation.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{expect_event, start};

#[tokio::test]
async fn admin_manages_tenants_and_events_carry_the_tenant() {
    let t = start().await;
    let mut events = t.events().await;
    let (status, body) = t
        .post(
            "/api/v1/tenants?meta=true",
            &t.admin,
            json!({"name": "acme"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = body["data"]["id"].as_str().expect("id").to_owned();
    let created = expect_event(&mut events, "iam.tenant.created").await;
    assert_eq!(created.payload["id"], id);
    assert_eq!(created.payload["tenant"], id);

    let (status, tenant) = t.get(&format!("/api/v1/tenants/{id}"), &t.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tenant["name"], "acme");
    assert_eq!(tenant["status"], "ACTIVE");
    assert_eq!(tenant["confirmed"], true);
    let (status, body) = t
        .patch(
            &format!("/api/v1/tenants/{id}"),
            &t.admin,
            json!({"name": "acme2"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!("OK")));
    let (_, profile) = t
        .get(&format!("/api/v1/tenants/{id}/profile"), &t.admin)
        .await;
    assert_eq!(profile["name"], "acme2");
    let (_, list) = t.get("/api/v1/tenants", &t.admin).await;
    assert_eq!(list.as_array().expect("array").len(), 1);

    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x", "status": "NOPE"}),
        json!("x"),
    ] {
        let (status, body) = t.post("/api/v1/tenants", &t.admin, bad.clone()).await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, json!({"message": "Bad Request"})),
            "{bad}"
        );
    }
    assert_eq!(
        t.get("/api/v1/tenants/nope", &t.admin).await.0,
        StatusCode::BAD_REQUEST
    );
    let unknown = oih_core::ObjectId::new().to_string();
    assert_eq!(
        t.get(&format!("/api/v1/tenants/{unknown}"), &t.admin)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn deleting_a_tenant_removes_its_accounts_tokens_and_roles() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let b = t.tenant_with_users("b").await;
    let (_, role) = t
        .post(
            "/api/v1/roles",
            &a.admin,
            json!({"name": "r", "permissions": ["tenant.profile.read"]}),
        )
        .await;
    let mut events = t.events().await;
    let (status, _) = t
        .delete(&format!("/api/v1/tenants/{}", a.tenant), &t.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    let deleted = expect_event(&mut events, "iam.tenant.deleted").await;
    assert_eq!(deleted.payload, json!({"id": a.tenant, "tenant": a.tenant}));
    // OIH left the tokens of the deleted accounts valid.
    assert_eq!(
        t.get("/api/v1/users/me", &a.user).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.get("/api/v1/users/me", &a.admin).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = t
        .get(
            &format!("/api/v1/roles/{}", role["_id"].as_str().expect("id")),
            &t.admin,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Tenant b is untouched.
    assert_eq!(t.get("/api/v1/users/me", &b.user).await.0, StatusCode::OK);
    assert_eq!(
        t.get(&format!("/api/v1/tenants/{}", b.tenant), &t.admin)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn tenant_admins_only_reach_their_own_tenant() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let b = t.tenant_with_users("b").await;
    let foreign = format!("/api/v1/tenants/{}", b.tenant);
    assert_eq!(t.get(&foreign, &a.admin).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        t.get(&format!("{foreign}/profile"), &a.admin).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get(&format!("{foreign}/users"), &a.admin).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.patch(&foreign, &a.admin, json!({"name": "mine"})).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = t
        .call(
            Method::PUT,
            &foreign,
            Some(&a.admin),
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, tenant) = t.get(&foreign, &t.admin).await;
    assert_eq!(tenant["name"], "b");
    let (status, _) = t
        .delete(&format!("{foreign}/user/{}", b.user_id), &a.admin)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/api/v1/users/me", &b.user).await.0, StatusCode::OK);
    let (status, body) = t.delete(&foreign, &a.admin).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "MISSING_PERMISSION"})
        )
    );
    let (status, _) = t
        .post("/api/v1/tenants", &a.admin, json!({"name": "new"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = t.get("/api/v1/tenants", &a.admin).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Their own tenant works.
    let own = format!("/api/v1/tenants/{}", a.tenant);
    assert_eq!(t.get(&own, &a.admin).await.0, StatusCode::OK);
    let (_, users) = t.get(&format!("{own}/users"), &a.admin).await;
    let names: Vec<&str> = users
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["username"].as_str().expect("username"))
        .collect();
    assert_eq!(names, ["admin@a.test", "user@a.test"]);
    assert_eq!(
        t.patch(&own, &a.admin, json!({"name": "a2"})).await.0,
        StatusCode::OK
    );
    // A plain user cannot read the profile.
    let (status, body) = t.get(&own, &a.user).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "MISSING_PERMISSION"})
        )
    );
}

#[tokio::test]
async fn removing_a_user_from_a_tenant_deletes_the_account() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let (status, body) = t
        .delete(
            &format!("/api/v1/tenants/{}/user/{}", a.tenant, a.user_id),
            &a.admin,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!("OK")));
    assert_eq!(
        t.get("/api/v1/users/me", &a.user).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.get(&format!("/api/v1/users/{}", a.user_id), &t.admin)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = t
        .delete(&format!("/api/v1/tenants/{}/user/bad", a.tenant), &a.admin)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tenant_keys() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let uri = format!("/api/v1/tenants/{}/key", a.tenant);
    let (status, body) = t.get(&uri, &t.service_token).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"key": null})));
    let (status, body) = t.post(&uri, &t.service_token, json!({"value": "k1"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!("OK")));
    let (status, body) = t.post(&uri, &t.service_token, json!({"value": "k2"})).await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"message": "DUPLICATE_KEY"}))
    );
    assert_eq!(t.get(&uri, &t.service_token).await.1, json!({"key": "k1"}));
    // Tenant admins hold no iam.key.* permission.
    let (status, body) = t.get(&uri, &a.admin).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "MISSING_PERMISSION"})
        )
    );
    assert_eq!(
        t.post(&uri, &t.service_token, json!({"value": 3})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.get("/api/v1/tenants/x/key", &t.service_token).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(t.delete(&uri, &t.service_token).await.0, StatusCode::OK);
    assert_eq!(t.get(&uri, &t.service_token).await.1, json!({"key": null}));
}
