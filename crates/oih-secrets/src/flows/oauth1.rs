//! The OAuth 1.0a flows (data-services.md §3.8).
//!
//! Three-legged: start-flow obtains a request token signed with the client's key and secret,
//! with `oauth_callback` = the client's `redirectUri` (this service's `/callback`), keeps the
//! token and its secret as the flow, and answers the provider's authorize URL. The provider
//! sends the user back to `/callback?oauth_token=&oauth_verifier=`, which exchanges them for an
//! access token and stores it as an OA1_THREE_LEGGED secret.
//!
//! Two-legged: requests are signed with the consumer credentials alone, so there is nobody to
//! ask; start-flow creates the OA1_TWO_LEGGED secret at once, bound to the client.
//!
//! Read raw, either secret carries its client's consumer credentials, so a component has all
//! it needs to sign requests (OIH's OA1 secrets held the token only).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use oih_core::{Identity, ObjectId, Owner, OwnerType};
use oih_http::{ApiError, Data};
use oih_store::{Filter, FindOptions};
use serde_json::{Map, Value, json};

use super::{
    AuthFlow, FLOWS, Grant, StartRequest, create_secret, expires_from, external_id, finish,
    flow_client, save_flow, store_tokens, unknown_flow, with_secret_id,
};
use crate::client_model::StoredClient;
use crate::model::SecretType;
use crate::oauth::ProviderError;
use crate::oauth1::{self as provider, SignatureMethod, Signer, percent_encode};
use crate::service::Service;

fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> &'a str {
    fields.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn endpoint<'a>(fields: &'a Map<String, Value>, name: &str) -> &'a str {
    fields
        .get("endpoints")
        .and_then(|e| e.get(name))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The client's `signatureMethod`; HMAC-SHA1 (OIH's only one) when unset.
fn signature_method(fields: &Map<String, Value>) -> Result<SignatureMethod, ApiError> {
    match fields
        .get("signatureMethod")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        None => Ok(SignatureMethod::default()),
        Some(m) => m.parse().map_err(|()| {
            ApiError::BadRequest(format!(
                "Unsupported signature method {m:?}: use HMAC-SHA1, HMAC-SHA256 or PLAINTEXT"
            ))
        }),
    }
}

/// A three-legged client's signer, with the token (if any) the request is made with.
fn signer<'a>(
    fields: &'a Map<String, Value>,
    token: Option<(&'a str, &'a str)>,
) -> Result<Signer<'a>, ApiError> {
    Ok(Signer {
        method: signature_method(fields)?,
        consumer_key: text(fields, "key"),
        consumer_secret: text(fields, "secret"),
        token,
    })
}

/// The authorize URL with the request token, plus the `name`, `scope` and `expiration`
/// parameters OIH added (Trello's), when they have a value.
fn authorize_url(fields: &Map<String, Value>, token: &str, scope: &str) -> String {
    let mut url = endpoint(fields, "authorize").to_owned();
    let params = [
        ("oauth_token", token),
        ("name", text(fields, "appName")),
        ("scope", scope),
        ("expiration", text(fields, "expiration")),
    ];
    for (key, value) in params.into_iter().filter(|(_, v)| !v.is_empty()) {
        let sep = if url.contains('?') { '&' } else { '?' };
        url = format!("{url}{sep}{key}={}", percent_encode(value));
    }
    url
}

pub(super) async fn start_three_legged(
    svc: &Service,
    who: &Identity,
    client_id: &str,
    client: &StoredClient,
    start: StartRequest,
) -> Result<Response, ApiError> {
    let fields = svc.clients.plaintext(client_id, client).await?;
    let pair = provider::request_token(
        &svc.http,
        endpoint(&fields, "request"),
        signer(&fields, None)?,
        text(&fields, "redirectUri"),
    )
    .await
    .map_err(|err| match err {
        ProviderError::BadEndpoint => ApiError::BadRequest(err.to_string()),
        other => ApiError::Other {
            status: StatusCode::BAD_GATEWAY,
            message: format!("Obtaining a request token failed: {other}"),
        },
    })?;
    let auth_url = authorize_url(&fields, &pair.token, &start.scope);
    let scope = start.scope.clone();
    let flow = start.flow(
        who,
        client_id,
        scope,
        Grant::RequestToken {
            request_token: pair.token,
            request_token_secret: pair.secret,
        },
    );
    save_flow(svc, &ObjectId::new().to_string(), &flow).await?;
    Ok(Data::new(json!({ "authUrl": auth_url })).into_response())
}

/// No user consent to ask for: the secret is created at once. `authUrl` (with `successUrl`)
/// lets a UI that follows it for every client type land where the other flows end.
pub(super) async fn start_two_legged(
    svc: &Service,
    who: &Identity,
    client_id: &str,
    client: &StoredClient,
    start: StartRequest,
) -> Result<Response, ApiError> {
    let mut value = Map::new();
    value.insert("authClientId".into(), json!(client_id));
    let creator = Owner {
        id: who.sub.clone(),
        kind: OwnerType::User,
    };
    let name = start.secret_name.unwrap_or_else(|| client.name.clone());
    let id = create_secret(
        svc,
        name,
        SecretType::Oa1TwoLegged,
        creator,
        who.tenant.clone(),
        value,
    )
    .await?;
    let mut data = json!({ "secretId": id });
    if let Some(url) = &start.success_url {
        data["authUrl"] = json!(with_secret_id(url, &id));
    }
    Ok(Data::new(data).into_response())
}

