//! `http-request`: sends one HTTP request per message, built from JSONata expressions on the
//! data, and emits the response. 5xx and 429 answers (and refused connections) are retried,
//! waiting as `Retry-After` asks or with exponential back-off; other failures are not.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Kind, describe, expression_schema, fields_schema, headers_schema};
use crate::component::{
    BuiltinComponent, ConfigError, Descriptor, Function, Step, StepContext, StepError,
};
use crate::expr::{HeaderExprs, Jsonata};
use crate::message::{Emit, StepMessage};
use crate::schema;

pub(super) struct HttpRequest;

const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_RETRY_DELAY_MS: u64 = 1_000;
/// A server asking to be called back later than this is not waited for: the step would hold
/// the message for longer than any caller expects, so it fails instead.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Answers larger than this fail the step (Ferryman's `OUTGOING_MESSAGE_SIZE_LIMIT`).
const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;
/// How much of a failure answer's body goes into the error message.
const ERROR_BODY_CHARS: usize = 1_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    #[serde(default = "default_method")]
    method: String,
    url: String,
    #[serde(default)]
    headers: Map<String, Value>,
    body: Option<String>,
    #[serde(default = "default_timeout")]
    timeout: u64,
    #[serde(default = "default_retries")]
    retries: u32,
    #[serde(default = "default_retry_delay")]
    retry_delay: u64,
}

fn default_method() -> String {
    "GET".to_owned()
}
fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_retries() -> u32 {
    DEFAULT_RETRIES
}
fn default_retry_delay() -> u64 {
    DEFAULT_RETRY_DELAY_MS
}

