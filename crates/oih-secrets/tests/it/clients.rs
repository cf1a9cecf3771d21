//! `/api/v1/auth-clients`: CRUD scoped to owners, validation, masking, sealing at rest.

use anyhow::Result;
use axum::http::StatusCode;
use oih_store::Collection;
use serde_json::json;

use crate::support::{App, Infra, config, oa2_client, simple};

async fn app() -> Result<(Infra, App)> {
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    Ok((infra, app))
}

fn session_client() -> serde_json::Value {
    json!({"name": "session", "type": "SESSION_AUTH", "fields": [{"key": "user", "required": true}],
           "tokenPath": "token",
           "endpoints": {"auth": {"url": "https://login.example/", "authType": "HEADER_AUTH",
                                  "requestFields": [{"key": "x-user", "value": "{{fields.user}}"}]}}})
}

#[tokio::test]
async fn create_validate_mask_and_seal() -> Result<()> {
    let (infra, app) = app().await?;
    let oa2 = oa2_client(&app, "u1", "https://provider.example/token").await?;
    let oa1 = app
        .post(
            "/api/v1/auth-clients",
            "u1",
            json!({"data": {"name": "oa1", "type": "OA1_TWO_LEGGED", "consumerKey": "k", "consumerSecret": "s",
                            "nonce": "n", "signature": "sig", "signatureMethod": "HMAC-SHA1"}}),
        )
        .await?;
    assert_eq!(oa1.status, StatusCode::OK, "{}", oa1.body);
    assert_eq!(oa1.body["data"]["consumerSecret"], "***");
    let session = app
        .post("/api/v1/auth-clients", "u1", session_client())
        .await?;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);

    let masked = app
        .get(&format!("/api/v1/auth-clients/{oa2}"), "u1")
        .await?;
    assert_eq!(masked.body["data"]["clientId"], "***");
    assert_eq!(masked.body["data"]["clientSecret"], "***");
    assert_eq!(
        masked.body["data"]["owners"],
        json!([{"id": "u1", "type": "USER"}])
    );
    assert_eq!(masked.body["data"]["tenant"], "t1");
    let raw = app
        .get(&format!("/api/v1/auth-clients/{oa2}"), "clientraw")
        .await?;
    assert_eq!(raw.body["data"]["clientSecret"], "the-client-secret");
    assert_eq!(
        raw.body["data"]["endpoints"]["token"],
        "https://provider.example/token"
    );

    let stored = infra
        .docs
        .get(Collection("secrets_auth_clients"), &oa2)
        .await?
        .ok_or_else(|| anyhow::anyhow!("not stored"))?;
    assert!(!stored.body.to_string().contains("the-client-secret"));
    assert_eq!(stored.body["encryptedFields"], json!(["clientSecret"]));

    let bad = [
        (
            json!({"name": "x", "type": "foo"}),
            "Unknown auth client type \"foo\"",
        ),
        (
            json!({"name": "x", "type": "SIMPLE"}),
            "Unknown auth client type \"SIMPLE\"",
        ),
        (
            json!({"name": "x", "type": "OA2_AUTHORIZATION_CODE", "clientId": "a", "clientSecret": "b", "redirectUri": "c", "endpoints": {"auth": "d"}}),
            "A_OA2_AUTHORIZATION_CODE validation failed: endpoints.token: Path `endpoints.token` is required.",
        ),
        (
            json!({"type": "OA2_AUTHORIZATION_CODE"}),
            "AuthClient validation failed: name: Path `name` is required.",
        ),
    ];
    for (body, message) in bad {
        let reply = app.post("/api/v1/auth-clients", "u1", body.clone()).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body, json!({"message": message}), "{body}");
    }
    let list = app.get("/api/v1/auth-clients", "u1").await?;
    assert_eq!(list.body["meta"]["total"], 3);
    assert_eq!(
        list.body["data"][0],
        json!({"_id": oa2, "name": "provider", "type": "OA2_AUTHORIZATION_CODE"})
    );
    Ok(())
}

