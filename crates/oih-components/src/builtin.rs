//! The built-in component catalogue: components compiled into the hub (the runtime's), listed
//! as ordinary public components so a flow node can reference them by `componentId`.
//!
//! Each gets an id derived from its name, so every start and every replica writes the same
//! document; the catalogue is rewritten on start and cannot be changed through the API.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Error;
use crate::model::component::{Component, Distribution};
use crate::store::{COMPONENTS, Repo};

/// What the runtime tells us about one built-in component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltinDescriptor {
    /// The runtime's name for it (`distribution.name`), stable across releases.
    pub name: String,
    /// Display name (the component's `name`, at most 50 characters).
    pub title: String,
    pub description: String,
    #[serde(default)]
    pub triggers: Vec<BuiltinFunction>,
    #[serde(default)]
    pub actions: Vec<BuiltinFunction>,
}

/// A trigger or action of a built-in component, described as component.json does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltinFunction {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Configuration fields (component.json `fields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Value>,
    /// `{in, out}` JSON schemas (component.json `metadata`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// The id of the built-in component `name`: four zero bytes (a creation time of 1970, which
/// no id made by `ObjectId::new` has, so it cannot collide with a user's component) followed
/// by the 64-bit FNV-1a hash of the name.
pub fn builtin_id(name: &str) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = name
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    format!("00000000{hash:016x}")
}

/// The installed catalogue: which component ids are read-only, and which names a `builtin`
/// distribution may use.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    /// id → runtime name.
    ids: HashMap<String, String>,
    names: HashSet<String>,
}

impl Catalogue {
    pub fn names(&self) -> &HashSet<String> {
        &self.names
    }

    /// The runtime name if `id` is a catalogue component.
    pub fn builtin_name(&self, id: &str) -> Option<&str> {
        self.ids.get(id).map(String::as_str)
    }

    fn build(descriptors: &[BuiltinDescriptor]) -> Result<Self, Error> {
        let mut catalogue = Self::default();
        for d in descriptors {
            if !catalogue.names.insert(d.name.clone()) {
                return Err(Error::InvalidBuiltin {
                    name: d.name.clone(),
                    reason: "listed twice".into(),
                });
            }
            catalogue.ids.insert(builtin_id(&d.name), d.name.clone());
        }
        Ok(catalogue)
    }
}

fn function_map(functions: &[BuiltinFunction]) -> Value {
    let map: Map<String, Value> = functions
        .iter()
        .map(|f| {
            let mut entry = json!({"title": f.title, "main": f.name, "description": f.description});
            if let Some(fields) = &f.fields {
                entry["fields"] = fields.clone();
            }
            if let Some(metadata) = &f.metadata {
                entry["metadata"] = metadata.clone();
            }
            (f.name.clone(), entry)
        })
        .collect();
    Value::Object(map)
}

fn component(d: &BuiltinDescriptor) -> Component {
    Component {
        artifact_id: None,
        version: None,
        repository: None,
        maintainer: None,
        actions: Some(function_map(&d.actions)),
        triggers: Some(function_map(&d.triggers)),
        rating: None,
        name: Some(d.title.clone()),
        description: Some(d.description.clone()),
        access: "public".into(),
        is_global: false,
        resources: None,
        active: false,
        descriptor: None,
        distribution: Distribution {
            kind: "builtin".into(),
            name: Some(d.name.clone()),
            ..Distribution::default()
        },
        application_uid: None,
        logo: None,
        tenant: None,
        owners: Vec::new(),
        special_flags: None,
    }
}

/// Validates the descriptors and writes each as a component (unchanged ones are left alone).
pub async fn install(repo: &Repo, descriptors: &[BuiltinDescriptor]) -> Result<Catalogue, Error> {
    let catalogue = Catalogue::build(descriptors)?;
    for d in descriptors {
        let body = component(d);
        body.validate(catalogue.names())
            .map_err(|e| Error::InvalidBuiltin {
                name: d.name.clone(),
                reason: e
                    .report()
                    .errors
                    .into_iter()
                    .map(|entry| entry.message)
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
        repo.upsert(COMPONENTS, &builtin_id(&d.name), &body).await?;
    }
    Ok(catalogue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_valid_and_distinct() {
        let a = builtin_id("http-request");
        assert_eq!(a, builtin_id("http-request"));
        assert!(oih_core::ObjectId::is_valid(&a));
        assert!(a.starts_with("00000000"));
        assert_ne!(a, builtin_id("http-requesu"));
        // FNV-1a of the empty string is the offset basis: the hash is the documented one.
        assert_eq!(builtin_id(""), "00000000cbf29ce484222325");
    }
}
