//! Creating, changing and importing schemas: processing (see [`crate::processing`]), then one
//! store transaction per request.

use std::collections::HashMap;

use oih_core::Identity;
use oih_store::StoreError;
use serde_json::Value;

use crate::archive::{ArchiveError, File};
use crate::model::{Domain, Schema, user_owner};
use crate::processing::{
    ArchiveIndex, Node, Origin, ProcessError, Rewritten, closure, meta_validate, rewrite,
};
use crate::store::MetaStore;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Process(#[from] ProcessError),
}

impl From<StoreError> for WriteError {
    fn from(err: StoreError) -> Self {
        Self::Process(ProcessError::Store(err))
    }
}

/// What `import_dir_or_archive` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub domain_id: String,
    /// The uris of the schemas created.
    pub schemas: Vec<String>,
}

/// The caller's `name`, else the schema's `title` (OIH's `body.name || schema.title`).
fn name_or_title(name: Option<String>, schema: &Value) -> Option<String> {
    name.or_else(|| {
        schema
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

fn duplicate(uri: &str) -> WriteError {
    ProcessError::Invalid(format!("Schema {uri} already exists")).into()
}

/// The text a caller sent as a schema's `value`: an object, or JSON text of one.
pub fn schema_value(value: Option<&Value>) -> Result<Value, ProcessError> {
    let parsed = match value {
        Some(Value::String(text)) => serde_json::from_str(text)
            .map_err(|e| ProcessError::Invalid(format!("value is not valid JSON: {e}")))?,
        Some(v @ Value::Object(_)) => v.clone(),
        _ => {
            return Err(ProcessError::Invalid(
                "value must hold the schema (an object or JSON text)".into(),
            ));
        }
    };
    if parsed.is_object() {
        Ok(parsed)
    } else {
        Err(ProcessError::Invalid("value must be a JSON object".into()))
    }
}

/// A schema not stored yet (id, version and timestamps come from the store).
fn new_schema(
    domain: &Domain,
    rewritten: Rewritten,
    name: Option<String>,
    description: Option<String>,
    owners: Vec<oih_core::Owner>,
    refs: Vec<String>,
) -> Schema {
    Schema {
        id: String::new(),
        version: 0,
        name: name_or_title(name, &rewritten.value),
        domain_id: domain.id.clone(),
        description,
        uri: rewritten.uri,
        value: rewritten.value.to_string(),
        owners,
        refs,
        direct_refs: rewritten.direct_refs,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

/// `POST /domains/{id}/schemas`: the creator is the owner (OIH always wrote the domain's first
/// owner).
pub async fn create_schema(
    store: &MetaStore,
    base: &str,
    domain: &Domain,
    user: &Identity,
    name: Option<String>,
    description: Option<String>,
    value: Value,
) -> Result<Schema, WriteError> {
    meta_validate(&value, "/temp")?;
    let rewritten = rewrite(value, base, &domain.id, Origin::Posted)?;
    if store.schema(&rewritten.uri).await?.is_some() {
        return Err(duplicate(&rewritten.uri));
    }
    let reached = closure(
        store,
        &rewritten.uri,
        &rewritten.direct_refs,
        &HashMap::new(),
        Some(user),
    )
    .await?;
    rewritten.check(&reached.docs)?;
    let schema = new_schema(
        domain,
        rewritten,
        name,
        description,
        vec![user_owner(&user.sub)],
        reached.refs,
    );
    let mut created = store
        .insert_schemas(vec![schema.clone()])
        .await
        .map_err(|e| match e {
            StoreError::Duplicate(_) => duplicate(&schema.uri),
            e => e.into(),
        })?;
    created.pop().ok_or_else(|| StoreError::NotFound.into())
}

/// `PUT /domains/{id}/schemas/{uri}`: the `$id` must stay; the `refs` of the schemas that
/// reference this one are recomputed in the same transaction. Returns the changed schema.
pub async fn update_schema(
    store: &MetaStore,
    base: &str,
    existing: Schema,
    user: &Identity,
    name: Option<String>,
    description: Option<String>,
    value: Value,
) -> Result<Schema, WriteError> {
    meta_validate(&value, "/temp")?;
    let rewritten = rewrite(value, base, &existing.domain_id, Origin::Posted)?;
    if rewritten.uri != existing.uri {
        return Err(ProcessError::Invalid("Schema $id must not be changed".into()).into());
    }
    let no_pending = HashMap::new();
    let reached = closure(
        store,
        &existing.uri,
        &rewritten.direct_refs,
        &no_pending,
        Some(user),
    )
    .await?;
    rewritten.check(&reached.docs)?;
    let changed = Schema {
        name: name_or_title(name, &rewritten.value),
        description,
        value: rewritten.value.to_string(),
        refs: reached.refs,
        direct_refs: rewritten.direct_refs.clone(),
        ..existing
    };
    let pending = HashMap::from([(
        changed.uri.clone(),
        Node {
            value: rewritten.value,
            direct_refs: rewritten.direct_refs,
        },
    )]);
    let mut writes = vec![changed.clone()];
    for referrer in store
        .referrers(std::slice::from_ref(&changed.uri), None)
        .await?
    {
        let reached = closure(store, &referrer.uri, &referrer.direct_refs, &pending, None).await?;
        writes.push(Schema {
            refs: reached.refs,
            ..referrer
        });
    }
    let mut written = store.update_schemas(writes).await?;
    Ok(written.swap_remove(0))
}

/// `POST /domains/{id}/schemas/import` and the CLI import: every file becomes a schema at its
/// path under the domain; relative `$ref`s resolve inside the set first, then against the
/// domain's stored schemas. All are created, or none.
pub async fn import_files(
    store: &MetaStore,
    base: &str,
    domain: &Domain,
    files: Vec<File>,
    user: Option<&Identity>,
) -> Result<Vec<Schema>, WriteError> {
    let mut parsed = Vec::with_capacity(files.len());
    let mut archive = ArchiveIndex::default();
    for file in files {
        let value: Value = serde_json::from_slice(&file.bytes)
            .map_err(|e| ProcessError::Invalid(format!("{} is not valid JSON: {e}", file.path)))?;
        meta_validate(&value, &file.path)?;
        archive.add(&file.path, &value);
        parsed.push((file.path, value));
    }
    let mut rewritten = Vec::with_capacity(parsed.len());
    for (location, value) in parsed {
        let origin = Origin::File {
            location: &location,
            archive: &archive,
        };
        let schema = rewrite(value, base, &domain.id, origin)?;
        if store.schema(&schema.uri).await?.is_some() {
            return Err(duplicate(&schema.uri));
        }
        rewritten.push(schema);
    }
    let pending: HashMap<String, Node> = rewritten
        .iter()
        .map(|r| {
            let node = Node {
                value: r.value.clone(),
                direct_refs: r.direct_refs.clone(),
            };
            (r.uri.clone(), node)
        })
        .collect();
    let owners: Vec<_> = user.map(|u| user_owner(&u.sub)).into_iter().collect();
    let mut schemas = Vec::with_capacity(rewritten.len());
    for r in rewritten {
        let reached = closure(store, &r.uri, &r.direct_refs, &pending, user).await?;
        r.check(&reached.docs)?;
        schemas.push(new_schema(
            domain,
            r,
            None,
            None,
            owners.clone(),
            reached.refs,
        ));
    }
    store.insert_schemas(schemas).await.map_err(|e| match e {
        StoreError::Duplicate(what) => {
            ProcessError::Invalid(format!("A schema of the archive already exists ({what})")).into()
        }
        e => e.into(),
    })
}
