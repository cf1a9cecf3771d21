//! Encryption at rest and key management: what the store holds, per-tenant data keys, the
//! generated master key, production mode, master-key rotation and re-encryption.

use anyhow::Result;
use axum::http::StatusCode;
use oih_secrets::crypto::Envelope;
use oih_secrets::{Config, Error, KeyError, MASTER_KEY_FILE_NAME, reencrypt_all, rewrap_data_keys};
use oih_store::{Collection, DocStore, Filter, FindOptions};
use serde_json::{Value, json};

use crate::support::{Infra, config, oa2_client, simple};

const SECRETS: Collection = Collection("secrets_secrets");
const KEYS: Collection = Collection("secrets_keys");

async fn stored(docs: &dyn DocStore, id: &str) -> Result<Value> {
    Ok(docs
        .get(SECRETS, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("secret {id} not stored"))?
        .body)
}

fn key_id_of(body: &Value, field: &str) -> Result<String> {
    let text = body["value"][field]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{field} is not a string"))?;
    Ok(Envelope::parse(text)?.key_id.to_string())
}

#[tokio::test]
async fn values_are_sealed_in_the_store() -> Result<()> {
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let simple_id = app.create("u1", simple("db", "bob", "hunter2")).await?;
    let key_id = app
        .create("u1", json!({"name": "k", "type": "API_KEY", "value": {"key": "api-key-value", "headerName": "X-Key"}}))
        .await?;
    let session_id = {
        let client = oa2_client(&app, "u1", "https://provider.example/token").await?;
        app.create(
            "u1",
            json!({"name": "s", "type": "SESSION_AUTH", "value": {"authClientId": client, "inputFields": {"user": "alice", "password": "wonderland"}}}),
        )
        .await?
    };

    let body = stored(infra.docs.as_ref(), &simple_id).await?;
    assert_eq!(body["encryptedFields"], json!(["passphrase", "username"]));
    let text = body.to_string();
    assert!(!text.contains("hunter2") && !text.contains("bob"), "{text}");

    let body = stored(infra.docs.as_ref(), &key_id).await?;
    assert_eq!(body["encryptedFields"], json!(["key"]));
    assert_eq!(body["value"]["headerName"], "X-Key");
    assert!(!body.to_string().contains("api-key-value"));

    let body = stored(infra.docs.as_ref(), &session_id).await?;
    assert!(!body.to_string().contains("wonderland"));

    let raw = app
        .get(&format!("/api/v1/secrets/{key_id}"), "u1raw")
        .await?;
    assert_eq!(raw.body["data"]["value"]["key"], "api-key-value");
    Ok(())
}

#[tokio::test]
async fn each_tenant_has_its_own_data_key() -> Result<()> {
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let a = app.create("u1", simple("a", "x", "y")).await?;
    let b = app.create("u2", simple("b", "x", "y")).await?;
    let c = app.create("u3", simple("c", "x", "y")).await?;
    let a_key = key_id_of(&stored(infra.docs.as_ref(), &a).await?, "passphrase")?;
    let b_key = key_id_of(&stored(infra.docs.as_ref(), &b).await?, "passphrase")?;
    let c_key = key_id_of(&stored(infra.docs.as_ref(), &c).await?, "passphrase")?;
    assert_eq!(a_key, b_key, "t1 shares one key");
    assert_ne!(a_key, c_key, "t2 has another");
    let keys = infra
        .docs
        .find(KEYS, &Filter::All, &FindOptions::default())
        .await?;
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert!(key.body["wrappedKey"].is_string());
        assert!(key.body["masterKeyId"].is_string());
    }
    Ok(())
}

#[tokio::test]
async fn a_sealed_value_moved_to_another_secret_does_not_open() -> Result<()> {
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    let a = app.create("u1", simple("a", "alice", "pa")).await?;
    let b = app.create("u1", simple("b", "bob", "pb")).await?;
    let doc_a = infra
        .docs
        .get(SECRETS, &a)
        .await?
        .ok_or_else(|| anyhow::anyhow!("a"))?;
    let mut body_b = stored(infra.docs.as_ref(), &b).await?;
    body_b["value"]["passphrase"] = doc_a.body["value"]["passphrase"].clone();
    infra.docs.update(SECRETS, &b, None, body_b).await?;
    let reply = app.get(&format!("/api/v1/secrets/{b}"), "u1raw").await?;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!reply.body.to_string().contains("pa"));
    Ok(())
}

fn without_key(infra: &Infra) -> Config {
    Config {
        master_key: None,
        ..config(infra.dir.path())
    }
}

#[tokio::test]
async fn generated_master_key_survives_a_restart() -> Result<()> {
    let infra = Infra::new().await?;
    let id = {
        let app = infra.app(without_key(&infra)).await?;
        app.create("u1", simple("db", "bob", "hunter2")).await?
    };
    let path = infra.dir.path().join(MASTER_KEY_FILE_NAME);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
    }
    let first = std::fs::read_to_string(&path)?;
    let app = infra.app(without_key(&infra)).await?;
    assert_eq!(
        std::fs::read_to_string(&path)?,
        first,
        "the key is not regenerated"
    );
    let reply = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(reply.body["data"]["value"]["passphrase"], "hunter2");

    // The same file can be named explicitly.
    let explicit = Config {
        master_key_file: Some(path),
        data_dir: std::env::temp_dir().join("unused-oih-secrets-dir"),
        ..without_key(&infra)
    };
    let app = infra.app(explicit).await?;
    assert_eq!(
        app.get(&format!("/api/v1/secrets/{id}"), "u1raw")
            .await?
            .status,
        StatusCode::OK
    );
    Ok(())
}

