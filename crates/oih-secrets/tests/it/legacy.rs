//! Migrating an OIH secret store (`mongoexport` of its `secrets` collection).
//!
//! The ciphertexts below were produced with Node 20 exactly as OIH's secret-service encrypts
//! (`src/util/crypto.js`: `createCipher('aes-256-cbc', CRYPTO_KEY)`, latin1 output), with
//! CRYPTO_KEY `oih-crypto-key`, and are written here as hex of their latin1 bytes:
//!
//! ```sh
//! node -e 'const c=require("crypto");
//!   const enc=(v,k)=>{const x=c.createCipher("aes-256-cbc",k);return x.update(v,"utf8","latin1")+x.final("latin1")};
//!   for (const v of ["bob","hunter2","grüße €",JSON.stringify({user:"alice",password:"wonderland"}),"ya29.access-token"])
//!     console.log(JSON.stringify(v), Buffer.from(enc(v,"oih-crypto-key"),"latin1").toString("hex"))'
//! ```

use anyhow::Result;
use oih_secrets::{ImportReport, import_oih};
use serde_json::{Value, json};

use crate::support::{Infra, config};

const CRYPTO_KEY: &str = "oih-crypto-key";
const BOB: &str = "0855abfa58ea306ceb34d4976ec75d0e";
const HUNTER2: &str = "4e9e8dd74f6b026d1736086bcf35f361";
const GRUSSE: &str = "05ee8ce7f36df2c6cf0f7a31f0082da9";
const INPUT_FIELDS: &str = "2f1d7dc329c41207ca2bcc90b59c12dfe133854416027c735277c15714c88b540ab445dbfdc055b3fcec13273b80d4e7";
const ACCESS_TOKEN: &str = "ff11f44696de7b60f934ca3488387bcfcb5359b8d3f26c6134556e43482f143c";

/// The latin1 string OIH stored for these bytes.
fn latin1(hex: &str) -> String {
    (0..hex.len())
        .step_by(2)
        .map(|i| char::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_default()))
        .collect()
}

const SIMPLE_ID: &str = "5f6a7b8c9d0e1f2a3b4c5d01";
const MIXED_ID: &str = "5f6a7b8c9d0e1f2a3b4c5d02";
const SESSION_ID: &str = "5f6a7b8c9d0e1f2a3b4c5d03";
const OA2_ID: &str = "5f6a7b8c9d0e1f2a3b4c5d04";

/// One Extended-JSON document per line, as `mongoexport --collection secrets` writes them.
fn export() -> String {
    let docs = [
        json!({"_id": {"$oid": SIMPLE_ID}, "__t": "S_SIMPLE", "type": "SIMPLE", "name": "db",
               "owners": [{"id": "u1", "type": "USER"}, {"id": "sa1", "type": "SERVICE_ACCOUNT"}],
               "value": {"username": latin1(BOB), "passphrase": latin1(HUNTER2)},
               "encryptedFields": ["username", "passphrase"], "__v": 0,
               "createdAt": {"$date": "2024-01-01T00:00:00.000Z"}}),
        json!({"_id": {"$oid": MIXED_ID}, "type": "MIXED", "name": "mixed",
               "owners": [{"id": "t1", "type": "TENANT"}],
               "value": {"payload": latin1(GRUSSE)}, "encryptedFields": ["payload"]}),
        json!({"_id": {"$oid": SESSION_ID}, "type": "SESSION_AUTH", "name": "session",
               "owners": [{"id": "u1", "type": "USER"}],
               "value": {"authClientId": {"$oid": "5f6a7b8c9d0e1f2a3b4c5dff"}, "inputFields": latin1(INPUT_FIELDS)},
               "encryptedFields": ["inputFields"]}),
        json!({"_id": {"$oid": OA2_ID}, "type": "OA2_AUTHORIZATION_CODE", "name": "oauth",
               "owners": [{"id": "u1", "type": "USER"}],
               "value": {"authClientId": {"$oid": "5f6a7b8c9d0e1f2a3b4c5dff"}, "accessToken": latin1(ACCESS_TOKEN),
                         "expires": "2030-01-01T00:00:00+00:00", "scope": "openid"},
               "encryptedFields": ["accessToken"]}),
        json!({"_id": {"$oid": "5f6a7b8c9d0e1f2a3b4c5d05"}, "type": "SIMPLE", "name": "orphan",
               "owners": [{"id": "g1", "type": "GROUP"}], "value": {"username": "x", "passphrase": "y"}}),
        json!({"_id": {"$oid": "5f6a7b8c9d0e1f2a3b4c5d06"}, "type": "TELEPATHY", "name": "odd",
               "owners": [{"id": "u1", "type": "USER"}], "value": {}}),
    ];
    docs.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn an_oih_export_is_imported_with_ids_and_values() -> Result<()> {
    let infra = Infra::new().await?;
    let cfg = config(infra.dir.path());
    let report = import_oih(&cfg, infra.docs.clone(), &export(), Some(CRYPTO_KEY)).await?;
    assert_eq!(report.imported, 4);
    assert_eq!(report.already_present, 0);
    let failed: Vec<&str> = report.failed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        failed,
        ["5f6a7b8c9d0e1f2a3b4c5d05", "5f6a7b8c9d0e1f2a3b4c5d06"]
    );

    let app = infra.app(cfg.clone()).await?;
    let simple = app
        .get(&format!("/api/v1/secrets/{SIMPLE_ID}"), "u1raw")
        .await?;
    assert_eq!(
        simple.body["data"]["value"],
        json!({"username": "bob", "passphrase": "hunter2"})
    );
    // The SERVICE_ACCOUNT owner, which granted nothing, is dropped.
    assert_eq!(
        simple.body["data"]["owners"],
        json!([{"id": "u1", "type": "USER"}])
    );

    let mixed = app
        .get(&format!("/api/v1/secrets/{MIXED_ID}"), "u2")
        .await?;
    assert_eq!(mixed.body["data"]["tenant"], "t1");
    let mixed_raw = app
        .get(&format!("/api/v1/secrets/{MIXED_ID}"), "u1raw")
        .await?;
    assert_eq!(mixed_raw.body["data"]["value"]["payload"], "grüße €");

    let oa2 = app
        .get(&format!("/api/v1/secrets/{OA2_ID}"), "u1raw")
        .await?;
    assert_eq!(
        oa2.body["data"]["value"]["accessToken"],
        "ya29.access-token"
    );
    assert_eq!(
        oa2.body["data"]["value"]["authClientId"],
        "5f6a7b8c9d0e1f2a3b4c5dff"
    );

    // Values are now sealed with our keys, and OIH's ciphertext is gone.
    let stored = infra
        .docs
        .get(oih_store::Collection("secrets_secrets"), SESSION_ID)
        .await?
        .ok_or_else(|| anyhow::anyhow!("not stored"))?;
    assert_eq!(stored.body["encryptedFields"], json!(["inputFields"]));
    assert!(!stored.body.to_string().contains("wonderland"));
    assert_ne!(stored.body["value"]["inputFields"], latin1(INPUT_FIELDS));

    // Running it again changes nothing.
    let again = import_oih(&cfg, infra.docs.clone(), &export(), Some(CRYPTO_KEY)).await?;
    assert_eq!(again.imported, 0);
    assert_eq!(again.already_present, 4);
    Ok(())
}

