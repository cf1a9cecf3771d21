//! /api/v1/tokens and the introspection contract.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use oih_store::Collection;
use serde_json::{Value, json};

use crate::{boot, config, start};

const TOKENS: Collection = Collection("iam_tokens");

async fn user(t: &crate::TestIam, name: &str, extra: Value) -> String {
    t.account(name, extra).await.0
}

#[tokio::test]
async fn introspection_returns_the_account_with_roles_and_merged_permissions() {
    let t = start().await;
    let (_, roles) = t.get("/api/v1/roles", &t.admin).await;
    let user_role = roles
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["name"] == "USER")
        .expect("USER role")["_id"]
        .clone();
    let id = user(
        &t,
        "i@x.test",
        json!({"roles": [user_role], "permissions": ["flows.read"]}),
    )
    .await;
    let (status, created) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": id, "expiresIn": "1h",
               "customPermissions": ["components.write"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["token"].as_str().expect("token");

    let (status, body) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["_id"], id);
    assert_eq!(body["username"], "i@x.test");
    assert_eq!(body["roles"][0]["name"], "USER");
    assert_eq!(
        body["permissions"],
        json!([
            "flows.read",
            "tenant.profile.read",
            "tenant.roles.read",
            "components.write"
        ])
    );
    assert_eq!(body["isAdmin"], false);
    assert!(body.get("hash").is_none());
    assert!(
        body.get("tenant").is_none(),
        "tenant-less accounts have no tenant field"
    );

    let (_, admin) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": t.admin}),
        )
        .await;
    assert_eq!(admin["isAdmin"], true);
}

#[tokio::test]
async fn introspection_errors() {
    let t = start().await;
    let (status, body) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": "unknown"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"message": "Not Found"}))
    );
    let (status, _) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"nothing": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, plain) = t.account("plain@x.test", json!({})).await;
    let (status, body) = t
        .post(
            "/api/v1/tokens/introspect",
            &plain,
            json!({"token": t.admin}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "MISSING_PERMISSION"})
        )
    );
}

#[tokio::test]
async fn persistent_tokens_are_reused_and_never_expire() {
    let t = start().await;
    let id = user(&t, "svc@x.test", json!({"permissions": ["all"]})).await;
    let body = json!({"accountId": id, "expiresIn": -1, "description": "service-token"});
    let (s1, a) = t.post("/api/v1/tokens", &t.admin, body.clone()).await;
    let (s2, b) = t.post("/api/v1/tokens", &t.admin, body.clone()).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a, b, "OIH returns the identical persistent token again");
    let (_, forced) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": id, "expiresIn": -1, "new": true}),
        )
        .await;
    assert_ne!(forced["token"], a["token"]);

    let (status, doc) = t
        .get(
            &format!("/api/v1/tokens/{}", a["id"].as_str().expect("id")),
            &t.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["type"], "PERSISTENT");
    assert_eq!(doc["tokenLifeSpan"], "-1");
    assert_eq!(doc["description"], "service-token");
    assert!(doc.get("expireAt").is_none());
    assert_eq!(doc["accountId"], id);
}

