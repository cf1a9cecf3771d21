//! Where chunk schemas come from and how they are applied.
//!
//! ILS does not own schemas: a chunk's `def` names a schema of the meta-data repository
//! (`domainId` + `schemaUri`) or carries one inline. [`SchemaSource`] is the seam: over HTTP in
//! a split deployment ([`HttpSchemaSource`]), in-process when `oih serve` runs everything.
//! [`Validators`] compiles schemas and keeps the compiled form briefly, because the ILA posts
//! the same schema for every record of a flow.
//!
//! Either source answers with the schema *bundled*: every repository schema it references,
//! transitively, is embedded under its definitions keyword with its own `$id`, so the
//! validator resolves the `$ref`s locally and never fetches anything itself.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonschema::{Draft, Validator};
use oih_core::Identity;
use reqwest::Url;
use serde_json::{Map, Value};

/// The repository's schema collection, below its base URL.
const DOMAINS_PATH: &str = "/api/v1/domains/";
/// Where referenced schemas are embedded in a bundle (the meta-data repository's in-process
/// reader uses the same keys).
const BUNDLE_KEY_PREFIX: &str = "oih-bundled-";
/// Most repository schemas one schema may reference, transitively: a bound on the requests a
/// single chunk can cause.
pub const MAX_REFERENCED_SCHEMAS: usize = 64;

/// The caller on whose behalf a schema is fetched: the repository checks its own read access,
/// so the caller's identity and bearer token travel along.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// The raw bearer token of the request (without `Bearer `).
    pub token: String,
}

/// Why a schema could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The repository answered with an error status; ILS passes status and message on, as OIH.
    #[error("meta-data repository answered {status}: {message}")]
    Upstream { status: u16, message: String },
    /// The repository could not be reached or answered garbage.
    #[error("meta-data repository unavailable: {0}")]
    Unavailable(String),
    /// A `$ref` of the schema cannot be resolved: it names a schema the repository does not
    /// have, lies outside the repository (never fetched), or there are too many.
    #[error("unresolvable $ref: {0}")]
    Reference(String),
}

/// Reads a schema of the meta-data repository. `Ok(None)` when the domain or schema does not
/// exist (or the caller may not see it).
#[async_trait]
pub trait SchemaSource: Send + Sync {
    async fn schema(
        &self,
        domain_id: &str,
        schema_uri: &str,
        caller: &Caller,
    ) -> Result<Option<Value>, SchemaError>;
}

/// The meta-data repository over HTTP: `GET {base}/api/v1/domains/{id}/schemas/{uri}`, then
/// every repository schema the answer references (transitively, with the caller's token).
///
/// A `$ref` is followed only when, resolved against its schema's `$id`, it lies below
/// `{base}/api/v1/domains/` or below the same path of the base URL the repository writes into
/// the `$id` of the schema asked for (its public `BASE_URL`, which may differ from the URL
/// ILS reaches it at). Either way the request goes to `base`: a schema cannot make ILS call
/// another host. Any other `$ref` (except the drafts' meta-schemas, which the validator knows)
/// is refused.
#[derive(Debug, Clone)]
pub struct HttpSchemaSource {
    /// `{base}/api/v1/domains/`.
    domains: Url,
    client: reqwest::Client,
}

