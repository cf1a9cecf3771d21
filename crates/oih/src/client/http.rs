//! A small HTTP client for the hub's API: base URL, bearer token, JSON in and out, and the
//! services' error messages (`{errors:[{message}]}` or `{message}`) turned into errors.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

/// A request the hub answered with an error status.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiFailure {}

impl Api {
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let base = Url::parse(url).with_context(|| format!("invalid hub URL {url:?}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            bail!("invalid hub URL {url:?}: expected http://host:port or https://…");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, base, token })
    }

    /// `segments` are path segments (each percent-encoded), appended to the base URL's path.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (k, v.as_str())));
        }
        url
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.send(Method::GET, segments, query, None).await
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> anyhow::Result<Value> {
        self.send(Method::POST, segments, &[], Some(body)).await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> anyhow::Result<Value> {
        self.send(Method::PATCH, segments, &[], Some(body)).await
    }

    /// The response body as JSON (`Null` when empty, a string when it is not JSON); an error
    /// status becomes an [`ApiFailure`] carrying the service's message.
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = self.url(segments, query);
        let mut req = self.http.request(method.clone(), url.clone());
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| anyhow!("reading the answer to {method} {url}: {e}"))?;
        let parsed = match text.trim() {
            "" => Value::Null,
            t => serde_json::from_str(t).unwrap_or_else(|_| Value::String(text.clone())),
        };
        if status.is_success() {
            Ok(parsed)
        } else {
            Err(ApiFailure {
                status,
                message: error_message(&parsed, status),
            }
            .into())
        }
    }

    fn transport_error(&self, err: &reqwest::Error) -> anyhow::Error {
        let base = self.base.as_str().trim_end_matches('/');
        if err.is_connect() {
            anyhow!("cannot connect to the hub at {base}: is it running? (set --url or OIH_URL)")
        } else if err.is_timeout() {
            anyhow!("the hub at {base} did not answer in time")
        } else {
            anyhow!("request to the hub at {base} failed: {err}")
        }
    }
}

/// The message of an error body: `{errors:[{message}]}` (joined with `; `), `{message}`, a
/// short text body, or else the status's reason.
pub fn error_message(body: &Value, status: StatusCode) -> String {
    if let Some(errors) = body.get("errors").and_then(Value::as_array) {
        let messages: Vec<&str> = errors
            .iter()
            .filter_map(|e| e.get("message").and_then(Value::as_str))
            .collect();
        if !messages.is_empty() {
            return messages.join("; ");
        }
    }
    if let Some(message) = body.get("message").and_then(Value::as_str) {
        return message.to_owned();
    }
    match body {
        Value::String(text) if !text.trim().is_empty() => {
            let text = text.trim();
            match text.char_indices().nth(200) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text.to_owned(),
            }
        }
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    }
}

/// True when `err` is the hub answering `status`.
pub fn is_status(err: &anyhow::Error, status: StatusCode) -> bool {
    err.downcast_ref::<ApiFailure>()
        .is_some_and(|f| f.status == status)
}

/// Every item of a paged list (`{data:[…], meta:{totalPages}}`), fetched 100 at a time.
pub async fn list_all(api: &Api, segments: &[&str]) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    for number in 1u64.. {
        let page = api
            .get(
                segments,
                &[
                    ("page[size]", "100".to_owned()),
                    ("page[number]", number.to_string()),
                ],
            )
            .await?;
        let Some(data) = page.get("data").and_then(Value::as_array) else {
            bail!("unexpected answer from the hub: no data list in {page}");
        };
        let got = data.len();
        items.extend(data.iter().cloned());
        let pages = page
            .pointer("/meta/totalPages")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if got == 0 || number >= pages {
            break;
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_messages() {
        let s = StatusCode::CONFLICT;
        assert_eq!(
            error_message(
                &json!({"errors":[{"message":"a","code":409},{"message":"b"}]}),
                s
            ),
            "a; b"
        );
        assert_eq!(
            error_message(&json!({"message":"FORBIDDEN"}), s),
            "FORBIDDEN"
        );
        assert_eq!(error_message(&json!("Bad gateway\n"), s), "Bad gateway");
        assert_eq!(error_message(&Value::Null, s), "Conflict");
    }

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let api = Api::new("http://h:1/prefix/", None).expect("api");
        assert_eq!(
            api.url(&["flows", "a/b"], &[("page[size]", "5".into())])
                .as_str(),
            "http://h:1/prefix/flows/a%2Fb?page%5Bsize%5D=5"
        );
        let api = Api::new("http://h:1", None).expect("api");
        assert_eq!(api.url(&["login"], &[]).as_str(), "http://h:1/login");
        assert!(Api::new("localhost:3000", None).is_err());
    }
}
