//! The `/hook` routes (runtime.md §5.1): `HEAD` checks the flow; `GET` (query as data) and
//! `POST`/`PUT`/`PATCH`/`DELETE` (body as data) publish OIH's `flow.execute` and answer
//! OIH's `{"data":{"requestId","message":"thank you"}}` once the bus confirmed the event.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::Utc;
use oih_bus::EventBus;
use oih_core::Event;
use oih_http::Authn;
use serde_json::{Map, Value, json};

use crate::auth::Authorizer;
use crate::body;
use crate::cors::{self, Cors};
use crate::error::HookError;
use crate::events::FLOW_EXECUTE;
use crate::reply::{Answer, Replies, Waiter};
use crate::store::{HookFlow, Store};
use crate::{InProcess, Ran};

/// Header with which a caller makes retries of one request publish it once.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
const REQUEST_ID: &str = "x-request-id";

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bus: EventBus,
    pub authorizer: Arc<Authorizer>,
    pub cors: Cors,
    /// Largest accepted body (`PAYLOAD_SIZE_LIMIT`).
    pub body_limit: usize,
    /// Wait before every 404, so unknown and inactive flows cannot be told apart or probed fast.
    pub not_found_delay: Duration,
    /// How long the first answer to an `Idempotency-Key` is kept.
    pub idempotency_ttl: chrono::Duration,
    pub replies: Arc<Replies>,
    /// How long a caller of a flow with a `webhook-reply` step waits for the reply.
    pub reply_timeout: Duration,
    /// The orchestrator of this process, which runs the flows of callers waiting for a reply
    /// without the bus in between.
    pub in_process: Option<Arc<dyn InProcess>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/hook/{id}", any(hook))
        .route("/hook/{id}/{suffix}", any(hook_with_suffix))
        .with_state(state)
}

/// The service's OpenAPI document, served at `/api-docs/webhooks/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <HookApi as utoipa::OpenApi>::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "webhooks",
        description = "Hooks that start flow executions. Authentication is per flow (`flowSettings.webhooks`): none, an HMAC of the body, or a Bearer/Basic user with `webhooks.execute` who owns the flow. Errors are `{\"error\": \"<message>\"}`."
    ),
    paths(hook, hook_with_suffix)
)]
struct HookApi;

#[utoipa::path(method(head, get, post, put, patch, delete), path = "/hook/{id}", tag = "webhooks",
    params(
        ("id" = String, Path, description = "Flow id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeats with the same key (per flow) get the first answer and publish nothing"),
        ("x-request-id" = Option<String>, Header, description = "The execution's external id (`msg.metadata.source.externalExecId`)"),
    ),
    responses(
        (status = 200, description = "`{data: {requestId, message: \"thank you\"}}` once `flow.execute` is on the bus (GET: query as data; other methods: the body; HEAD: the flow is hookable, nothing published)"),
        (status = 400, description = "Malformed body for its content type, or a bad Idempotency-Key"),
        (status = 403, description = "`{error: \"Unauthorized\"}`: the flow requires authentication that the request does not satisfy"),
        (status = 404, description = "`Flow <id> either does not exist or is inactive.` (after a fixed delay), or `Flow has no first node`"),
        (status = 413, description = "Body larger than PAYLOAD_SIZE_LIMIT"),
        (status = 415, description = "Missing or unsupported Content-Type"),
        (status = 503, description = "Store or bus temporarily unavailable; nothing published"),
    ))]
async fn hook(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    handle(&state, &id, None, req).await
}

#[utoipa::path(method(head, get, post, put, patch, delete), path = "/hook/{id}/{suffix}", tag = "webhooks",
    params(
        ("id" = String, Path, description = "Flow id"),
        ("suffix" = String, Path, description = "One segment of letters, digits and `_`, passed on as `msg.pathSuffix`"),
    ),
    responses(
        (status = 200, description = "As `/hook/{id}`"),
        (status = 404, description = "As `/hook/{id}`, or a suffix with other characters"),
    ))]
async fn hook_with_suffix(
    State(state): State<AppState>,
    Path((id, suffix)): Path<(String, String)>,
    req: Request,
) -> Response {
    // OIH's route allows one extra segment of word characters only.
    if !suffix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "Not found"})),
        )
            .into_response();
    }
    handle(&state, &id, Some(&suffix), req).await
}

/// What carries a payload: everything but `GET` and `HEAD`.
fn has_body(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method)
}

