//! /api/v1/users, with tenant isolation.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::{expect_event, start};

#[tokio::test]
async fn admin_creates_lists_and_deletes_users() {
    let t = start().await;
    let mut events = t.events().await;
    let id = t
        .create_user(
            &t.admin,
            json!({"username": "New@X.test", "password": "pw", "firstname": "N",
                                      "role": "SERVICE_ACCOUNT", "hash": "injected"}),
        )
        .await;
    let created = expect_event(&mut events, "iam.user.created").await;
    assert_eq!(
        created.payload,
        json!({"id": id, "user": id, "username": "new@x.test"})
    );

    let (status, user) = t.get(&format!("/api/v1/users/{id}"), &t.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["username"], "new@x.test", "stored lowercase");
    assert_eq!(user["status"], "ACTIVE");
    assert_eq!(user["confirmed"], true);
    assert_eq!(user["__v"], 0);
    assert!(user.get("role").is_none() && user.get("hash").is_none());
    // The injected "hash" was dropped: the password given is the one that works.
    t.login("new@x.test", "pw").await;

    let (status, list) = t.get("/api/v1/users?username=new@x.test", &t.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().expect("array").len(), 1);
    let (_, all) = t.get("/api/v1/users?meta=1", &t.admin).await;
    assert_eq!(all["meta"]["total"], 3, "admin, service account, new user");
    let (_, by_id) = t.get(&format!("/api/v1/users?userId={id}"), &t.admin).await;
    assert_eq!(by_id[0]["_id"], id);
    assert_eq!(
        t.get("/api/v1/users?userId=zzz", &t.admin).await.0,
        StatusCode::BAD_REQUEST
    );

    let (status, body) = t.delete(&format!("/api/v1/users/{id}"), &t.admin).await;
    assert_eq!((status, body), (StatusCode::OK, json!("OK")));
    let deleted = expect_event(&mut events, "iam.user.deleted").await;
    assert_eq!(deleted.payload, json!({"id": id, "user": id}));
    assert_eq!(
        t.get(&format!("/api/v1/users/{id}"), &t.admin).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_input_is_a_400_and_changes_nothing() {
    let t = start().await;
    for (body, message) in [
        (
            json!({"username": "not-an-email", "password": "pw"}),
            "INPUT_INVALID",
        ),
        (json!({"username": "a@b.test"}), "No password was given"),
        (
            json!({"username": "a@b.test", "password": "pw", "status": "WHATEVER"}),
            "INPUT_INVALID",
        ),
        (
            json!({"username": "a@b.test", "password": "pw", "roles": "x"}),
            "INPUT_INVALID",
        ),
        (
            json!({"username": "a@b.test", "password": "pw", "roles": ["nope"]}),
            "INPUT_INVALID",
        ),
        (
            json!({"username": "a@b.test", "password": "pw", "permissions": [1]}),
            "INPUT_INVALID",
        ),
        (json!({"username": 5, "password": "pw"}), "INPUT_INVALID"),
        (json!(["a"]), "INPUT_INVALID"),
    ] {
        let (status, res) = t.post("/api/v1/users", &t.admin, body.clone()).await;
        assert_eq!(
            (status, res),
            (StatusCode::BAD_REQUEST, json!({"message": message})),
            "{body}"
        );
    }
    let malformed = Request::post("/api/v1/users")
        .header("authorization", format!("Bearer {}", t.admin))
        .header("content-type", "application/json")
        .body(Body::from("{oops"))
        .expect("request");
    let (status, body) = t.send(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].is_string());
    let (_, all) = t.get("/api/v1/users", &t.admin).await;
    assert_eq!(
        all.as_array().expect("array").len(),
        2,
        "nothing was created"
    );

    t.create_user(
        &t.admin,
        json!({"username": "dup@x.test", "password": "pw"}),
    )
    .await;
    let (status, body) = t
        .post(
            "/api/v1/users",
            &t.admin,
            json!({"username": "DUP@x.test", "password": "pw"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, json!({"message": "DUPLICATE_KEY"}))
    );
    assert_eq!(
        t.get("/api/v1/users/123", &t.admin).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, body) = t
        .call(Method::POST, "/api/v1/users", None, Some(json!({})))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({"message": ""}))
    );
}

#[tokio::test]
async fn tenant_admins_create_users_only_in_their_tenant_with_common_permissions() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let b = t.tenant_with_users("b").await;
    let id = t
        .create_user(
            &a.admin,
            json!({"username": "n@a.test", "password": "pw", "tenant": b.tenant,
                                      "permissions": ["tenant.profile.read"]}),
        )
        .await;
    let (_, user) = t.get(&format!("/api/v1/users/{id}"), &a.admin).await;
    assert_eq!(
        user["tenant"], a.tenant,
        "the body's tenant is replaced by the caller's"
    );

    let (status, body) = t
        .post(
            "/api/v1/users",
            &a.admin,
            json!({"username": "x@a.test", "password": "pw", "permissions": ["all"]}),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "FORBIDDEN"}))
    );
    let (_, role) = t
        .post(
            "/api/v1/roles",
            &b.admin,
            json!({"name": "b-role", "permissions": ["tenant.profile.read"]}),
        )
        .await;
    let (status, _) = t
        .post(
            "/api/v1/users",
            &a.admin,
            json!({"username": "y@a.test", "password": "pw", "roles": [role["_id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another tenant's role");
    let (status, body) = t
        .post(
            "/api/v1/users",
            &a.user,
            json!({"username": "z@a.test", "password": "pw"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "MISSING_PERMISSION"})
        )
    );
    let (status, body) = t.get("/api/v1/users", &a.admin).await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "FORBIDDEN"}))
    );
}

