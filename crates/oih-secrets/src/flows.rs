//! The OAuth2 authorization-code flow: `POST /auth-clients/{id}/start-flow` builds the
//! provider URL, `GET /callback` exchanges the code and stores the tokens as a secret
//! (data-services.md §3.8). Unlike OIH the flow uses PKCE (S256), and `state` carries a random
//! nonce checked on return, so a callback cannot be forged from a guessable flow id.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, Utc};
use oih_core::{ObjectId, Owner, OwnerType};
use oih_http::{ApiError, Auth, Data, Json, Path, Query};
use oih_store::{Collection, CollectionSpec, DocStore, Filter, FindOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::client_http::{Access, client_for};
use crate::client_model::StoredClient;
use crate::events::SECRET_CREATED;
use crate::http::object_body;
use crate::model::{SecretType, StoredSecret};
use crate::oauth::{self, Tokens};
use crate::service::Service;

pub const FLOWS: Collection = Collection("secrets_auth_flows");

/// `expires` of a token granted without `expires_in`: it does not expire (OIH used a date in
/// the year 33658).
const NEVER: &str = "9999-12-31T23:59:59Z";

pub async fn ensure_collection(docs: &dyn DocStore) -> Result<(), oih_store::StoreError> {
    docs.ensure_collection(FLOWS, &CollectionSpec::default())
        .await
}

/// Routes that need a token.
pub fn routes() -> Router<Service> {
    Router::new().route("/api/v1/auth-clients/{id}/start-flow", post(start_flow))
}

/// The callback, which the provider's redirect reaches without a token.
pub fn public_routes() -> Router<Service> {
    Router::new().route("/api/v1/callback", get(callback))
}

/// A started flow, kept until the callback or its TTL (OIH's TTL_AUTHFLOW).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFlow {
    creator: String,
    creator_type: OwnerType,
    tenant: Option<String>,
    auth_client_id: String,
    scope: String,
    secret_name: Option<String>,
    success_url: Option<String>,
    code_verifier: String,
    nonce: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlowState {
    flow_id: String,
    nonce: String,
    #[serde(default)]
    payload: Value,
}

/// JavaScript's `encodeURIComponent`.
fn encode_component(s: &str) -> String {
    const KEEP: &[u8] = b"-_.!~*'()";
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || KEEP.contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn random_token() -> String {
    B64URL.encode(rand::random::<[u8; 32]>())
}

fn optional_text(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::BadRequest(format!("{name} must be a string"))),
    }
}

#[utoipa::path(post, path = "/api/v1/auth-clients/{id}/start-flow", tag = "auth-clients",
    params(("id" = String, Path, description = "An OA2_AUTHORIZATION_CODE client's id")),
    request_body(content = Object, description = "`{scope?, secretName?, successUrl?, payload?}`"),
    responses(
        (status = 200, description = "`{data: {authUrl}}`: the provider's URL with state and a PKCE (S256) challenge"),
        (status = 400, description = "`{message}`: bad input, or an OAuth 1.0a client (not supported)"),
        (status = 405, description = "`{message: \"No Flows Defined\"}`: a client type without a flow"),
    )
)]
pub(crate) async fn start_flow(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let body = object_body(body)?;
    let (client_doc, client) = client_for(&svc, &who, &id, Access::Use).await?;
    let id = client_doc.id;
    match client.kind {
        SecretType::Oa2AuthorizationCode => {}
        SecretType::Oa1ThreeLegged => {
            return Err(ApiError::bad_request("OAuth 1.0a flows are not supported"));
        }
        _ => {
            return Err(ApiError::Other {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "No Flows Defined".into(),
            });
        }
    }
    let success_url = optional_text(&body, "successUrl")?;
    if let Some(url) = &success_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(ApiError::bad_request("successUrl must be an http(s) URL"));
    }
    let scope = optional_text(&body, "scope")?.unwrap_or_default();
    let scope = match client.text(&["predefinedScope"]).filter(|s| !s.is_empty()) {
        Some(predefined) if scope.is_empty() => predefined.to_owned(),
        Some(predefined) => format!("{predefined} {scope}"),
        None => scope,
    };
    let flow = AuthFlow {
        creator: who.sub.clone(),
        creator_type: OwnerType::User,
        tenant: who.tenant.clone(),
        auth_client_id: id.clone(),
        scope: scope.clone(),
        secret_name: optional_text(&body, "secretName")?,
        success_url,
        code_verifier: random_token(),
        nonce: random_token(),
    };
    let flow_id = ObjectId::new().to_string();
    let state = FlowState {
        flow_id: flow_id.clone(),
        nonce: flow.nonce.clone(),
        payload: body.get("payload").cloned().unwrap_or_else(|| json!({})),
    };
    let state = B64URL.encode(serde_json::to_vec(&state).map_err(ApiError::internal)?);
    let challenge = B64URL.encode(Sha256::digest(flow.code_verifier.as_bytes()));
    let auth_url = auth_url(&client, &scope, &state, &challenge);
    let expires_at = Utc::now() + svc.settings.flow_ttl;
    let body = serde_json::to_value(&flow).map_err(ApiError::internal)?;
    svc.clients
        .docs()
        .insert(FLOWS, &flow_id, body, Some(expires_at))
        .await?;
    Ok(Data::new(json!({ "authUrl": auth_url })).into_response())
}