#[tokio::test]
async fn a_wrong_or_missing_crypto_key_imports_nothing_encrypted() -> Result<()> {
    let infra = Infra::new().await?;
    let cfg = config(infra.dir.path());
    let one = json!([{"_id": SIMPLE_ID, "type": "SIMPLE", "name": "db",
        "owners": [{"id": "u1", "type": "USER"}],
        "value": {"username": latin1(BOB), "passphrase": latin1(HUNTER2)},
        "encryptedFields": ["username", "passphrase"]}])
    .to_string();
    for password in [Some("not-the-key"), None] {
        let report = import_oih(&cfg, infra.docs.clone(), &one, password).await?;
        assert_eq!(report.imported, 0);
        let ImportReport { failed, .. } = report;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, SIMPLE_ID);
    }
    assert!(
        import_oih(&cfg, infra.docs.clone(), "{not json", Some(CRYPTO_KEY))
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn oih_auth_clients_are_imported_and_sealed() -> Result<()> {
    let infra = Infra::new().await?;
    let cfg = config(infra.dir.path());
    let export = json!([
        {"_id": {"$oid": "5f6a7b8c9d0e1f2a3b4c5dff"}, "__t": "A_OA2_AUTHORIZATION_CODE", "name": "google",
         "owners": [{"id": "u1", "type": "USER"}], "tenant": "t1", "preprocessor": "preprocessor.oidc",
         "clientId": "gid", "clientSecret": "gsecret", "redirectUri": "https://hub/callback",
         "endpoints": {"auth": "https://accounts/auth", "token": "https://accounts/token"},
         "createdAt": {"$date": "2024-01-01T00:00:00.000Z"}, "__v": 0},
        {"_id": {"$oid": "5f6a7b8c9d0e1f2a3b4c5dfe"}, "__t": "A_OA2_AUTHORIZATION_CODE", "name": "broken",
         "owners": [{"id": "u1", "type": "USER"}], "clientId": "x"}
    ])
    .to_string();
    let report = oih_secrets::import_oih_auth_clients(&cfg, infra.docs.clone(), &export).await?;
    assert_eq!(report.imported, 1);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "5f6a7b8c9d0e1f2a3b4c5dfe");

    let stored = infra
        .docs
        .get(
            oih_store::Collection("secrets_auth_clients"),
            "5f6a7b8c9d0e1f2a3b4c5dff",
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("not stored"))?;
    assert!(!stored.body.to_string().contains("gsecret"));
    let app = infra.app(cfg).await?;
    let raw = app
        .get("/api/v1/auth-clients/5f6a7b8c9d0e1f2a3b4c5dff", "clientraw")
        .await?;
    assert_eq!(raw.body["data"]["clientSecret"], "gsecret");
    assert_eq!(raw.body["data"]["type"], "OA2_AUTHORIZATION_CODE");
    assert_eq!(raw.body["data"]["preprocessor"], "preprocessor.oidc");
    Ok(())
}
