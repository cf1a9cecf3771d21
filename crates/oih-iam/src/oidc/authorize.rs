//! `GET /op/auth` shows a minimal login form for an authorization request; `POST /op/auth`
//! checks the credentials (with IAM's password code and login throttling) and redirects back
//! to the client with a single-use code (or an error), passing `state` through.
//!
//! Requests that name an unknown client or an unregistered `redirect_uri` are answered here
//! with 400 and never redirected (OpenID Connect Core §3.1.2.6), so nobody can use the
//! provider to bounce users to arbitrary sites.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::grants::{Code, expiry, issue_code};
use super::{clients, known_scopes, provider};
use crate::routes::auth::{LoginFailure, check_credentials};
use crate::state::AppState;

/// The authorization request's parameters (RFC 6749 §4.1.1, RFC 7636, OIDC `nonce`); the
/// form posts them back as hidden fields with `username` and `password`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Params {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    #[serde(default, skip_serializing)]
    username: Option<String>,
    #[serde(default, skip_serializing)]
    password: Option<String>,
}

/// A request that passed validation.
struct Valid {
    client_id: String,
    redirect_uri: String,
    scope: String,
    code_challenge: String,
}

/// Why a request is refused: on our own page, or by redirecting to the (verified) client.
enum Refusal {
    Page(&'static str),
    Redirect {
        to: String,
        error: &'static str,
        description: &'static str,
        state: Option<String>,
    },
    Server,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Page(message) => page(StatusCode::BAD_REQUEST, message, None),
            Self::Redirect {
                to,
                error,
                description,
                state,
            } => redirect(
                &to,
                &[("error", error), ("error_description", description)],
                state.as_deref(),
            ),
            Self::Server => page(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None),
        }
    }
}

async fn validate(state: &AppState, p: &Params) -> Result<Valid, Refusal> {
    let client_id = p
        .client_id
        .as_deref()
        .ok_or(Refusal::Page("client_id is missing"))?;
    let client = clients::find(state, client_id)
        .await
        .map_err(|_| Refusal::Server)?
        .ok_or(Refusal::Page("unknown client"))?;
    let redirect_uri = p
        .redirect_uri
        .as_deref()
        .filter(|uri| client.body.redirect_uris.iter().any(|r| r == uri))
        .ok_or(Refusal::Page(
            "redirect_uri is not registered for this client",
        ))?;
    let refuse = |error, description| Refusal::Redirect {
        to: redirect_uri.to_owned(),
        error,
        description,
        state: p.state.clone(),
    };
    if p.response_type.as_deref() != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let scopes = known_scopes(p.scope.as_deref().unwrap_or_default());
    if !scopes.contains(&"openid") {
        return Err(refuse("invalid_scope", "the openid scope is required"));
    }
    // PKCE is required of every client; `plain` would give no protection.
    let code_challenge = match (&p.code_challenge, p.code_challenge_method.as_deref()) {
        (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => challenge.clone(),
        _ => {
            return Err(refuse(
                "invalid_request",
                "a PKCE code_challenge with code_challenge_method=S256 is required",
            ));
        }
    };
    Ok(Valid {
        client_id: client.id,
        redirect_uri: redirect_uri.to_owned(),
        scope: scopes.join(" "),
        code_challenge,
    })
}

/// base64url of a SHA-256 digest: 43 characters.
fn is_s256_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse(text: &str) -> Result<Params, Refusal> {
    serde_urlencoded::from_str(text).map_err(|_| Refusal::Page("malformed request"))
}

/// `GET /op/auth`.
pub async fn form(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = match parse(query.as_deref().unwrap_or_default()) {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(),
    };
    match validate(&state, &params).await {
        Ok(_) => page(StatusCode::OK, "", Some(&params)),
        Err(refusal) => refusal.into_response(),
    }
}

/// `POST /op/auth` (form-encoded).
pub async fn login(State(state): State<AppState>, body: Bytes) -> Response {
    let params = match std::str::from_utf8(&body)
        .map_err(|_| Refusal::Page("malformed request"))
        .and_then(parse)
    {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(),
    };
    let valid = match validate(&state, &params).await {
        Ok(v) => v,
        Err(refusal) => return refusal.into_response(),
    };
    let (Some(username), Some(password)) = (
        params.username.as_deref().filter(|u| !u.is_empty()),
        params.password.as_deref().filter(|p| !p.is_empty()),
    ) else {
        return page(
            StatusCode::UNAUTHORIZED,
            "Enter username and password.",
            Some(&params),
        );
    };
    let account = match check_credentials(&state, username, password).await {
        Ok(account) => account,
        Err(LoginFailure::Throttled) => {
            return page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts; try again later.",
                Some(&params),
            );
        }
        Err(LoginFailure::Rejected(_)) => {
            return page(
                StatusCode::UNAUTHORIZED,
                "Wrong username or password.",
                Some(&params),
            );
        }
        Err(other) => {
            tracing::error!(error = %oih_http::ApiError::from(other), "OIDC login failed");
            return Refusal::Server.into_response();
        }
    };
    let Ok(op) = provider(&state) else {
        return Refusal::Server.into_response();
    };
    let code = Code {
        code_hash: String::new(),
        client_id: valid.client_id,
        account_id: account.id,
        redirect_uri: valid.redirect_uri.clone(),
        code_challenge: valid.code_challenge,
        nonce: params.nonce.clone(),
        scope: valid.scope,
        auth_time: Utc::now().timestamp(),
        expires_at: expiry(op.code_ttl),
        used: false,
    };
    match issue_code(&state, code).await {
        Ok(code) => redirect(
            &valid.redirect_uri,
            &[("code", &code)],
            params.state.as_deref(),
        ),
        Err(_) => Refusal::Server.into_response(),
    }
}

