//! The authenticators other services use: in process, and by introspection over HTTP.

use oih_http::AuthError;
use oih_iam::{IntrospectionAuthenticator, IntrospectionConfig, Secret};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::start;

fn introspection(endpoint: String, iam_token: &str, ttl: u64) -> IntrospectionConfig {
    IntrospectionConfig {
        endpoint,
        iam_token: Secret::new(iam_token),
        cache_ttl_seconds: ttl,
        jwks_url: None,
        jwt_verify_secret: None,
        jwt_verify_issuer: "http://iam.test".into(),
        jwt_verify_audience: "oih-test".into(),
    }
}

#[tokio::test]
async fn local_authenticator_resolves_identity() {
    let t = start().await;
    let fx = t.tenant_with_users("acme").await;
    let identity = t
        .authenticator
        .authenticate(&fx.admin)
        .await
        .expect("valid");
    assert_eq!(identity.sub, fx.admin_id);
    assert_eq!(identity.username, "admin@acme.test");
    assert_eq!(identity.tenant.as_deref(), Some(fx.tenant.as_str()));
    assert!(identity.is_tenant_admin());
    assert!(!identity.is_admin());
    let admin = t.authenticator.authenticate(&t.admin).await.expect("valid");
    assert!(admin.is_admin());
    let err = t
        .authenticator
        .authenticate("bogus")
        .await
        .expect_err("unknown");
    assert_eq!(err, AuthError::not_found());
    assert_eq!(
        err.message(),
        "Token invalid. Error: Error. Details: Token not found in IAM"
    );
}

#[tokio::test]
async fn local_authenticator_sees_deleted_accounts_at_once() {
    let t = start().await;
    let fx = t.tenant_with_users("acme").await;
    t.authenticator.authenticate(&fx.user).await.expect("valid");
    let (status, _) = t
        .delete(&format!("/api/v1/users/{}", fx.user_id), &t.admin)
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    assert!(t.authenticator.authenticate(&fx.user).await.is_err());
}

#[tokio::test]
async fn introspection_authenticator_speaks_oih_basic_introspection() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/tokens/introspect"))
        .and(header("authorization", "Bearer service-token"))
        .and(header("x-auth-type", "basic"))
        .and(body_json(json!({"token": "user-token"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "_id": "5f1e0000000000000000a1a1", "username": "u@x.test", "tenant": "5f1e0000000000000000b2b2",
            "roles": [], "permissions": ["flows.read", "tenant.all"], "isAdmin": false
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/tokens/introspect"))
        .and(body_json(json!({"token": "gone"})))
        .respond_with(ResponseTemplate::new(404).set_body_string("Not Found"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/tokens/introspect"))
        .and(body_json(json!({"token": "boom"})))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let endpoint = format!("{}/api/v1/tokens/introspect", server.uri());
    let authn = IntrospectionAuthenticator::new(&introspection(endpoint, "service-token", 60))
        .expect("client");
    let identity = oih_http::Authenticator::authenticate(authn.as_ref(), "user-token")
        .await
        .expect("valid");
    assert_eq!(identity.sub, "5f1e0000000000000000a1a1");
    assert_eq!(identity.tenant.as_deref(), Some("5f1e0000000000000000b2b2"));
    assert_eq!(identity.permissions, ["flows.read", "tenant.all"]);
    // Cached: the mock expects exactly one call (checked when the server drops).
    let again = oih_http::Authenticator::authenticate(authn.as_ref(), "user-token")
        .await
        .expect("valid");
    assert_eq!(again, identity);
    let err = oih_http::Authenticator::authenticate(authn.as_ref(), "gone").await;
    assert_eq!(err, Err(AuthError::not_found()));
    let err = oih_http::Authenticator::authenticate(authn.as_ref(), "boom").await;
    assert_eq!(err, Err(AuthError::failed()));
}

#[tokio::test]
async fn introspection_authenticator_against_a_real_iam() {
    let t = start().await;
    let endpoint = format!("{}/api/v1/tokens/introspect", t.serve().await);

    let authn =
        IntrospectionAuthenticator::new(&introspection(endpoint.clone(), &t.service_token, 0))
            .expect("client");
    let identity = oih_http::Authenticator::authenticate(authn.as_ref(), &t.admin)
        .await
        .expect("valid");
    assert_eq!(identity.sub, t.me_id(&t.admin).await);
    assert!(identity.is_admin());
    let err = oih_http::Authenticator::authenticate(authn.as_ref(), "bogus").await;
    assert_eq!(err, Err(AuthError::not_found()));

    // A service whose own token is not valid gets "Authorization failed" (IAM answers 401).
    let wrong =
        IntrospectionAuthenticator::new(&introspection(endpoint, "NoToken", 0)).expect("client");
    let err = oih_http::Authenticator::authenticate(wrong.as_ref(), &t.admin).await;
    assert_eq!(err, Err(AuthError::failed()));
}

/// Rejects `token` the way every other service's `Auth` extractor does: a 401.
async fn refused_as_401(authn: &dyn oih_http::Authenticator, token: &str) -> bool {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    match oih_http::auth::authenticate(authn, &headers).await {
        Err(oih_http::ApiError::Unauthorized(_)) => true,
        Err(other) => panic!("not a 401: {other:?}"),
        Ok(_) => false,
    }
}

/// A short-lived token, minted by the admin; returns the token.
async fn short_lived(t: &crate::TestIam, name: &str) -> String {
    let (id, _) = t.account(name, json!({})).await;
    let (status, created) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": id, "expiresIn": "1500ms", "new": true}),
        )
        .await;
    assert_eq!(status, axum::http::StatusCode::OK, "{created}");
    created["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn cached_answers_do_not_outlive_the_token() {
    // The cache would keep an answer for a minute; the token lives 1.5 s.
    let mut cfg = crate::config();
    cfg.auth_cache_seconds = 60;
    let mut t = crate::boot(cfg).await;
    t.admin = t.login(crate::ADMIN, crate::ADMIN_PASSWORD).await;
    let local = short_lived(&t, "local@x.test").await;
    let remote_token = short_lived(&t, "remote@x.test").await;
    let endpoint = format!("{}/api/v1/tokens/introspect", t.serve().await);
    let remote = IntrospectionAuthenticator::new(&introspection(endpoint, &t.service_token, 60))
        .expect("client");

    assert!(!refused_as_401(t.authenticator.as_ref(), &local).await);
    assert!(!refused_as_401(remote.as_ref(), &remote_token).await);
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    assert!(
        refused_as_401(t.authenticator.as_ref(), &local).await,
        "in-process cache served an expired token"
    );
    assert!(
        refused_as_401(remote.as_ref(), &remote_token).await,
        "introspection cache served an expired token"
    );
}

#[tokio::test]
async fn introspection_tells_when_the_token_expires() {
    let t = start().await;
    let token = short_lived(&t, "u@x.test").await;
    let (status, body) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": token}),
        )
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    let at = chrono::DateTime::parse_from_rfc3339(body["tokenExpireAt"].as_str().expect("set"))
        .expect("RFC 3339");
    let left = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(left <= chrono::Duration::milliseconds(1500), "{left}");
    // Persistent tokens have no expiry to tell.
    let (_, body) = t
        .post(
            "/api/v1/tokens/introspect",
            &t.service_token,
            json!({"token": t.service_token}),
        )
        .await;
    assert!(body.get("tokenExpireAt").is_none(), "{body}");
}
