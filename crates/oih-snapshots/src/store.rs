//! The service's collections and every write to them.
//!
//! - `snapshots_snapshots`: one document per (flow, step, execution), under an id derived from
//!   that key, so a later snapshot replaces the earlier one without a read-modify-write race;
//!   the body is [`NewSnapshot::to_body`].
//! - `snapshots_purged`: short-lived markers of finished executions and deleted flows.
//!
//! Why the markers: a snapshot and the event that ends its execution travel on different
//! queues, so a delayed snapshot can arrive after the purge. A purge writes its marker first and
//! then deletes; a snapshot is written first and then checks for a marker (and removes itself
//! when there is one). Whatever the interleaving, nothing of a purged execution or flow stays.

use std::sync::Arc;

use chrono::Utc;
use oih_core::{Identity, OwnerType};
use oih_store::{
    Collection, CollectionSpec, DocStore, Document, Filter, FindOptions, SortOrder, StoreError,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::NewSnapshot;

pub const SNAPSHOTS: Collection = Collection("snapshots_snapshots");
pub const PURGED: Collection = Collection("snapshots_purged");

/// How long a purge marker is kept: a snapshot delayed longer than this behind its execution's
/// end is stored (and removed with its flow).
const MARKER_LIFETIME: chrono::Duration = chrono::Duration::hours(24);
/// How often a write races a concurrent delete or insert of the same snapshot before the
/// caller is told to retry.
const MAX_PUT_ATTEMPTS: u32 = 3;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What storing a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Stored,
    /// Its execution finished, or its flow was deleted, before it arrived: not kept.
    Discarded,
}

#[derive(Clone)]
pub struct SnapshotStore {
    docs: Arc<dyn DocStore>,
}

impl SnapshotStore {
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self> {
        docs.ensure_collection(
            SNAPSHOTS,
            &CollectionSpec {
                unique: vec![],
                indexed: vec!["flowId", "stepId", "flowExecId", "tenant"],
            },
        )
        .await?;
        docs.ensure_collection(PURGED, &CollectionSpec::default())
            .await?;
        Ok(Self { docs })
    }

    /// Stores `snapshot`, replacing the one with the same (flow, step, execution).
    pub async fn put(&self, snapshot: &NewSnapshot) -> Result<Put> {
        let id = snapshot_id(
            &snapshot.flow_id,
            &snapshot.step_id,
            snapshot.flow_exec_id.as_deref(),
        );
        self.upsert(&id, snapshot.to_body()).await?;
        let mut markers = vec![marker_id(Marker::Flow, &snapshot.flow_id)];
        if let Some(exec) = &snapshot.flow_exec_id {
            markers.push(marker_id(Marker::Execution, exec));
        }
        for marker in markers {
            if self.docs.get(PURGED, &marker).await?.is_some() {
                self.docs.delete(SNAPSHOTS, &id).await?;
                return Ok(Put::Discarded);
            }
        }
        Ok(Put::Stored)
    }

