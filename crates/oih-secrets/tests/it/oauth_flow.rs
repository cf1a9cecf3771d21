//! The OAuth2 code flow against a fake provider, and token refresh on read with its lock.

use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{App, Infra, config, oa2_client};

fn query_param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

async fn start(app: &App, client: &str, body: Value) -> Result<String> {
    let reply = app
        .post(
            &format!("/api/v1/auth-clients/{client}/start-flow"),
            "u1",
            body,
        )
        .await?;
    anyhow::ensure!(
        reply.status == StatusCode::OK,
        "start-flow: {} {}",
        reply.status,
        reply.body
    );
    reply.body["data"]["authUrl"]
        .as_str()
        .map(str::to_owned)
        .context("no authUrl")
}

#[tokio::test]
async fn code_flow_creates_the_secret_and_redirects() -> Result<()> {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("code_verifier="))
        .and(body_string_contains("client_secret=the-client-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600}),
        ))
        .expect(1)
        .mount(&provider)
        .await;
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let client = oa2_client(&app, "u1", &format!("{}/token", provider.uri())).await?;
    let auth_url = start(
        &app,
        &client,
        json!({"scope": "openid email", "secretName": "my secret", "successUrl": "https://app.example/done?x=1"}),
    )
    .await?;
    assert!(auth_url.starts_with("https://provider.example/auth?scope=openid%20email&state="));
    assert!(!auth_url.contains("undefined") && !auth_url.contains("{{"));
    assert_eq!(
        query_param(&auth_url, "client_id").as_deref(),
        Some("the-client-id")
    );
    assert_eq!(
        query_param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query_param(&auth_url, "code_challenge").is_some());
    let state = query_param(&auth_url, "state").context("no state")?;

    let back = app
        .call(
            Method::GET,
            &format!("/api/v1/callback?code=the-code&state={state}"),
            None,
            None,
        )
        .await?;
    assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
    let secrets = app.get("/api/v1/secrets", "u1").await?;
    let id = secrets.body["data"][0]["_id"]
        .as_str()
        .context("no secret")?
        .to_owned();
    assert_eq!(secrets.body["data"][0]["name"], "my secret");
    let raw = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(raw.body["data"]["value"]["accessToken"], "at-1");
    assert_eq!(raw.body["data"]["value"]["authClientId"], client.as_str());
    assert_eq!(raw.body["data"]["value"]["scope"], "openid email");

    // The state is single-use.
    let replay = app
        .call(
            Method::GET,
            &format!("/api/v1/callback?code=the-code&state={state}"),
            None,
            None,
        )
        .await?;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/api/v1/secrets", "u1").await?.body["meta"]["total"],
        1
    );
    Ok(())
}

#[tokio::test]
async fn callback_answers_json_without_success_url() -> Result<()> {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "at-1"})))
        .mount(&provider)
        .await;
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let client = oa2_client(&app, "u1", &format!("{}/token", provider.uri())).await?;
    let state = query_param(&start(&app, &client, json!({})).await?, "state").context("state")?;
    let back = app
        .call(
            Method::GET,
            &format!("/api/v1/callback?code=c&state={state}"),
            None,
            None,
        )
        .await?;
    assert_eq!(back.status, StatusCode::OK);
    let id = back.body["data"]["secretId"].as_str().context("secretId")?;
    let raw = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(raw.body["data"]["name"], "provider");
    assert_eq!(raw.body["data"]["value"]["expires"], "9999-12-31T23:59:59Z");
    Ok(())
}