/// CORS first (a refused origin changes nothing), then the hook; the response carries the
/// CORS headers whatever its status.
async fn handle(state: &AppState, id: &str, suffix: Option<&str>, req: Request) -> Response {
    let origin = match state.cors.origin(req.headers()) {
        Ok(origin) => origin,
        Err(err) => return err.into_response(),
    };
    let res = if origin.is_some() && req.method() == Method::OPTIONS {
        cors::preflight(req.headers())
    } else {
        execute(state, id, suffix, req)
            .await
            .unwrap_or_else(IntoResponse::into_response)
    };
    cors::decorate(res, origin)
}

async fn execute(
    state: &AppState,
    id: &str,
    suffix: Option<&str>,
    req: Request,
) -> Result<Response, HookError> {
    let method = req.method().clone();
    if method != Method::HEAD && method != Method::GET && !has_body(&method) {
        return Err(HookError::MethodNotAllowed);
    }
    let flow = active_flow(state, id).await?;
    let (parts, body) = req.into_parts();
    let raw = if has_body(&method) {
        read_body(body, state.body_limit).await?
    } else {
        Vec::new()
    };
    state
        .authorizer
        .check(&flow, &parts.headers, &raw, parts.extensions.get::<Authn>())
        .await?;
    if method == Method::HEAD {
        return Ok(StatusCode::OK.into_response());
    }
    let request_id = header_text(&parts.headers, REQUEST_ID).map_or_else(random_hex, str::to_owned);
    let idempotency_key = idempotency_key(&parts.headers, flow.id())?;
    if let Some(key) = &idempotency_key
        && let Some(answer) = state.store.idempotent_answer(key).await?
    {
        return Ok(stored_response(answer));
    }
    let data = if has_body(&method) {
        let content_type = header_text(&parts.headers, header::CONTENT_TYPE.as_str());
        body::parse(content_type, &raw)?
    } else {
        body::urlencoded(parts.uri.query().unwrap_or_default().as_bytes())
    };
    if !flow.has_first_node() {
        return Err(HookError::NoFirstNode);
    }
    let request = Incoming {
        method: &method,
        uri: &parts.uri,
        headers: &parts.headers,
        suffix,
        request_id: &request_id,
    };
    // Registered before publishing, so that no reply can come before its caller waits.
    let waiter = flow.sync_reply().then(|| state.replies.wait());
    let reply_to = waiter.as_ref().map(|w| w.reply_to.as_str());
    let msg = source_message(&flow, &request, data);
    let answer = json!({"data": {"requestId": request_id, "message": "thank you"}});
    match &idempotency_key {
        Some(key) => {
            let first = dispatch_once(state, key, &flow, msg, reply_to, answer.clone()).await?;
            if let Some(first) = first {
                return Ok(stored_response(first));
            }
        }
        None => dispatch(state, &flow, msg, reply_to).await?,
    }
    let Some(waiter) = waiter else {
        return Ok(accepted(answer));
    };
    let Some(answer) = wait_for_reply(waiter, state.reply_timeout).await else {
        let late = json!({"data": {
            "requestId": request_id,
            "message": "accepted; the flow did not reply in time and runs on",
        }});
        return Ok((StatusCode::ACCEPTED, axum::Json(late)).into_response());
    };
    if let Some(key) = &idempotency_key
        && let Err(err) = state
            .store
            .settle_idempotency(key, answer.to_stored())
            .await
    {
        tracing::warn!(error = %err, "could not keep a reply for its Idempotency-Key");
    }
    Ok(answer.into_response())
}

/// The answer, or `None` when none came in time.
async fn wait_for_reply(mut waiter: Waiter, timeout: Duration) -> Option<Answer> {
    tokio::time::timeout(timeout, &mut waiter.answer)
        .await
        .ok()?
        .ok()
}

/// The answer kept for an `Idempotency-Key`: a synchronous reply, or the acknowledgement.
fn stored_response(stored: Value) -> Response {
    match Answer::from_stored(&stored) {
        Some(answer) => answer.into_response(),
        None => accepted(stored),
    }
}

/// Starts the execution of `msg`. A caller waiting for a reply (at `reply_to`) has its flow
/// run by the orchestrator of this process, when the flow runs here: the answers its steps
/// send come straight to the waiting caller. Otherwise `flow.execute` is published for the
/// orchestrator that runs it.
async fn dispatch(
    state: &AppState,
    flow: &HookFlow,
    mut msg: Value,
    reply_to: Option<&str>,
) -> Result<(), HookError> {
    if let (Some(local), Some(reply_to)) = (&state.in_process, reply_to) {
        match local.execute(flow.id(), msg, reply_to).await? {
            Ran::Here(answers) => {
                for (routing_key, message) in answers {
                    state
                        .replies
                        .deliver(&routing_key, &message.body, &message.properties.headers);
                }
                return Ok(());
            }
            Ran::NotHere(back) => msg = back,
        }
    }
    state
        .bus
        .publish(execute_event(flow, msg, reply_to))
        .await?;
    Ok(())
}

