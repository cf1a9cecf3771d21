//! The lifecycle endpoints: `POST /flows/{id}/start|stop` and `/flows/multiple/start|stop`.
//! Unlike OIH, a flow already in (or on its way to) the asked-for state is a 409.

use axum::extract::State;
use oih_core::Identity;
use oih_http::{ApiError, Auth, DataMeta, Path, require};
use serde_json::{Value, json};

use super::{AppState, Body, error_body, invalid_id, visible};
use crate::model::{STATUS_ACTIVE, STATUS_INACTIVE, STATUS_STARTING, STATUS_STOPPING};

#[derive(Clone, Copy)]
enum Action {
    Start,
    Stop,
}

impl Action {
    /// The status the action moves the flow to, or why it cannot.
    fn next_status(self, current: &str) -> Result<&'static str, ApiError> {
        match (self, current) {
            (Action::Start, STATUS_INACTIVE) => Ok(STATUS_STARTING),
            (Action::Stop, STATUS_STARTING | STATUS_ACTIVE) => Ok(STATUS_STOPPING),
            (Action::Start, STATUS_STARTING | STATUS_ACTIVE)
            | (Action::Stop, STATUS_STOPPING | STATUS_INACTIVE) => {
                Err(ApiError::conflict(format!("Flow is already {current}")))
            }
            (Action::Start, _) => Err(ApiError::conflict(format!(
                "Flow cannot be started while it is {current}"
            ))),
            (Action::Stop, _) => Err(ApiError::conflict(format!(
                "Flow cannot be stopped while it is {current}"
            ))),
        }
    }
}

/// Moves one flow to starting/stopping and announces it.
async fn transition(
    st: &AppState,
    who: &Identity,
    raw_id: &str,
    action: Action,
) -> Result<Value, ApiError> {
    let current = visible(st, who, raw_id, "No flow with this ID found").await?;
    let next = action.next_status(current.status())?;
    // Conditional on the version read: two concurrent starts cannot both succeed.
    let flow = st.flows.set_status(&current, next).await?;
    let announced = match action {
        Action::Start => st.events.starting(&flow, &who.sub).await,
        Action::Stop => st.events.stopping(&flow).await,
    };
    if let Err(err) = announced {
        // Nobody heard of the change: undo it, so the flow is not stuck in starting/stopping
        // and the caller can simply try again.
        if let Err(undo) = st.flows.set_status(&flow, current.status()).await {
            tracing::error!(flow = flow.id(), error = %undo, "could not undo a status change");
        }
        return Err(err.into());
    }
    Ok(json!({"id": flow.id(), "status": flow.status()}))
}

async fn control(
    st: &AppState,
    who: &Identity,
    id: &str,
    action: Action,
) -> Result<DataMeta<Value>, ApiError> {
    require(who, &[&st.config.flow_control_permission])?;
    Ok(DataMeta::new(transition(st, who, id, action).await?))
}

/// `POST /flows/{id}/start`.
#[utoipa::path(post, path = "/flows/{id}/start", tag = "flows",
    params(("id" = String, Path, description = "Flow id")),
    responses(
        (status = 200, description = "`{data: {id, status: \"starting\"}, meta: {}}`; `flow.starting` published (needs `flows.control`)"),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "No flow with this ID found"),
        (status = 409, description = "The flow is not inactive"),
    ))]
pub(super) async fn start(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<DataMeta<Value>, ApiError> {
    control(&st, &who, &id, Action::Start).await
}

/// `POST /flows/{id}/stop`.
#[utoipa::path(post, path = "/flows/{id}/stop", tag = "flows",
    params(("id" = String, Path, description = "Flow id")),
    responses(
        (status = 200, description = "`{data: {id, status: \"stopping\"}, meta: {}}`; `flow.stopping` published (needs `flows.control`)"),
        (status = 400, description = "Invalid id"),
        (status = 404, description = "No flow with this ID found"),
        (status = 409, description = "The flow is neither starting nor active"),
    ))]
pub(super) async fn stop(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<DataMeta<Value>, ApiError> {
    control(&st, &who, &id, Action::Stop).await
}

/// `POST /flows/multiple/start|stop`: a JSON array of ids; answers a bare array with one
/// entry per id, each `{data:{id,status},meta:{}}` or `{errors:[{message, flowId, code}]}`.
async fn control_many(
    st: &AppState,
    who: &Identity,
    body: Body,
    action: Action,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    require(who, &[&st.config.flow_control_permission])?;
    let Value::Array(ids) = body?.0 else {
        return Err(ApiError::bad_request(
            "No flow ids given. Expecting an array of flow ids",
        ));
    };
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        let result = match id.as_str() {
            Some(raw) => transition(st, who, raw, action).await,
            None => Err(invalid_id()),
        };
        results.push(match result {
            Ok(data) => json!({"data": data, "meta": {}}),
            Err(err) => with_flow_id(error_body(&err), &id),
        });
    }
    Ok(axum::Json(results))
}

/// OIH names the id in each error entry of the multiple endpoints.
fn with_flow_id(mut body: Value, id: &Value) -> Value {
    if let Some(Value::Array(errors)) = body.get_mut("errors") {
        for error in errors.iter_mut().filter_map(Value::as_object_mut) {
            error.insert("flowId".into(), id.clone());
        }
    }
    body
}

#[utoipa::path(post, path = "/flows/multiple/start", tag = "flows",
    request_body(content = Vec<String>, description = "Flow ids"),
    responses(
        (status = 200, description = "One entry per id: `{data: {id, status}, meta: {}}` or `{errors: [{message, flowId, code}]}`"),
        (status = 400, description = "The body is not an array of ids"),
    ))]
pub(super) async fn start_many(
    State(st): State<AppState>,
    Auth(who): Auth,
    body: Body,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    control_many(&st, &who, body, Action::Start).await
}

#[utoipa::path(post, path = "/flows/multiple/stop", tag = "flows",
    request_body(content = Vec<String>, description = "Flow ids"),
    responses(
        (status = 200, description = "One entry per id: `{data: {id, status}, meta: {}}` or `{errors: [{message, flowId, code}]}`"),
        (status = 400, description = "The body is not an array of ids"),
    ))]
pub(super) async fn stop_many(
    State(st): State<AppState>,
    Auth(who): Auth,
    body: Body,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    control_many(&st, &who, body, Action::Stop).await
}
