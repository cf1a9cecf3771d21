//! Maintenance behind the CLI: re-encrypting everything sealed, and importing an OIH secret
//! store (secrets and auth clients).

use std::sync::Arc;

use oih_core::{ObjectId, Owner, OwnerType};
use oih_store::{DocStore, Filter, FindOptions, SortOrder, StoreError};
use serde_json::{Map, Value};

use crate::client_model::{StoredClient, clean_fields};
use crate::crypto::legacy_decrypt;
use crate::model::{SecretType, StoredSecret, clean_value};
use crate::store::{Clients, Record, Repo, Secrets, SecretsError};
use crate::{Config, Error};

/// What [`reencrypt_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReencryptReport {
    /// Tenants (data-key scopes) that got a new data key generation.
    pub rotated_scopes: usize,
    /// Secrets re-sealed with their tenant's newest data key.
    pub secrets: u64,
    /// Auth clients re-sealed likewise.
    pub auth_clients: u64,
}

/// Re-seals every secret and auth client with its tenant's newest data key, first starting
/// a new data-key generation for every tenant when `rotate_data_keys` is set. Safe to run
/// while the service serves (each document is rewritten with optimistic concurrency) and to
/// run again.
pub async fn reencrypt_all(
    config: &Config,
    docs: Arc<dyn DocStore>,
    rotate_data_keys: bool,
) -> Result<ReencryptReport, Error> {
    let keys = crate::open_keys(config, docs.clone()).await?;
    let mut report = ReencryptReport::default();
    if rotate_data_keys {
        for scope in keys.scopes().await? {
            keys.rotate(&scope).await?;
            report.rotated_scopes += 1;
        }
    }
    report.secrets = reseal_all(&Secrets::open(docs.clone(), keys.clone()).await?).await?;
    report.auth_clients = reseal_all(&Clients::open(docs, keys).await?).await?;
    tracing::info!(
        secrets = report.secrets,
        auth_clients = report.auth_clients,
        rotated_scopes = report.rotated_scopes,
        "re-encrypted secrets"
    );
    Ok(report)
}

async fn reseal_all<T: Record>(repo: &Repo<T>) -> Result<u64, Error> {
    const BATCH: u64 = 200;
    let mut resealed = 0;
    let mut skip = 0;
    loop {
        let opts = FindOptions {
            sort: vec![("_id".into(), SortOrder::Asc)],
            skip,
            limit: Some(BATCH),
        };
        let batch = repo.find(&Filter::All, &opts).await?;
        for (doc, _) in &batch {
            if repo.reseal(&doc.id).await? {
                resealed += 1;
            }
        }
        if (batch.len() as u64) < BATCH {
            return Ok(resealed);
        }
        skip += BATCH;
    }
}

/// What [`import_oih`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    /// Secrets whose id was already present (an earlier run imported them).
    pub already_present: u64,
    /// Documents not imported: (id or position, reason). Reasons never contain values.
    pub failed: Vec<(String, String)>,
}

/// Imports OIH's `secrets` collection from a `mongoexport` file (one Extended-JSON document
/// per line, or a `--jsonArray` array). Values OIH encrypted (listed in `encryptedFields`) are
/// decrypted with `legacy_password` (OIH's CRYPTO_KEY) and sealed with our keys; ids are kept,
/// so flows that reference a secret by id keep working. Re-running skips what is present.
pub async fn import_oih(
    config: &Config,
    docs: Arc<dyn DocStore>,
    export: &str,
    legacy_password: Option<&str>,
) -> Result<ImportReport, Error> {
    let keys = crate::open_keys(config, docs.clone()).await?;
    let secrets = Secrets::open(docs, keys).await?;
    let report = import_with(&secrets, export, |doc| convert(doc, legacy_password)).await?;
    tracing::info!(
        imported = report.imported,
        already_present = report.already_present,
        failed = report.failed.len(),
        "imported OIH secrets"
    );
    Ok(report)
}

/// Imports OIH's `auth-clients` collection (a `mongoexport` file, as for [`import_oih`]), so
/// imported OAuth secrets keep refreshing. OIH stored client credentials in clear; they are
/// sealed here. Ids are kept; re-running skips what is present.
pub async fn import_oih_auth_clients(
    config: &Config,
    docs: Arc<dyn DocStore>,
    export: &str,
) -> Result<ImportReport, Error> {
    let keys = crate::open_keys(config, docs.clone()).await?;
    let clients = Clients::open(docs, keys).await?;
    let report = import_with(&clients, export, convert_client).await?;
    tracing::info!(
        imported = report.imported,
        already_present = report.already_present,
        failed = report.failed.len(),
        "imported OIH auth clients"
    );
    Ok(report)
}

async fn import_with<T: Record>(
    repo: &Repo<T>,
    export: &str,
    convert: impl Fn(&Map<String, Value>) -> Result<(String, T), String>,
) -> Result<ImportReport, Error> {
    let mut report = ImportReport::default();
    for (position, doc) in parse_export(export)?.into_iter().enumerate() {
        let label = oid(doc.get("_id")).unwrap_or_else(|| format!("#{}", position + 1));
        match convert(&doc) {
            Ok((id, record)) => match repo.insert(&id, record).await {
                Ok(_) => report.imported += 1,
                Err(SecretsError::Store(StoreError::Duplicate(_))) => report.already_present += 1,
                Err(err) => return Err(err.into()),
            },
            Err(reason) => report.failed.push((label, reason)),
        }
    }
    Ok(report)
}