/// The flow of a request token, removed from the store (one use only); None when there is
/// none or it expired.
async fn take_flow(svc: &Service, token: &str) -> Result<Option<AuthFlow>, ApiError> {
    let docs = svc.clients.docs();
    let found = docs
        .find(
            FLOWS,
            &Filter::eq("requestToken", token),
            &FindOptions {
                limit: Some(1),
                ..FindOptions::default()
            },
        )
        .await?;
    let Some(doc) = found.into_iter().next() else {
        return Ok(None);
    };
    if !docs.delete(FLOWS, &doc.id).await? {
        return Ok(None);
    }
    Ok(serde_json::from_value(doc.body).ok())
}

pub(super) async fn callback(
    svc: &Service,
    token: &str,
    verifier: &str,
) -> Result<Response, ApiError> {
    let flow = take_flow(svc, token).await?.ok_or_else(unknown_flow)?;
    let Grant::RequestToken {
        request_token,
        request_token_secret,
    } = &flow.grant
    else {
        return Err(unknown_flow());
    };
    let (client_id, client) = flow_client(svc, &flow, SecretType::Oa1ThreeLegged).await?;
    let fields = svc.clients.plaintext(&client_id, &client).await?;
    let pair = provider::access_token(
        &svc.http,
        endpoint(&fields, "access"),
        signer(&fields, Some((request_token, request_token_secret)))?,
        verifier,
    )
    .await
    .map_err(|e| ApiError::BadRequest(format!("Token exchange failed: {e}")))?;
    // OAuth1 grants no ID token to name the account by.
    let external_id = external_id(client.preprocessor.as_deref(), None)?;
    let mut fresh = Map::new();
    fresh.insert("accessToken".into(), json!(pair.token));
    fresh.insert("accessTokenSecret".into(), json!(pair.secret));
    fresh.insert("scope".into(), json!(flow.scope));
    fresh.insert(
        "expires".into(),
        json!(expires_from(pair.expires_in, Utc::now())),
    );
    let secret_id = store_tokens(svc, &flow, &client, fresh, external_id).await?;
    finish(flow.success_url.as_deref(), &secret_id)
}

/// The user declined at the provider: the flow is dropped.
pub(super) async fn declined(svc: &Service, token: &str) -> ApiError {
    match take_flow(svc, token).await {
        Err(err) => err,
        Ok(_) => ApiError::bad_request("The provider did not grant access: the user declined"),
    }
}

/// What signing with an OA1 secret needs besides its token, from its auth client:
/// `consumerKey`, `consumerSecret` and `signatureMethod`. Empty for other secrets, and when
/// the client is gone or of another type.
pub(crate) async fn consumer_credentials(
    svc: &Service,
    kind: SecretType,
    value: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let (key_field, secret_field) = match kind {
        SecretType::Oa1TwoLegged => ("consumerKey", "consumerSecret"),
        SecretType::Oa1ThreeLegged => ("key", "secret"),
        _ => return Ok(Map::new()),
    };
    let Some(client_id) = value
        .get("authClientId")
        .and_then(Value::as_str)
        .filter(|id| ObjectId::is_valid(id))
    else {
        return Ok(Map::new());
    };
    let Some((doc, client)) = svc
        .clients
        .get(&client_id.to_ascii_lowercase())
        .await?
        .filter(|(_, client)| client.kind == kind)
    else {
        return Ok(Map::new());
    };
    let fields = svc.clients.plaintext(&doc.id, &client).await?;
    let mut out = Map::new();
    for (name, field) in [("consumerKey", key_field), ("consumerSecret", secret_field)] {
        if let Some(v) = fields.get(field) {
            out.insert(name.into(), v.clone());
        }
    }
    // A method this service does not sign with is passed on as written: the component signs.
    let method = match fields.get("signatureMethod").and_then(Value::as_str) {
        None | Some("") => SignatureMethod::default().to_string(),
        Some(m) => m
            .parse::<SignatureMethod>()
            .map_or_else(|()| m.to_owned(), |m| m.to_string()),
    };
    out.insert("signatureMethod".into(), json!(method));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_leaves_out_empty_parameters() {
        let fields = json!({"endpoints": {"authorize": "https://p.example/authorize"},
                            "appName": "My Hub", "expiration": ""});
        let fields = fields.as_object().cloned().unwrap_or_default();
        assert_eq!(
            authorize_url(&fields, "t/1", "read,write"),
            "https://p.example/authorize?oauth_token=t%2F1&name=My%20Hub&scope=read%2Cwrite"
        );
        assert_eq!(
            authorize_url(&fields, "t", ""),
            "https://p.example/authorize?oauth_token=t&name=My%20Hub"
        );
    }

    #[test]
    fn signature_methods_of_clients() {
        let with = |m: Value| {
            json!({"signatureMethod": m})
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            signature_method(&Map::new()).ok(),
            Some(SignatureMethod::HmacSha1)
        );
        assert_eq!(
            signature_method(&with(json!(""))).ok(),
            Some(SignatureMethod::HmacSha1)
        );
        assert_eq!(
            signature_method(&with(json!("plaintext"))).ok(),
            Some(SignatureMethod::Plaintext)
        );
        assert!(signature_method(&with(json!("RSA-SHA1"))).is_err());
    }
}
