//! OAuth 1.0a calls to providers (RFC 5849 §2): a request token for start-flow, and its
//! exchange for an access token at the callback. Both are POSTs without a body, signed in the
//! `Authorization` header, answered form-encoded.

mod signing;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use reqwest::Url;
use serde_json::{Map, Value};

use crate::oauth::{ProviderError, unreachable};

pub use signing::{SignatureMethod, Signer, encode as percent_encode};

/// A token and its secret, as a provider granted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub token: String,
    pub secret: String,
    /// Seconds (`oauth_expires_in`, which a few providers send).
    pub expires_in: Option<i64>,
}

/// Asks for a request token (§2.1); the provider sends the user back to `callback`.
pub async fn request_token(
    http: &reqwest::Client,
    endpoint: &str,
    signer: Signer<'_>,
    callback: &str,
) -> Result<TokenPair, ProviderError> {
    post_signed(http, endpoint, signer, &[("oauth_callback", callback)]).await
}

/// Exchanges the authorized request token (in `signer`) and the verifier for an access token
/// (§2.3).
pub async fn access_token(
    http: &reqwest::Client,
    endpoint: &str,
    signer: Signer<'_>,
    verifier: &str,
) -> Result<TokenPair, ProviderError> {
    post_signed(http, endpoint, signer, &[("oauth_verifier", verifier)]).await
}

async fn post_signed(
    http: &reqwest::Client,
    endpoint: &str,
    signer: Signer<'_>,
    extra: &[(&str, &str)],
) -> Result<TokenPair, ProviderError> {
    let url = Url::parse(endpoint).map_err(|_| ProviderError::BadEndpoint)?;
    let nonce = B64URL.encode(rand::random::<[u8; 16]>());
    let authorization =
        signer.authorization("POST", &url, extra, &nonce, chrono::Utc::now().timestamp());
    let res = http
        .post(url)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .header(reqwest::header::CONTENT_LENGTH, 0)
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    let status = res.status();
    let body = res.bytes().await.map_err(|e| unreachable(&e))?;
    let params: Map<String, Value> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    if !status.is_success() {
        // §3.2 leaves error answers open; many providers send `oauth_problem` (the OAuth
        // Problem Reporting extension).
        if let Some(problem) = params.get("oauth_problem").and_then(Value::as_str) {
            return Err(ProviderError::Refused {
                code: problem.to_owned(),
                body: Value::Object(params.clone()),
            });
        }
        return Err(ProviderError::Http {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
        });
    }
    let text = |name: &str| {
        params
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (Some(token), Some(secret)) = (text("oauth_token"), text("oauth_token_secret")) else {
        return Err(ProviderError::NoOAuth1Token);
    };
    Ok(TokenPair {
        token,
        secret,
        expires_in: text("oauth_expires_in").and_then(|s| s.parse().ok()),
    })
}
