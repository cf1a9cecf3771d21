//! `/api/v1/secrets`, after OIH's own route tests (data-services.md §3.10) plus bad input and
//! tenant isolation.

use anyhow::Result;
use axum::http::{Method, StatusCode};
use oih_secrets::mask_string;
use serde_json::{Value, json};

use crate::support::{App, Infra, config, oa2_client, simple};

async fn app() -> Result<(Infra, App)> {
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    Ok((infra, app))
}

async fn total(app: &App, token: &str) -> Result<u64> {
    let reply = app.get("/api/v1/secrets", token).await?;
    Ok(reply.body["meta"]["total"].as_u64().unwrap_or(u64::MAX))
}

#[tokio::test]
async fn empty_list_has_one_page() -> Result<()> {
    let (_infra, app) = app().await?;
    let reply = app.get("/api/v1/secrets", "u1").await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"data": [], "meta": {"page": 1, "perPage": 10, "total": 0, "totalPages": 1}})
    );
    assert_eq!(
        reply.cache_control.as_deref(),
        Some("no-store, no-cache, must-revalidate, private")
    );
    Ok(())
}

#[tokio::test]
async fn simple_secret_is_masked_without_read_raw() -> Result<()> {
    let (_infra, app) = app().await?;
    let created = app
        .post(
            "/api/v1/secrets",
            "u1",
            json!({"data": {"name": "db", "type": "SIMPLE", "value": {"username": "bob", "passphrase": "hunter2", "junk": 1}}}),
        )
        .await?;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let data = &created.body["data"];
    assert_eq!(data["owners"], json!([{"id": "u1", "type": "USER"}]));
    assert_eq!(data["tenant"], "t1");
    assert_eq!(
        data["value"],
        json!({"username": "bob", "passphrase": "***"})
    );
    let id = data["_id"].as_str().unwrap_or_default();

    let masked = app.get(&format!("/api/v1/secrets/{id}"), "u1").await?;
    assert_eq!(masked.status, StatusCode::OK);
    assert_eq!(masked.body["data"]["value"]["passphrase"], "***");
    assert_eq!(masked.body["data"]["value"]["username"], "bob");
    assert_eq!(masked.body["data"]["encryptedFields"], json!([]));
    assert_eq!(
        masked.cache_control.as_deref(),
        Some("no-store, no-cache, must-revalidate, private")
    );

    let raw = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(raw.body["data"]["value"]["passphrase"], "hunter2");
    assert_eq!(raw.body["data"]["name"], "db");
    assert_eq!(raw.body["data"]["type"], "SIMPLE");
    Ok(())
}

#[tokio::test]
async fn mixed_payload_masking() -> Result<()> {
    let (_infra, app) = app().await?;
    let payload = json!({"apiUrl": "https://example.com", "token": "abc"}).to_string();
    let id = app
        .create(
            "u1",
            json!({"name": "m", "type": "MIXED", "value": {"payload": payload}}),
        )
        .await?;
    let masked = app.get(&format!("/api/v1/secrets/{id}"), "u1").await?;
    assert_eq!(
        masked.body["data"]["value"]["payload"],
        mask_string(&payload)
    );
    let raw = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(raw.body["data"]["value"]["payload"], payload);
    Ok(())
}

#[tokio::test]
async fn tokens_are_masked_for_every_token_type_without_read_raw() -> Result<()> {
    let (_infra, app) = app().await?;
    let client = oa2_client(&app, "u1", "https://provider.example/token").await?;
    let id = app
        .create(
            "u1",
            json!({"name": "o1", "type": "OA1_THREE_LEGGED", "value": {"authClientId": client, "accessToken": "access-token-123", "accessTokenSecret": "token-secret-123"}}),
        )
        .await?;
    let masked = app.get(&format!("/api/v1/secrets/{id}"), "u1").await?;
    assert_eq!(
        masked.body["data"]["value"]["accessToken"],
        "************-123"
    );
    assert_eq!(
        masked.body["data"]["value"]["accessTokenSecret"],
        "************-123"
    );
    assert_eq!(
        masked.body["data"]["value"]["authClientId"],
        client.as_str()
    );
    let raw = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(raw.body["data"]["value"]["accessToken"], "access-token-123");

    let oa2 = app
        .create(
            "u1",
            json!({"name": "o2", "type": "OA2_AUTHORIZATION_CODE", "value": {"authClientId": client, "accessToken": "at-0123456789", "refreshToken": "rt-0123456789", "expires": "2030-01-01T00:00:00Z"}}),
        )
        .await?;
    let raw = app.get(&format!("/api/v1/secrets/{oa2}"), "u1raw").await?;
    assert_eq!(raw.body["data"]["value"]["accessToken"], "at-0123456789");
    // The refresh token stays with the service.
    assert_eq!(raw.body["data"]["value"]["refreshToken"], "*********6789");
    Ok(())
}

