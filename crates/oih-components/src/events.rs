//! Consumed events:
//! - `iam.user.deleted {id}`: the user stops owning components;
//! - `flow.starting` (the whole flow), `flow.stopped {id}`, `flowrepo.flow.deleted {flowId}`:
//!   keep [`FlowUsage`], the local record of which active flows use which components.
//!
//! Each event is acknowledged once its write is stored; a store failure that may pass is
//! retried after a pause, a malformed payload is dead-lettered.

use std::time::Duration;

use oih_bus::{EventFailure, EventHandler, EventStream};
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

pub fn worker(repo: Repo, stream: EventStream) -> Worker {
    Worker::new("component-repository-events", move |token| async move {
        stream.consume_with(Consumer { repo }, token).await;
        Ok(())
    })
}

struct Consumer {
    repo: Repo,
}

impl EventHandler for Consumer {
    const RETRY_DELAY: Duration = Duration::from_secs(1);
    type Error = Failure;

    async fn handle(&self, event: &Event) -> Result<(), Failure> {
        let repo = &self.repo;
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
}

impl EventFailure for Failure {
    /// Only a store that is away or a concurrent write may pass; any other store error (the
    /// document is gone, the store refused the write) would recur.
    fn is_permanent(&self) -> bool {
        !matches!(
            self,
            Self::Store(
                StoreError::Database(_) | StoreError::Unavailable(_) | StoreError::Conflict { .. }
            )
        )
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
