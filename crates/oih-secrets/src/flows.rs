//! The auth flows of `POST /auth-clients/{id}/start-flow` and `GET /callback`
//! (data-services.md §3.8). OAuth2 authorization code: start-flow builds the provider URL,
//! the callback exchanges the code and stores the tokens as a secret. Unlike OIH the flow uses
//! PKCE (S256), and `state` carries a random nonce checked on return, so a callback cannot be
//! forged from a guessable flow id. The OAuth 1.0a flows are in `flows/oauth1.rs`.

mod oauth1;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, Utc};
use oih_core::{Identity, ObjectId, Owner, OwnerType};
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
use crate::oauth;
use crate::service::Service;

pub(crate) use oauth1::consumer_credentials;

pub const FLOWS: Collection = Collection("secrets_auth_flows");

/// `expires` of a token granted without `expires_in`: it does not expire (OIH used a date in
/// the year 33658).
const NEVER: &str = "9999-12-31T23:59:59Z";

pub async fn ensure_collection(docs: &dyn DocStore) -> Result<(), oih_store::StoreError> {
    let spec = CollectionSpec {
        unique: vec![],
        // The OAuth1 callback names its flow by the request token.
        indexed: vec!["requestToken"],
    };
    docs.ensure_collection(FLOWS, &spec).await
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
    #[serde(flatten)]
    grant: Grant,
}

/// What the callback checks and uses to finish the flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Grant {
    /// OAuth2: the PKCE verifier, and the nonce `state` carries.
    #[serde(rename_all = "camelCase")]
    Code {
        code_verifier: String,
        nonce: String,
    },
    /// OAuth 1.0a: the request token the provider's redirect names, and its secret.
    #[serde(rename_all = "camelCase")]
    RequestToken {
        request_token: String,
        request_token_secret: String,
    },
}

/// A start-flow request (bare or as `{data}`).
struct StartRequest {
    scope: String,
    secret_name: Option<String>,
    success_url: Option<String>,
    payload: Value,
}

impl StartRequest {
    fn parse(body: Value) -> Result<Self, ApiError> {
        let body = object_body(body)?;
        let success_url = optional_text(&body, "successUrl")?;
        if let Some(url) = &success_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ApiError::bad_request("successUrl must be an http(s) URL"));
        }
        Ok(Self {
            scope: optional_text(&body, "scope")?.unwrap_or_default(),
            secret_name: optional_text(&body, "secretName")?,
            success_url,
            payload: body.get("payload").cloned().unwrap_or_else(|| json!({})),
        })
    }

    /// The flow to keep until the callback.
    fn flow(self, who: &Identity, client_id: &str, scope: String, grant: Grant) -> AuthFlow {
        AuthFlow {
            creator: who.sub.clone(),
            creator_type: OwnerType::User,
            tenant: who.tenant.clone(),
            auth_client_id: client_id.to_owned(),
            scope,
            secret_name: self.secret_name,
            success_url: self.success_url,
            grant,
        }
    }
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
    params(("id" = String, Path, description = "An OA2_AUTHORIZATION_CODE, OA1_THREE_LEGGED or OA1_TWO_LEGGED client's id")),
    request_body(content = Object, description = "`{scope?, secretName?, successUrl?, payload?}`"),
    responses(
        (status = 200, description = "`{data: {authUrl}}`: the provider's URL (OAuth2: with state and a PKCE (S256) challenge; OAuth1 three-legged: with the request token). OA1_TWO_LEGGED: `{data: {secretId, authUrl?}}`, the secret created at once, `authUrl` being `successUrl?secretId=`"),
        (status = 400, description = "`{message}`: bad input, or a client signature method other than HMAC-SHA1, HMAC-SHA256 or PLAINTEXT"),
        (status = 403, description = "`{message}`: a client the caller may not use"),
        (status = 405, description = "`{message: \"No Flows Defined\"}`: a client type without a flow"),
        (status = 502, description = "`{message}`: the OAuth1 provider did not grant a request token"),
    )
)]
pub(crate) async fn start_flow(
    State(svc): State<Service>,
    Auth(who): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let start = StartRequest::parse(body)?;
    let (client_doc, client) = client_for(&svc, &who, &id, Access::Use).await?;
    match client.kind {
        SecretType::Oa2AuthorizationCode => {
            start_code_flow(&svc, &who, &client_doc.id, &client, start).await
        }
        SecretType::Oa1ThreeLegged => {
            oauth1::start_three_legged(&svc, &who, &client_doc.id, &client, start).await
        }
        SecretType::Oa1TwoLegged => {
            oauth1::start_two_legged(&svc, &who, &client_doc.id, &client, start).await
        }
        _ => Err(ApiError::Other {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "No Flows Defined".into(),
        }),
    }
}