#[tokio::test]
async fn production_needs_an_explicit_key() -> Result<()> {
    let infra = Infra::new().await?;
    let production = Config {
        production: true,
        ..without_key(&infra)
    };
    match oih_secrets::module(production.clone(), infra.deps()).await {
        Err(Error::Keys(KeyError::MasterKeyRequired)) => {}
        other => anyhow::bail!("expected MasterKeyRequired, got {:?}", other.map(|_| ())),
    }
    assert!(!infra.dir.path().join(MASTER_KEY_FILE_NAME).exists());
    // OIH's CRYPTO_KEY counts as explicit.
    let with_crypto_key = Config {
        crypto_key: Some("an OIH crypto key value".into()),
        ..production
    };
    infra.app(with_crypto_key).await?;
    Ok(())
}

#[tokio::test]
async fn the_wrong_master_key_refuses_to_start() -> Result<()> {
    let infra = Infra::new().await?;
    let app = infra.app(config(infra.dir.path())).await?;
    app.create("u1", simple("db", "bob", "hunter2")).await?;
    let wrong = Config {
        master_key: Some("some other key, not the one used".into()),
        ..config(infra.dir.path())
    };
    match oih_secrets::module(wrong, infra.deps()).await {
        Err(Error::Keys(KeyError::UnknownMasterKey { count: 1, .. })) => Ok(()),
        other => anyhow::bail!("expected UnknownMasterKey, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn master_key_rotation_rewraps_without_touching_secrets() -> Result<()> {
    let infra = Infra::new().await?;
    let old = config(infra.dir.path());
    let id = infra
        .app(old.clone())
        .await?
        .create("u1", simple("db", "bob", "hunter2"))
        .await?;
    let before = stored(infra.docs.as_ref(), &id).await?;

    let rotated = Config {
        master_key: Some("the new master key 0123456789".into()),
        previous_master_key: old.master_key.clone(),
        ..old.clone()
    };
    // One data key (tenant t1) is re-wrapped; a second run finds nothing left to do.
    assert_eq!(rewrap_data_keys(&rotated, infra.docs.clone()).await?, 1);
    assert_eq!(rewrap_data_keys(&rotated, infra.docs.clone()).await?, 0);
    infra.app(rotated.clone()).await?;
    // The secret itself was not rewritten; its data key was re-wrapped.
    assert_eq!(stored(infra.docs.as_ref(), &id).await?, before);

    // From now on the new key alone is enough, and the old one no longer works.
    let new_only = Config {
        previous_master_key: None,
        ..rotated
    };
    let app = infra.app(new_only).await?;
    let reply = app.get(&format!("/api/v1/secrets/{id}"), "u1raw").await?;
    assert_eq!(reply.body["data"]["value"]["passphrase"], "hunter2");
    assert!(oih_secrets::module(old, infra.deps()).await.is_err());
    Ok(())
}

#[tokio::test]
async fn reencrypt_all_moves_values_to_a_new_data_key() -> Result<()> {
    let infra = Infra::new().await?;
    let cfg = config(infra.dir.path());
    let app = infra.app(cfg.clone()).await?;
    let a = app.create("u1", simple("a", "alice", "pa")).await?;
    let b = app.create("u3", simple("b", "bob", "pb")).await?;
    let key_before = key_id_of(&stored(infra.docs.as_ref(), &a).await?, "username")?;

    let client = oa2_client(&app, "u1", "https://provider.example/token").await?;
    let report = reencrypt_all(&cfg, infra.docs.clone(), true).await?;
    assert_eq!(report.secrets, 2);
    assert_eq!(report.auth_clients, 1);
    assert_eq!(report.rotated_scopes, 2);
    let sealed_client = infra
        .docs
        .get(Collection("secrets_auth_clients"), &client)
        .await?
        .ok_or_else(|| anyhow::anyhow!("client"))?;
    assert_eq!(
        key_id_of(&json!({"value": sealed_client.body}), "clientSecret")?,
        key_id_of(&stored(infra.docs.as_ref(), &a).await?, "username")?
    );

    let after = stored(infra.docs.as_ref(), &a).await?;
    assert_ne!(key_id_of(&after, "username")?, key_before);
    assert_eq!(after["encryptedFields"], json!(["passphrase", "username"]));
    for (id, token, pass) in [(&a, "u1raw", "pa"), (&b, "u3", "pb")] {
        let reply = app.get(&format!("/api/v1/secrets/{id}"), token).await?;
        assert_eq!(reply.body["data"]["value"]["passphrase"], pass);
    }
    // New secrets use the new generation too.
    let c = app.create("u1", simple("c", "carol", "pc")).await?;
    assert_eq!(
        key_id_of(&stored(infra.docs.as_ref(), &c).await?, "username")?,
        key_id_of(&after, "username")?
    );
    Ok(())
}
