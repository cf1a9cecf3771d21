//! /api/v1/roles and /api/v1/permissions.

use serde_json::{Value, json};

use axum::http::StatusCode;

use crate::{expect_event, start};

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect()
}

#[tokio::test]
async fn tenant_admins_manage_their_roles() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let b = t.tenant_with_users("b").await;
    let mut events = t.events().await;
    let (status, role) = t
        .post(
            "/api/v1/roles",
            &a.admin,
            json!({"name": "viewer", "permissions": ["tenant.profile.read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{role}");
    assert_eq!(role["tenant"], a.tenant);
    assert_eq!(role["type"], "TENANT");
    assert_eq!(role["isGlobal"], false);
    assert_eq!(role["description"], "");
    let id = role["_id"].as_str().expect("id").to_owned();
    let created = expect_event(&mut events, "iam.role.created").await;
    assert_eq!(created.payload["role"], id);
    assert_eq!(created.payload["tenant"], a.tenant);
    t.post("/api/v1/roles", &b.admin, json!({"name": "b-only"}))
        .await;

    let (_, list) = t.get("/api/v1/roles", &a.admin).await;
    assert_eq!(names(&list), ["ADMIN", "USER", "TENANT_ADMIN", "viewer"]);

    // PATCH answers with the updated role (OIH answered with the old one).
    let (status, patched) = t
        .patch(
            &format!("/api/v1/roles/{id}"),
            &a.admin,
            json!({"description": "reads", "permissions": ["tenant.roles.read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["description"], "reads");
    assert_eq!(patched["permissions"], json!(["tenant.roles.read"]));

    // Assigning the role changes what the user's token grants.
    t.patch(
        &format!("/api/v1/users/{}", a.user_id),
        &a.admin,
        json!({"roles": [id]}),
    )
    .await;
    let (_, seen) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": a.user}),
        )
        .await;
    assert_eq!(seen["permissions"], json!(["tenant.roles.read"]));
    let (status, _) = t.get(&format!("/api/v1/roles/{id}"), &a.user).await;
    assert_eq!(status, StatusCode::OK, "the role grants tenant.roles.read");

    let (status, body) = t.delete(&format!("/api/v1/roles/{id}"), &a.admin).await;
    assert_eq!((status, body), (StatusCode::OK, json!("OK")));
    let (_, user) = t
        .get(&format!("/api/v1/users/{}", a.user_id), &a.admin)
        .await;
    assert_eq!(user["roles"], json!([]), "removed from its holders");
    let (_, seen) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": a.user}),
        )
        .await;
    assert_eq!(seen["permissions"], json!([]));
}

#[tokio::test]
async fn role_rules() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    for (body, status, message) in [
        (
            json!({"permissions": []}),
            StatusCode::BAD_REQUEST,
            "INPUT_INVALID",
        ),
        (
            json!({"name": "x", "permissions": "tenant.all"}),
            StatusCode::BAD_REQUEST,
            "INPUT_INVALID",
        ),
        (
            json!({"name": "x", "permissions": ["all"]}),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        ),
        (
            json!({"name": "x", "permissions": ["flows.read"]}),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        ),
        (
            json!({"name": "tenant_admin"}),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        ),
        (
            json!({"name": "x", "permissions": [null]}),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        ),
        (
            json!({"permissions": [null]}),
            StatusCode::BAD_REQUEST,
            "INPUT_INVALID",
        ),
    ] {
        let (s, res) = t.post("/api/v1/roles", &a.admin, body.clone()).await;
        assert_eq!((s, res), (status, json!({"message": message})), "{body}");
    }
    // Even admins cannot put restricted permissions into roles (OIH's rule).
    let (status, _) = t
        .post(
            "/api/v1/roles",
            &t.admin,
            json!({"name": "x", "permissions": ["all"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    t.post("/api/v1/roles", &a.admin, json!({"name": "twice"}))
        .await;
    let (status, body) = t
        .post("/api/v1/roles", &a.admin, json!({"name": "twice"}))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"message": "DUPLICATE_KEY"}))
    );
    let (status, body) = t
        .post("/api/v1/roles", &a.user, json!({"name": "mine"}))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "MISSING_PERMISSION"})
        )
    );
    let unknown = oih_core::ObjectId::new().to_string();
    let (status, body) = t.get(&format!("/api/v1/roles/{unknown}"), &a.admin).await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"message": "FORBIDDEN"}))
    );
    assert_eq!(
        t.get("/api/v1/roles/xyz", &a.admin).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn other_tenants_and_global_roles_are_off_limits() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let b = t.tenant_with_users("b").await;
    let (_, role) = t
        .post("/api/v1/roles", &b.admin, json!({"name": "b-role"}))
        .await;
    let foreign = format!("/api/v1/roles/{}", role["_id"].as_str().expect("id"));
    let (_, list) = t.get("/api/v1/roles", &t.admin).await;
    let global = list
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["name"] == "ADMIN")
        .expect("ADMIN")["_id"]
        .as_str()
        .expect("id")
        .to_owned();
    // OIH hung on global roles here.
    for uri in [foreign.clone(), format!("/api/v1/roles/{global}")] {
        let forbidden = (StatusCode::FORBIDDEN, json!({"message": "FORBIDDEN"}));
        assert_eq!(t.get(&uri, &a.admin).await, forbidden, "{uri}");
        assert_eq!(
            t.patch(&uri, &a.admin, json!({"name": "mine"})).await,
            forbidden
        );
        assert_eq!(t.delete(&uri, &a.admin).await, forbidden);
    }
    let (_, role) = t.get(&foreign, &t.admin).await;
    assert_eq!(role["name"], "b-role");
    let (_, list) = t.get("/api/v1/roles", &a.admin).await;
    assert!(!names(&list).contains(&"b-role"));
}

#[tokio::test]
async fn permissions_catalogue() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let (status, common) = t.get("/api/v1/permissions", &a.user).await;
    assert_eq!(status, StatusCode::OK);
    let common = common.as_array().expect("array");
    assert_eq!(common.len(), 22);
    assert_eq!(common[0], "tenant.all");
    let (_, all) = t.get("/api/v1/permissions?meta=true", &t.admin).await;
    assert_eq!(all["meta"]["total"], 42);
    assert_eq!(all["data"][22], "all");
    let (status, _) = t
        .call(axum::http::Method::GET, "/api/v1/permissions", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tenant_less_users_see_only_global_roles_and_create_nothing() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    t.post("/api/v1/roles", &a.admin, json!({"name": "a-role"}))
        .await;
    let (_, loner) = t
        .account(
            "loner@x.test",
            json!({"permissions": ["tenant.roles.read", "tenant.roles.create", "tenant.account.create"]}),
        )
        .await;
    let (status, list) = t.get("/api/v1/roles", &loner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&list), ["ADMIN", "USER", "TENANT_ADMIN"]);
    let (status, _) = t
        .post("/api/v1/roles", &loner, json!({"name": "floating"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = t
        .post(
            "/api/v1/users",
            &loner,
            json!({"username": "f@x.test", "password": "pw"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The platform admin (no tenant) sees every role.
    let (_, list) = t.get("/api/v1/roles", &t.admin).await;
    assert!(names(&list).contains(&"a-role"));
}
