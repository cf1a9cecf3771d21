//! POST /login, POST /logout, GET /api/v1/users/me, throttling, legacy hashes.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use oih_store::Collection;
use serde_json::{Value, json};

use crate::{ADMIN, ADMIN_PASSWORD, boot, config, expect_event, start};

/// An OIH account document as passport-local-mongoose stored it (PBKDF2-SHA256, 25000 rounds,
/// 512-byte key, hex), password `legacy-pass`.
const LEGACY_SALT: &str = "5f3c5f3c5f3c5f3c5f3c5f3c5f3c5f3c5f3c5f3c5f3c5f3c5f3c5f3c5f3c5f3c";
const LEGACY_HASH: &str = "35ebbb7c72d3cecddbaac1eee45db28116ef03a312024e31c31aea2fffe1bc9ca89b5a5cf953a6bb955557b209014984d45b6d993afbcf47bc7d173f9210965ae22cf158a1158ccdd11deb20249c5a7ade1581c2f189ee91014c1eea069df4b1e8e0af98fdf6d928964a334f3670a03d9fbf854df53abd599af8fbf9ed70e99398e00d10a10ea931ce60469eb56241b7d210e36bed2203c7ed3f55eb5c1dc4a1c24c1af13d617ae036818ed636c176f6a26cea0d65bb270878313a16e89bfcf571f1872dab4ac669600326bd669886049f7aac4fe4bf1106b1d09c05ed41d96287e79fc07d8e98d5f495e1913c1e154584b07694045e24001fd3d776013c47ecfe8077ce76850d6ba69530c1106922d6c3ea8edce66705440ee1e4f5500c8e26d9eddf933b704415abbbafcf363b131ee20ae6f4a522e2258c5b258f3f39a9f49d9da086a67a1fe2ea6a336bea4588f277b7c69c780e0fce76221f08d4e7a9bb626443dd391661defc0cbd233d11bb30ac9d4a3f4a73cc3b1089b28691f21d08238b005020c7cabcb3e7e4e4ccde9752423536af7378a148c5c99f4e7e74a1c54ac7a75b7387612afc5850c45b360d967b265c833bf00ba9136344446fb3eda241580aa1a3e95d03ac60104c22d01ff63534a077729599d614f0508c7b3b45ef0005c401943d2aa291c73f1f8a52859fd009703843f82b8e64440abe3f6ba642";

async fn login_raw(t: &crate::TestIam, body: Value) -> (StatusCode, Value) {
    t.call(Method::POST, "/login", None, Some(body)).await
}

#[tokio::test]
async fn login_returns_a_token_and_its_id() {
    let t = start().await;
    let (status, body) =
        login_raw(&t, json!({"username": ADMIN, "password": ADMIN_PASSWORD})).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["token"].as_str().expect("token");
    assert_eq!(token.len(), 171);
    assert_eq!(body["id"].as_str().expect("id").len(), 24);
    let (status, me) = t.get("/api/v1/users/me", token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], ADMIN);
    assert_eq!(me["status"], "ACTIVE");
    assert!(me.get("hash").is_none() && me.get("salt").is_none());
    // Roles are populated on /me; the bootstrap admin holds ADMIN and `all` itself.
    assert_eq!(me["roles"][0]["name"], "ADMIN");
    assert_eq!(me["permissions"], json!(["all"]));
    assert!(me["safeguard"]["lastLogin"].is_string());
}

