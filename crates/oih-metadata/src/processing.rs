//! What happens to a schema before it is stored (data-services.md §5.4, "Schema creation"):
//! meta-schema validation, `$id` rewriting to this service's URL, `$ref` rewriting and
//! resolution (referenced schemas and JSON pointers into them must exist), and the transitive
//! `refs` list; [`compile`] builds a `jsonschema` validator for validation as a service.
//!
//! References are looked up in the store (and, during an import, in the archive being
//! imported); the validator gets them through a [`jsonschema::Retrieve`] implementation over
//! documents loaded beforehand. OIH fetched its own URLs over HTTP. Remote references to other
//! hosts are not fetched.

use std::collections::{HashMap, HashSet, VecDeque};

use jsonschema::{Draft, Retrieve, Uri, Validator};
use oih_core::Identity;
use oih_store::StoreError;
use serde_json::{Value, json};

use crate::API_BASE;
use crate::access;
use crate::store::MetaStore;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The schema (or one of its references) is not acceptable; the message is for the caller.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(message: impl Into<String>) -> ProcessError {
    ProcessError::Invalid(message.into())
}

/// `/api/v1/domains/<domain>/schemas/<path>`: a schema's `uri`, the path of its `$id`.
pub fn schema_uri(domain_id: &str, path: &str) -> String {
    format!("{API_BASE}/domains/{domain_id}/schemas/{path}")
}

/// The draft a schema is written in: the one its `$schema` names, else draft 7 (Ajv 6's
/// default, which OIH used; the `jsonschema` crate would assume 2020-12).
fn draft_of(schema: &Value) -> Draft {
    if schema.get("$schema").is_some() {
        Draft::default().detect(schema)
    } else {
        Draft::Draft7
    }
}

/// Checks a schema against the meta-schema of its draft (4, 6, 7, 2019-09 and 2020-12) and
/// reports every violation, as OIH's `Validation failed for <file> [...]`.
pub fn meta_validate(schema: &Value, label: &str) -> Result<(), ProcessError> {
    if !schema.is_object() {
        return Err(invalid(format!(
            "Validation failed for {label}: a schema must be a JSON object"
        )));
    }
    if let Some(declared) = schema.get("$schema")
        && (!declared.is_string() || draft_of(schema) == Draft::Unknown)
    {
        return Err(invalid(format!(
            "Validation failed for {label}: unsupported $schema {declared} (drafts 4, 6, 7, 2019-09 and 2020-12 are supported)"
        )));
    }
    let meta = match draft_of(schema) {
        Draft::Draft4 => jsonschema::draft4::meta::validator(),
        Draft::Draft6 => jsonschema::draft6::meta::validator(),
        Draft::Draft7 => jsonschema::draft7::meta::validator(),
        Draft::Draft201909 => jsonschema::draft201909::meta::validator(),
        _ => jsonschema::draft202012::meta::validator(),
    };
    let errors: Vec<Value> = meta
        .iter_errors(schema)
        .map(|e| {
            json!({
                "instancePath": e.instance_path().as_str(),
                "schemaPath": e.schema_path().as_str(),
                "message": e.to_string(),
            })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!(
            "Validation failed for {label} {}",
            Value::Array(errors)
        )))
    }
}

/// OIH's `transformURI` for a schema posted on its own: the path part of its `$id` (or, for an
/// id without one such as `#?address`, the id without `#` and `?`), with an existing
/// `/api/v1/domains/<domain>/schemas/` prefix removed.
pub fn path_from_id(id: &str, domain_id: &str) -> Result<String, ProcessError> {
    let path = match id.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or(""),
        None => id,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = if path.trim_matches('/').is_empty() {
        id.replace(['#', '?'], "")
    } else {
        path.to_owned()
    };
    let own_prefix = format!("{API_BASE}/domains/{domain_id}/schemas/");
    let path = path.strip_prefix(&own_prefix).unwrap_or(&path);
    clean_path(path).ok_or_else(|| invalid(format!("Schema $id {id} does not give a usable path")))
}

/// A relative path without empty, `.` or `..` segments, or None.
fn clean_path(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let usable = !segments.is_empty()
        && segments
            .iter()
            .all(|s| *s != "." && *s != ".." && !s.chars().any(char::is_control));
    usable.then(|| segments.join("/"))
}