#[tokio::test]
async fn bad_creates_are_400_and_store_nothing() -> Result<()> {
    let (_infra, app) = app().await?;
    let cases = [
        (
            json!({"name": "x", "type": "FOO", "value": {}}),
            "Unknown secret type \"FOO\"",
        ),
        (
            json!({"type": "SIMPLE", "value": {"username": "a", "passphrase": "b"}}),
            "S_SIMPLE validation failed: name: Path `name` is required.",
        ),
        (
            json!({"name": "x", "type": "SIMPLE", "value": {"username": "a"}}),
            "S_SIMPLE validation failed: value.passphrase: Path `value.passphrase` is required.",
        ),
        (
            json!({"name": "x", "type": "OA2_AUTHORIZATION_CODE", "value": {"authClientId": "5f6a7b8c9d0e1f2a3b4c5d6e", "accessToken": "a", "expires": "2030-01-01"}}),
            "Auth client is not existing",
        ),
        (
            json!({"name": "x", "type": "SESSION_AUTH", "value": {"authClientId": "nope"}}),
            "Auth client does not exist",
        ),
        (
            json!({"name": "x", "type": "SIMPLE", "owners": [{"id": "t2", "type": "TENANT"}], "value": {"username": "a", "passphrase": "b"}}),
            "Owners is not valid",
        ),
        (json!([1, 2]), "The body must be a JSON object"),
    ];
    for (body, message) in cases {
        let reply = app.post("/api/v1/secrets", "u1", body.clone()).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body, json!({"message": message}), "{body}");
    }
    // A value of the wrong type is named, never echoed.
    let reply = app
        .post(
            "/api/v1/secrets",
            "u1",
            json!({"name": "x", "type": "SIMPLE", "value": {"username": "a", "passphrase": {"leak": "topsecret"}}}),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(!reply.body.to_string().contains("topsecret"));

    let malformed = app
        .call_raw(
            Method::POST,
            "/api/v1/secrets",
            Some("u1"),
            Some(b"{\"name\":".to_vec()),
        )
        .await?;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.body["message"].is_string());

    let unauthenticated = app
        .call(
            Method::POST,
            "/api/v1/secrets",
            None,
            Some(simple("x", "a", "b")),
        )
        .await?;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unauthenticated.body,
        json!({"message": "Missing authorization header."})
    );
    let bad_token = app
        .post("/api/v1/secrets", "nobody", simple("x", "a", "b"))
        .await?;
    assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);

    assert_eq!(total(&app, "u1").await?, 0);
    Ok(())
}

#[tokio::test]
async fn paging_as_oih() -> Result<()> {
    let (_infra, app) = app().await?;
    for i in 0..12 {
        app.create("u1", simple(&format!("s{i}"), "u", "p")).await?;
    }
    // Someone else's secrets are not listed.
    app.create("u3", simple("other", "u", "p")).await?;
    let page = |q: &'static str| {
        let app = &app;
        async move { app.get(&format!("/api/v1/secrets{q}"), "u1").await }
    };
    let first = page("").await?;
    assert_eq!(first.body["data"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        first.body["meta"],
        json!({"page": 1, "perPage": 10, "total": 12, "totalPages": 2})
    );
    assert_eq!(first.body["data"][0]["name"], "s0");
    // List entries never carry credentials.
    assert_eq!(first.body["data"][0]["value"], json!({}));

    let small = page("?page[number]=2&page[size]=2").await?;
    assert_eq!(small.body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(small.body["data"][0]["name"], "s2");
    assert_eq!(small.body["meta"]["totalPages"], 6);

    let beyond = page("?page[number]=10&page[size]=100").await?;
    assert_eq!(beyond.body["data"], json!([]));
    assert_eq!(beyond.body["meta"]["totalPages"], 1);

    let zero = page("?page%5Bnumber%5D=0").await?;
    assert_eq!(zero.body["meta"]["page"], 1);

    for bad in ["?page[size]=0", "?page[size]=abc", "?page[number]=-1"] {
        let reply = page(bad).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.body["message"].is_string());
    }
    Ok(())
}