/// `endpoints.auth` with its placeholders filled, plus the PKCE challenge (and `state`, when
/// the template has no place for it).
fn auth_url(client: &StoredClient, scope: &str, state: &str, challenge: &str) -> String {
    let template = client.text(&["endpoints", "auth"]).unwrap_or_default();
    let mut url = template.to_owned();
    for (placeholder, value) in [
        ("{{scope}}", scope),
        ("{{state}}", state),
        (
            "{{redirectUri}}",
            client.text(&["redirectUri"]).unwrap_or_default(),
        ),
        (
            "{{clientId}}",
            client.text(&["clientId"]).unwrap_or_default(),
        ),
    ] {
        url = url.replacen(placeholder, &encode_component(value), 1);
    }
    let mut extra = vec![
        ("code_challenge", challenge.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
    ];
    if !template.contains("{{state}}") {
        extra.push(("state", encode_component(state)));
    }
    for (key, value) in extra {
        let sep = if url.contains('?') { '&' } else { '?' };
        url = format!("{url}{sep}{key}={value}");
    }
    url
}

#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Equal in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[utoipa::path(get, path = "/api/v1/callback", tag = "auth-clients",
    params(
        ("code" = String, Query, description = "Authorization code"),
        ("state" = String, Query, description = "The state start-flow put in the URL"),
    ),
    responses(
        (status = 302, description = "To `successUrl` with `secretId` added, when the flow had one"),
        (status = 200, description = "`{data: {secretId}}`"),
        (status = 400, description = "`{message}`: unknown, expired or forged state, or the code exchange failed"),
    ),
    security(())
)]
pub(crate) async fn callback(
    State(svc): State<Service>,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    if let Some(error) = query.error {
        return Err(ApiError::BadRequest(format!(
            "The provider did not grant access: {error}"
        )));
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return Err(ApiError::bad_request("code and state are required"));
    };
    let state: FlowState = B64URL
        .decode(state.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_request("Invalid state"))?;
    let unknown = || ApiError::bad_request("Unknown or expired auth flow");
    if !ObjectId::is_valid(&state.flow_id) {
        return Err(unknown());
    }
    let docs = svc.clients.docs();
    let doc = docs.get(FLOWS, &state.flow_id).await?.ok_or_else(unknown)?;
    let flow: AuthFlow = serde_json::from_value(doc.body).map_err(|_| unknown())?;
    if !same(&flow.nonce, &state.nonce) {
        return Err(unknown());
    }
    // One use only, whatever happens next.
    if !docs.delete(FLOWS, &state.flow_id).await? {
        return Err(unknown());
    }
    let Some((client_doc, client)) = svc.clients.get(&flow.auth_client_id).await? else {
        return Err(ApiError::bad_request("Auth client not found"));
    };
    let fields = svc.clients.plaintext(&client_doc.id, &client).await?;
    let field = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or_default();
    let token_url = fields
        .get("endpoints")
        .and_then(|e| e.get("token"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tokens = oauth::token_request(
        &svc.http,
        token_url,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", field("clientId")),
            ("client_secret", field("clientSecret")),
            ("redirect_uri", field("redirectUri")),
            ("code_verifier", &flow.code_verifier),
        ],
    )
    .await
    .map_err(|e| ApiError::BadRequest(format!("Token exchange failed: {e}")))?;
    let external_id = external_id(client.preprocessor.as_deref(), &tokens)?;
    let secret_id = store_tokens(&svc, &flow, &client, &tokens, external_id).await?;
    match &flow.success_url {
        Some(url) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            let location = format!("{url}{sep}secretId={secret_id}");
            let location = HeaderValue::from_str(&location)
                .map_err(|_| ApiError::bad_request("successUrl is not a valid URL"))?;
            Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
        }
        None => Ok(Data::new(json!({ "secretId": secret_id })).into_response()),
    }
}