/// Resolves `reference` (a path, maybe with `..`) against the directory of `location`, both
/// relative to the archive root; None when it leaves the root.
pub fn resolve_relative(location: &str, reference: &str) -> Option<String> {
    let mut parts: Vec<&str> = location.split('/').collect();
    parts.pop();
    for segment in reference.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    clean_path(&parts.join("/"))
}

/// A schema after rewriting, before its references are checked.
#[derive(Debug, Clone)]
pub struct Rewritten {
    pub value: Value,
    pub uri: String,
    /// The schema uris its `$ref`s name (itself excluded).
    pub direct_refs: Vec<String>,
    /// `(uri, pointer)` of every reference into another schema with a JSON-pointer fragment.
    pub pointers: Vec<(String, String)>,
}

impl Rewritten {
    /// Every pointer into another schema must exist, as OIH's resolver required. (Local
    /// pointers were not checked by OIH, and its own standard models have dangling ones: a
    /// schema is fully compiled only when it is used for validation.)
    pub fn check(&self, docs: &HashMap<String, Value>) -> Result<(), ProcessError> {
        for (uri, pointer) in &self.pointers {
            let target = if *uri == self.uri {
                Some(&self.value)
            } else {
                docs.get(uri)
            };
            if target.and_then(|d| d.pointer(pointer)).is_none() {
                return Err(invalid(format!(
                    "{uri}#{pointer} could not be resolved in {}: JSON pointer points to a missing location",
                    self.uri
                )));
            }
        }
        Ok(())
    }
}

/// Where a schema comes from: posted alone (relative references are refused, as in OIH), or a
/// file of an import at `location` (relative to the archive root).
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    Posted,
    File {
        location: &'a str,
        archive: &'a ArchiveIndex,
    },
}

/// The files of an import by original `$id` and by file name, so that a remote `$ref` naming
/// one of them resolves to it instead of being fetched (OIH fetched it over HTTP; its own dev
/// archive points at a mirror of `oih-data-record.json`, which it also contains).
#[derive(Debug, Clone, Default)]
pub struct ArchiveIndex {
    by_id: HashMap<String, String>,
    by_name: HashMap<String, Vec<String>>,
}

impl ArchiveIndex {
    /// Records the file at `path` whose document is `schema`.
    pub fn add(&mut self, path: &str, schema: &Value) {
        if let Some(id) = schema
            .get("$id")
            .or_else(|| schema.get("id"))
            .and_then(Value::as_str)
        {
            self.by_id
                .insert(id.trim_end_matches('#').to_owned(), path.to_owned());
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        self.by_name
            .entry(name.to_owned())
            .or_default()
            .push(path.to_owned());
    }

    /// The archive path a remote URL stands for: the file with that original `$id`, else the
    /// only file with the URL's file name.
    fn lookup(&self, url: &str) -> Option<&str> {
        if let Some(path) = self.by_id.get(url) {
            return Some(path);
        }
        let name = url.rsplit('/').next()?;
        match self.by_name.get(name).map(Vec::as_slice) {
            Some([only]) => Some(only),
            _ => None,
        }
    }
}

/// Rewrites `$id` to `<base>/api/v1/domains/<domain>/schemas/<path>` and every `$ref` that names
/// a schema of this service to an absolute URL, and lists the schemas referenced.
pub fn rewrite(
    mut schema: Value,
    base: &str,
    domain_id: &str,
    origin: Origin<'_>,
) -> Result<Rewritten, ProcessError> {
    let id_key = if schema.get("$id").is_none() && schema.get("id").is_some_and(Value::is_string) {
        "id"
    } else {
        "$id"
    };
    let original_id = schema
        .get(id_key)
        .and_then(Value::as_str)
        .map(str::to_owned);
    let path = match (origin, &original_id) {
        (Origin::File { location, .. }, _) => clean_path(location)
            .ok_or_else(|| invalid(format!("{location} is not a usable schema path")))?,
        (Origin::Posted, Some(id)) => path_from_id(id, domain_id)?,
        (Origin::Posted, None) => return Err(invalid("Schema must have an $id (or id)")),
    };
    let uri = schema_uri(domain_id, &path);
    let label = original_id.clone().unwrap_or_else(|| uri.clone());
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(id_key.into(), Value::String(format!("{base}{uri}")));
    }
    let mut direct_refs = Vec::new();
    let mut pointers = Vec::new();
    rewrite_refs(&mut schema, &mut |reference| {
        if reference
            .split_once('#')
            .is_some_and(|(_, f)| slashless_pointer(f))
        {
            return Ok(None);
        }
        if reference.starts_with('#') {
            return Ok(None);
        }
        let target = classify(reference, base, domain_id, origin, &label)?;
        Ok(target.map(|(rewritten, target_uri)| {
            if let Some((_, pointer)) = reference
                .split_once('#')
                .filter(|(_, f)| f.starts_with('/'))
            {
                pointers.push((target_uri.clone(), pointer.to_owned()));
            }
            if target_uri != uri && !direct_refs.contains(&target_uri) {
                direct_refs.push(target_uri);
            }
            rewritten
        }))
    })?;
    Ok(Rewritten {
        value: schema,
        uri,
        direct_refs,
        pointers,
    })
}