#[tokio::test]
async fn login_failures_use_oih_messages_and_emit_audit_events() {
    let t = start().await;
    let mut events = t.events().await;
    let (status, body) = login_raw(&t, json!({"username": ADMIN, "password": "nope"})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "PASSWORD_INCORRECT"})
        )
    );
    let event = expect_event(&mut events, "iam.user.loginFailed").await;
    assert_eq!(event.payload["user"], ADMIN);

    let (status, body) = login_raw(
        &t,
        json!({"username": "ghost@example.com", "password": "x"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "USER_NOT_FOUND"})
        )
    );
    expect_event(&mut events, "iam.user.loginFailed").await;

    let (status, body) = login_raw(&t, json!({"username": ADMIN})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "UNKNOWN_ERROR"})
        )
    );

    let empty = Request::post("/login")
        .body(Body::empty())
        .expect("request");
    assert_eq!(t.send(empty).await.0, StatusCode::UNAUTHORIZED);

    let malformed = Request::post("/login")
        .header("content-type", "application/json")
        .body(Body::from("{\"username\":"))
        .expect("request");
    assert_eq!(t.send(malformed).await.0, StatusCode::BAD_REQUEST);

    // The wrong password was counted on the account.
    let (_, me) = t.get("/api/v1/users/me", &t.admin).await;
    assert_eq!(me["safeguard"]["failedLoginAttempts"], 1);
}

#[tokio::test]
async fn usernames_are_case_insensitive() {
    let t = start().await;
    let (status, _) = login_raw(
        &t,
        json!({"username": "ADMIN@Example.com", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn disabled_accounts_cannot_log_in_and_their_tokens_stop_working() {
    let t = start().await;
    let id = t
        .create_user(&t.admin, json!({"username": "u@x.test", "password": "pw"}))
        .await;
    let token = t.login("u@x.test", "pw").await;
    let (status, _) = t
        .patch(
            &format!("/api/v1/users/{id}"),
            &t.admin,
            json!({"status": "DISABLED"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = login_raw(&t, json!({"username": "u@x.test", "password": "pw"})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "ENTITY_DISABLED"})
        )
    );
    let (status, body) = t.get("/api/v1/users/me", &token).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "VALIDATION_ERROR"})
        )
    );
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    let t = start().await; // three failures allowed
    for _ in 0..3 {
        let (status, _) = login_raw(&t, json!({"username": ADMIN, "password": "bad"})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) =
        login_raw(&t, json!({"username": ADMIN, "password": ADMIN_PASSWORD})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body, json!({"message": "TOO_MANY_ATTEMPTS"}));
    // Other usernames are unaffected.
    let (status, body) = login_raw(
        &t,
        json!({"username": "ghost@example.com", "password": "x"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "USER_NOT_FOUND"})
        )
    );
}

#[tokio::test]
async fn oih_pbkdf2_hashes_verify_and_are_rehashed_with_argon2id() {
    let t = start().await;
    let accounts = Collection("iam_accounts");
    let id = oih_core::ObjectId::new().to_string();
    t.docs
        .insert(
            accounts,
            &id,
            json!({"username": "legacy@oih.test", "status": "ACTIVE", "confirmed": true,
                   "roles": [], "permissions": [], "hash": LEGACY_HASH, "salt": LEGACY_SALT}),
            None,
        )
        .await
        .expect("import");
    let (status, _) = login_raw(
        &t,
        json!({"username": "legacy@oih.test", "password": "wrong"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    t.login("legacy@oih.test", "legacy-pass").await;
    let stored = t
        .docs
        .get(accounts, &id)
        .await
        .expect("get")
        .expect("present");
    assert!(
        stored.body["hash"]
            .as_str()
            .expect("hash")
            .starts_with("$argon2id$")
    );
    assert!(stored.body.get("salt").is_none());
    // And the new hash works.
    t.login("legacy@oih.test", "legacy-pass").await;
}

#[tokio::test]
async fn logout_revokes_exactly_the_token_used() {
    let t = start().await;
    let first = t.login(ADMIN, ADMIN_PASSWORD).await;
    let second = t.login(ADMIN, ADMIN_PASSWORD).await;
    let (status, body) = t.call(Method::POST, "/logout", Some(&second), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"loggedOut": true})));
    assert_eq!(
        t.get("/api/v1/users/me", &second).await.0,
        StatusCode::UNAUTHORIZED
    );
    // OIH deleted an arbitrary SELF token of the account; the others must survive.
    assert_eq!(t.get("/api/v1/users/me", &first).await.0, StatusCode::OK);
    assert_eq!(t.get("/api/v1/users/me", &t.admin).await.0, StatusCode::OK);
    // The in-process authenticator agrees at once (its cache is cleared on revocation).
    t.authenticator.authenticate(&first).await.expect("valid");
    let (status, _) = t.call(Method::POST, "/logout", Some(&first), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.authenticator.authenticate(&first).await.is_err());
}