#[tokio::test]
async fn tenant_owned_secrets_are_shared_within_the_tenant_only() -> Result<()> {
    let (_infra, app) = app().await?;
    let id = app
        .create(
            "u1",
            json!({"name": "shared", "type": "API_KEY", "owners": [{"id": "t1", "type": "TENANT"}], "value": {"key": "k-0123456789"}}),
        )
        .await?;
    let same_tenant = app.get(&format!("/api/v1/secrets/{id}"), "u2").await?;
    assert_eq!(same_tenant.status, StatusCode::OK);
    assert_eq!(same_tenant.body["data"]["value"]["key"], "********6789");
    assert_eq!(total(&app, "u2").await?, 1);

    let other_tenant = app.get(&format!("/api/v1/secrets/{id}"), "u3").await?;
    assert_eq!(other_tenant.status, StatusCode::FORBIDDEN);
    assert!(other_tenant.body["message"].is_string());
    assert_eq!(total(&app, "u3").await?, 0);
    Ok(())
}

#[tokio::test]
async fn another_tenant_cannot_touch_a_secret_on_any_endpoint() -> Result<()> {
    let (_infra, app) = app().await?;
    let id = app.create("u1", simple("mine", "bob", "hunter2")).await?;
    let path = format!("/api/v1/secrets/{id}");
    let attempts = [
        app.get(&path, "u3").await?,
        app.patch(&path, "u3", json!({"name": "stolen"})).await?,
        app.delete(&path, "u3").await?,
        app.post(&format!("{path}/owners"), "u3", json!({"id": "u3"}))
            .await?,
        app.delete(&format!("{path}/owners?id=u1"), "u3").await?,
        app.post(
            &format!("{path}/validateHmac"),
            "u3",
            json!({"hmacValue": "x", "hmacAlgo": "sha256", "rawBody": {"data": "x"}}),
        )
        .await?,
    ];
    for reply in attempts {
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
        assert!(reply.body["message"].is_string());
    }
    // Same for a user of the same tenant who is not an owner.
    assert_eq!(app.get(&path, "u2").await?.status, StatusCode::FORBIDDEN);
    let unchanged = app.get(&path, "u1raw").await?;
    assert_eq!(unchanged.body["data"]["name"], "mine");
    assert_eq!(
        unchanged.body["data"]["owners"],
        json!([{"id": "u1", "type": "USER"}])
    );
    Ok(())
}

#[tokio::test]
async fn unknown_and_malformed_ids() -> Result<()> {
    let (_infra, app) = app().await?;
    let missing = app
        .get("/api/v1/secrets/5f6a7b8c9d0e1f2a3b4c5d6e", "u1")
        .await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, json!({"message": "Secret not found"}));
    for path in [
        "/api/v1/secrets/not-an-id",
        "/api/v1/secrets/not-an-id/owners",
    ] {
        let reply = app.post(path, "u1", json!({"id": "x"})).await?;
        assert!(reply.status.is_client_error(), "{path}");
    }
    // Ids are hexadecimal: either case names the same secret.
    let id = app.create("u1", simple("s", "a", "b")).await?;
    let upper = id.to_ascii_uppercase();
    assert_eq!(
        app.get(&format!("/api/v1/secrets/{upper}"), "u1")
            .await?
            .status,
        StatusCode::OK
    );
    let renamed = app
        .patch(
            &format!("/api/v1/secrets/{upper}"),
            "u1",
            json!({"name": "t"}),
        )
        .await?;
    assert_eq!(renamed.body["data"]["_id"], id.as_str());
    let malformed = app.get("/api/v1/secrets/xyz", "u1").await?;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body, json!({"message": "Invalid secret id"}));
    assert_eq!(
        app.delete("/api/v1/secrets/5f6a7b8c9d0e1f2a3b4c5d6e", "u1")
            .await?
            .status,
        StatusCode::NOT_FOUND
    );
    Ok(())
}