/// Calls `f` with every `$ref` string; replaces it when `f` returns a new one.
fn rewrite_refs(
    value: &mut Value,
    f: &mut dyn FnMut(&str) -> Result<Option<String>, ProcessError>,
) -> Result<(), ProcessError> {
    match value {
        Value::Object(obj) => {
            if let Some(Value::String(reference)) = obj.get("$ref")
                && let Some(new) = f(reference)?
            {
                obj.insert("$ref".into(), Value::String(new));
            }
            for (key, child) in obj.iter_mut() {
                // `enum`, `const` and examples are data, not schemas.
                if !matches!(
                    key.as_str(),
                    "$ref" | "enum" | "const" | "examples" | "default"
                ) {
                    rewrite_refs(child, f)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite_refs(item, f)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// For one `$ref`: None when it is left alone (a local pointer, a JSON Schema meta-schema),
/// else the rewritten reference and the uri of the schema it names.
fn classify(
    reference: &str,
    base: &str,
    domain_id: &str,
    origin: Origin<'_>,
    label: &str,
) -> Result<Option<(String, String)>, ProcessError> {
    let (path, fragment) = match reference.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (reference, None),
    };
    if has_scheme(path) {
        if let Some(rest) = path.strip_prefix(base).filter(|r| r.starts_with(API_BASE)) {
            return Ok(Some((reference.to_owned(), rest.to_owned())));
        }
        if is_meta_schema(path) {
            return Ok(None);
        }
        if let Origin::File { archive, .. } = origin
            && let Some(file) = archive.lookup(path)
        {
            return Ok(Some(absolute(base, domain_id, file, fragment)));
        }
        return Err(invalid(format!(
            "{reference} could not be resolved in {label}: only this service's schemas can be referenced"
        )));
    }
    let Origin::File { location, .. } = origin else {
        return Err(invalid(format!(
            "{path} invalid. No relative refs allowed."
        )));
    };
    let resolved = (!path.starts_with('/'))
        .then(|| resolve_relative(location, path))
        .flatten()
        .ok_or_else(|| {
            invalid(format!(
                "{reference} in {location} points outside the archive"
            ))
        })?;
    Ok(Some(absolute(base, domain_id, &resolved, fragment)))
}

/// The absolute reference to the schema at `path` of the domain, and its uri.
fn absolute(base: &str, domain_id: &str, path: &str, fragment: Option<&str>) -> (String, String) {
    let uri = schema_uri(domain_id, path);
    let rewritten = match fragment {
        Some(f) => format!("{base}{uri}#{f}"),
        None => format!("{base}{uri}"),
    };
    (rewritten, uri)
}

/// `definitions/X`: a JSON pointer written without its leading `/`. OIH's resolver (json-refs)
/// classed such references as invalid and skipped them, leaving them as written; so do we (its
/// own dev archive has them, some dangling). They are not recorded in `refs`.
fn slashless_pointer(fragment: &str) -> bool {
    !fragment.starts_with('/') && fragment.contains('/')
}

fn has_scheme(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// The drafts' own meta-schemas, which the validator knows without fetching anything.
fn is_meta_schema(url: &str) -> bool {
    url.starts_with("http://json-schema.org/") || url.starts_with("https://json-schema.org/")
}

/// One schema of the reference graph: its document and the uris it names.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub direct_refs: Vec<String>,
}

/// Everything `start`'s references reach, loaded for the validator's retriever.
pub struct Closure {
    /// Reached uris, in discovery order: the schema's transitive `refs`.
    pub refs: Vec<String>,
    pub docs: HashMap<String, Value>,
}

/// Follows the references of the schema at `self_uri` (its direct ones are `direct`) through
/// `pending` (schemas being written now, which win over stored versions) and the store.
/// Refuses references to missing schemas, to domains `reader` may not read, and cycles back to
/// `self_uri` through other schemas.
pub async fn closure(
    store: &MetaStore,
    self_uri: &str,
    direct: &[String],
    pending: &HashMap<String, Node>,
    reader: Option<&Identity>,
) -> Result<Closure, ProcessError> {
    let mut refs = Vec::new();
    let mut docs = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<(String, String)> = direct
        .iter()
        .map(|u| (u.clone(), self_uri.to_owned()))
        .collect();
    let mut readable: HashMap<String, bool> = HashMap::new();
    while let Some((uri, from)) = queue.pop_front() {
        if uri == self_uri {
            return Err(invalid(format!(
                "Cyclic $ref: {self_uri} is referenced back by {from}"
            )));
        }
        if !seen.insert(uri.clone()) {
            continue;
        }
        let node = match pending.get(&uri) {
            Some(node) => node.clone(),
            None => {
                let stored = store.schema(&uri).await?.ok_or_else(|| {
                    invalid(format!(
                        "{uri} could not be resolved in {from}: no such schema"
                    ))
                })?;
                if let Some(user) = reader
                    && !readable_domain(store, user, &stored.domain_id, &mut readable).await?
                {
                    return Err(invalid(format!(
                        "{uri} could not be resolved in {from}: access denied"
                    )));
                }
                Node {
                    value: stored.parsed_value(),
                    direct_refs: stored.direct_refs,
                }
            }
        };
        queue.extend(node.direct_refs.iter().map(|u| (u.clone(), uri.clone())));
        docs.insert(uri.clone(), node.value);
        refs.push(uri);
    }
    Ok(Closure { refs, docs })
}

async fn readable_domain(
    store: &MetaStore,
    user: &Identity,
    domain_id: &str,
    cache: &mut HashMap<String, bool>,
) -> Result<bool, StoreError> {
    if let Some(known) = cache.get(domain_id) {
        return Ok(*known);
    }
    let ok = access::read(user, store.domain(domain_id).await?).is_ok();
    cache.insert(domain_id.to_owned(), ok);
    Ok(ok)
}

/// Serves `$ref`s from documents loaded beforehand (keyed by uri).
struct Loaded {
    base: String,
    docs: HashMap<String, Value>,
}

impl Retrieve for Loaded {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let url = uri.as_str();
        let url = url.split('#').next().unwrap_or(url);
        url.strip_prefix(&self.base)
            .and_then(|path| self.docs.get(path))
            .cloned()
            .ok_or_else(|| format!("{url} is not a schema of this service").into())
    }
}

/// Compiles `schema` with its references served from `docs` (uri → document). This also
/// proves that every reference, fragments included, resolves.
pub fn compile(
    schema: &Value,
    base: &str,
    docs: HashMap<String, Value>,
) -> Result<Validator, ProcessError> {
    let label = schema
        .get("$id")
        .or_else(|| schema.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("schema")
        .to_owned();
    jsonschema::options()
        .with_draft(draft_of(schema))
        .with_retriever(Loaded {
            base: base.to_owned(),
            docs,
        })
        .build(schema)
        .map_err(|e| invalid(format!("{e} in {label}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_paths_as_in_oih() {
        let d = "5d2f0c9e8b1a4c0012345678";
        assert_eq!(
            path_from_id("https://github.com/organizationV1.json", d).expect("path"),
            "organizationV1.json"
        );
        assert_eq!(path_from_id("#?address", d).expect("path"), "address");
        assert_eq!(
            path_from_id(
                &format!("http://localhost:3000/api/v1/domains/{d}/schemas/a/b.json"),
                d
            )
            .expect("path"),
            "a/b.json"
        );
        assert!(path_from_id("https://host/../..", d).is_err());
        assert!(path_from_id("#", d).is_err());
    }

    #[test]
    fn relative_refs_resolve_inside_the_root_only() {
        assert_eq!(
            resolve_relative("addresses/personV2.json", "../oih-data-record.json").as_deref(),
            Some("oih-data-record.json")
        );
        assert_eq!(
            resolve_relative("a/b/c.json", "./d.json").as_deref(),
            Some("a/b/d.json")
        );
        assert_eq!(resolve_relative("a.json", "../x.json"), None);
    }

    #[test]
    fn rewrite_sets_id_and_collects_refs() {
        let base = "http://h";
        let schema = json!({
            "$id": "https://github.com/x/y.json",
            "properties": {
                "a": {"$ref": "../shared.json#/definitions/A"},
                "b": {"$ref": "#/definitions/B"},
                "d": {"$ref": "#definitions/D"},
                "e": {"$ref": "../missing.json#definitions/E"},
                "c": {"enum": [{"$ref": "not a ref"}]}
            }
        });
        let archive = ArchiveIndex::default();
        let origin = Origin::File {
            location: "sub/y.json",
            archive: &archive,
        };
        let out = rewrite(schema, base, "d1", origin).expect("rewrite");
        assert_eq!(out.uri, "/api/v1/domains/d1/schemas/sub/y.json");
        assert_eq!(
            out.value["$id"],
            "http://h/api/v1/domains/d1/schemas/sub/y.json"
        );
        assert_eq!(
            out.value["properties"]["a"]["$ref"],
            "http://h/api/v1/domains/d1/schemas/shared.json#/definitions/A"
        );
        assert_eq!(out.value["properties"]["b"]["$ref"], "#/definitions/B");
        assert_eq!(out.value["properties"]["d"]["$ref"], "#definitions/D");
        assert_eq!(
            out.value["properties"]["e"]["$ref"],
            "../missing.json#definitions/E"
        );
        assert_eq!(
            out.pointers,
            vec![(
                "/api/v1/domains/d1/schemas/shared.json".to_owned(),
                "/definitions/A".to_owned()
            )]
        );
        assert_eq!(
            out.direct_refs,
            vec!["/api/v1/domains/d1/schemas/shared.json"]
        );
    }

    #[test]
    fn remote_refs_resolve_to_archive_files() {
        let mut archive = ArchiveIndex::default();
        archive.add(
            "record.json",
            &json!({"$id": "https://a.org/x/record.json#"}),
        );
        archive.add("m/shared.json", &json!({}));
        archive.add("n/twice.json", &json!({}));
        archive.add("o/twice.json", &json!({}));
        assert_eq!(
            archive.lookup("https://a.org/x/record.json"),
            Some("record.json")
        );
        assert_eq!(
            archive.lookup("https://mirror.org/shared.json"),
            Some("m/shared.json")
        );
        assert_eq!(archive.lookup("https://mirror.org/twice.json"), None);
        assert_eq!(archive.lookup("https://mirror.org/none.json"), None);
    }

    #[test]
    fn posted_schemas_refuse_relative_and_foreign_refs() {
        let rel = json!({"$id": "#?a", "$ref": "b.json"});
        let err = rewrite(rel, "http://h", "d", Origin::Posted).expect_err("relative");
        assert!(err.to_string().contains("No relative refs allowed"));
        let remote = json!({"$id": "#?a", "$ref": "https://example.com/x.json"});
        assert!(rewrite(remote, "http://h", "d", Origin::Posted).is_err());
        let meta = json!({"$id": "#?a", "$ref": "http://json-schema.org/draft-07/schema#"});
        assert!(rewrite(meta, "http://h", "d", Origin::Posted).is_ok());
    }

    #[test]
    fn meta_validation_reports_every_error() {
        let bad = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "nope", "minLength": -1});
        let err = meta_validate(&bad, "/temp")
            .expect_err("invalid")
            .to_string();
        assert!(err.starts_with("Validation failed for /temp ["), "{err}");
        assert!(err.contains("/type") && err.contains("/minLength"), "{err}");
        for draft in [
            "http://json-schema.org/draft-04/schema#",
            "http://json-schema.org/draft-06/schema#",
            "https://json-schema.org/draft/2019-09/schema",
            "https://json-schema.org/draft/2020-12/schema",
        ] {
            meta_validate(&json!({"$schema": draft, "type": "object"}), "x").expect(draft);
        }
        assert!(meta_validate(&json!({"$schema": "http://x/y"}), "x").is_err());
    }
}