impl BuiltinComponent for HttpRequest {
    fn descriptor(&self) -> Descriptor {
        describe(
            "http-request",
            "HTTP request",
            "Calls an HTTP endpoint for every message and emits the response",
            Kind::Action,
            Function {
                name: "request",
                title: "Send request",
                description: "The new data is {statusCode, headers, body}; JSON bodies are parsed",
                fields: schema(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        let fields: Fields = schema::parse(&schema(), fields)?;
        let method = Method::from_bytes(fields.method.as_bytes())
            .map_err(|e| ConfigError::new("method", e.to_string()))?;
        if let Some(name) = fields
            .headers
            .keys()
            .find(|name| HeaderName::from_bytes(name.as_bytes()).is_err())
        {
            return Err(ConfigError::new(
                format!("headers.{name}"),
                "is not a valid header name",
            ));
        }
        Ok(Box::new(Request {
            method,
            url: Jsonata::compile("url", &fields.url)?,
            headers: HeaderExprs::compile("headers", &fields.headers)?,
            body: fields
                .body
                .map(|source| Jsonata::compile("body", &source))
                .transpose()?,
            timeout: Duration::from_millis(fields.timeout),
            retries: fields.retries,
            retry_delay: Duration::from_millis(fields.retry_delay),
        }))
    }
}

fn schema() -> Value {
    fields_schema(
        json!({
            "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], "default": "GET"},
            "url": expression_schema("JSONata expression giving the URL (quote a fixed one: \"https://…\")"),
            "headers": headers_schema("Request headers: name → JSONata expression"),
            "body": expression_schema("JSONata expression giving the body; strings are sent as they are, anything else as JSON"),
            "timeout": {"type": "integer", "minimum": 1, "maximum": 300_000, "default": DEFAULT_TIMEOUT_MS, "description": "Per attempt, in milliseconds"},
            "retries": {"type": "integer", "minimum": 0, "maximum": 10, "default": DEFAULT_RETRIES, "description": "Further attempts after a 5xx, a 429 or a refused connection"},
            "retryDelay": {"type": "integer", "minimum": 0, "maximum": 60_000, "default": DEFAULT_RETRY_DELAY_MS, "description": "First back-off in milliseconds when the server gives no Retry-After; doubles each time"},
        }),
        &["url"],
    )
}

struct Request {
    method: Method,
    url: Jsonata,
    headers: HeaderExprs,
    body: Option<Jsonata>,
    timeout: Duration,
    retries: u32,
    retry_delay: Duration,
}

/// What one attempt ended with.
enum Outcome {
    Answered(Response),
    /// Worth another attempt after this long (if any are left).
    Retry(Duration, StepError),
}

impl Request {
    fn url(&self, data: &Value) -> Result<Url, StepError> {
        let url = match self.url.evaluate(data)? {
            Some(Value::String(url)) => url,
            _ => return Err(self.url.bad_result("must give a URL string")),
        };
        let url = Url::parse(&url)
            .map_err(|e| self.url.bad_result(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self
                .url
                .bad_result("only http and https URLs can be called"));
        }
        Ok(url)
    }

    async fn attempt(
        &self,
        ctx: &StepContext,
        url: &Url,
        headers: &[(String, String)],
        body: Option<&Value>,
        attempt: u32,
    ) -> Result<Outcome, StepError> {
        let mut request = ctx
            .http
            .request(self.method.clone(), url.clone())
            .timeout(self.timeout);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let has_content_type = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        request = match body {
            None => request,
            Some(Value::String(text)) if has_content_type => request.body(text.clone()),
            Some(Value::String(text)) => request
                .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(text.clone()),
            Some(other) => request.json(other),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let error = StepError::Request(explain(&e, self.timeout));
                // Only a connection that was never made is safe to retry for every method.
                return if e.is_connect() {
                    Ok(Outcome::Retry(self.backoff(attempt), error))
                } else {
                    Err(error)
                };
            }
        };
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(response.headers()).unwrap_or_else(|| self.backoff(attempt));
            let error = failure(status, response).await;
            return Ok(Outcome::Retry(wait, error));
        }
        Ok(Outcome::Answered(response))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.retry_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(MAX_WAIT)
    }
}

#[async_trait]
impl Step for Request {
    async fn process(&self, msg: StepMessage, ctx: &StepContext) -> Result<Vec<Emit>, StepError> {
        let url = self.url(&msg.data)?;
        let headers = self.headers.evaluate(&msg.data)?;
        let body = match &self.body {
            Some(expr) => expr.evaluate(&msg.data)?,
            None => None,
        };
        let mut attempt = 0;
        let response = loop {
            match self
                .attempt(ctx, &url, &headers, body.as_ref(), attempt)
                .await?
            {
                Outcome::Answered(response) => break response,
                Outcome::Retry(wait, error) => {
                    if attempt >= self.retries || wait > MAX_WAIT {
                        return Err(error);
                    }
                    tracing::debug!(%error, ?wait, attempt, "http-request: retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        };
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            return Err(failure(status, response).await);
        }
        let headers = header_map(response.headers());
        let body = parse_body(response, self.timeout).await?;
        let data = json!({"statusCode": status.as_u16(), "headers": headers, "body": body});
        Ok(vec![Emit::Data(msg.with_data(data))])
    }
}

/// The error for a failure status, with the start of the answer's body.
async fn failure(status: StatusCode, response: Response) -> StepError {
    let body = match read(response, Duration::MAX).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes)
            .chars()
            .take(ERROR_BODY_CHARS)
            .collect(),
        Err(e) => format!("(body unreadable: {e})"),
    };
    StepError::Status {
        status: status.as_u16(),
        body,
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// reqwest's message without the URL, whose query may hold a token.
fn explain(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

fn header_map(headers: &HeaderMap) -> Map<String, Value> {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            // A repeated header is one comma-separated value (RFC 9110 §5.3).
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    map
}

/// The answer's body: parsed when it says it is JSON (and is), else text; empty is `null`.
async fn parse_body(response: Response, timeout: Duration) -> Result<Value, StepError> {
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let bytes = read(response, timeout).await?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if is_json && let Ok(value) = serde_json::from_slice(&bytes) {
        return Ok(value);
    }
    Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

async fn read(mut response: Response, timeout: Duration) -> Result<Vec<u8>, StepError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| StepError::Request(explain(&e, timeout)))?
    {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(StepError::Request(format!(
                "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("valid"));
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(&HeaderMap::new()), None);
        assert_eq!(
            retry_after(&with_retry_after("120")),
            Some(Duration::from_secs(120))
        );
        assert_eq!(retry_after(&with_retry_after("soon")), None);
        let past = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(retry_after(&with_retry_after(past)), Some(Duration::ZERO));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let wait = retry_after(&with_retry_after(&later)).expect("a date");
        assert!(
            wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let request = Request {
            method: Method::GET,
            url: Jsonata::compile("url", "'http://x'").expect("parses"),
            headers: HeaderExprs::default(),
            body: None,
            timeout: Duration::from_secs(1),
            retries: 3,
            retry_delay: Duration::from_millis(100),
        };
        assert_eq!(request.backoff(0), Duration::from_millis(100));
        assert_eq!(request.backoff(3), Duration::from_millis(800));
        assert_eq!(request.backoff(30), MAX_WAIT);
    }

    #[test]
    fn repeated_headers_are_joined() {
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.insert("x-one", HeaderValue::from_static("1"));
        assert_eq!(
            Value::Object(header_map(&headers)),
            json!({"set-cookie": "a=1, b=2", "x-one": "1"})
        );
    }
}