#[tokio::test]
async fn forged_or_failed_callbacks_store_nothing() -> Result<()> {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&provider)
        .await;
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let client = oa2_client(&app, "u1", &format!("{}/token", provider.uri())).await?;
    let state = query_param(&start(&app, &client, json!({})).await?, "state").context("state")?;
    let decoded: Value = serde_json::from_slice(&B64URL.decode(&state)?)?;
    let forged = B64URL.encode(serde_json::to_vec(
        &json!({"flowId": decoded["flowId"], "nonce": "guess", "payload": {}}),
    )?);
    for query in [
        format!("code=c&state={forged}"),
        "code=c&state=not-base64!".to_owned(),
        "state=x".to_owned(),
        "error=access_denied".to_owned(),
        format!("code=c&state={state}"),
    ] {
        let reply = app
            .call(
                Method::GET,
                &format!("/api/v1/callback?{query}"),
                None,
                None,
            )
            .await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.body["message"].is_string());
    }
    assert_eq!(
        app.get("/api/v1/secrets", "u1").await?.body["meta"]["total"],
        0
    );

    // start-flow input and client types.
    let session = app
        .post(
            "/api/v1/auth-clients",
            "u1",
            json!({"name": "s", "type": "SESSION_AUTH", "fields": [],
                   "endpoints": {"auth": {"url": "https://x/", "authType": "BODY_AUTH"}}}),
        )
        .await?;
    let session = session.body["data"]["_id"]
        .as_str()
        .context("id")?
        .to_owned();
    let reply = app
        .post(
            &format!("/api/v1/auth-clients/{session}/start-flow"),
            "u1",
            json!({}),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.body, json!({"message": "No Flows Defined"}));
    let reply = app
        .post(
            &format!("/api/v1/auth-clients/{client}/start-flow"),
            "u1",
            json!({"successUrl": "javascript:alert(1)"}),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = app
        .post(
            &format!("/api/v1/auth-clients/{client}/start-flow"),
            "u3",
            json!({}),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    Ok(())
}

/// An OA2 secret whose token expired, made with a client whose token endpoint is `provider`.
async fn expired_secret(app: &App, provider: &MockServer) -> Result<String> {
    let client = oa2_client(app, "u1", &format!("{}/token", provider.uri())).await?;
    app.create(
        "u1",
        json!({"name": "oauth", "type": "OA2_AUTHORIZATION_CODE",
               "value": {"authClientId": client, "accessToken": "old", "refreshToken": "rt-1",
                         "expires": "2020-01-01T00:00:00Z"}}),
    )
    .await
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_for_concurrent_readers() -> Result<()> {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("accept", "application/json"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=rt-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(
                    json!({"access_token": "new", "refresh_token": "rt-2", "expires_in": 3600}),
                )
                .set_delay(Duration::from_millis(300)),
        )
        .expect(1)
        .mount(&provider)
        .await;
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let id = expired_secret(&app, &provider).await?;
    let path = format!("/api/v1/secrets/{id}");
    let replies = futures::future::join_all((0..5).map(|_| app.get(&path, "u1raw"))).await;
    for reply in replies {
        let reply = reply?;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["data"]["value"]["accessToken"], "new");
    }
    let stored = infra
        .docs
        .get(oih_store::Collection("secrets_secrets"), &id)
        .await?
        .context("stored")?;
    assert!(stored.body.get("lockedAt").is_none());
    assert!(!stored.body.to_string().contains("rt-2"));
    // Fresh now: no further call (the mock expects exactly one).
    app.get(&path, "u1raw").await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_refresh_releases_the_lock_and_records_the_error() -> Result<()> {
    let provider = MockServer::start().await;
    let failing = Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount_as_scoped(&provider)
        .await;
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let id = expired_secret(&app, &provider).await?;
    let secret_path = format!("/api/v1/secrets/{id}");
    let reply = app.get(&secret_path, "u1raw").await?;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        reply.body["message"],
        "Refreshing the token failed: HTTP Error Response: 503 Service Unavailable"
    );
    let listed = app.get("/api/v1/secrets", "u1").await?;
    assert_eq!(
        listed.body["data"][0]["currentError"],
        json!({"error": "HTTP Error Response: 503 Service Unavailable"})
    );
    drop(failing);

    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": "revoked"})),
        )
        .expect(1)
        .mount(&provider)
        .await;
    // Not stuck: the next read tries again at once.
    let reply = app.get(&secret_path, "u1raw").await?;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    let listed = app.get("/api/v1/secrets", "u1").await?;
    assert_eq!(
        listed.body["data"][0]["currentError"],
        json!({"error": "invalid_grant", "error_description": "revoked"})
    );
    Ok(())
}

#[tokio::test]
async fn a_stale_lock_is_taken_over_and_success_clears_the_error() -> Result<()> {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "new", "expires_in": 3600})),
        )
        .expect(1)
        .mount(&provider)
        .await;
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let id = expired_secret(&app, &provider).await?;
    // A replica died holding the lock a minute ago, after recording an error.
    let coll = oih_store::Collection("secrets_secrets");
    let mut body = infra.docs.get(coll, &id).await?.context("stored")?.body;
    body["lockedAt"] = json!((chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339());
    body["currentError"] = json!({"error": "earlier"});
    infra.docs.update(coll, &id, None, body).await?;

    let reply = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["data"]["value"]["accessToken"], "new");
    assert!(reply.body["data"].get("currentError").is_none());
    // The refresh token is kept when the provider sends no new one.
    let stored = infra.docs.get(coll, &id).await?.context("stored")?;
    assert!(
        stored.body["encryptedFields"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("refreshToken")))
    );
    Ok(())
}