async fn start_code_flow(
    svc: &Service,
    who: &Identity,
    client_id: &str,
    client: &StoredClient,
    start: StartRequest,
) -> Result<Response, ApiError> {
    let scope = match client.text(&["predefinedScope"]).filter(|s| !s.is_empty()) {
        Some(predefined) if start.scope.is_empty() => predefined.to_owned(),
        Some(predefined) => format!("{predefined} {}", start.scope),
        None => start.scope.clone(),
    };
    let code_verifier = random_token();
    let nonce = random_token();
    let flow_id = ObjectId::new().to_string();
    let state = FlowState {
        flow_id: flow_id.clone(),
        nonce: nonce.clone(),
        payload: start.payload.clone(),
    };
    let state = B64URL.encode(serde_json::to_vec(&state).map_err(ApiError::internal)?);
    let challenge = B64URL.encode(Sha256::digest(code_verifier.as_bytes()));
    let auth_url = auth_url(client, &scope, &state, &challenge);
    let flow = start.flow(
        who,
        client_id,
        scope,
        Grant::Code {
            code_verifier,
            nonce,
        },
    );
    save_flow(svc, &flow_id, &flow).await?;
    Ok(Data::new(json!({ "authUrl": auth_url })).into_response())
}

/// Keeps a started flow until its callback, or until the flow TTL passes.
async fn save_flow(svc: &Service, flow_id: &str, flow: &AuthFlow) -> Result<(), ApiError> {
    let expires_at = Utc::now() + svc.settings.flow_ttl;
    let body = serde_json::to_value(flow).map_err(ApiError::internal)?;
    svc.clients
        .docs()
        .insert(FLOWS, flow_id, body, Some(expires_at))
        .await?;
    Ok(())
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
    oauth_token: Option<String>,
    oauth_verifier: Option<String>,
    /// Where some OAuth1 providers (Twitter) send a user who declined.
    denied: Option<String>,
}

/// Equal in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn unknown_flow() -> ApiError {
    ApiError::bad_request("Unknown or expired auth flow")
}

#[utoipa::path(get, path = "/api/v1/callback", tag = "auth-clients",
    params(
        ("code" = Option<String>, Query, description = "OAuth2: the authorization code"),
        ("state" = Option<String>, Query, description = "OAuth2: the state start-flow put in the URL"),
        ("oauth_token" = Option<String>, Query, description = "OAuth1: the authorized request token"),
        ("oauth_verifier" = Option<String>, Query, description = "OAuth1: the verifier"),
    ),
    responses(
        (status = 302, description = "To `successUrl` with `secretId` added, when the flow had one"),
        (status = 200, description = "`{data: {secretId}}`"),
        (status = 400, description = "`{message}`: unknown, expired or forged state or token, the user declined, or the token exchange failed"),
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
    if let Some(token) = query.denied {
        return Err(oauth1::declined(&svc, &token).await);
    }
    match (
        query.code,
        query.state,
        query.oauth_token,
        query.oauth_verifier,
    ) {
        (Some(code), Some(state), _, _) => code_callback(&svc, &code, &state).await,
        (None, _, Some(token), Some(verifier)) => oauth1::callback(&svc, &token, &verifier).await,
        _ => Err(ApiError::bad_request(
            "code and state (OAuth2), or oauth_token and oauth_verifier (OAuth1), are required",
        )),
    }
}

