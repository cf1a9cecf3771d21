//! JWT login tokens: HS256 and RS256, JWKS, key rotation, revocation, expiry.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oih_iam::{IntrospectionAuthenticator, IntrospectionConfig, JwtAlgorithm, Secret, TokenFormat};
use serde_json::{Value, json};

use crate::{ADMIN, ADMIN_PASSWORD, boot, boot_on, config};

fn jwt_config(algorithm: JwtAlgorithm, secret: Option<&str>) -> oih_iam::Config {
    let mut cfg = config();
    cfg.token_format = TokenFormat::Jwt;
    cfg.jwt_algorithm = algorithm;
    cfg.jwt_secret = secret.map(Secret::new);
    cfg
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&["http://iam.test"]);
    v.set_audience(&["oih-test"]);
    v
}

#[tokio::test]
async fn hs256_login_tokens_carry_oih_claims_and_work_everywhere() {
    let t = boot(jwt_config(JwtAlgorithm::Hmac, Some("shared-secret"))).await;
    let fx_tenant = {
        let admin = t.login(ADMIN, ADMIN_PASSWORD).await;
        let (_, body) = t
            .post("/api/v1/tenants", &admin, json!({"name": "acme"}))
            .await;
        let tenant = body["id"].as_str().expect("id").to_owned();
        t.create_user(
            &admin,
            json!({"username": "u@acme.test", "password": "pw", "tenant": tenant,
                                     "permissions": ["flows.read"]}),
        )
        .await;
        tenant
    };
    let token = t.login("u@acme.test", "pw").await;
    assert_eq!(token.split('.').count(), 3);
    let key = DecodingKey::from_secret(b"shared-secret").expect("key");
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation(Algorithm::HS256))
        .expect("valid HS256 JWT");
    let claims = data.claims;
    assert_eq!(claims["tenant"], fx_tenant);
    assert_eq!(claims["username"], "u@acme.test");
    assert_eq!(claims["permissions"], json!(["flows.read"]));
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        3 * 3600
    );
    assert!(claims["jti"].is_string());

    let (status, me) = t.get("/api/v1/users/me", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["_id"], claims["sub"]);
    let identity = t
        .authenticator
        .authenticate(&token)
        .await
        .expect("in-process");
    assert_eq!(identity.tenant.as_deref(), Some(fx_tenant.as_str()));
    let (status, refreshed) = t.get("/api/v1/tokens/refresh", &token).await;
    assert_eq!(
        (status, refreshed["token"].as_str()),
        (StatusCode::OK, Some(token.as_str()))
    );
    let (status, body) = t.get("/.well-known/jwks.json", &token).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::LOCKED,
            json!({"message": "RSA algorithm is not activated"})
        )
    );

    // Tampering breaks the signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    assert_eq!(
        t.get("/api/v1/users/me", &parts.join(".")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A token for another audience or signed with another secret is refused.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"guess").expect("key"),
    )
    .expect("sign");
    assert_eq!(
        t.get("/api/v1/users/me", &forged).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Logout revokes it inside IAM and for in-process services.
    let (status, _) = t.call(Method::POST, "/logout", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        t.get("/api/v1/users/me", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(t.authenticator.authenticate(&token).await.is_err());
}

#[tokio::test]
async fn rs256_tokens_verify_against_the_jwks_and_survive_key_rotation() {
    let mut cfg = jwt_config(JwtAlgorithm::Rsa, None);
    cfg.jwt_key_rotation_seconds = 1;
    let first = boot(cfg.clone()).await;
    let old = first.login(ADMIN, ADMIN_PASSWORD).await;
    let (status, jwks) = first.get("/.well-known/jwks.json", &old).await;
    assert_eq!(status, StatusCode::OK);
    let set: JwkSet = serde_json::from_value(jwks).expect("jwks");
    assert_eq!(set.keys.len(), 1);
    let header = jsonwebtoken::decode_header(&old).expect("header");
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("kid");
    let jwk = set.find(&kid).expect("signing key published");
    let key = DecodingKey::from_jwk(jwk).expect("key");
    jsonwebtoken::decode::<Value>(&old, &key, &validation(Algorithm::RS256)).expect("valid");

    // After the rotation period a restart (or the refresh worker) makes a new signing key;
    // the old one still verifies the tokens it signed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = boot_on(cfg, Some(first.docs.clone())).await;
    let new = second.login(ADMIN, ADMIN_PASSWORD).await;
    let new_kid = jsonwebtoken::decode_header(&new)
        .expect("header")
        .kid
        .expect("kid");
    assert_ne!(new_kid, kid);
    let (_, jwks) = second.get("/.well-known/jwks.json", &new).await;
    let set: JwkSet = serde_json::from_value(jwks).expect("jwks");
    assert!(set.find(&kid).is_some() && set.find(&new_kid).is_some());
    assert_eq!(second.get("/api/v1/users/me", &old).await.0, StatusCode::OK);
    assert_eq!(second.get("/api/v1/users/me", &new).await.0, StatusCode::OK);
}

#[tokio::test]
async fn jwt_expiry_is_enforced_by_the_clock() {
    let mut cfg = jwt_config(JwtAlgorithm::Hmac, Some("s"));
    cfg.token_lifespan = "1s".into();
    let t = boot(cfg).await;
    let token = t.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(t.get("/api/v1/users/me", &token).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
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

fn remote(base: &str, jwks: bool, secret: Option<&str>, audience: &str) -> IntrospectionConfig {
    IntrospectionConfig {
        endpoint: format!("{base}/api/v1/tokens/introspect"),
        // Deliberately useless: JWTs must not need IAM.
        iam_token: Secret::new("NoToken"),
        cache_ttl_seconds: 0,
        jwks_url: jwks.then(|| format!("{base}/.well-known/jwks.json")),
        jwt_verify_secret: secret.map(Secret::new),
        jwt_verify_issuer: "http://iam.test".into(),
        jwt_verify_audience: audience.into(),
    }
}

#[tokio::test]
async fn services_running_alone_verify_rs256_tokens_with_the_jwks() {
    let t = boot(jwt_config(JwtAlgorithm::Rsa, None)).await;
    let base = t.serve().await;
    let token = t.login(ADMIN, ADMIN_PASSWORD).await;
    let authn =
        IntrospectionAuthenticator::new(&remote(&base, true, None, "oih-test")).expect("client");
    let identity = oih_http::Authenticator::authenticate(authn.as_ref(), &token)
        .await
        .expect("verified with the JWKS");
    assert_eq!(identity.sub, t.me_id(&token).await);
    assert_eq!(identity.username, ADMIN);
    assert!(identity.is_admin());
    let wrong_aud =
        IntrospectionAuthenticator::new(&remote(&base, true, None, "elsewhere")).expect("client");
    assert!(
        oih_http::Authenticator::authenticate(wrong_aud.as_ref(), &token)
            .await
            .is_err()
    );
    let tampered = format!("{token}x");
    assert!(
        oih_http::Authenticator::authenticate(authn.as_ref(), &tampered)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn services_running_alone_verify_hs256_tokens_with_the_shared_secret() {
    let t = boot(jwt_config(JwtAlgorithm::Hmac, Some("shared"))).await;
    let base = t.serve().await;
    let token = t.login(ADMIN, ADMIN_PASSWORD).await;
    let authn = IntrospectionAuthenticator::new(&remote(&base, false, Some("shared"), "oih-test"))
        .expect("client");
    let identity = oih_http::Authenticator::authenticate(authn.as_ref(), &token)
        .await
        .expect("valid");
    assert!(identity.is_admin());
    let other = IntrospectionAuthenticator::new(&remote(&base, false, Some("other"), "oih-test"))
        .expect("client");
    assert!(
        oih_http::Authenticator::authenticate(other.as_ref(), &token)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rsa_mode_publishes_a_jwks_even_with_opaque_logins() {
    let mut cfg = config();
    cfg.jwt_algorithm = JwtAlgorithm::Rsa;
    let t = boot(cfg).await;
    let token = t.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(token.len(), 171, "an opaque token");
    let (status, jwks) = t
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part");
    // Default (HMAC, opaque): OIH's 423.
    let t = boot(config()).await;
    let (status, body) = t
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::LOCKED,
            json!({"message": "RSA algorithm is not activated"})
        )
    );
}

#[tokio::test]
async fn hs256_without_a_configured_secret_generates_and_keeps_one() {
    let cfg = jwt_config(JwtAlgorithm::Hmac, None);
    let first = boot(cfg.clone()).await;
    let token = first.login(ADMIN, ADMIN_PASSWORD).await;
    let header = jsonwebtoken::decode_header(&token).expect("a JWT");
    assert_eq!(header.alg, Algorithm::HS256);
    let kid = header.kid.expect("kid of the generated secret");
    assert_ne!(kid, "configured");
    assert_eq!(
        first.get("/api/v1/users/me", &token).await.0,
        StatusCode::OK
    );
    first
        .authenticator
        .authenticate(&token)
        .await
        .expect("verified in process");
    // The generated secret is never published.
    let (status, _) = first
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(status, StatusCode::LOCKED);
    // Nor is it a guessable default.
    for guess in ["secret", "NoToken", "shared-secret"] {
        let key = DecodingKey::from_secret(guess.as_bytes()).expect("key");
        assert!(
            jsonwebtoken::decode::<Value>(&token, &key, &validation(Algorithm::HS256)).is_err()
        );
    }

    // A restart on the same store verifies the old token and signs with the same key.
    let second = boot_on(cfg, Some(first.docs.clone())).await;
    assert_eq!(
        second.get("/api/v1/users/me", &token).await.0,
        StatusCode::OK
    );
    second
        .authenticator
        .authenticate(&token)
        .await
        .expect("still valid after restart");
    let again = second.login(ADMIN, ADMIN_PASSWORD).await;
    let again_kid = jsonwebtoken::decode_header(&again)
        .expect("header")
        .kid
        .expect("kid");
    assert_eq!(again_kid, kid);
}

#[tokio::test]
async fn services_running_alone_stop_trusting_a_jwt_at_its_exp() {
    let mut cfg = jwt_config(JwtAlgorithm::Hmac, Some("shared"));
    cfg.token_lifespan = "1s".into();
    let t = boot(cfg).await;
    let base = t.serve().await;
    let token = t.login(ADMIN, ADMIN_PASSWORD).await;
    let mut remote_cfg = remote(&base, false, Some("shared"), "oih-test");
    remote_cfg.cache_ttl_seconds = 60;
    let authn = IntrospectionAuthenticator::new(&remote_cfg).expect("client");
    oih_http::Authenticator::authenticate(authn.as_ref(), &token)
        .await
        .expect("valid");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        oih_http::Authenticator::authenticate(authn.as_ref(), &token)
            .await
            .is_err(),
        "a cached verification outlived the JWT's exp"
    );
}