#[tokio::test]
async fn patch_name_and_value() -> Result<()> {
    let (_infra, app) = app().await?;
    let id = app
        .create("u1", simple("before", "bob", "old-pass"))
        .await?;
    let path = format!("/api/v1/secrets/{id}");
    let reply = app
        .patch(&path, "u1", json!({"data": {"name": "after", "value": {"passphrase": "new-pass"}, "encryptedFields": ["bogus"], "tenant": "t2"}}))
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // The PATCH answer is masked like a GET (OIH returned stored values).
    assert_eq!(reply.body["data"]["value"]["passphrase"], "***");
    assert_eq!(reply.body["data"]["tenant"], "t1");
    let raw = app.get(&path, "u1raw").await?;
    assert_eq!(raw.body["data"]["name"], "after");
    assert_eq!(
        raw.body["data"]["value"],
        json!({"username": "bob", "passphrase": "new-pass"})
    );

    let bad = [
        (
            json!({"type": "MIXED"}),
            "The type of a secret cannot be changed",
        ),
        (
            json!({"value": {"passphrase": null}}),
            "S_SIMPLE validation failed: value.passphrase: Path `value.passphrase` is required.",
        ),
        (
            json!({"owners": [{"id": "t2", "type": "TENANT"}]}),
            "Owners is not valid",
        ),
        (json!({"owners": []}), "Owners is not valid"),
        (
            json!({"name": ""}),
            "S_SIMPLE validation failed: name: Path `name` is required.",
        ),
        (
            json!({"value": "x"}),
            "S_SIMPLE validation failed: value: must be an object",
        ),
    ];
    for (body, message) in bad {
        let reply = app.patch(&path, "u1", body.clone()).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body["message"], message, "{body}");
    }
    let unchanged = app.get(&path, "u1raw").await?;
    assert_eq!(unchanged.body["data"]["value"]["passphrase"], "new-pass");
    assert_eq!(
        unchanged.body["data"]["owners"],
        json!([{"id": "u1", "type": "USER"}])
    );
    Ok(())
}

