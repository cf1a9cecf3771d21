//! Which component a node runs, and how it is distributed.
//!
//! The orchestrator asks a [`ComponentResolver`] for each node's component when the flow
//! starts. [`BuiltinIdResolver`] knows the builtin components by the ids the Component
//! Repository gives them; [`RepositoryResolver`] also reads the other components from the
//! repository through a [`ComponentDocuments`] source.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

/// How a component is run (the component document's `distribution`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distribution {
    /// Compiled into the hub: `{type: "builtin", name}`.
    Builtin { name: String },
    /// A local command speaking Ferryman's protocol: `{type: "process", command,
    /// workingDirectory?, env?}`.
    Process(ProcessSpec),
    /// Anything else (`docker`, …), named by its `type`; no driver runs these yet.
    Other { kind: String },
}

/// A `process` distribution: program and arguments (no shell), working directory and extra
/// environment of the child.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Empty when the document has none (or not an array of strings); the driver says so.
    pub command: Vec<String>,
    pub working_directory: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
}

impl Distribution {
    /// Reads a component document's `distribution` object.
    pub fn from_json(value: &Value) -> Self {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        match (kind, value.get("name").and_then(Value::as_str)) {
            ("builtin", Some(name)) => Self::Builtin {
                name: name.to_owned(),
            },
            ("process", _) => Self::Process(ProcessSpec {
                command: value
                    .get("command")
                    .and_then(|c| serde_json::from_value(c.clone()).ok())
                    .unwrap_or_default(),
                working_directory: value
                    .get("workingDirectory")
                    .and_then(Value::as_str)
                    .map(PathBuf::from),
                env: string_map(value.get("env")),
            }),
            _ => Self::Other {
                kind: kind.to_owned(),
            },
        }
    }
}

/// The scalar entries of a JSON object as strings (an environment); others are left out.
fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(map)) = value else {
        return BTreeMap::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect()
}

/// A node's component as the orchestrator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedComponent {
    pub id: String,
    pub distribution: Distribution,
    /// `descriptor.environment.variables`: handed to a process component prefixed with
    /// `ELASTICIO_`, as OIH's Kubernetes driver does.
    pub environment: BTreeMap<String, String>,
}

impl ResolvedComponent {
    /// The component of a repository document (`GET /components/{id}`'s shape).
    pub fn from_document(id: &str, document: &Value) -> Self {
        Self {
            id: id.to_owned(),
            distribution: Distribution::from_json(
                document.get("distribution").unwrap_or(&Value::Null),
            ),
            environment: string_map(document.pointer("/descriptor/environment/variables")),
        }
    }
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
            environment: BTreeMap::new(),
        }))
    }
}

/// Component documents by id, as the Component Repository stores them (in `oih serve`, read
/// in process through the repository's own crate).
#[async_trait]
pub trait ComponentDocuments: Send + Sync {
    /// `Ok(None)` when there is no such component.
    async fn component(&self, id: &str) -> Result<Option<Value>, oih_store::StoreError>;
}

/// Builtin ids without a lookup, every other id from the repository's documents.
pub struct RepositoryResolver {
    builtins: BuiltinIdResolver,
    documents: Arc<dyn ComponentDocuments>,
}

impl RepositoryResolver {
    pub fn new(documents: Arc<dyn ComponentDocuments>) -> Self {
        Self {
            builtins: BuiltinIdResolver::new(),
            documents,
        }
    }
}

#[async_trait]
impl ComponentResolver for RepositoryResolver {
    async fn resolve(
        &self,
        component_id: &str,
    ) -> Result<Option<ResolvedComponent>, oih_store::StoreError> {
        if let Some(builtin) = self.builtins.resolve(component_id).await? {
            return Ok(Some(builtin));
        }
        let document = self.documents.component(component_id).await?;
        Ok(document.map(|doc| ResolvedComponent::from_document(component_id, &doc)))
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

    struct Documents(HashMap<String, Value>);

    #[async_trait]
    impl ComponentDocuments for Documents {
        async fn component(&self, id: &str) -> Result<Option<Value>, oih_store::StoreError> {
            Ok(self.0.get(id).cloned())
        }
    }

    #[tokio::test]
    async fn the_repository_resolver_reads_documents_and_keeps_builtin_ids() {
        let id = "5f1ad0d2ad7a2a4e91234567";
        let document = json!({
            "id": id,
            "name": "ferryman thing",
            "distribution": {
                "type": "process",
                "command": ["node", "run.js"],
                "workingDirectory": "/srv/c",
                "env": {"A": "1", "N": 2, "NESTED": {"x": 1}},
            },
            "descriptor": {"environment": {"variables": {"REBOUND_LIMIT": "3", "FLAG": true}}},
        });
        let resolver =
            RepositoryResolver::new(Arc::new(Documents(HashMap::from([(id.into(), document)]))));
        let found = resolver.resolve(id).await.expect("resolve").expect("found");
        assert_eq!(
            found.distribution,
            Distribution::Process(ProcessSpec {
                command: vec!["node".into(), "run.js".into()],
                working_directory: Some("/srv/c".into()),
                env: BTreeMap::from([("A".into(), "1".into()), ("N".into(), "2".into())]),
            })
        );
        assert_eq!(
            found.environment,
            BTreeMap::from([
                ("FLAG".into(), "true".into()),
                ("REBOUND_LIMIT".into(), "3".into())
            ])
        );
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
        let missing = resolver.resolve("5f1ad0d2ad7a2a4e9123ffff").await;
        assert_eq!(missing.expect("resolve"), None);
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
        // A process distribution without a usable command still reads as one, so the driver
        // can say what is wrong with it.
        assert_eq!(
            Distribution::from_json(&json!({"type": "process", "command": "node run.js"})),
            Distribution::Process(ProcessSpec::default())
        );
    }
}