#[tokio::test]
async fn clients_are_scoped_to_their_owners() -> Result<()> {
    let (_infra, app) = app().await?;
    let private = oa2_client(&app, "u1", "https://provider.example/token").await?;
    let shared = app
        .post(
            "/api/v1/auth-clients",
            "u1",
            json!({"name": "shared", "type": "OA1_TWO_LEGGED", "owners": [{"id": "t1", "type": "TENANT"}],
                   "consumerKey": "k", "consumerSecret": "s", "nonce": "n", "signature": "sig", "signatureMethod": "m"}),
        )
        .await?;
    let shared = shared.body["data"]["_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    assert_eq!(
        app.get("/api/v1/auth-clients", "u3").await?.body["meta"]["total"],
        0
    );
    let u2 = app.get("/api/v1/auth-clients", "u2").await?;
    assert_eq!(u2.body["meta"]["total"], 1);
    assert_eq!(u2.body["data"][0]["_id"], shared.as_str());

    for (method_path, token) in [
        (format!("/api/v1/auth-clients/{private}"), "u2"),
        (format!("/api/v1/auth-clients/{private}"), "u3"),
        (format!("/api/v1/auth-clients/{shared}"), "u3"),
        (format!("/api/v1/auth-clients/{private}/secrets"), "u3"),
    ] {
        let reply = app.get(&method_path, token).await?;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method_path} {token}");
    }
    // A tenant member may use a shared client but not change or delete it.
    assert_eq!(
        app.get(&format!("/api/v1/auth-clients/{shared}"), "u2")
            .await?
            .status,
        StatusCode::OK
    );
    let patch = app
        .patch(
            &format!("/api/v1/auth-clients/{shared}"),
            "u2",
            json!({"name": "mine"}),
        )
        .await?;
    assert_eq!(patch.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.delete(&format!("/api/v1/auth-clients/{shared}"), "u3")
            .await?
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(&format!("/api/v1/auth-clients/{shared}"), "u1")
            .await?
            .body["data"]["name"],
        "shared"
    );

    // A secret cannot reference a client its creator may not use.
    let reply = app
        .post(
            "/api/v1/secrets",
            "u3",
            json!({"name": "x", "type": "OA2_AUTHORIZATION_CODE",
                   "value": {"authClientId": private, "accessToken": "a", "expires": "2030-01-01T00:00:00Z"}}),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["message"], "Auth client is not existing");
    assert_eq!(
        app.get("/api/v1/auth-clients/nope", "u1").await?.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/api/v1/auth-clients/5f6a7b8c9d0e1f2a3b4c5d6e", "u1")
            .await?
            .status,
        StatusCode::NOT_FOUND
    );
    Ok(())
}

#[tokio::test]
async fn patch_delete_and_delete_any() -> Result<()> {
    let infra = Infra::new().await?;
    let mut listener = infra.listen().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let id = oa2_client(&app, "u1", "https://provider.example/token").await?;
    let created = listener.expect("secrets.authclient.created").await?;
    assert_eq!(created.payload, json!({"id": id, "name": "provider"}));
    let path = format!("/api/v1/auth-clients/{id}");

    let renamed = app
        .patch(&path, "u1", json!({"name": "renamed", "clientSecret": "new-secret", "type": "OA2_AUTHORIZATION_CODE"}))
        .await?;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["data"]["name"], "renamed");
    let raw = app.get(&path, "clientraw").await?;
    assert_eq!(raw.body["data"]["clientSecret"], "new-secret");
    assert_eq!(raw.body["data"]["clientId"], "the-client-id");

    for (body, status) in [
        (json!({"type": "SESSION_AUTH"}), StatusCode::BAD_REQUEST),
        (
            json!({"endpoints": {"auth": "only"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"owners": [{"id": "t2", "type": "TENANT"}]}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            app.patch(&path, "u1", body.clone()).await?.status,
            status,
            "{body}"
        );
    }

    // Secrets made with it, for their owner.
    app.create(
        "u1",
        json!({"name": "s1", "type": "OA2_AUTHORIZATION_CODE", "value": {"authClientId": id, "accessToken": "a", "expires": "2030-01-01T00:00:00Z"}}),
    )
    .await?;
    app.create("u1", simple("unrelated", "a", "b")).await?;
    let secrets = app.get(&format!("{path}/secrets"), "u1").await?;
    assert_eq!(secrets.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(secrets.body["data"][0]["name"], "s1");

    assert_eq!(
        app.delete(&path, "u1").await?.status,
        StatusCode::NO_CONTENT
    );
    let deleted = listener.expect("secrets.authclient.deleted").await?;
    assert_eq!(deleted.payload, json!({"client": id}));
    assert_eq!(app.get(&path, "u1").await?.status, StatusCode::NOT_FOUND);

    let other = oa2_client(&app, "u2", "https://provider.example/token").await?;
    let denied = app
        .delete("/api/v1/auth-clients?ownerId=u2&type=USER", "u1")
        .await?;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let done = app
        .delete("/api/v1/auth-clients?ownerId=u2&type=USER", "clientsvc")
        .await?;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/api/v1/auth-clients/{other}"), "u2")
            .await?
            .status,
        StatusCode::NOT_FOUND
    );
    Ok(())
}
