//! `POST /login`, `POST /logout` and `GET /.well-known/jwks.json` (iam-ils.md §10.1).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use oih_http::{ApiError, Json};
use serde_json::{Value, json};

use crate::access::{Caller, unauthorized};
use crate::model::{Account, Status, TokenType};
use crate::password::Verified;
use crate::state::AppState;
use crate::store::{ACCOUNTS, Stored, TOKENS};
use crate::tokens::{MintRequest, mint, sign_jwt};
use oih_store::Filter;

/// Credentials from a JSON body. An empty body is "no credentials" (401, as OIH), not a 400.
pub async fn login(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        if let Some(username) = field("username") {
            state.events.login_failed(username, "UNKNOWN_ERROR").await;
        }
        return Err(unauthorized("UNKNOWN_ERROR"));
    };
    let account = check_credentials(&state, username, password).await?;
    let (lifespan_text, lifespan) = state.default_lifespan.clone();
    let token = mint(
        &state,
        MintRequest {
            account_id: account.id.clone(),
            kind: TokenType::SelfToken,
            lifespan_text,
            lifespan,
            initiator: Some(account.id.clone()),
            inquirer: None,
            permissions: Vec::new(),
            description: String::new(),
            force_new: true,
        },
    )
    .await?;
    let jwt = sign_jwt(&state, &token, &account)
        .await
        .map_err(ApiError::internal)?;
    let value = jwt.unwrap_or_else(|| token.body.token.clone());
    Ok(Json(json!({"token": value, "id": token.id})))
}

/// Why a username/password pair was refused.
pub enum LoginFailure {
    /// Too many recent failures for this username.
    Throttled,
    /// OIH's reason: `USER_NOT_FOUND`, `PASSWORD_INCORRECT`, `ENTITY_DISABLED`.
    Rejected(&'static str),
    Store(oih_store::StoreError),
    Hash(String),
}

impl From<oih_store::StoreError> for LoginFailure {
    fn from(err: oih_store::StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<LoginFailure> for ApiError {
    fn from(failure: LoginFailure) -> Self {
        match failure {
            LoginFailure::Throttled => ApiError::Other {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "TOO_MANY_ATTEMPTS".into(),
            },
            LoginFailure::Rejected(reason) => unauthorized(reason),
            LoginFailure::Store(err) => err.into(),
            LoginFailure::Hash(err) => ApiError::internal(err),
        }
    }
}

/// Checks a password login with the throttle, the failure events and counters, and the
/// upgrade of legacy hashes; shared by `POST /login` and the OIDC login form.
pub async fn check_credentials(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<Stored<Account>, LoginFailure> {
    // Stored usernames are lowercase; OIH compared as typed, so capitals never matched.
    let username = username.to_lowercase();
    if !state.throttle.allowed(&username) {
        state.events.login_failed(&username, "THROTTLED").await;
        return Err(LoginFailure::Throttled);
    }
    let account: Option<Stored<Account>> = state
        .repo
        .find_one(ACCOUNTS, &Filter::eq("username", username.clone()))
        .await?;
    let Some(account) = account else {
        fail(state, &username, "USER_NOT_FOUND").await;
        return Err(LoginFailure::Rejected("USER_NOT_FOUND"));
    };
    let verified = match account.body.hash.as_deref() {
        Some(hash) => state
            .hasher
            .verify(password, hash, account.body.salt.as_deref()),
        None => Verified::No,
    };
    if verified == Verified::No {
        fail(state, &username, "PASSWORD_INCORRECT").await;
        let mut body = account.body.clone();
        body.safeguard.failed_login_attempts += 1;
        // Losing a concurrent increment is harmless; the throttle counts in memory.
        if let Err(err) = state.repo.update(ACCOUNTS, &account, &body).await {
            tracing::debug!(error = %err, "failed-login counter not updated");
        }
        return Err(LoginFailure::Rejected("PASSWORD_INCORRECT"));
    }
    if account.body.status != Status::Active {
        fail(state, &username, "ENTITY_DISABLED").await;
        return Err(LoginFailure::Rejected("ENTITY_DISABLED"));
    }
    state.throttle.succeeded(&username);
    let mut body = account.body.clone();
    body.safeguard.last_login = Some(chrono::Utc::now());
    body.safeguard.failed_login_attempts = 0;
    if verified == Verified::YesRehash {
        body.hash = Some(
            state
                .hasher
                .hash(password)
                .map_err(|e| LoginFailure::Hash(e.to_string()))?,
        );
        body.salt = None;
    }
    Ok(state.repo.update(ACCOUNTS, &account, &body).await?)
}

async fn fail(state: &AppState, username: &str, reason: &str) {
    state.throttle.failed(username);
    state.events.login_failed(username, reason).await;
}

/// Revokes the token the request was made with (OIH deleted some `SELF` token of the account).
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    state.repo.delete(TOKENS, &caller.token.id).await?;
    state.forget_identities();
    state
        .events
        .token_deleted(json!({"id": caller.token.id, "user": caller.id()}))
        .await;
    Ok(Json(json!({"loggedOut": true})))
}

/// The RS256 public keys; OIH's 423 in any other mode.
pub async fn jwks(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .jwt
        .as_ref()
        .and_then(|jwt| jwt.jwks())
        .map(Json)
        .ok_or_else(|| ApiError::Other {
            status: StatusCode::LOCKED,
            message: "RSA algorithm is not activated".into(),
        })
}