#[tokio::test]
async fn iam_auth_messages() {
    let t = start().await;
    let (status, body) = t.call(Method::GET, "/api/v1/users/me", None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({"message": ""}))
    );
    let req = Request::get("/api/v1/users/me")
        .header("authorization", "Bearer")
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        t.send(req).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "INVALID_HEADER"})
        )
    );
    let (status, body) = t.get("/api/v1/users/me", "not-a-token").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "VALIDATION_ERROR"})
        )
    );
    let (status, _) = t.call(Method::POST, "/logout", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bootstrap_runs_once_and_generates_a_password_when_none_is_set() {
    let mut cfg = config();
    cfg.admin_password = None;
    let t = boot(cfg).await;
    let (status, _) = login_raw(&t, json!({"username": ADMIN, "password": ADMIN_PASSWORD})).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the configured default is not used"
    );
    // The service account's persistent token works and carries `all`.
    assert!(t.admin.is_empty());
    let (status, me) = t.get("/api/v1/users/me", &t.service_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "service-iam@example.com");
    assert_eq!(me["permissions"], json!(["all"]));
}

#[tokio::test]
async fn every_kind_of_failed_login_is_an_audit_event() {
    let t = start().await; // three failures allowed
    let id = t
        .create_user(
            &t.admin,
            json!({"username": "off@x.test", "password": "pw"}),
        )
        .await;
    let (status, _) = t
        .patch(
            &format!("/api/v1/users/{id}"),
            &t.admin,
            json!({"status": "DISABLED"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut events = t.events().await;

    // Every attempt below fails with the reason OIH gives, and tells the audit log.
    let cases = [
        (
            json!({"username": "off@x.test", "password": "pw"}),
            StatusCode::UNAUTHORIZED,
            "ENTITY_DISABLED",
            "off@x.test",
        ),
        (
            json!({"username": "Nopass@X.test"}),
            StatusCode::UNAUTHORIZED,
            "UNKNOWN_ERROR",
            "Nopass@X.test",
        ),
        (
            json!({"username": "nopass@x.test", "password": ""}),
            StatusCode::UNAUTHORIZED,
            "UNKNOWN_ERROR",
            "nopass@x.test",
        ),
        (
            json!({"username": "ghost@x.test", "password": "x"}),
            StatusCode::UNAUTHORIZED,
            "USER_NOT_FOUND",
            "ghost@x.test",
        ),
        (
            json!({"username": ADMIN, "password": "bad"}),
            StatusCode::UNAUTHORIZED,
            "PASSWORD_INCORRECT",
            ADMIN,
        ),
        (
            json!({"username": ADMIN, "password": "bad"}),
            StatusCode::UNAUTHORIZED,
            "PASSWORD_INCORRECT",
            ADMIN,
        ),
        (
            json!({"username": ADMIN, "password": "bad"}),
            StatusCode::UNAUTHORIZED,
            "PASSWORD_INCORRECT",
            ADMIN,
        ),
        // Locked now, even with the right password.
        (
            json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
            StatusCode::TOO_MANY_REQUESTS,
            "THROTTLED",
            ADMIN,
        ),
    ];
    for (body, status, reason, user) in cases {
        let (got, res) = login_raw(&t, body.clone()).await;
        assert_eq!(got, status, "{body} -> {res}");
        let event = expect_event(&mut events, "iam.user.loginFailed").await;
        assert_eq!(
            event.payload,
            json!({"user": user, "reason": reason}),
            "{body}"
        );
    }
}