/// The claims of an ID token, read without verifying its signature: it came straight from
/// the token endpoint over TLS, and is used only to name the account.
fn id_token_claims(id_token: &str) -> Option<Map<String, Value>> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = B64URL.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The account id OIH's preprocessors derive (`value.externalId`), used to update an existing
/// secret instead of adding another. No preprocessor: none (OIH made a random one, which
/// never matched).
fn external_id(preprocessor: Option<&str>, tokens: &Tokens) -> Result<Option<String>, ApiError> {
    let Some(name) = preprocessor.map(|p| p.strip_prefix("preprocessor.").unwrap_or(p)) else {
        return Ok(None);
    };
    let claim = match name {
        "default" => return Ok(None),
        "microsoft" => "email",
        "azure" => "preferred_username",
        // OIH stored the whole ID token, which differs at every login.
        "oidc" => "sub",
        other => {
            return Err(ApiError::BadRequest(format!(
                "Missing preprocessor {other}"
            )));
        }
    };
    Ok(tokens
        .id_token
        .as_deref()
        .and_then(id_token_claims)
        .and_then(|claims| claims.get(claim).and_then(Value::as_str).map(str::to_owned)))
}

pub fn expires_from(expires_in: Option<i64>, now: DateTime<Utc>) -> String {
    match expires_in {
        Some(secs) => (now + chrono::Duration::seconds(secs)).to_rfc3339(),
        None => NEVER.to_owned(),
    }
}

/// Updates the secret of the same account (same client and externalId, same tenant) or
/// creates one; returns its id.
async fn store_tokens(
    svc: &Service,
    flow: &AuthFlow,
    client: &StoredClient,
    tokens: &Tokens,
    external_id: Option<String>,
) -> Result<String, ApiError> {
    let scope = tokens.scope.clone().unwrap_or_else(|| flow.scope.clone());
    let expires = expires_from(tokens.expires_in, Utc::now());
    let creator = Owner {
        id: flow.creator.clone(),
        kind: flow.creator_type,
    };
    let mut fresh = Map::new();
    fresh.insert("accessToken".into(), json!(tokens.access_token));
    if let Some(refresh) = &tokens.refresh_token {
        fresh.insert("refreshToken".into(), json!(refresh));
    }
    fresh.insert("scope".into(), json!(scope));
    fresh.insert("expires".into(), json!(expires));

    if let Some(external) = &external_id {
        let tenant = match &flow.tenant {
            Some(t) => Filter::eq("tenant", t.as_str()),
            None => Filter::Exists("tenant".into(), false),
        };
        let same_account = Filter::and([
            Filter::eq("value.authClientId", flow.auth_client_id.as_str()),
            Filter::eq("value.externalId", external.as_str()),
            tenant,
        ]);
        let found = svc
            .secrets
            .find(
                &same_account,
                &FindOptions {
                    limit: Some(1),
                    ..FindOptions::default()
                },
            )
            .await?;
        if let Some((doc, _)) = found.into_iter().next() {
            svc.secrets
                .update(&doc.id, |s| {
                    for (k, v) in &fresh {
                        s.encrypted_fields.retain(|f| f != k);
                        s.value.insert(k.clone(), v.clone());
                    }
                    s.current_error = None;
                    s.locked_at = None;
                    crate::model::add_owner(&mut s.owners, creator.clone());
                    Ok(true)
                })
                .await?;
            return Ok(doc.id);
        }
    }
    let mut value = fresh;
    value.insert("authClientId".into(), json!(flow.auth_client_id));
    if let Some(external) = &external_id {
        value.insert("externalId".into(), json!(external));
    }
    let name = flow
        .secret_name
        .clone()
        .or_else(|| external_id.clone())
        .unwrap_or_else(|| client.name.clone());
    let secret = StoredSecret {
        name: name.clone(),
        kind: SecretType::Oa2AuthorizationCode,
        owners: vec![creator],
        tenant: flow.tenant.clone(),
        domain: None,
        mixed_properties: None,
        value,
        encrypted_fields: Vec::new(),
        current_error: None,
        locked_at: None,
    };
    let id = ObjectId::new().to_string();
    svc.secrets.insert(&id, secret).await?;
    svc.events
        .emit(SECRET_CREATED, json!({"id": id, "name": name}))
        .await;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_javascript() {
        assert_eq!(
            encode_component("a b&c/d?e=f~*'()"),
            "a%20b%26c%2Fd%3Fe%3Df~*'()"
        );
        assert_eq!(encode_component("ü"), "%C3%BC");
    }

    #[test]
    fn reads_id_token_claims() {
        let payload = B64URL.encode(br#"{"sub":"abc","email":"a@b.c"}"#);
        let token = format!("x.{payload}.y");
        let tokens = Tokens {
            id_token: Some(token),
            ..Tokens::default()
        };
        assert_eq!(
            external_id(Some("preprocessor.microsoft"), &tokens)
                .ok()
                .flatten()
                .as_deref(),
            Some("a@b.c")
        );
        assert_eq!(
            external_id(Some("oidc"), &tokens).ok().flatten().as_deref(),
            Some("abc")
        );
        assert_eq!(external_id(None, &tokens).ok().flatten(), None);
        assert!(external_id(Some("zoomish"), &tokens).is_err());
    }
}
