//! Registered relying parties (`iam_oidc_clients`): registration, listing and removal by an
//! admin at `/api/v1/oidc/clients`, and client authentication at the token endpoint
//! (`client_secret_basic`, `client_secret_post`, or `none` for public clients).
//!
//! A client's id is its document id; its secret is shown once at registration and stored only
//! as a fingerprint.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oih_http::{ApiError, Json, Path};
use oih_store::Filter;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::OAuthError;
use super::{fingerprint, random_secret};
use crate::access::Caller;
use crate::password::constant_time_eq;
use crate::routes::valid_id;
use crate::state::AppState;
use crate::store::{OIDC_CLIENTS, OIDC_TOKENS, Stored};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub name: String,
    /// Exact strings; an authorization request must name one of them verbatim.
    pub redirect_uris: Vec<String>,
    /// Fingerprint of the secret; absent for public clients (PKCE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    pub created_by: String,
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }
}

/// How a client is shown: never its secret's fingerprint.
fn render(client: &Stored<Client>) -> Value {
    json!({
        "clientId": client.id,
        "name": client.body.name,
        "redirectUris": client.body.redirect_uris,
        "tokenEndpointAuthMethod": if client.body.is_confidential() {
            "client_secret_basic"
        } else {
            "none"
        },
        "createdBy": client.body.created_by,
        "createdAt": client.created_at,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registration {
    name: String,
    redirect_uris: Vec<String>,
    /// A public client (browser or native app) gets no secret and cannot use
    /// `client_credentials`.
    #[serde(default)]
    public: bool,
}

/// Absolute http(s) URLs without a fragment (OpenID Connect Core §3.1.2.1).
fn valid_redirect(uri: &str) -> bool {
    reqwest::Url::parse(uri)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none())
}

/// `POST /api/v1/oidc/clients`: 201 with the secret, the only time it is shown.
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    caller.admin()?;
    let reg: Registration =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if reg.name.trim().is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    if reg.redirect_uris.is_empty() || !reg.redirect_uris.iter().all(|u| valid_redirect(u)) {
        return Err(ApiError::bad_request(
            "redirectUris must be absolute http(s) URLs without a fragment",
        ));
    }
    let secret = (!reg.public).then(random_secret);
    let client = Client {
        name: reg.name,
        redirect_uris: reg.redirect_uris,
        secret_hash: secret.as_deref().map(fingerprint),
        created_by: caller.id().to_owned(),
    };
    let stored = state.repo.insert(OIDC_CLIENTS, &client, None).await?;
    let mut body = render(&stored);
    if let (Some(secret), Value::Object(map)) = (secret, &mut body) {
        map.insert("clientSecret".into(), Value::String(secret));
    }
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `GET /api/v1/oidc/clients`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Value>, ApiError> {
    caller.admin()?;
    let clients: Vec<Stored<Client>> = state.repo.find(OIDC_CLIENTS, &Filter::All).await?;
    Ok(axum::Json(Value::Array(
        clients.iter().map(render).collect(),
    )))
}

/// `DELETE /api/v1/oidc/clients/{id}`: the client and every token issued to it.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.admin()?;
    valid_id(&id)?;
    if !state.repo.delete(OIDC_CLIENTS, &id).await? {
        return Err(ApiError::not_found("Not Found"));
    }
    state
        .repo
        .delete_many(OIDC_TOKENS, &Filter::eq("clientId", id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn find(state: &AppState, id: &str) -> Result<Option<Stored<Client>>, OAuthError> {
    Ok(state.repo.get(OIDC_CLIENTS, id).await?)
}

/// RFC 6749 §2.3.1: `id:secret`, each form-urlencoded, in a Basic header.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| OAuthError::invalid_client())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(OAuthError::invalid_client());
    };
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(OAuthError::invalid_client)?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    Ok(Some((form_decode(id)?, form_decode(secret)?)))
}

fn form_decode(part: &str) -> Result<String, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={part}"))
        .map_err(|_| OAuthError::invalid_client())?;
    Ok(pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
}

/// Who is calling the token endpoint. Confidential clients prove their secret by exactly one
/// method; public clients only name themselves.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Stored<Client>, OAuthError> {
    let (id, secret) = match (basic_credentials(headers)?, form_id, form_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request("client_id does not match"));
            }
            (id, Some(secret))
        }
        (None, Some(id), secret) => (id.to_owned(), secret.map(str::to_owned)),
        (None, None, _) => return Err(OAuthError::invalid_client()),
    };
    let client = find(state, &id)
        .await?
        .ok_or_else(OAuthError::invalid_client)?;
    let authentic = match (&client.body.secret_hash, secret) {
        (Some(hash), Some(secret)) => {
            constant_time_eq(hash.as_bytes(), fingerprint(&secret).as_bytes())
        }
        (None, None) => true,
        _ => false,
    };
    if authentic {
        Ok(client)
    } else {
        Err(OAuthError::invalid_client())
    }
}