impl HttpSchemaSource {
    /// `base` is the repository's root URL, e.g. `http://127.0.0.1:3000`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, SchemaError> {
        let domains = Url::parse(&format!("{}{DOMAINS_PATH}", base.trim_end_matches('/')))
            .ok()
            .filter(|u| !u.cannot_be_a_base() && u.query().is_none())
            .ok_or_else(|| SchemaError::Unavailable(format!("bad repository URL {base}")))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| SchemaError::Unavailable(e.to_string()))?;
        Ok(Self { domains, client })
    }

    /// One schema document; None on 404.
    async fn fetch(&self, url: Url, caller: &Caller) -> Result<Option<Value>, SchemaError> {
        let unavailable = |e: reqwest::Error| SchemaError::Unavailable(e.to_string());
        let res = self
            .client
            .get(url)
            // OIH's repository looks at the request's content-type to answer with the bare
            // schema; ours may look at Accept. Both are sent.
            .header(reqwest::header::ACCEPT, "application/schema+json")
            .header(reqwest::header::CONTENT_TYPE, "application/schema+json")
            .bearer_auth(&caller.token)
            .send()
            .await
            .map_err(unavailable)?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: Value = if status.is_success() {
            res.json().await.map_err(unavailable)?
        } else {
            let body: Value = res.json().await.unwrap_or(Value::Null);
            return Err(SchemaError::Upstream {
                status: status.as_u16(),
                message: upstream_message(&body)
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
            });
        };
        // The bare schema, or OIH's `{data: {value: <schema>}}` envelope.
        Ok(Some(match body.pointer("/data/value") {
            Some(value) => value.clone(),
            None => body,
        }))
    }

    /// Fetches what `root` references, breadth first, each schema once (so cycles end), and
    /// returns the documents to bundle.
    async fn referenced(
        &self,
        root: &Value,
        root_url: Url,
        caller: &Caller,
    ) -> Result<Vec<Value>, SchemaError> {
        let mut prefixes = vec![self.domains.clone()];
        // The repository's own idea of its URL, from the `$id` it wrote.
        if let Some(public) = id_of(root).and_then(|id| domains_prefix(&id)) {
            prefixes.push(public);
        }
        let mut seen: HashSet<Url> = HashSet::from([root_url.clone()]);
        seen.extend(id_of(root));
        let mut queue = VecDeque::new();
        queue.extend(references(root, &root_url)?);
        let mut bundled = Vec::new();
        while let Some((target, reference, from)) = queue.pop_front() {
            if !seen.insert(target.clone()) || is_meta_schema(&target) {
                continue;
            }
            let Some(path) = below(&prefixes, &target) else {
                return Err(SchemaError::Reference(format!(
                    "{reference} in {from} is outside the meta-data repository ({}) and is not fetched",
                    self.domains
                )));
            };
            if bundled.len() == MAX_REFERENCED_SCHEMAS {
                return Err(SchemaError::Reference(format!(
                    "{from} references more than {MAX_REFERENCED_SCHEMAS} schemas"
                )));
            }
            // Re-rooted on the configured URL; checked again, so that nothing in the path can
            // make it mean another place.
            let url = Url::parse(&format!("{}{path}", self.domains))
                .ok()
                .filter(|u| below(std::slice::from_ref(&self.domains), u) == Some(path))
                .ok_or_else(|| {
                    SchemaError::Reference(format!("{reference} in {from} is not a schema URL"))
                })?;
            let Some(mut doc) = self.fetch(url, caller).await? else {
                return Err(SchemaError::Reference(format!(
                    "{reference} in {from}: no such schema in the meta-data repository"
                )));
            };
            if !doc.is_object() {
                return Err(SchemaError::Reference(format!(
                    "{reference} in {from} is not a schema object"
                )));
            }
            // Known by the URL that named it when it has no `$id` of its own.
            let base = id_of(&doc).unwrap_or_else(|| {
                doc["$id"] = Value::String(target.to_string());
                target.clone()
            });
            seen.insert(base.clone());
            queue.extend(references(&doc, &base)?);
            bundled.push(doc);
        }
        Ok(bundled)
    }
}

#[async_trait]
impl SchemaSource for HttpSchemaSource {
    async fn schema(
        &self,
        domain_id: &str,
        schema_uri: &str,
        caller: &Caller,
    ) -> Result<Option<Value>, SchemaError> {
        let mut url = self.domains.clone();
        // Each part becomes escaped path segments, so a domain id cannot step elsewhere.
        url.path_segments_mut()
            .map_err(|()| SchemaError::Unavailable("bad repository URL".into()))?
            .pop_if_empty()
            .push(domain_id)
            .push("schemas")
            .extend(schema_uri.split('/').filter(|s| !s.is_empty()));
        let Some(mut root) = self.fetch(url.clone(), caller).await? else {
            return Ok(None);
        };
        let docs = self.referenced(&root, url, caller).await?;
        bundle(&mut root, docs);
        Ok(Some(root))
    }
}

/// A schema's `$id` as an absolute URL without fragment.
fn id_of(schema: &Value) -> Option<Url> {
    let mut id = Url::parse(schema.get("$id")?.as_str()?).ok()?;
    id.set_fragment(None);
    Some(id)
}

/// `<scheme://host/...>/api/v1/domains/` of a repository schema's URL.
fn domains_prefix(url: &Url) -> Option<Url> {
    let at = url.path().find(DOMAINS_PATH)?;
    let mut prefix = url.clone();
    prefix.set_path(&url.path()[..at + DOMAINS_PATH.len()]);
    prefix.set_query(None);
    Some(prefix)
}

/// The part of `target` below one of the prefixes, when it names a schema there:
/// `<domain>/schemas/<path>`, still percent-encoded.
fn below<'a>(prefixes: &[Url], target: &'a Url) -> Option<&'a str> {
    if target.query().is_some() {
        return None;
    }
    let rest = prefixes.iter().find_map(|p| {
        let same_origin = p.origin() == target.origin()
            && p.username() == target.username()
            && p.password() == target.password();
        same_origin
            .then(|| target.path().strip_prefix(p.path()))
            .flatten()
    })?;
    let (domain, path) = rest.split_once("/schemas/")?;
    (!domain.is_empty() && !domain.contains('/') && !path.is_empty()).then_some(rest)
}

