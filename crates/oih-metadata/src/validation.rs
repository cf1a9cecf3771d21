//! Validation as a service: compiled validators are cached per schema and dropped when the
//! schema, or any schema it references, changes in this process. The cache also checks the
//! stored version of the schema itself, so a change made elsewhere to the schema is noticed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use jsonschema::Validator;
use serde_json::{Value, json};

use crate::model::Schema;
use crate::processing::{ProcessError, closure, compile};
use crate::store::MetaStore;

/// Beyond this many entries the cache starts over (a bound, not an LRU: recompiling is cheap).
const MAX_ENTRIES: usize = 1024;

struct Entry {
    version: i64,
    /// The schema's uri and every uri it references.
    depends_on: HashSet<String>,
    validator: Arc<Validator>,
}

#[derive(Clone, Default)]
pub struct ValidatorCache {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl ValidatorCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave a half-written entry: keep going.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The validator of `schema`, compiled with its references on first use.
    pub async fn validator(
        &self,
        store: &MetaStore,
        base: &str,
        schema: &Schema,
    ) -> Result<Arc<Validator>, ProcessError> {
        if let Some(entry) = self.lock().get(&schema.uri)
            && entry.version == schema.version
        {
            return Ok(entry.validator.clone());
        }
        let reached = closure(
            store,
            &schema.uri,
            &schema.direct_refs,
            &HashMap::new(),
            None,
        )
        .await?;
        let mut depends_on: HashSet<String> = reached.refs.iter().cloned().collect();
        depends_on.insert(schema.uri.clone());
        let validator = Arc::new(compile(&schema.parsed_value(), base, reached.docs)?);
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            schema.uri.clone(),
            Entry {
                version: schema.version,
                depends_on,
                validator: validator.clone(),
            },
        );
        Ok(validator)
    }

    /// Forgets every validator built from any schema of `uris`.
    pub fn invalidate(&self, uris: &[String]) {
        self.lock()
            .retain(|_, e| !uris.iter().any(|u| e.depends_on.contains(u)));
    }
}

/// Every error of `document` against `validator`, each with the JSON pointer of the offending
/// value (`instancePath`) and of the failing keyword (`schemaPath`).
pub fn report(validator: &Validator, document: &Value) -> Value {
    let errors: Vec<Value> = validator
        .iter_errors(document)
        .map(|e| {
            json!({
                "message": e.to_string(),
                "instancePath": e.instance_path().as_str(),
                "schemaPath": e.schema_path().as_str(),
            })
        })
        .collect();
    json!({"valid": errors.is_empty(), "errors": errors})
}