    async fn upsert(&self, id: &str, body: Value) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let raced = match self.docs.update(SNAPSHOTS, id, None, body.clone()).await {
                Ok(_) => return Ok(()),
                Err(StoreError::NotFound) => {
                    match self.docs.insert(SNAPSHOTS, id, body.clone(), None).await {
                        Ok(_) => return Ok(()),
                        // Inserted by another writer since: update that one.
                        Err(err @ StoreError::Duplicate(_)) => err,
                        Err(err) => return Err(err),
                    }
                }
                Err(err) => return Err(err),
            };
            if attempt >= MAX_PUT_ATTEMPTS {
                return Err(raced);
            }
        }
    }

    /// The most recently written snapshot of a step among those `visible` selects.
    pub async fn newest(
        &self,
        flow_id: &str,
        step_id: &str,
        visible: Option<Filter>,
    ) -> Result<Option<Document>> {
        let mut filters = vec![Filter::eq("flowId", flow_id), Filter::eq("stepId", step_id)];
        filters.extend(visible);
        let opts = FindOptions {
            sort: vec![("_updatedAt".into(), SortOrder::Desc)],
            skip: 0,
            limit: Some(1),
        };
        let found = self
            .docs
            .find(SNAPSHOTS, &Filter::and(filters), &opts)
            .await?;
        Ok(found.into_iter().next())
    }

    /// A flow's snapshots (of one execution, when given) among those `visible` selects, by step.
    pub async fn list(
        &self,
        flow_id: &str,
        flow_exec_id: Option<&str>,
        visible: Option<Filter>,
    ) -> Result<Vec<Document>> {
        let mut filters = vec![Filter::eq("flowId", flow_id)];
        filters.extend(flow_exec_id.map(|exec| Filter::eq("flowExecId", exec)));
        filters.extend(visible);
        let opts = FindOptions {
            sort: vec![
                ("stepId".into(), SortOrder::Asc),
                ("_updatedAt".into(), SortOrder::Desc),
            ],
            skip: 0,
            limit: None,
        };
        self.docs
            .find(SNAPSHOTS, &Filter::and(filters), &opts)
            .await
    }

    pub async fn delete(&self, id: &str) -> Result<bool> {
        self.docs.delete(SNAPSHOTS, id).await
    }

    /// Deletes an execution's snapshots; returns how many.
    pub async fn purge_execution(&self, flow_exec_id: &str) -> Result<u64> {
        self.mark(Marker::Execution, flow_exec_id).await?;
        self.docs
            .delete_many(SNAPSHOTS, &Filter::eq("flowExecId", flow_exec_id))
            .await
    }

    /// Deletes every snapshot of a flow; returns how many.
    pub async fn purge_flow(&self, flow_id: &str) -> Result<u64> {
        self.mark(Marker::Flow, flow_id).await?;
        self.docs
            .delete_many(SNAPSHOTS, &Filter::eq("flowId", flow_id))
            .await
    }

    async fn mark(&self, kind: Marker, key: &str) -> Result<()> {
        let id = marker_id(kind, key);
        let body = json!({"kind": kind.name(), "key": key});
        let expires = Utc::now() + MARKER_LIFETIME;
        match self.docs.insert(PURGED, &id, body, Some(expires)).await {
            // Purged before (a redelivered event): the marker is there.
            Ok(_) | Err(StoreError::Duplicate(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// Which snapshots `who` may see and delete: all for an admin; else those of flows they
/// started, and for a tenant admin those of their tenant. OIH checks nothing; the flow's
/// owners are not in the message, so the starter (`userId`) stands for them.
pub fn visibility(who: &Identity) -> Option<Filter> {
    if who.is_admin() {
        return None;
    }
    let mut any = vec![Filter::ArrayContains(
        "owners".into(),
        json!({"id": who.sub, "type": OwnerType::User}),
    )];
    if let Some(tenant) = who.tenant.as_deref().filter(|t| !t.is_empty())
        && who.is_tenant_admin()
    {
        any.push(Filter::eq("tenant", tenant));
    }
    Some(Filter::or(any))
}

#[derive(Debug, Clone, Copy)]
enum Marker {
    Execution,
    Flow,
}

impl Marker {
    fn name(self) -> &'static str {
        match self {
            Self::Execution => "execution",
            Self::Flow => "flow",
        }
    }
}

/// The id of the snapshot of (flow, step, execution); `None` is the persistent one.
pub fn snapshot_id(flow_id: &str, step_id: &str, flow_exec_id: Option<&str>) -> String {
    derived_id(&json!(["snapshot", flow_id, step_id, flow_exec_id]))
}

fn marker_id(kind: Marker, key: &str) -> String {
    derived_id(&json!([kind.name(), key]))
}

/// 24 hex digits of a digest of `key` (a JSON array, so its parts cannot run together).
fn derived_id(key: &Value) -> String {
    Sha256::digest(key.to_string().as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_the_key_parts_apart() {
        let persistent = snapshot_id("f", "s", None);
        assert_eq!(persistent.len(), 24);
        assert_ne!(persistent, snapshot_id("f", "s", Some("")));
        assert_ne!(snapshot_id("f", "s.e", None), snapshot_id("f.s", "e", None));
        assert_eq!(
            snapshot_id("f", "s", Some("e")),
            snapshot_id("f", "s", Some("e"))
        );
        assert_ne!(
            marker_id(Marker::Flow, "x"),
            marker_id(Marker::Execution, "x")
        );
    }

    #[test]
    fn who_sees_what() {
        let admin = Identity::new("a", None, vec!["all".into()]);
        assert_eq!(visibility(&admin), None);
        let user = Identity::new("u1", Some("t1".into()), vec![]);
        assert_eq!(
            visibility(&user),
            Some(Filter::or([Filter::ArrayContains(
                "owners".into(),
                json!({"id": "u1", "type": "USER"})
            )]))
        );
        let tenant_admin = Identity::new("ta", Some("t1".into()), vec!["tenant.all".into()]);
        let filter = visibility(&tenant_admin).expect("scoped");
        assert!(matches!(&filter, Filter::Or(any) if any.contains(&Filter::eq("tenant", "t1"))));
    }
}