/// The drafts' own meta-schemas, which the validator knows without fetching anything.
fn is_meta_schema(url: &Url) -> bool {
    url.host_str() == Some("json-schema.org")
}

/// Every `$ref` of `schema` naming another document, resolved against `base`, as
/// (document URL, the `$ref` as written, `base`). Local pointers (`#...`) are skipped.
fn references(schema: &Value, base: &Url) -> Result<Vec<(Url, String, Url)>, SchemaError> {
    let mut found = Vec::new();
    collect_refs(schema, &mut found);
    let mut out = Vec::new();
    for reference in found {
        if reference.starts_with('#') {
            continue;
        }
        let mut target = base.join(&reference).map_err(|e| {
            SchemaError::Reference(format!("{reference} in {base} is not a valid URL: {e}"))
        })?;
        target.set_fragment(None);
        out.push((target, reference, base.clone()));
    }
    Ok(out)
}

/// The `$ref` strings of a schema; `enum`, `const`, `default` and `examples` hold data.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (key, child) in obj {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => out.push(reference.clone()),
                    ("$ref" | "enum" | "const" | "default" | "examples", _) => {}
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
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

/// The message of an OIH error body: `{message}` or `{errors: [{message}]}`.
fn upstream_message(body: &Value) -> Option<String> {
    body.get("message")
        .or_else(|| body.pointer("/errors/0/message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The schema does not compile.
#[derive(Debug, thiserror::Error)]
#[error("schema is invalid: {0}")]
pub struct InvalidSchema(String);

/// Compiles a schema: draft from `$schema`, else draft 7 (Ajv 6's default, which OIH used).
pub fn compile(schema: &Value) -> Result<Validator, InvalidSchema> {
    if !schema.is_object() || schema.as_object().is_some_and(|o| o.is_empty()) {
        return Err(InvalidSchema("a schema must be a non-empty object".into()));
    }
    let draft = if schema.get("$schema").is_some() {
        Draft::default().detect(schema)
    } else {
        Draft::Draft7
    };
    jsonschema::options()
        .with_draft(draft)
        .build(schema)
        .map_err(|e| InvalidSchema(e.to_string()))
}

type CacheKey = (String, String, String);

/// Compiled repository schemas, kept for a short while per (caller scope, domain, uri). The
/// scope is part of the key because the repository decides per caller who may read a schema.
pub struct Validators {
    ttl: Duration,
    entries: Mutex<HashMap<CacheKey, (Instant, Arc<Validator>)>>,
}

impl Validators {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, scope: &str, domain_id: &str, schema_uri: &str) -> Option<Arc<Validator>> {
        let key = (
            scope.to_owned(),
            domain_id.to_owned(),
            schema_uri.to_owned(),
        );
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key) {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, scope: &str, domain_id: &str, schema_uri: &str, validator: Arc<Validator>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Drop stale entries so the map stays as small as the set of schemas in use.
        entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        entries.insert(
            (
                scope.to_owned(),
                domain_id.to_owned(),
                schema_uri.to_owned(),
            ),
            (Instant::now(), validator),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn only_schema_urls_below_a_prefix_are_followed() {
        let prefixes = [url("http://mdr:3000/api/v1/domains/")];
        let below_of = |s: &str| below(&prefixes, &url(s)).map(str::to_owned);
        assert_eq!(
            below_of("http://mdr:3000/api/v1/domains/d1/schemas/a/b.json").as_deref(),
            Some("d1/schemas/a/b.json")
        );
        for refused in [
            "http://mdr:3001/api/v1/domains/d1/schemas/a.json",
            "https://mdr:3000/api/v1/domains/d1/schemas/a.json",
            "http://user:pw@mdr:3000/api/v1/domains/d1/schemas/a.json",
            "http://mdr:3000/api/v1/domains/d1/schemas/a.json?x=1",
            "http://mdr:3000/api/v1/domains/d1/a.json",
            "http://mdr:3000/api/v1/domains/d1/schemas/",
            "http://mdr:3000/api/v1/domains//evil/schemas/a.json",
            "http://mdr:3000/api/v1/domains/d1/schemas/../../../iam/x",
            "http://mdr:3000/api/v1/users",
        ] {
            assert_eq!(below_of(refused), None, "{refused}");
        }
    }

    #[test]
    fn the_public_prefix_comes_from_the_id() {
        let id = url("https://pub.example/mdr/api/v1/domains/d1/schemas/a.json");
        assert_eq!(
            domains_prefix(&id).map(|u| u.to_string()).as_deref(),
            Some("https://pub.example/mdr/api/v1/domains/")
        );
        assert_eq!(domains_prefix(&url("https://pub.example/x.json")), None);
    }
}