#[tokio::test]
async fn a_session_secret_logs_in_on_read() -> Result<()> {
    let login = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/login"))
        .and(body_string_contains("\"username\":\"alice\""))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"token": "letmein", "ttl": 600}})),
        )
        .expect(1)
        .mount(&login)
        .await;
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let client = app
        .post(
            "/api/v1/auth-clients",
            "u1",
            json!({"name": "session", "type": "SESSION_AUTH", "fields": [{"key": "user"}, {"key": "password"}],
                   "tokenPath": "data.token", "expirationPath": "data.ttl",
                   "endpoints": {"auth": {"url": format!("{}/login", login.uri()), "authType": "BODY_AUTH",
                       "requestFields": [{"key": "username", "value": "{{fields.user}}"},
                                         {"key": "password", "value": "{{fields.password}}"}]}}}),
        )
        .await?;
    let client = client.body["data"]["_id"]
        .as_str()
        .context("client")?
        .to_owned();
    let id = app
        .create(
            "u1",
            json!({"name": "s", "type": "SESSION_AUTH",
                   "value": {"authClientId": client, "inputFields": {"user": "alice", "password": "pw"}}}),
        )
        .await?;
    let raw = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(raw.status, StatusCode::OK, "{}", raw.body);
    assert_eq!(raw.body["data"]["value"]["accessToken"], "letmein");
    assert_eq!(raw.body["data"]["value"]["inputFields"], "***");
    // Valid for 10 minutes, beyond the 15-minute offset: the next read logs in again, as OIH.
    Ok(())
}

#[tokio::test]
async fn tokens_about_to_expire_are_refreshed_without_a_read() -> Result<()> {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "new", "expires_in": 3600})),
        )
        .expect(1)
        .mount(&provider)
        .await;
    let infra = Infra::new().await?;
    let cfg = oih_secrets::Config {
        refresh_interval: Duration::from_millis(200),
        ..config(infra.dir.path())
    };
    let app = infra.app(cfg).await?;
    let id = expired_secret(&app, &provider).await?;
    let coll = oih_store::Collection("secrets_secrets");
    let mut refreshed = false;
    for _ in 0..50 {
        let body = infra.docs.get(coll, &id).await?.context("stored")?.body;
        if body["value"]["expires"] != "2020-01-01T00:00:00Z" {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refreshed, "the worker did not refresh the token");
    let raw = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(raw.body["data"]["value"]["accessToken"], "new");
    app.shutdown().await
}

#[tokio::test]
async fn a_second_login_to_the_same_account_updates_its_secret() -> Result<()> {
    let id_token = format!(
        "h.{}.s",
        B64URL.encode(br#"{"sub":"account-42","email":"a@example.com"}"#)
    );
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("code=first"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600, "id_token": id_token}),
        ))
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("code=second"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "at-2", "expires_in": 3600, "id_token": id_token}),
        ))
        .mount(&provider)
        .await;
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let client = app
        .post(
            "/api/v1/auth-clients",
            "u1",
            json!({"name": "idp", "type": "OA2_AUTHORIZATION_CODE", "preprocessor": "preprocessor.oidc",
                   "owners": [{"id": "t1", "type": "TENANT"}],
                   "clientId": "cid", "clientSecret": "cs", "redirectUri": "https://hub/cb",
                   "endpoints": {"auth": "https://idp/auth", "token": format!("{}/token", provider.uri())}}),
        )
        .await?;
    let client = client.body["data"]["_id"]
        .as_str()
        .context("client")?
        .to_owned();

    let mut secret_ids = Vec::new();
    for (token, code) in [("u1", "first"), ("u2", "second")] {
        let reply = app
            .post(
                &format!("/api/v1/auth-clients/{client}/start-flow"),
                token,
                json!({}),
            )
            .await?;
        let url = reply.body["data"]["authUrl"].as_str().context("authUrl")?;
        let state = query_param(url, "state").context("state")?;
        let back = app
            .call(
                Method::GET,
                &format!("/api/v1/callback?code={code}&state={state}"),
                None,
                None,
            )
            .await?;
        assert_eq!(back.status, StatusCode::OK, "{}", back.body);
        secret_ids.push(
            back.body["data"]["secretId"]
                .as_str()
                .context("id")?
                .to_owned(),
        );
    }
    assert_eq!(secret_ids[0], secret_ids[1]);
    let raw = app
        .get(&format!("/api/v1/secrets/{}", secret_ids[0]), "u1raw")
        .await?;
    assert_eq!(raw.body["data"]["name"], "account-42");
    assert_eq!(raw.body["data"]["value"]["externalId"], "account-42");
    assert_eq!(raw.body["data"]["value"]["accessToken"], "at-2");
    assert_eq!(
        raw.body["data"]["owners"],
        json!([{"id": "u1", "type": "USER"}, {"id": "u2", "type": "USER"}])
    );
    Ok(())
}
