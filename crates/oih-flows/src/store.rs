//! The service's collections and every query it makes, each scoped by ownership as OIH's
//! `buildQuery` does: admins see everything, anyone else only flows with an owner whose id is
//! their `sub` or their tenant.
//!
//! - `flows_flows`: the flows. The body is the validated flow plus `graphVersion`; `id`,
//!   `createdAt` and `updatedAt` come from the store's document.
//! - `flows_versions`: one immutable document per graph a flow has had (`{flowId, version,
//!   graph, createdAt, createdBy}`), so an execution can name the exact graph it ran. Version 1
//!   is the graph the flow was created with; a modification that changes the graph adds the
//!   next one. They outlive their flow: an execution record kept after the flow was deleted
//!   still resolves the graph it ran.
//! - `flows_deleted`: one document per deleted flow (its id, `owners`, `tenant`, `name`,
//!   `graphVersion`), so the versions of a deleted flow stay readable by whoever could read
//!   the flow, under the same ownership rule.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use oih_core::{Identity, ObjectId};
use oih_store::{
    Collection, CollectionSpec, DocStore, Document, Filter, FindOptions, SortOrder, StoreError,
    Transaction,
};
use serde_json::{Map, Value, json};

use crate::model::{self, GRAPH_VERSION};

pub const FLOWS: Collection = Collection("flows_flows");
pub const VERSIONS: Collection = Collection("flows_versions");
pub const DELETED: Collection = Collection("flows_deleted");

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stored flow.
#[derive(Debug, Clone)]
pub struct StoredFlow {
    id: String,
    /// The store's document version, for optimistic concurrency.
    revision: i64,
    body: Map<String, Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Document> for StoredFlow {
    fn from(doc: Document) -> Self {
        Self {
            id: doc.id,
            revision: doc.version,
            // The service only ever stores objects.
            body: match doc.body {
                Value::Object(body) => body,
                _ => Map::new(),
            },
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        }
    }
}

impl StoredFlow {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    pub fn status(&self) -> &str {
        model::status(self.body())
    }

    pub fn tenant(&self) -> Option<&str> {
        self.body().get("tenant").and_then(Value::as_str)
    }

    pub fn graph_version(&self) -> i64 {
        self.body()
            .get(GRAPH_VERSION)
            .and_then(Value::as_i64)
            .unwrap_or(1)
    }

    fn owner_ids(&self) -> impl Iterator<Item = &str> {
        self.body()
            .get("owners")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("id").and_then(Value::as_str))
    }

    pub fn has_owners(&self) -> bool {
        self.owner_ids().next().is_some()
    }

    /// OIH's visibility rule (`owners.id ∈ [sub, tenant]`, owner type not checked).
    pub fn visible_to(&self, who: &Identity) -> bool {
        match scope_ids(who) {
            None => true,
            Some(ids) => self.owner_ids().any(|id| ids.iter().any(|s| s == id)),
        }
    }

    /// The flow as OIH formats it for clients and events: the body with `id` and the
    /// timestamps.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), Value::String(self.id.clone()));
        out.extend(self.body.clone());
        out.insert("createdAt".into(), timestamp(self.created_at));
        out.insert("updatedAt".into(), timestamp(self.updated_at));
        Value::Object(out)
    }
}

fn timestamp(at: DateTime<Utc>) -> Value {
    Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The owner ids a caller may see flows of; `None` for an admin (everything).
fn scope_ids(who: &Identity) -> Option<Vec<String>> {
    if who.is_admin() {
        return None;
    }
    let mut ids = vec![who.sub.clone()];
    ids.extend(who.tenant.clone());
    Some(ids)
}

/// The ownership restriction as a store filter (same rule as [`StoredFlow::visible_to`]).
pub fn visibility(who: &Identity) -> Filter {
    match scope_ids(who) {
        None => Filter::All,
        Some(ids) => Filter::or(
            ids.into_iter()
                .map(|id| Filter::ArrayContains("owners".into(), json!({ "id": id }))),
        ),
    }
}

/// Filter matching flows that list `owner_id` among their owners.
pub fn owned_by(owner_id: &str) -> Filter {
    Filter::ArrayContains("owners".into(), json!({ "id": owner_id }))
}

/// A page of something with the total count.
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: u64,
}

#[derive(Clone)]
pub struct FlowStore {
    docs: Arc<dyn DocStore>,
}

