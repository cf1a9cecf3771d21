//! Enrichment from a GitHub repository (`PATCH /components/enrich/{id}`): a component's
//! `actions`, `triggers` and `rating` are taken from the repository's `component.json` and
//! `Readme.md`, and schema file references in their `metadata` are replaced by the schemas.

use std::time::Duration;

use serde_json::{Map, Value, json};

/// Longest a download may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest file accepted from the repository.
const MAX_FILE_BYTES: usize = 1024 * 1024;

/// A repository given as `https://github.com/<owner>/<repo>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubRepo {
    pub owner: String,
    pub name: String,
}

impl GithubRepo {
    /// Only GitHub repository URLs: OIH rewrote the GitHub prefix and fetched whatever URL
    /// remained, so any other URL made the service fetch arbitrary addresses.
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.trim().strip_prefix("https://github.com/")?;
        let rest = rest.trim_end_matches('/');
        let rest = rest.strip_suffix(".git").unwrap_or(rest);
        let (owner, name) = rest.split_once('/')?;
        let valid = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        (valid(owner) && valid(name)).then(|| Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("No component.json found in the repository (HTTP {0})")]
    NoComponentJson(u16),
    #[error("The repository's component.json is not a JSON object")]
    InvalidComponentJson,
    #[error("The repository could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("A file in the repository is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
}

/// Downloads repository files from the raw-content host.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    base: String,
}

