//! Reading schemas from inside the hub, for services that run in the same process (the ILS):
//! the same access rule as `GET /domains/{id}/schemas/{uri…}`, without an HTTP round trip.

use std::sync::Arc;

use oih_core::Identity;
use oih_store::{DocStore, StoreError};
use serde_json::{Map, Value};

use crate::access;
use crate::processing::schema_uri;
use crate::store::MetaStore;

/// Where referenced schemas are embedded in a bundle; each keeps its own `$id`, which is what
/// the root's (absolute, rewritten) `$ref`s name, so a validator resolves them locally.
const BUNDLE_KEY_PREFIX: &str = "oih-bundled-";

#[derive(Clone)]
pub struct SchemaReader {
    store: Arc<MetaStore>,
}

impl SchemaReader {
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self, StoreError> {
        Ok(Self {
            store: Arc::new(MetaStore::open(docs).await?),
        })
    }

    /// The schema at `path` in the domain, bundled with every schema it references
    /// (transitively) that `who` may read, or None when the domain or schema does not exist or
    /// `who` may not read the domain (as over HTTP, where that is a 403/404).
    pub async fn read(
        &self,
        who: &Identity,
        domain_id: &str,
        path: &str,
    ) -> Result<Option<Value>, StoreError> {
        let domain = self.store.domain(domain_id).await?;
        let Ok(domain) = access::read(who, domain) else {
            return Ok(None);
        };
        let Some(schema) = self.store.schema(&schema_uri(&domain.id, path)).await? else {
            return Ok(None);
        };
        let Ok(mut root) = serde_json::from_str::<Value>(&schema.value) else {
            return Ok(None);
        };
        let mut bundled = Vec::new();
        for uri in &schema.refs {
            let Some(referenced) = self.store.schema(uri).await? else {
                continue;
            };
            // A reference into a domain the caller cannot read stays unresolved, so the schema
            // fails to compile for them, as it would over HTTP.
            if access::read(who, self.store.domain(&referenced.domain_id).await?).is_err() {
                continue;
            }
            if let Ok(value) = serde_json::from_str::<Value>(&referenced.value) {
                bundled.push(value);
            }
        }
        bundle(&mut root, bundled);
        Ok(Some(root))
    }
}

/// Embeds `docs` under the root's definitions keyword (`$defs` from draft 2019-09 on).
fn bundle(root: &mut Value, docs: Vec<Value>) {
    if docs.is_empty() {
        return;
    }
    let modern = root
        .get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|s| s.contains("2019-09") || s.contains("2020-12"));
    let keyword = if modern { "$defs" } else { "definitions" };
    let Some(obj) = root.as_object_mut() else {
        return;
    };
    let defs = obj
        .entry(keyword)
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(defs) = defs.as_object_mut() else {
        return;
    };
    for (i, doc) in docs.into_iter().enumerate() {
        defs.insert(format!("{BUNDLE_KEY_PREFIX}{i}"), doc);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::bundle;

    #[test]
    fn referenced_schemas_go_under_the_drafts_definitions_keyword() {
        let mut old =
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"a": {}}});
        bundle(&mut old, vec![json!({"$id": "http://h/x.json"})]);
        assert_eq!(old["definitions"]["a"], json!({}));
        assert_eq!(
            old["definitions"]["oih-bundled-0"]["$id"],
            "http://h/x.json"
        );

        let mut new = json!({"$schema": "https://json-schema.org/draft/2020-12/schema"});
        bundle(&mut new, vec![json!({"$id": "http://h/y.json"})]);
        assert_eq!(new["$defs"]["oih-bundled-0"]["$id"], "http://h/y.json");
    }
}