impl FlowStore {
    /// Declares the collections (idempotent).
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self> {
        docs.ensure_collection(
            FLOWS,
            &CollectionSpec {
                unique: Vec::new(),
                indexed: vec!["status", "type", "name"],
            },
        )
        .await?;
        docs.ensure_collection(
            VERSIONS,
            &CollectionSpec {
                unique: vec![vec!["flowId", "version"]],
                indexed: vec!["flowId"],
            },
        )
        .await?;
        docs.ensure_collection(DELETED, &CollectionSpec::default())
            .await?;
        Ok(Self { docs })
    }

    pub async fn list(&self, filter: &Filter, opts: &FindOptions) -> Result<Listed<StoredFlow>> {
        let total = self.docs.count(FLOWS, filter).await?;
        let items = self.docs.find(FLOWS, filter, opts).await?;
        Ok(Listed {
            items: items.into_iter().map(StoredFlow::from).collect(),
            total,
        })
    }

    /// The flow with this id, if it exists and `who` may see it.
    pub async fn get_visible(&self, id: &str, who: &Identity) -> Result<Option<StoredFlow>> {
        Ok(self.get(id).await?.filter(|f| f.visible_to(who)))
    }

    /// The flow with this id, whoever owns it (for the event handlers).
    pub async fn get(&self, id: &str) -> Result<Option<StoredFlow>> {
        Ok(self.docs.get(FLOWS, id).await?.map(StoredFlow::from))
    }

    /// Stores a validated flow together with its first graph version.
    pub async fn create(&self, mut body: Map<String, Value>, by: &str) -> Result<StoredFlow> {
        let id = ObjectId::new().to_string();
        body.insert(GRAPH_VERSION.into(), json!(1));
        let graph = body.get("graph").cloned().unwrap_or(Value::Null);
        let mut tx = self.docs.begin().await?;
        let doc = tx.insert(FLOWS, &id, Value::Object(body), None).await?;
        insert_version(tx.as_mut(), &id, 1, graph, by).await?;
        tx.commit().await?;
        Ok(doc.into())
    }

    /// Replaces `current` with a validated body, unless it changed since it was read
    /// (`StoreError::Conflict`). A changed graph becomes the next version.
    pub async fn replace(
        &self,
        current: &StoredFlow,
        mut body: Map<String, Value>,
        by: &str,
    ) -> Result<StoredFlow> {
        let mut version = current.graph_version();
        let graph = body.get("graph").cloned().unwrap_or(Value::Null);
        let graph_changed = current.body().get("graph") != Some(&graph);
        if graph_changed {
            version += 1;
        }
        body.insert(GRAPH_VERSION.into(), json!(version));
        let mut tx = self.docs.begin().await?;
        let doc = tx
            .update(
                FLOWS,
                current.id(),
                Some(current.revision),
                Value::Object(body),
            )
            .await?;
        if graph_changed {
            insert_version(tx.as_mut(), current.id(), version, graph, by).await?;
        }
        tx.commit().await?;
        Ok(doc.into())
    }

    /// Sets `status`, unless the flow changed since it was read (`StoreError::Conflict`).
    pub async fn set_status(&self, current: &StoredFlow, status: &str) -> Result<StoredFlow> {
        let mut body = current.body().clone();
        body.insert("status".into(), Value::String(status.into()));
        self.write(current, body).await
    }

    /// Removes the owners with id `owner_id`, unless the flow changed since it was read.
    pub async fn remove_owner(&self, current: &StoredFlow, owner_id: &str) -> Result<StoredFlow> {
        self.write_to(FLOWS, current, without_owner(current, owner_id))
            .await
    }

    async fn write(&self, current: &StoredFlow, body: Map<String, Value>) -> Result<StoredFlow> {
        self.write_to(FLOWS, current, body).await
    }

    async fn write_to(
        &self,
        coll: Collection,
        current: &StoredFlow,
        body: Map<String, Value>,
    ) -> Result<StoredFlow> {
        let doc = self
            .docs
            .update(
                coll,
                current.id(),
                Some(current.revision),
                Value::Object(body),
            )
            .await?;
        Ok(doc.into())
    }

