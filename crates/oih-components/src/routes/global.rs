//! Global components: one shared deployment run by the orchestrator, started and stopped by
//! admins through `component.starting` / `component.stopping` events.

use std::time::Duration;

use axum::extract::State;
use oih_core::Event;
use oih_http::{ApiError, Auth, Json, Path, Query, require};
use oih_store::{Filter, FindOptions};
use serde_json::{Value, json};
use tokio::sync::mpsc::error::TrySendError;

use super::{AppState, object_id};
use crate::model::component::Component;
use crate::restart::{RestartJob, Switch};
use crate::store::COMPONENTS;

/// Upper bound of `emitThrottle` and `restartDelay`: a day.
const MAX_WAIT_SECS: f64 = 86_400.0;

pub async fn start(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    toggle(&s, &identity, &id, Switch::Start).await?;
    Ok(Json(json!({"message": "Component started", "code": 200})))
}

pub async fn stop(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    toggle(&s, &identity, &id, Switch::Stop).await?;
    Ok(Json(json!({"message": "Component stopped", "code": 200})))
}

/// Publishes the event with the component (OIH's lean form: `_id`, no owners) and records the
/// new running state. A component that is not global is a 400 (OIH: 401).
async fn toggle(
    s: &AppState,
    identity: &oih_core::Identity,
    raw: &str,
    how: Switch,
) -> Result<(), ApiError> {
    require(identity, &[&s.config.admin_permission])?;
    let id = object_id(raw, "Invalid id")?;
    let doc = s
        .repo
        .get::<Component>(COMPONENTS, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("Component is not found"))?;
    if !doc.body.is_global {
        return Err(ApiError::bad_request("Component is not global"));
    }
    let mut payload = doc.render("_id");
    payload.remove("owners");
    payload.insert(how.by_key().into(), Value::String(identity.sub.clone()));
    s.events
        .publish(Event::new(how.event(), Value::Object(payload)))
        .await?;
    let active = how.active();
    s.repo
        .modify::<Component, _>(COMPONENTS, &id, |c| c.active = active)
        .await?;
    Ok(())
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartQuery {
    emit_throttle: Option<String>,
    restart_delay: Option<String>,
}

/// Seconds, fractions allowed, 0 to a day. OIH multiplies whatever it gets by 1000.
fn seconds(raw: Option<&str>, name: &str, default: f64) -> Result<Duration, ApiError> {
    let value = match raw {
        None => default,
        Some(raw) => raw.trim().parse::<f64>().map_err(|_| invalid_wait(name))?,
    };
    if !(0.0..=MAX_WAIT_SECS).contains(&value) {
        return Err(invalid_wait(name));
    }
    Ok(Duration::from_secs_f64(value))
}

fn invalid_wait(name: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{name} parameter should be a number of seconds between 0 and {MAX_WAIT_SECS}"
    ))
}

pub async fn restart_all(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Query(q): Query<RestartQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&identity, &[&s.config.admin_permission])?;
    let throttle = seconds(q.emit_throttle.as_deref(), "emitThrottle", 10.0)?;
    let delay = seconds(q.restart_delay.as_deref(), "restartDelay", 2.0)?;
    let filter = Filter::and([Filter::eq("isGlobal", true), Filter::eq("active", true)]);
    let ids: Vec<String> = s
        .repo
        .docs
        .find(COMPONENTS, &filter, &FindOptions::default())
        .await?
        .into_iter()
        .map(|doc| doc.id)
        .collect();
    let count = ids.len();
    let job = RestartJob {
        component_ids: ids,
        by: identity.sub.clone(),
        throttle,
        delay,
    };
    match s.restarts.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return Err(ApiError::Unavailable(
                "Too many restarts are pending; try again later".into(),
            ));
        }
        Err(TrySendError::Closed(_)) => {
            return Err(ApiError::Unavailable("The service is shutting down".into()));
        }
    }
    Ok(Json(json!({
        "message": format!("{count} Components will be restarted"),
        "code": 200
    })))
}
