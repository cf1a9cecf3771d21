//! Which component a flow node runs, and how it is distributed.
//!
//! The orchestrator asks a [`ComponentResolver`] for each node's component when the flow
//! starts. [`BuiltinIdResolver`] knows the builtin components by the ids the Component
//! Repository gives them; a resolver reading the repository's store replaces it once wired.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

/// How a component is run (the component document's `distribution`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distribution {
    /// Compiled into the hub: `{type: "builtin", name}`.
    Builtin { name: String },
    /// Anything else (`docker`, …), named by its `type`; no driver runs these yet.
    Other { kind: String },
}

impl Distribution {
    /// Reads a component document's `distribution` object.
    pub fn from_json(value: &Value) -> Self {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        match (kind, value.get("name").and_then(Value::as_str)) {
            ("builtin", Some(name)) => Self::Builtin {
                name: name.to_owned(),
            },
            _ => Self::Other {
                kind: kind.to_owned(),
            },
        }
    }
}

/// A node's component as the orchestrator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedComponent {
    pub id: String,
    pub distribution: Distribution,
}

/// Looks components up by id.
#[async_trait]
pub trait ComponentResolver: Send + Sync {
    /// `Ok(None)` when no such component exists; `Err` when the lookup itself failed.
    async fn resolve(
        &self,
        component_id: &str,
    ) -> Result<Option<ResolvedComponent>, oih_store::StoreError>;
}

/// The id the Component Repository stores the builtin component `name` under (the same
/// derivation as `oih_components::builtin_id`: four zero bytes, then the 64-bit FNV-1a hash of
/// the name). Re-implemented here so the orchestrator does not depend on the repository crate;
/// a test pins a known id.
pub fn builtin_id(name: &str) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = name
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    format!("00000000{hash:016x}")
}

/// Resolves the ids of the runtime's builtin components, and nothing else.
pub struct BuiltinIdResolver {
    names: HashMap<String, String>,
}

impl BuiltinIdResolver {
    pub fn new() -> Self {
        let names = oih_runtime::catalogue()
            .iter()
            .map(|c| {
                let name = c.descriptor().name;
                (builtin_id(name), name.to_owned())
            })
            .collect();
        Self { names }
    }
}

impl Default for BuiltinIdResolver {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ComponentResolver for BuiltinIdResolver {
    async fn resolve(
        &self,
        component_id: &str,
    ) -> Result<Option<ResolvedComponent>, oih_store::StoreError> {
        Ok(self.names.get(component_id).map(|name| ResolvedComponent {
            id: component_id.to_owned(),
            distribution: Distribution::Builtin { name: name.clone() },
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builtin_ids_match_the_component_repository() {
        // The value oih-components pins for "", and "noop" computed independently (Python);
        // a divergence would make every builtin node unresolvable.
        assert_eq!(builtin_id(""), "00000000cbf29ce484222325");
        assert_eq!(builtin_id("noop"), "000000003c1110bad16d326d");
    }

    #[tokio::test]
    async fn resolves_builtin_ids_only() {
        let resolver = BuiltinIdResolver::new();
        let noop = resolver
            .resolve(&builtin_id("noop"))
            .await
            .expect("resolve");
        assert_eq!(
            noop.map(|c| c.distribution),
            Some(Distribution::Builtin {
                name: "noop".into()
            })
        );
        let unknown = resolver.resolve("5f1ad0d2ad7a2a4e91234567").await;
        assert_eq!(unknown.expect("resolve"), None);
    }

    #[test]
    fn reads_distributions() {
        assert_eq!(
            Distribution::from_json(&json!({"type": "builtin", "name": "log"})),
            Distribution::Builtin { name: "log".into() }
        );
        assert_eq!(
            Distribution::from_json(&json!({"type": "docker", "image": "x"})),
            Distribution::Other {
                kind: "docker".into()
            }
        );
    }
}