#[tokio::test]
async fn owners_add_remove_and_shared_delete() -> Result<()> {
    let (_infra, app) = app().await?;
    let id = app.create("u1", simple("s", "bob", "pw")).await?;
    let path = format!("/api/v1/secrets/{id}");

    let missing = app
        .post(&format!("{path}/owners"), "u1", json!({"type": "USER"}))
        .await?;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.body["message"],
        "Owners cannot be empty. Body must contain data: { id: String, type?: String }"
    );
    let foreign_tenant = app
        .post(
            &format!("{path}/owners"),
            "u1",
            json!({"id": "t2", "type": "TENANT"}),
        )
        .await?;
    assert_eq!(foreign_tenant.status, StatusCode::BAD_REQUEST);

    let added = app
        .post(
            &format!("{path}/owners"),
            "u1",
            json!({"data": {"id": "u2"}}),
        )
        .await?;
    assert_eq!(added.status, StatusCode::OK);
    assert_eq!(
        added.body["data"]["owners"].as_array().map(Vec::len),
        Some(2)
    );
    // Adding twice keeps one entry.
    let again = app
        .post(&format!("{path}/owners"), "u1", json!({"id": "u2"}))
        .await?;
    assert_eq!(
        again.body["data"]["owners"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(app.get(&path, "u2").await?.status, StatusCode::OK);

    let no_id = app.delete(&format!("{path}/owners"), "u1").await?;
    assert_eq!(no_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        no_id.body["message"],
        "Provide valid owner id and type as query parameters"
    );

    // With two owners, DELETE removes only the caller.
    assert_eq!(
        app.delete(&path, "u1").await?.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&path, "u1").await?.status, StatusCode::FORBIDDEN);
    let left = app.get(&path, "u2").await?;
    assert_eq!(
        left.body["data"]["owners"],
        json!([{"id": "u2", "type": "USER"}])
    );

    // The last owner cannot be removed (the secret would be unreachable).
    let last = app
        .delete(&format!("{path}/owners?id=u2&type=USER"), "u2")
        .await?;
    assert_eq!(last.status, StatusCode::BAD_REQUEST);

    // A sole owner's DELETE deletes it.
    assert_eq!(
        app.delete(&path, "u2").await?.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&path, "u2").await?.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn remove_owner_by_query() -> Result<()> {
    let (_infra, app) = app().await?;
    let id = app
        .create("u1", json!({"name": "s", "type": "SIMPLE", "owners": [{"id": "u2", "type": "USER"}], "value": {"username": "a", "passphrase": "b"}}))
        .await?;
    let path = format!("/api/v1/secrets/{id}");
    let removed = app.delete(&format!("{path}/owners?id=u2"), "u1").await?;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(
        removed.body["data"]["owners"],
        json!([{"id": "u1", "type": "USER"}])
    );
    let bad_type = app
        .delete(&format!("{path}/owners?id=u1&type=GROUP"), "u1")
        .await?;
    assert_eq!(bad_type.status, StatusCode::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn delete_any_needs_the_permission() -> Result<()> {
    let (_infra, app) = app().await?;
    let only_u1 = app.create("u1", simple("a", "u", "p")).await?;
    let shared = app
        .create("u1", json!({"name": "b", "type": "SIMPLE", "owners": [{"id": "u2", "type": "USER"}], "value": {"username": "u", "passphrase": "p"}}))
        .await?;
    for token in ["u1", "tadmin"] {
        let denied = app
            .delete("/api/v1/secrets?userId=u1&type=USER", token)
            .await?;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert_eq!(denied.body["message"], "MISSING_PERMISSION");
    }
    let no_user = app.delete("/api/v1/secrets?type=USER", "service").await?;
    assert_eq!(no_user.status, StatusCode::BAD_REQUEST);

    let done = app
        .delete("/api/v1/secrets?userId=u1&type=USER", "service")
        .await?;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.body, Value::String("OK".into()));
    assert_eq!(total(&app, "u1").await?, 0);
    assert_eq!(
        app.get(&format!("/api/v1/secrets/{only_u1}"), "u1")
            .await?
            .status,
        StatusCode::NOT_FOUND
    );
    let kept = app.get(&format!("/api/v1/secrets/{shared}"), "u2").await?;
    assert_eq!(
        kept.body["data"]["owners"],
        json!([{"id": "u2", "type": "USER"}])
    );
    Ok(())
}

#[tokio::test]
async fn validate_hmac() -> Result<()> {
    let (_infra, app) = app().await?;
    let id = app
        .create(
            "u1",
            json!({"name": "hook", "type": "API_KEY", "value": {"key": "Jefe"}}),
        )
        .await?;
    let path = format!("/api/v1/secrets/{id}/validateHmac");
    // RFC 4231, test case 2.
    let mac = "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=";
    let text = "what do ya want for nothing?";
    let bytes: Vec<u8> = text.bytes().collect();
    let cases = [
        (
            json!({"hmacValue": mac, "hmacAlgo": "sha256", "rawBody": {"data": text}}),
            true,
        ),
        (
            json!({"hmacValue": mac, "hmacAlgo": "sha256", "rawBody": {"type": "Buffer", "data": bytes}}),
            true,
        ),
        (
            json!({"hmacValue": mac, "hmacAlgo": "sha256", "rawBody": {"data": "tampered"}}),
            false,
        ),
        (
            json!({"hmacValue": "AAAA", "hmacAlgo": "sha256", "rawBody": {"data": text}}),
            false,
        ),
    ];
    for (body, expected) in cases {
        let reply = app.post(&path, "u1", body.clone()).await?;
        assert_eq!(reply.status, StatusCode::OK, "{body}");
        assert_eq!(reply.body, json!({"data": expected}), "{body}");
    }
    for body in [
        json!({"hmacValue": mac, "hmacAlgo": "whirlpool", "rawBody": {"data": text}}),
        json!({"hmacAlgo": "sha256", "rawBody": {"data": text}}),
        json!({"hmacValue": mac, "hmacAlgo": "sha256"}),
        json!({"hmacValue": mac, "hmacAlgo": "sha256", "rawBody": {"data": [300]}}),
    ] {
        let reply = app.post(&path, "u1", body.clone()).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let simple_id = app.create("u1", simple("s", "a", "b")).await?;
    let reply = app
        .post(
            &format!("/api/v1/secrets/{simple_id}/validateHmac"),
            "u1",
            json!({"hmacValue": mac, "hmacAlgo": "sha256", "rawBody": {"data": text}}),
        )
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn openapi_document_lists_the_endpoints() -> Result<()> {
    let (_infra, app) = app().await?;
    let doc = app
        .call(
            Method::GET,
            "/api-docs/secret-service/openapi.json",
            None,
            None,
        )
        .await?;
    assert_eq!(doc.status, StatusCode::OK);
    for path in [
        "/api/v1/secrets",
        "/api/v1/secrets/{id}",
        "/api/v1/secrets/{id}/validateHmac",
        "/api/v1/auth-clients/{id}/start-flow",
        "/api/v1/callback",
    ] {
        assert!(doc.body["paths"].get(path).is_some(), "{path}");
    }
    Ok(())
}

#[tokio::test]
async fn oversized_and_mistyped_bodies_are_rejected() -> Result<()> {
    let (_infra, app) = app().await?;
    let huge =
        json!({"name": "x", "type": "MIXED", "value": {"payload": "a".repeat(11 * 1024 * 1024)}});
    let reply = app.post("/api/v1/secrets", "u1", huge).await?;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body, json!({"message": "request entity too large"}));

    let text = app
        .call_raw(
            Method::POST,
            "/api/v1/secrets",
            Some("u1"),
            Some(b"42".to_vec()),
        )
        .await?;
    assert_eq!(text.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        text.body,
        json!({"message": "The body must be a JSON object"})
    );
    assert_eq!(total(&app, "u1").await?, 0);
    Ok(())
}