#[tokio::test]
async fn token_creation_rules() {
    let t = start().await;
    let tenant = t.create_tenant("x").await;
    let id = user(&t, "target@x.test", json!({"tenant": tenant})).await;
    // A token holder with iam.token.create but not iam.token.update, in the same tenant.
    let (_, minter) = t
        .account(
            "minter@x.test",
            json!({"permissions": ["iam.token.create"], "tenant": tenant}),
        )
        .await;
    let (status, body) = t
        .post(
            "/api/v1/tokens",
            &minter,
            json!({"accountId": id, "customPermissions": ["all"]}),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "FORBIDDEN"}))
    );
    let (status, created) = t
        .post("/api/v1/tokens", &minter, json!({"accountId": id}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, doc) = t
        .get(
            &format!("/api/v1/tokens/{}", created["id"].as_str().expect("id")),
            &t.admin,
        )
        .await;
    assert_eq!(doc["type"], "EPHEMERAL_SERVICE_ACCOUNT");
    assert_eq!(doc["tokenLifeSpan"], "3h");
    assert!(doc["expireAt"].is_string());

    let unknown = oih_core::ObjectId::new().to_string();
    let (status, body) = t
        .post("/api/v1/tokens", &t.admin, json!({"accountId": unknown}))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"message": "FORBIDDEN"}))
    );
    // OIH never answered these.
    for bad in [
        json!({"accountId": "nope"}),
        json!({"accountId": id, "inquirer": "nope"}),
        json!({"accountId": id, "expiresIn": "soon"}),
        json!({"accountId": id, "customPermissions": "all"}),
        json!({}),
        json!([1]),
    ] {
        let (status, body) = t.post("/api/v1/tokens", &t.admin, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {body}");
        assert!(body["message"].is_string());
    }
    let (status, body) = t
        .post(
            "/api/v1/tokens",
            &t.account("plain@x.test", json!({})).await.1,
            json!({"accountId": id}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "MISSING_PERMISSION"})
        )
    );
}

#[tokio::test]
async fn expiry_is_enforced_by_the_clock() {
    let t = start().await;
    let id = user(&t, "short@x.test", json!({})).await;
    let (_, created) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": id, "expiresIn": "1500ms"}),
        )
        .await;
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(t.get("/api/v1/users/me", &token).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        t.get("/api/v1/users/me", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn using_a_token_does_not_write_to_the_store() {
    let t = start().await;
    let (_, created) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": t.me_id(&t.admin).await}),
        )
        .await;
    let token = created["token"].as_str().expect("token");
    let id = created["id"].as_str().expect("id");
    let before = t
        .docs
        .get(TOKENS, id)
        .await
        .expect("get")
        .expect("token doc");
    for _ in 0..3 {
        assert_eq!(t.get("/api/v1/users/me", token).await.0, StatusCode::OK);
        t.post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": token}),
        )
        .await;
        t.authenticator.authenticate(token).await.expect("valid");
    }
    let after = t
        .docs
        .get(TOKENS, id)
        .await
        .expect("get")
        .expect("token doc");
    assert_eq!(before, after);
}

#[tokio::test]
async fn sliding_expiry_is_extended_once_per_refresh_interval() {
    let mut cfg = config();
    cfg.token_refresh_seconds = 0;
    let mut t = boot(cfg).await;
    t.admin = t.login(crate::ADMIN, crate::ADMIN_PASSWORD).await;
    let (_, created) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": t.me_id(&t.admin).await}),
        )
        .await;
    let token = created["token"].as_str().expect("token");
    let id = created["id"].as_str().expect("id");
    let before = t.docs.get(TOKENS, id).await.expect("get").expect("doc");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(t.get("/api/v1/users/me", token).await.0, StatusCode::OK);
    let after = t.docs.get(TOKENS, id).await.expect("get").expect("doc");
    assert!(after.expires_at > before.expires_at);
    assert_ne!(after.body["expireAt"], before.body["expireAt"]);
}