fn parse_export(export: &str) -> Result<Vec<Map<String, Value>>, Error> {
    let not_object = |n: usize| Error::Import(format!("document {n} is not a JSON object"));
    let values: Vec<Value> = match serde_json::from_str::<Value>(export.trim()) {
        Ok(Value::Array(items)) => items,
        Ok(single) => vec![single],
        Err(_) => export
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(n, line)| {
                serde_json::from_str(line)
                    .map_err(|_| Error::Import(format!("line {} is not JSON", n + 1)))
            })
            .collect::<Result<_, _>>()?,
    };
    values
        .into_iter()
        .enumerate()
        .map(|(n, v)| match v {
            Value::Object(map) => Ok(map),
            _ => Err(not_object(n + 1)),
        })
        .collect()
}

/// An id as mongoexport writes it (`{"$oid": "..."}`) or as a plain string.
fn oid(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("$oid").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Extended JSON wrappers (`$oid`, `$date`) replaced by their plain values.
fn plain(value: &Value) -> Value {
    match value {
        Value::Object(o) if o.len() == 1 => match o.iter().next() {
            Some((k, v)) if k == "$oid" || k == "$date" => match v {
                Value::Object(inner) => inner
                    .get("$numberLong")
                    .cloned()
                    .unwrap_or_else(|| v.clone()),
                _ => v.clone(),
            },
            _ => Value::Object(o.iter().map(|(k, v)| (k.clone(), plain(v))).collect()),
        },
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), plain(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(plain).collect()),
        other => other.clone(),
    }
}

/// What secrets and auth clients share: id, type (from `type`, or the discriminator `__t`
/// without its prefix), name, owners and tenant.
struct Common {
    id: String,
    kind: SecretType,
    name: String,
    owners: Vec<Owner>,
    tenant: Option<String>,
}

fn common(doc: &Map<String, Value>, prefixes: &[&str]) -> Result<Common, String> {
    let id = oid(doc.get("_id")).ok_or("no _id")?;
    if !ObjectId::is_valid(&id) {
        return Err("_id is not an ObjectId".into());
    }
    let type_name = doc
        .get("type")
        .and_then(Value::as_str)
        .or_else(|| {
            let t = doc.get("__t").and_then(Value::as_str)?;
            prefixes.iter().find_map(|p| t.strip_prefix(p))
        })
        .ok_or("no type")?;
    let kind: SecretType = type_name
        .parse()
        .map_err(|()| format!("unknown type {type_name:?}"))?;
    let name = doc
        .get("name")
        .and_then(Value::as_str)
        .ok_or("no name")?
        .to_owned();
    // OIH also defines SERVICE_ACCOUNT, GROUP and WORKSPACE owners, which nothing grants
    // access through; they are dropped.
    let owners: Vec<Owner> = doc
        .get("owners")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|o| {
                    let id = oid(o.get("id"))?;
                    let kind = match o
                        .get("type")
                        .and_then(Value::as_str)?
                        .to_ascii_uppercase()
                        .as_str()
                    {
                        "USER" => OwnerType::User,
                        "TENANT" => OwnerType::Tenant,
                        _ => return None,
                    };
                    Some(Owner { id, kind })
                })
                .collect()
        })
        .unwrap_or_default();
    if owners.is_empty() {
        return Err("no USER or TENANT owner".into());
    }
    // OIH never set a secret's `tenant`; a TENANT owner tells which tenant's key should seal it.
    let tenant = doc
        .get("tenant")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            owners
                .iter()
                .find(|o| o.kind == OwnerType::Tenant)
                .map(|o| o.id.clone())
        });
    Ok(Common {
        id,
        kind,
        name,
        owners,
        tenant,
    })
}

fn convert_client(doc: &Map<String, Value>) -> Result<(String, StoredClient), String> {
    let common = common(doc, &["C_", "A_"])?;
    let Value::Object(plain_doc) = plain(&Value::Object(doc.clone())) else {
        return Err("not an object".into());
    };
    let client = StoredClient {
        name: common.name,
        kind: common.kind,
        owners: common.owners,
        tenant: common.tenant,
        preprocessor: doc
            .get("preprocessor")
            .and_then(Value::as_str)
            .map(str::to_owned),
        encrypted_fields: Vec::new(),
        fields: clean_fields(common.kind, &plain_doc).map_err(|e| e.0)?,
    };
    Ok((common.id, client))
}

fn convert(
    doc: &Map<String, Value>,
    legacy_password: Option<&str>,
) -> Result<(String, StoredSecret), String> {
    let Common {
        id,
        kind,
        name,
        owners,
        tenant,
    } = common(doc, &["S_"])?;
    let Value::Object(mut value) = plain(doc.get("value").unwrap_or(&Value::Null)) else {
        return Err("value is not an object".into());
    };
    let encrypted: Vec<&str> = doc
        .get("encryptedFields")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for field in encrypted {
        let Some(Value::String(cipher)) = value.get(field) else {
            continue;
        };
        let password = legacy_password.ok_or("values are encrypted but no CRYPTO_KEY was given")?;
        let plain_text = legacy_decrypt(cipher, password)
            .map_err(|e| format!("field {field} cannot be decrypted ({e}): wrong CRYPTO_KEY?"))?;
        let decrypted = if field == "inputFields" {
            serde_json::from_str(&plain_text).unwrap_or(Value::String(plain_text))
        } else {
            Value::String(plain_text)
        };
        value.insert(field.to_owned(), decrypted);
    }
    let secret = StoredSecret {
        name,
        kind,
        owners,
        tenant,
        domain: doc.get("domain").and_then(Value::as_str).map(str::to_owned),
        mixed_properties: doc
            .get("mixedProperties")
            .map(plain)
            .filter(|v| !v.is_null()),
        value: clean_value(kind, &value, false).map_err(|e| e.0)?,
        encrypted_fields: Vec::new(),
        current_error: doc.get("currentError").map(plain).filter(|v| !v.is_null()),
        locked_at: None,
    };
    Ok((id, secret))
}
