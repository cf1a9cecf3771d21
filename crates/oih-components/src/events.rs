//! Consumed events:
//! - `iam.user.deleted {id}`: the user stops owning components;
//! - `flow.starting` (the whole flow), `flow.stopped {id}`, `flowrepo.flow.deleted {flowId}`:
//!   keep [`FlowUsage`], the local record of which active flows use which components.
//!
//! Each event is acknowledged once its write is stored; a store failure that may pass is
//! retried after a pause, a malformed payload is dead-lettered.

use std::time::Duration;

use oih_bus::{EventStream, ReceivedEvent};
use oih_core::{Event, ObjectId};
use oih_http::Worker;
use oih_store::{Filter, FindOptions, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::component::Component;
use crate::store::{COMPONENTS, FLOW_USAGE, Repo};

pub const TOPICS: &[&str] = &[
    "iam.user.deleted",
    "flow.starting",
    "flow.stopped",
    "flowrepo.flow.deleted",
];

/// Pause before an event that failed on the store is handed back, so a database outage is
/// not a busy loop.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// An active (starting or running) flow's use of components; the document id is the flow id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub component_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn worker(repo: Repo, mut stream: EventStream) -> Worker {
    Worker::new("component-repository-events", move |token| async move {
        loop {
            let received = tokio::select! {
                () = token.cancelled() => return Ok(()),
                received = stream.next() => received,
            };
            let Some(received) = received else {
                // The bus closed; nothing more will come until shutdown.
                token.cancelled().await;
                return Ok(());
            };
            let outcome = handle(&repo, &received.event).await;
            tokio::select! {
                () = token.cancelled() => return Ok(()),
                () = settle(received, outcome) => {}
            }
        }
    })
}

async fn settle(received: ReceivedEvent, outcome: Result<(), Failure>) {
    let name = received.event.name().to_owned();
    let settled = match outcome {
        Ok(()) => received.ack().await,
        Err(Failure::Store(
            err @ (StoreError::Database(_)
            | StoreError::Unavailable(_)
            | StoreError::Conflict { .. }),
        )) => {
            tracing::warn!(event = %name, error = %err, "event will be retried");
            tokio::time::sleep(RETRY_PAUSE).await;
            received.retry().await
        }
        Err(err) => {
            tracing::warn!(event = %name, error = %err, "event dead-lettered");
            received.nack().await
        }
    };
    if let Err(err) = settled {
        tracing::warn!(event = %name, error = %err, "could not settle an event");
    }
}

/// A string field that must be present.
fn text<'a>(payload: &'a Value, key: &str) -> Result<&'a str, Failure> {
    payload
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Failure::Malformed(format!("no `{key}` string")))
}

/// A flow id field: OIH flow ids are ObjectIds.
fn flow_id<'a>(payload: &'a Value, key: &str) -> Result<&'a str, Failure> {
    let id = text(payload, key)?;
    if ObjectId::is_valid(id) {
        Ok(id)
    } else {
        Err(Failure::Malformed(format!("`{key}` is not a flow id")))
    }
}

async fn handle(repo: &Repo, event: &Event) -> Result<(), Failure> {
    let payload = &event.payload;
    match event.name() {
        "iam.user.deleted" => remove_owner(repo, text(payload, "id")?).await,
        "flow.starting" => {
            let id = flow_id(payload, "id")?;
            let usage = usage_of(payload)?;
            repo.upsert(FLOW_USAGE, &id.to_ascii_lowercase(), &usage)
                .await?;
            Ok(())
        }
        "flow.stopped" => release(repo, flow_id(payload, "id")?).await,
        "flowrepo.flow.deleted" => release(repo, flow_id(payload, "flowId")?).await,
        other => Err(Failure::Malformed(format!("unexpected event {other}"))),
    }
}

/// Which components the flow's nodes use.
fn usage_of(flow: &Value) -> Result<FlowUsage, Failure> {
    let nodes = flow
        .pointer("/graph/nodes")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::Malformed("no `graph.nodes` array".into()))?;
    let mut component_ids: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.get("componentId").and_then(Value::as_str))
        .map(str::to_ascii_lowercase)
        .collect();
    component_ids.sort();
    component_ids.dedup();
    let field = |key: &str| flow.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(FlowUsage {
        name: field("name"),
        tenant: field("tenant").filter(|t| !t.is_empty()),
        component_ids,
    })
}

async fn release(repo: &Repo, flow_id: &str) -> Result<(), Failure> {
    repo.docs
        .delete(FLOW_USAGE, &flow_id.to_ascii_lowercase())
        .await?;
    Ok(())
}

/// Drops the user from every component's owners (acknowledged even when there were none;
/// OIH leaves that event unacknowledged).
async fn remove_owner(repo: &Repo, user: &str) -> Result<(), Failure> {
    let owned = repo
        .docs
        .find(
            COMPONENTS,
            &Filter::ArrayContains("owners".into(), json!({"id": user, "type": "user"})),
            &FindOptions::default(),
        )
        .await?;
    for doc in owned {
        repo.modify::<Component, _>(COMPONENTS, &doc.id, |c| {
            c.owners.retain(|o| !o.is_user(user));
        })
        .await?;
    }
    Ok(())
}