impl Fetcher {
    pub fn new(base: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(FETCH_TIMEOUT).build()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The file at `path` on the `master` branch, or the status when the host did not answer
    /// 200.
    async fn file(
        &self,
        repo: &GithubRepo,
        path: &str,
    ) -> Result<Result<Vec<u8>, u16>, EnrichError> {
        let url = format!("{}/{}/{}/master/{path}", self.base, repo.owner, repo.name);
        let mut res = self
            .client
            .get(url)
            .send()
            .await
            .map_err(EnrichError::Unreachable)?;
        if res.status() != reqwest::StatusCode::OK {
            return Ok(Err(res.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(EnrichError::Unreachable)? {
            if body.len() + chunk.len() > MAX_FILE_BYTES {
                return Err(EnrichError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Ok(body))
    }

    /// What enrichment sets on the component: `actions`, `triggers` (schemas inlined) and
    /// `rating`.
    pub async fn enrich(&self, repo: &GithubRepo) -> Result<Enriched, EnrichError> {
        let manifest = self
            .file(repo, "component.json")
            .await?
            .map_err(EnrichError::NoComponentJson)?;
        let Ok(Value::Object(manifest)) = serde_json::from_slice::<Value>(&manifest) else {
            return Err(EnrichError::InvalidComponentJson);
        };
        let readme = match self.file(repo, "Readme.md").await? {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(_) => None,
        };
        let rating = rating(&manifest, readme.as_deref());
        let mut actions = manifest.get("actions").cloned();
        let mut triggers = manifest.get("triggers").cloned();
        for functions in [&mut actions, &mut triggers].into_iter().flatten() {
            self.inline_schemas(repo, functions).await?;
        }
        Ok(Enriched {
            actions,
            triggers,
            rating,
        })
    }

    /// Replaces each `metadata.in`/`metadata.out` path by the JSON file it names. A file that
    /// cannot be fetched or parsed leaves the path in place, as in OIH.
    async fn inline_schemas(
        &self,
        repo: &GithubRepo,
        functions: &mut Value,
    ) -> Result<(), EnrichError> {
        let Some(functions) = functions.as_object_mut() else {
            return Ok(());
        };
        for function in functions.values_mut() {
            let Some(metadata) = function.get_mut("metadata").and_then(Value::as_object_mut) else {
                continue;
            };
            for key in ["in", "out"] {
                let Some(path) = metadata
                    .get(key)
                    .and_then(Value::as_str)
                    .and_then(schema_path)
                else {
                    continue;
                };
                if let Ok(bytes) = self.file(repo, &path).await?
                    && let Ok(schema) = serde_json::from_slice::<Value>(&bytes)
                {
                    metadata.insert(key.into(), schema);
                }
            }
        }
        Ok(())
    }
}

/// A schema reference as a path inside the repository (`./lib/x.json` → `lib/x.json`); None
/// for anything that would leave it.
fn schema_path(raw: &str) -> Option<String> {
    let path = raw.trim();
    let path = path.strip_prefix("./").unwrap_or(path);
    let inside = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains("://")
        && path.split('/').all(|segment| segment != "..");
    inside.then(|| path.to_owned())
}

/// The result of enrichment.
#[derive(Debug, Clone, PartialEq)]
pub struct Enriched {
    pub actions: Option<Value>,
    pub triggers: Option<Value>,
    pub rating: Value,
}

fn function_names(manifest: &Map<String, Value>) -> Vec<&str> {
    ["triggers", "actions"]
        .iter()
        .filter_map(|key| manifest.get(*key).and_then(Value::as_object))
        .flat_map(|functions| functions.keys().map(String::as_str))
        .collect()
}

/// OIH's rating: which CRUD verbs the function names suggest, and whether the readme exists
/// and is long enough for the number of functions. Without a readme, `documentation` is `{}`.
pub fn rating(manifest: &Map<String, Value>, readme: Option<&str>) -> Value {
    let names = function_names(manifest);
    let any = |aliases: &[&str]| names.iter().any(|n| aliases.iter().any(|a| n.contains(a)));
    let upsert = any(&["upsert"]);
    let interoperability = json!({
        "get": any(&["get", "fetch", "retrieve"]),
        "post": upsert || any(&["post", "create", "insert"]),
        "put": upsert || any(&["put", "update", "patch"]),
        "upsert": upsert,
        "delete": any(&["delete", "remove"]),
        "error": false,
    });
    let documentation = match readme {
        Some(readme) => json!({
            "readme": !readme.is_empty(),
            "size": readme.len() >= 500 + 100 * names.len(),
            "error": false,
        }),
        None => json!({}),
    };
    json!({"interoperability": interoperability, "documentation": documentation})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_urls() {
        let repo = GithubRepo::parse("https://github.com/openintegrationhub/wice-adapter/")
            .expect("valid");
        assert_eq!(repo.owner, "openintegrationhub");
        assert_eq!(repo.name, "wice-adapter");
        assert_eq!(
            GithubRepo::parse("https://github.com/a/b.git").map(|r| r.name),
            Some("b".into())
        );
        for bad in [
            "http://github.com/a/b",
            "https://example.com/a/b",
            "https://github.com/a",
            "https://github.com/a/b/c",
            "https://github.com/../b",
            "https://github.com/a/b?x=1",
        ] {
            assert_eq!(GithubRepo::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn schema_paths_stay_inside_the_repository() {
        assert_eq!(schema_path("./lib/a.json").as_deref(), Some("lib/a.json"));
        assert_eq!(schema_path("lib/a.json").as_deref(), Some("lib/a.json"));
        for bad in [
            "../x.json",
            "/etc/passwd",
            "lib/../../x",
            "https://evil/x",
            "",
        ] {
            assert_eq!(schema_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn rating_as_oih() {
        let manifest = json!({
            "triggers": {"getPersonsPolling": {}},
            "actions": {"upsertPerson": {}}
        });
        let manifest = manifest.as_object().expect("object");
        assert_eq!(
            rating(manifest, Some("Hello world")),
            json!({
                "interoperability": {"get": true, "post": true, "put": true, "upsert": true, "delete": false, "error": false},
                "documentation": {"readme": true, "size": false, "error": false}
            })
        );
        let long = "x".repeat(700);
        assert_eq!(rating(manifest, Some(&long))["documentation"]["size"], true);
        assert_eq!(rating(manifest, None)["documentation"], json!({}));
    }
}
