//! Calls to providers: the OAuth2 code exchange and refresh, and a session login
//! (data-services.md §3.6, §3.8). Errors describe the provider's answer, never a token.

use serde_json::{Map, Value};

/// What a token endpoint (or session login) granted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Seconds.
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
    pub id_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("HTTP Error Response: {status} {reason}")]
    Http { status: u16, reason: String },
    /// The provider answered with an OAuth `error` (kept whole as the secret's `currentError`).
    #[error("the provider refused: {code}")]
    Refused { code: String, body: Value },
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the provider's answer has no access token")]
    NoToken,
    #[error("the provider's answer has no oauth_token and oauth_token_secret")]
    NoOAuth1Token,
    #[error("the auth client's endpoint is not a URL")]
    BadEndpoint,
}

impl ProviderError {
    /// What is recorded as a secret's `currentError`.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Refused { body, .. } => body.clone(),
            other => serde_json::json!({"error": other.to_string()}),
        }
    }
}

pub(crate) fn unreachable(err: &reqwest::Error) -> ProviderError {
    // Without the URL: some providers put credentials in query strings.
    ProviderError::Unreachable(
        err.to_string()
            .replace(err.url().map(|u| u.as_str()).unwrap_or("\u{0}"), "<url>"),
    )
}

async fn json_answer(res: reqwest::Response) -> Result<Value, ProviderError> {
    let status = res.status();
    let body: Option<Value> = res.json().await.ok();
    if let Some(body) = &body
        && let Some(code) = body.get("error").filter(|e| !e.is_null())
    {
        let code = code
            .as_str()
            .map_or_else(|| code.to_string(), str::to_owned);
        return Err(ProviderError::Refused {
            code,
            body: body.clone(),
        });
    }
    if !status.is_success() {
        return Err(ProviderError::Http {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
        });
    }
    body.ok_or(ProviderError::NoToken)
}

/// A number, or a string holding one (some providers send `"3600"`).
fn seconds(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

/// POSTs an OAuth2 token request (form-encoded, JSON answer).
pub async fn token_request(
    http: &reqwest::Client,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<Tokens, ProviderError> {
    let res = http
        .post(token_url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    let body = json_answer(res).await?;
    Ok(Tokens {
        access_token: text(body.get("access_token")).ok_or(ProviderError::NoToken)?,
        refresh_token: text(body.get("refresh_token")),
        expires_in: seconds(body.get("expires_in")),
        scope: text(body.get("scope")).or_else(|| text(body.get("scopes"))),
        id_token: text(body.get("id_token")),
    })
}

/// The value at a dotted path (`data.token`), as lodash's `get` reads it.
fn at_path<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(body, |v, key| match v {
        Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => v.get(key),
    })
}

/// `{{fields.<key>}}` replaced by the user's input for that field.
fn fill(template: &str, inputs: &Map<String, Value>) -> String {
    let mut out = template.to_owned();
    for (key, value) in inputs {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out = out.replacen(&format!("{{{{fields.{key}}}}}"), &text, 1);
    }
    out
}

/// Logs in with a SESSION_AUTH client's `endpoints.auth` request and the user's inputs.
pub async fn session_login(
    http: &reqwest::Client,
    client: &Map<String, Value>,
    inputs: &Map<String, Value>,
) -> Result<Tokens, ProviderError> {
    let auth = client
        .get("endpoints")
        .and_then(|e| e.get("auth"))
        .ok_or(ProviderError::NoToken)?;
    let url = fill(
        auth.get("url").and_then(Value::as_str).unwrap_or(""),
        inputs,
    );
    let fields: Vec<(String, String)> = auth
        .get("requestFields")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|f| {
                    let key = f.get("key")?.as_str()?.to_owned();
                    let value = fill(f.get("value").and_then(Value::as_str).unwrap_or(""), inputs);
                    Some((key, value))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut req = http
        .post(&url)
        .header(reqwest::header::ACCEPT, "application/json");
    req = match auth.get("authType").and_then(Value::as_str) {
        Some("HEADER_AUTH") => fields
            .iter()
            .fold(req, |req, (k, v)| req.header(k.as_str(), v.as_str())),
        Some("BODY_AUTH") => {
            let body: Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            req.json(&body)
        }
        // FORM_AUTH and PARAMS_AUTH: an urlencoded body.
        _ => req.form(&fields),
    };
    let res = req.send().await.map_err(|e| unreachable(&e))?;
    let body = json_answer(res).await?;
    let token_path = client
        .get("tokenPath")
        .and_then(Value::as_str)
        .unwrap_or("access_token");
    let token = at_path(&body, token_path).ok_or(ProviderError::NoToken)?;
    let access_token = match token {
        Value::String(s) => s.clone(),
        Value::Null => return Err(ProviderError::NoToken),
        other => other.to_string(),
    };
    let expires_in = client
        .get("expirationPath")
        .and_then(Value::as_str)
        .and_then(|p| seconds(at_path(&body, p)));
    Ok(Tokens {
        access_token,
        expires_in,
        ..Tokens::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_templates() {
        let body = json!({"data": {"token": "t", "list": [{"x": 1}]}});
        assert_eq!(at_path(&body, "data.token"), Some(&json!("t")));
        assert_eq!(at_path(&body, "data.list.0.x"), Some(&json!(1)));
        assert_eq!(at_path(&body, "nope.x"), None);
        let inputs = json!({"user": "bob", "pin": 1234})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            fill("https://x/{{fields.user}}?pin={{fields.pin}}", &inputs),
            "https://x/bob?pin=1234"
        );
        assert_eq!(seconds(Some(&json!("3600"))), Some(3600));
    }
}