/// [`dispatch`] under an idempotency key: the key is claimed with the answer first, so a
/// concurrent repeat gets the same answer instead of starting the flow again; a failure gives
/// the claim back so that the caller's retry goes through. `Some(first answer)` when the key
/// was claimed before and nothing was started.
async fn dispatch_once(
    state: &AppState,
    key: &str,
    flow: &HookFlow,
    msg: Value,
    reply_to: Option<&str>,
    answer: Value,
) -> Result<Option<Value>, HookError> {
    let expires_at = Utc::now() + state.idempotency_ttl;
    if !state
        .store
        .claim_idempotency(key, answer.clone(), expires_at)
        .await?
    {
        return match state.store.idempotent_answer(key).await? {
            Some(first) => Ok(Some(first)),
            None => Err(HookError::IdempotencyConflict),
        };
    }
    if let Err(err) = dispatch(state, flow, msg, reply_to).await {
        if let Err(release) = state.store.release_idempotency(key).await {
            tracing::warn!(error = %release, "could not release an idempotency key");
        }
        return Err(err);
    }
    Ok(None)
}

fn accepted(answer: Value) -> Response {
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// The flow, if it is known and active. Anything else waits the same time and answers the
/// same 404 (malformed ids included, which OIH answers with a 500).
async fn active_flow(state: &AppState, id: &str) -> Result<Arc<HookFlow>, HookError> {
    let found = if oih_core::ObjectId::is_valid(id) {
        state.store.active_flow(id).await?
    } else {
        None
    };
    match found {
        Some(flow) => Ok(flow),
        None => {
            tokio::time::sleep(state.not_found_delay).await;
            Err(HookError::FlowNotFound(id.to_owned()))
        }
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, HookError> {
    to_bytes(body, limit)
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|_| HookError::PayloadTooLarge(limit))
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
}

/// The store key of the caller's `Idempotency-Key` for this flow.
fn idempotency_key(headers: &HeaderMap, flow_id: &str) -> Result<Option<String>, HookError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 255 => Ok(Some(format!("{flow_id}:{key}"))),
        _ => Err(HookError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        )),
    }
}

/// 32 random hex digits: OIH's request id when the caller sends none, and its execution id.
fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A random id in the textual form of a UUID, as OIH's `msg.id`.
fn uuid_like() -> String {
    let hex = random_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The parts of the request that end up in the message.
struct Incoming<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    suffix: Option<&'a str>,
    request_id: &'a str,
}

/// The request headers as Node gives them: lower-case names, repeated values joined with
/// `, `. The `Authorization` header is left out: it carries the caller's credentials.
fn message_headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        if name == header::AUTHORIZATION {
            continue;
        }
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        out.insert(name.as_str().to_owned(), json!(values.join(", ")));
    }
    Value::Object(out)
}

/// `flow.execute`'s `msg`: the first step's input, made of the request.
fn source_message(flow: &HookFlow, request: &Incoming<'_>, data: Value) -> Value {
    let path_and_query = request.uri.path_and_query().map_or_else(
        || request.uri.path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let mut params = Map::new();
    params.insert("id".into(), json!(flow.id()));
    if let Some(suffix) = request.suffix {
        params.insert("0".into(), json!(format!("/{suffix}")));
    }
    let path_suffix = request.suffix.map_or_else(String::new, |s| format!("/{s}"));
    json!({
        "id": uuid_like(),
        "attachments": {},
        "data": data,
        "headers": message_headers(request.headers),
        "metadata": {
            "source": {"name": "webhooks", "type": "webhook", "externalExecId": request.request_id},
        },
        "url": path_and_query,
        "method": request.method.as_str(),
        "originalUrl": path_and_query,
        "query": body::urlencoded(request.uri.query().unwrap_or_default().as_bytes()),
        "params": Value::Object(params),
        "pathSuffix": path_suffix,
    })
}

/// OIH's `flow.execute` (runtime.md §5.3) for the orchestrator that runs `flow`; `reply_to`
/// (in `msgOpts.headers`, the first input's AMQP headers) when the caller waits for a reply.
fn execute_event(flow: &HookFlow, msg: Value, reply_to: Option<&str>) -> Event {
    let mut msg_opts = json!({
        "headers": {"taskId": flow.id(), "execId": random_hex(), "userId": "DOES_NOT_MATTER"},
    });
    if let Some(reply_to) = reply_to {
        msg_opts["headers"]["reply_to"] = json!(reply_to);
    }
    let payload = json!({"flow": flow.to_event_json(), "msg": msg, "msgOpts": msg_opts});
    Event::new(FLOW_EXECUTE, payload).with_header("type", json!("webhooks"))
}