#[tokio::test]
async fn list_masks_tokens_and_is_admin_only() {
    let t = start().await;
    let me = t.me_id(&t.admin).await;
    let (status, list) = t
        .get(&format!("/api/v1/tokens?accountId={me}"), &t.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 1, "the admin's login token");
    let masked = list[0]["token"].as_str().expect("token");
    assert_eq!(&masked[masked.len() - 4..], &t.admin[t.admin.len() - 4..]);
    assert!(masked[..masked.len() - 4].chars().all(|c| c == '*'));
    let (_, meta) = t
        .get(
            &format!("/api/v1/tokens?accountId={me}&meta=true"),
            &t.admin,
        )
        .await;
    assert_eq!(meta["meta"]["total"], 1);
    let (_, plain) = t.account("plain@x.test", json!({})).await;
    let (status, body) = t.get("/api/v1/tokens", &plain).await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "FORBIDDEN"}))
    );
    let (status, _) = t
        .get(
            &format!("/api/v1/tokens/{}", list[0]["_id"].as_str().expect("id")),
            &plain,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn delete_and_refresh() {
    let t = start().await;
    let id = user(&t, "d@x.test", json!({})).await;
    let (_, created) = t
        .post("/api/v1/tokens", &t.admin, json!({"accountId": id}))
        .await;
    let token = created["token"].as_str().expect("token");
    let (status, body) = t.get("/api/v1/tokens/refresh", token).await;
    assert_eq!(
        (status, body["token"].as_str()),
        (StatusCode::OK, Some(token))
    );
    t.authenticator
        .authenticate(token)
        .await
        .expect("valid before");
    let uri = format!("/api/v1/tokens/{}", created["id"].as_str().expect("id"));
    let (status, body) = t.delete(&uri, &t.admin).await;
    assert_eq!((status, body), (StatusCode::OK, json!("OK")));
    assert_eq!(
        t.get("/api/v1/users/me", token).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        t.authenticator.authenticate(token).await.is_err(),
        "cache cleared on revocation"
    );
    assert_eq!(t.get(&uri, &t.admin).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        t.delete("/api/v1/tokens/xyz", &t.admin).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        t.call(Method::DELETE, &uri, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// A non-admin holding `iam.token.create` (and `iam.token.update`) mints only for accounts of
/// their own tenant, and only permissions they hold themselves.
#[tokio::test]
async fn non_admin_minters_stay_in_their_tenant_and_their_permissions() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let b = t.tenant_with_users("b").await;
    let minter_id = t
        .create_user(
            &t.admin,
            json!({"username": "minter@a.test", "password": "pw", "tenant": a.tenant,
                   "permissions": ["iam.token.create", "iam.token.update", "tenant.flows.read"]}),
        )
        .await;
    let minter = t.login("minter@a.test", "pw").await;
    let count = |t: &crate::TestIam| {
        let docs = t.docs.clone();
        async move {
            docs.count(TOKENS, &oih_store::Filter::All)
                .await
                .expect("count")
        }
    };
    let before = count(&t).await;

    // Another tenant's account, or a tenant-less one (the bootstrap admin), looks absent.
    let admin_id = t.me_id(&t.admin).await;
    for target in [&b.user_id, &b.admin_id, &admin_id] {
        let (status, body) = t
            .post("/api/v1/tokens", &minter, json!({"accountId": target}))
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, json!({"message": "FORBIDDEN"})),
            "{target}"
        );
    }
    // Permissions the minter lacks, through customPermissions or the target's own.
    for custom in [
        json!(["all"]),
        json!(["iam.token.introspect"]),
        json!(["tenant.all"]),
    ] {
        let (status, body) = t
            .post(
                "/api/v1/tokens",
                &minter,
                json!({"accountId": a.user_id, "customPermissions": custom}),
            )
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::FORBIDDEN, json!({"message": "FORBIDDEN"})),
            "{custom}"
        );
    }
    let (status, body) = t
        .post("/api/v1/tokens", &minter, json!({"accountId": a.admin_id}))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "FORBIDDEN"})),
        "the tenant admin holds tenant.all, which the minter does not"
    );
    assert_eq!(count(&t).await, before, "nothing was minted");

    // Within the tenant and the minter's own permissions it works.
    let (status, created) = t
        .post(
            "/api/v1/tokens",
            &minter,
            json!({"accountId": a.user_id, "customPermissions": ["tenant.flows.read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["token"].as_str().expect("token");
    let (status, me) = t.get("/api/v1/users/me", token).await;
    assert_eq!((status, &me["_id"]), (StatusCode::OK, &json!(a.user_id)));
    let (status, _) = t
        .post("/api/v1/tokens", &minter, json!({"accountId": minter_id}))
        .await;
    assert_eq!(status, StatusCode::OK, "for themselves");
    // Admins are not limited.
    let (status, _) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": b.user_id, "customPermissions": ["all"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