#[tokio::test]
async fn tenant_admins_cannot_touch_other_tenants_users() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let b = t.tenant_with_users("b").await;
    let foreign = format!("/api/v1/users/{}", b.user_id);
    assert_eq!(t.get(&foreign, &a.admin).await.0, StatusCode::NOT_FOUND);
    // OIH applied this update (and moved the user into tenant a).
    let (status, _) = t
        .patch(&foreign, &a.admin, json!({"firstname": "pwned"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t
        .call(
            Method::PUT,
            &foreign,
            Some(&a.admin),
            Some(json!({"password": "taken"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, user) = t.get(&foreign, &t.admin).await;
    assert_eq!(user["tenant"], b.tenant);
    assert!(user.get("firstname").is_none());
    t.login("user@b.test", "pw").await;
    // Own tenant works.
    let own = format!("/api/v1/users/{}", a.user_id);
    let (status, body) = t
        .patch(
            &own,
            &a.admin,
            json!({"firstname": "Ann", "tenant": b.tenant}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!("OK")));
    let (_, user) = t.get(&own, &a.admin).await;
    assert_eq!(user["firstname"], "Ann");
    assert_eq!(
        user["tenant"], a.tenant,
        "a tenant admin cannot move users out"
    );
    // A plain user lacks tenant.account.read.
    let (status, body) = t.get(&own, &a.user).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "MISSING_PERMISSION"})
        )
    );
    // Deleting needs iam.account.delete, which tenant admins lack.
    let (status, _) = t.delete(&foreign, &a.admin).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, deleter) = t
        .account(
            "deleter@a.test",
            json!({"tenant": a.tenant, "permissions": ["iam.account.delete"]}),
        )
        .await;
    assert_eq!(t.delete(&foreign, &deleter).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        t.get(&foreign, &t.admin).await.0,
        StatusCode::OK,
        "still there"
    );
    assert_eq!(t.delete(&own, &deleter).await.0, StatusCode::OK);
}

#[tokio::test]
async fn password_change_and_me() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let own = format!("/api/v1/users/{}", a.user_id);
    let (status, _) = t.patch(&own, &a.admin, json!({"password": "new-pw"})).await;
    assert_eq!(status, StatusCode::OK);
    t.login("user@a.test", "new-pw").await;
    let (status, _) = t
        .call(
            Method::POST,
            "/login",
            None,
            Some(json!({"username": "user@a.test", "password": "pw"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = t
        .patch(
            "/api/v1/users/me",
            &a.user,
            json!({"firstname": "Me", "permissions": ["all"], "status": "DISABLED"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!("OK")));
    let (_, me) = t.get("/api/v1/users/me", &a.user).await;
    assert_eq!(me["firstname"], "Me");
    assert_eq!(
        me["permissions"],
        json!([]),
        "only names can be changed on /me"
    );
    assert_eq!(me["status"], "ACTIVE");
    let (_, meta) = t.get("/api/v1/users/me?meta=true", &a.user).await;
    assert_eq!(meta["data"]["_id"], a.user_id);
}

#[tokio::test]
async fn deleting_a_user_revokes_its_tokens() {
    let t = start().await;
    let (id, token) = t.account("gone@x.test", json!({})).await;
    let (_, extra) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": id, "expiresIn": -1}),
        )
        .await;
    assert_eq!(
        t.delete(&format!("/api/v1/users/{id}"), &t.admin).await.0,
        StatusCode::OK
    );
    let (_, tokens) = t
        .get(&format!("/api/v1/tokens?accountId={id}"), &t.admin)
        .await;
    assert_eq!(tokens, json!([]));
    assert_eq!(
        t.get("/api/v1/users/me", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": extra["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tenant_admins_cannot_take_over_more_powerful_accounts() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let (svc, _) = t
        .account(
            "svc@a.test",
            json!({"tenant": a.tenant, "permissions": ["iam.token.introspect"]}),
        )
        .await;
    let uri = format!("/api/v1/users/{svc}");
    let (status, body) = t.patch(&uri, &a.admin, json!({"password": "mine"})).await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "FORBIDDEN"}))
    );
    let (status, _) = t
        .delete(
            &format!("/api/v1/tenants/{}/user/{svc}", a.tenant),
            &a.admin,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    t.login("svc@a.test", "pw").await;
    // The platform admin may.
    assert_eq!(
        t.patch(&uri, &t.admin, json!({"firstname": "S"})).await.0,
        StatusCode::OK
    );
}