/// 303 to the client's registered URI with the given parameters (and `state`) appended.
fn redirect(to: &str, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    let Ok(mut url) = reqwest::Url::parse(to) else {
        return page(StatusCode::BAD_REQUEST, "invalid redirect_uri", None);
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    let Ok(location) = HeaderValue::from_str(url.as_str()) else {
        return page(StatusCode::BAD_REQUEST, "invalid redirect_uri", None);
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// The login form (with the request's parameters as hidden fields), or just a message.
fn page(status: StatusCode, message: &str, params: Option<&Params>) -> Response {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in</title></head><body><h1>Sign in</h1>",
    );
    if !message.is_empty() {
        html.push_str(&format!("<p role=\"alert\">{}</p>", escape(message)));
    }
    if let Some(params) = params {
        html.push_str("<form method=\"post\" action=\"\">");
        let hidden = serde_urlencoded::to_string(params)
            .ok()
            .and_then(|s| serde_urlencoded::from_str::<Vec<(String, String)>>(&s).ok())
            .unwrap_or_default();
        for (name, value) in hidden {
            html.push_str(&format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(&name),
                escape(&value)
            ));
        }
        html.push_str(
            "<label>Username <input name=\"username\" autocomplete=\"username\" required></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Sign in</button></form>",
        );
    }
    html.push_str("</body></html>");
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The form must not be framed by another site (clickjacking).
    headers.insert(
        header::HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    response
}

fn escape(text: &str) -> String {
    text.chars()
        .fold(String::with_capacity(text.len()), |mut s, c| {
            match c {
                '&' => s.push_str("&amp;"),
                '<' => s.push_str("&lt;"),
                '>' => s.push_str("&gt;"),
                '"' => s.push_str("&quot;"),
                '\'' => s.push_str("&#39;"),
                c => s.push(c),
            }
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn s256_challenges_are_43_base64url_characters() {
        assert!(is_s256_challenge(&"a".repeat(43)));
        assert!(!is_s256_challenge(&"a".repeat(42)));
        assert!(!is_s256_challenge(&format!("{}=", "a".repeat(42))));
    }
}