async fn code_callback(svc: &Service, code: &str, state: &str) -> Result<Response, ApiError> {
    let state: FlowState = B64URL
        .decode(state.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_request("Invalid state"))?;
    if !ObjectId::is_valid(&state.flow_id) {
        return Err(unknown_flow());
    }
    let docs = svc.clients.docs();
    let doc = docs
        .get(FLOWS, &state.flow_id)
        .await?
        .ok_or_else(unknown_flow)?;
    let flow: AuthFlow = serde_json::from_value(doc.body).map_err(|_| unknown_flow())?;
    let Grant::Code {
        code_verifier,
        nonce,
    } = &flow.grant
    else {
        return Err(unknown_flow());
    };
    if !same(nonce, &state.nonce) {
        return Err(unknown_flow());
    }
    // One use only, whatever happens next.
    if !docs.delete(FLOWS, &state.flow_id).await? {
        return Err(unknown_flow());
    }
    let (client_id, client) = flow_client(svc, &flow, SecretType::Oa2AuthorizationCode).await?;
    let fields = svc.clients.plaintext(&client_id, &client).await?;
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
            ("code", code),
            ("client_id", field("clientId")),
            ("client_secret", field("clientSecret")),
            ("redirect_uri", field("redirectUri")),
            ("code_verifier", code_verifier),
        ],
    )
    .await
    .map_err(|e| ApiError::BadRequest(format!("Token exchange failed: {e}")))?;
    let external_id = external_id(client.preprocessor.as_deref(), tokens.id_token.as_deref())?;
    let mut fresh = Map::new();
    fresh.insert("accessToken".into(), json!(tokens.access_token));
    if let Some(refresh) = &tokens.refresh_token {
        fresh.insert("refreshToken".into(), json!(refresh));
    }
    let scope = tokens.scope.clone().unwrap_or_else(|| flow.scope.clone());
    fresh.insert("scope".into(), json!(scope));
    fresh.insert(
        "expires".into(),
        json!(expires_from(tokens.expires_in, Utc::now())),
    );
    let secret_id = store_tokens(svc, &flow, &client, fresh, external_id).await?;
    finish(flow.success_url.as_deref(), &secret_id)
}

/// The auth client of a flow, which must still be of the type the flow was started for.
async fn flow_client(
    svc: &Service,
    flow: &AuthFlow,
    kind: SecretType,
) -> Result<(String, StoredClient), ApiError> {
    match svc.clients.get(&flow.auth_client_id).await? {
        Some((doc, client)) if client.kind == kind => Ok((doc.id, client)),
        Some(_) => Err(ApiError::bad_request(
            "The auth client's type changed during the flow",
        )),
        None => Err(ApiError::bad_request("Auth client not found")),
    }
}

/// The answer once the secret is stored: a redirect to `successUrl` with `secretId` added, or
/// `{data: {secretId}}`.
fn finish(success_url: Option<&str>, secret_id: &str) -> Result<Response, ApiError> {
    match success_url {
        Some(url) => {
            let location = HeaderValue::from_str(&with_secret_id(url, secret_id))
                .map_err(|_| ApiError::bad_request("successUrl is not a valid URL"))?;
            Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
        }
        None => Ok(Data::new(json!({ "secretId": secret_id })).into_response()),
    }
}

fn with_secret_id(url: &str, secret_id: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}secretId={secret_id}")
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
fn external_id(
    preprocessor: Option<&str>,
    id_token: Option<&str>,
) -> Result<Option<String>, ApiError> {
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
    Ok(id_token
        .and_then(id_token_claims)
        .and_then(|claims| claims.get(claim).and_then(Value::as_str).map(str::to_owned)))
}

pub fn expires_from(expires_in: Option<i64>, now: DateTime<Utc>) -> String {
    match expires_in {
        Some(secs) => (now + chrono::Duration::seconds(secs)).to_rfc3339(),
        None => NEVER.to_owned(),
    }
}

/// Stores the `fresh` token fields of a finished flow: updates the secret of the same account
/// (same client and externalId, same tenant), or creates a secret of the client's type;
/// returns its id.
async fn store_tokens(
    svc: &Service,
    flow: &AuthFlow,
    client: &StoredClient,
    fresh: Map<String, Value>,
    external_id: Option<String>,
) -> Result<String, ApiError> {
    let creator = Owner {
        id: flow.creator.clone(),
        kind: flow.creator_type,
    };

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
    create_secret(svc, name, client.kind, creator, flow.tenant.clone(), value).await
}

/// Creates a secret owned by `creator` (and stored under `tenant`'s key); returns its id.
async fn create_secret(
    svc: &Service,
    name: String,
    kind: SecretType,
    creator: Owner,
    tenant: Option<String>,
    value: Map<String, Value>,
) -> Result<String, ApiError> {
    let secret = StoredSecret {
        name: name.clone(),
        kind,
        owners: vec![creator],
        tenant,
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
        let tokens = Some(token.as_str());
        assert_eq!(
            external_id(Some("preprocessor.microsoft"), tokens)
                .ok()
                .flatten()
                .as_deref(),
            Some("a@b.c")
        );
        assert_eq!(
            external_id(Some("oidc"), tokens).ok().flatten().as_deref(),
            Some("abc")
        );
        assert_eq!(external_id(None, tokens).ok().flatten(), None);
        assert!(external_id(Some("zoomish"), tokens).is_err());
    }
}