    /// Deletes a flow, unless it changed since it was read (`StoreError::Conflict`) or is gone
    /// (`StoreError::NotFound`). Its versions stay, with a record of who could read the flow.
    pub async fn delete(&self, current: &StoredFlow) -> Result<()> {
        let mut tx = self.docs.begin().await?;
        // A conditional rewrite first: it fails if e.g. a start slipped in since the read, and
        // holds the row until the delete commits.
        tx.update(
            FLOWS,
            current.id(),
            Some(current.revision),
            Value::Object(current.body.clone()),
        )
        .await?;
        tx.delete(FLOWS, current.id()).await?;
        let mut record = Map::new();
        for key in ["name", "tenant", "owners", GRAPH_VERSION] {
            if let Some(value) = current.body().get(key) {
                record.insert(key.into(), value.clone());
            }
        }
        tx.insert(DELETED, current.id(), Value::Object(record), None)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What is kept of a deleted flow (its owners and tenant), if it was deleted and `who`
    /// could read it.
    pub async fn get_deleted_visible(
        &self,
        id: &str,
        who: &Identity,
    ) -> Result<Option<StoredFlow>> {
        let found = self.docs.get(DELETED, id).await?.map(StoredFlow::from);
        Ok(found.filter(|f| f.visible_to(who)))
    }

    /// Deleted flows whose record lists `owner_id` as an owner.
    pub async fn deleted_owned(&self, owner_id: &str) -> Result<Vec<StoredFlow>> {
        let docs = self
            .docs
            .find(DELETED, &owned_by(owner_id), &FindOptions::default())
            .await?;
        Ok(docs.into_iter().map(StoredFlow::from).collect())
    }

    /// Removes `owner_id` from a deleted flow's record (GDPR), unless it changed meanwhile.
    pub async fn remove_deleted_owner(&self, record: &StoredFlow, owner_id: &str) -> Result<()> {
        self.write_to(DELETED, record, without_owner(record, owner_id))
            .await?;
        Ok(())
    }

    /// Every flow listing `owner_id` as an owner.
    pub async fn owned(&self, owner_id: &str) -> Result<Vec<StoredFlow>> {
        let docs = self
            .docs
            .find(FLOWS, &owned_by(owner_id), &FindOptions::default())
            .await?;
        Ok(docs.into_iter().map(StoredFlow::from).collect())
    }

    /// Flows left without any owner.
    pub async fn orphans(&self) -> Result<Vec<StoredFlow>> {
        let docs = self
            .docs
            .find(
                FLOWS,
                &Filter::eq("owners", json!([])),
                &FindOptions::default(),
            )
            .await?;
        Ok(docs.into_iter().map(StoredFlow::from).collect())
    }

    /// A flow's graph versions, oldest first.
    pub async fn versions(&self, flow_id: &str, skip: u64, limit: u64) -> Result<Listed<Value>> {
        let filter = Filter::eq("flowId", flow_id);
        let total = self.docs.count(VERSIONS, &filter).await?;
        let opts = FindOptions {
            sort: vec![("version".into(), SortOrder::Asc)],
            skip,
            limit: Some(limit),
        };
        let items = self.docs.find(VERSIONS, &filter, &opts).await?;
        Ok(Listed {
            items: items.iter().map(version_json).collect(),
            total,
        })
    }

    pub async fn version(&self, flow_id: &str, version: i64) -> Result<Option<Value>> {
        let filter = Filter::and([
            Filter::eq("flowId", flow_id),
            Filter::eq("version", version),
        ]);
        let opts = FindOptions {
            limit: Some(1),
            ..FindOptions::default()
        };
        let found = self.docs.find(VERSIONS, &filter, &opts).await?;
        Ok(found.first().map(version_json))
    }
}

fn without_owner(current: &StoredFlow, owner_id: &str) -> Map<String, Value> {
    let mut body = current.body().clone();
    if let Some(Value::Array(owners)) = body.get_mut("owners") {
        owners.retain(|o| o.get("id").and_then(Value::as_str) != Some(owner_id));
    }
    body
}

async fn insert_version(
    tx: &mut dyn Transaction,
    flow_id: &str,
    version: i64,
    graph: Value,
    by: &str,
) -> Result<()> {
    let body = json!({"flowId": flow_id, "version": version, "graph": graph, "createdBy": by});
    tx.insert(VERSIONS, &ObjectId::new().to_string(), body, None)
        .await?;
    Ok(())
}

fn version_json(doc: &Document) -> Value {
    let mut out = doc.body.as_object().cloned().unwrap_or_default();
    out.insert("createdAt".into(), timestamp(doc.created_at));
    Value::Object(out)
}
