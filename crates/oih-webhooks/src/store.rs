//! The service's collections: `webhooks_flows`, the projection of the flows that may be
//! hooked (fed by the flow lifecycle events), and `webhooks_idempotency`, the first answer
//! given per `(flow, Idempotency-Key)`.
//!
//! Every hook reads its flow, so active flows are also kept in memory for a short while
//! ([`Store::active_flow`]). A change made through this store forgets the flow at once;
//! another replica's change (the lifecycle events go to one replica of the shared `webhooks`
//! queue) is seen here once the entry expires.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oih_core::{Owner, OwnerType, TtlCache};
use oih_store::{Collection, CollectionSpec, DocStore, StoreError};
use serde_json::{Map, Value, json};

pub const FLOWS: Collection = Collection("webhooks_flows");
pub const IDEMPOTENCY: Collection = Collection("webhooks_idempotency");

/// Local status of a flow whose deployment is under way: hooks still answer 404.
pub const STATUS_STARTING: &str = "starting";
/// Local status once the orchestrator reported the flow started (OIH's `started`).
pub const STATUS_ACTIVE: &str = "active";

/// A flow as this service keeps it: what `flow.execute` and the authorization need.
#[derive(Debug, Clone)]
pub struct HookFlow {
    id: String,
    body: Value,
}

impl HookFlow {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn is_active(&self) -> bool {
        self.body.get("status").and_then(Value::as_str) == Some(STATUS_ACTIVE)
    }

    /// Who started the flow (`startedBy` of `flow.starting`).
    pub fn started_by(&self) -> Option<&str> {
        self.body.get("startedBy").and_then(Value::as_str)
    }

    /// A step of the flow answers callers (`flow.started`'s `syncReply`): they wait for it.
    pub fn sync_reply(&self) -> bool {
        self.body.get("syncReply").and_then(Value::as_bool) == Some(true)
    }

    pub fn tenant(&self) -> Option<&str> {
        self.body.get("tenant").and_then(Value::as_str)
    }

    /// `flowSettings.webhooks`, or nothing.
    pub fn webhook_settings(&self) -> Option<&Map<String, Value>> {
        self.body
            .pointer("/flowSettings/webhooks")
            .and_then(Value::as_object)
    }

    /// The owners, with their type upper-cased as OIH compares them; malformed entries are
    /// skipped (they can match nobody).
    pub fn owners(&self) -> Vec<Owner> {
        let Some(owners) = self.body.get("owners").and_then(Value::as_array) else {
            return Vec::new();
        };
        owners
            .iter()
            .filter_map(|o| {
                let id = o.get("id").and_then(Value::as_str)?;
                let kind = match o
                    .get("type")
                    .and_then(Value::as_str)?
                    .to_ascii_uppercase()
                    .as_str()
                {
                    "USER" => OwnerType::User,
                    "TENANT" => OwnerType::Tenant,
                    _ => return None,
                };
                Some(Owner {
                    id: id.to_owned(),
                    kind,
                })
            })
            .collect()
    }

    /// True when the graph has a first node (OIH's `getFirstNode`: the only node, or a node
    /// that no edge targets).
    pub fn has_first_node(&self) -> bool {
        let nodes = self
            .body
            .pointer("/graph/nodes")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let edges = self
            .body
            .pointer("/graph/edges")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        match nodes {
            [] => false,
            [_] => true,
            _ if edges.is_empty() => false,
            _ => nodes.iter().any(|node| {
                let id = node.get("id");
                !edges.iter().any(|edge| edge.get("target") == id)
            }),
        }
    }

    /// The flow as OIH's webhooks service serialises its Mongo document into `flow.execute`.
    pub fn to_event_json(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("_id".into(), json!(self.id));
        for field in [
            "graph",
            "status",
            "flowSettings",
            "tenant",
            "owners",
            "startedBy",
        ] {
            if let Some(value) = self.body.get(field) {
                doc.insert(field.into(), value.clone());
            }
        }
        // Mongoose's version key.
        doc.insert("__v".into(), json!(0));
        Value::Object(doc)
    }
}

/// The fields of a `flow.starting` payload the projection keeps.
pub const KEPT_FIELDS: &[&str] = &["graph", "flowSettings", "tenant", "owners", "startedBy"];

#[derive(Clone)]
pub struct Store {
    docs: Arc<dyn DocStore>,
    /// Active flows read recently (kept for `cache_ttl`; zero keeps none).
    active: Arc<TtlCache<Arc<HookFlow>>>,
}

impl Store {
    /// `cache_ttl`: how long an active flow is served from memory.
    pub async fn open(docs: Arc<dyn DocStore>, cache_ttl: Duration) -> Result<Self, StoreError> {
        docs.ensure_collection(FLOWS, &CollectionSpec::default())
            .await?;
        docs.ensure_collection(IDEMPOTENCY, &CollectionSpec::default())
            .await?;
        Ok(Self {
            docs,
            active: Arc::new(TtlCache::new(cache_ttl)),
        })
    }

    /// The flow, if it is known and active.
    pub async fn active_flow(&self, id: &str) -> Result<Option<Arc<HookFlow>>, StoreError> {
        if let Some(flow) = self.active.get(id) {
            return Ok(Some(flow));
        }
        let Some(doc) = self.docs.get(FLOWS, id).await? else {
            return Ok(None);
        };
        let flow = HookFlow {
            id: doc.id,
            body: doc.body,
        };
        if !flow.is_active() {
            return Ok(None);
        }
        let flow = Arc::new(flow);
        self.active.put(id, Arc::clone(&flow), None);
        Ok(Some(flow))
    }

    /// Stores `body` as the flow, replacing any earlier copy (a restart re-sends everything).
    pub async fn put_flow(&self, id: &str, body: Value) -> Result<(), StoreError> {
        self.forgetting(id, self.write_flow(id, body)).await
    }

    /// Runs `change` of the flow, forgetting any copy in memory before (so that nobody who
    /// saw the change stored finds the old copy) and after (a hook may have read the old
    /// flow meanwhile).
    async fn forgetting<T>(&self, id: &str, change: impl Future<Output = T>) -> T {
        self.active.remove(id);
        let outcome = change.await;
        self.active.remove(id);
        outcome
    }

    async fn write_flow(&self, id: &str, body: Value) -> Result<(), StoreError> {
        match self.docs.update(FLOWS, id, None, body.clone()).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound) => {
                match self.docs.insert(FLOWS, id, body.clone(), None).await {
                    Ok(_) => Ok(()),
                    // Inserted concurrently by a redelivery: replace it.
                    Err(StoreError::Duplicate(_)) => {
                        self.docs.update(FLOWS, id, None, body).await.map(|_| ())
                    }
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Marks the flow active; `sync_reply`: its callers wait for a step's reply. False when
    /// the flow is not known.
    pub async fn activate(&self, id: &str, sync_reply: bool) -> Result<bool, StoreError> {
        self.forgetting(id, self.mark_active(id, sync_reply)).await
    }

    async fn mark_active(&self, id: &str, sync_reply: bool) -> Result<bool, StoreError> {
        let Some(doc) = self.docs.get(FLOWS, id).await? else {
            return Ok(false);
        };
        let mut body = doc.body;
        if let Value::Object(obj) = &mut body {
            obj.insert("status".into(), json!(STATUS_ACTIVE));
            obj.insert("syncReply".into(), json!(sync_reply));
        }
        match self.docs.update(FLOWS, id, Some(doc.version), body).await {
            Ok(_) => Ok(true),
            // Removed meanwhile (stopped): nothing to mark.
            Err(StoreError::NotFound) => Ok(false),
            Err(err) => Err(err),
        }
    }

    pub async fn remove_flow(&self, id: &str) -> Result<(), StoreError> {
        let delete = async { self.docs.delete(FLOWS, id).await.map(|_| ()) };
        self.forgetting(id, delete).await
    }

    /// The answer stored for an idempotency key, if it has not expired.
    pub async fn idempotent_answer(&self, key: &str) -> Result<Option<Value>, StoreError> {
        Ok(self.docs.get(IDEMPOTENCY, key).await?.map(|doc| doc.body))
    }

    /// Claims `key` with `answer`; `false` when another request claimed it first.
    pub async fn claim_idempotency(
        &self,
        key: &str,
        answer: Value,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self
            .docs
            .insert(IDEMPOTENCY, key, answer, Some(expires_at))
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::Duplicate(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Replaces the answer kept for a claimed key (a synchronous reply once it arrived).
    pub async fn settle_idempotency(&self, key: &str, answer: Value) -> Result<(), StoreError> {
        match self.docs.update(IDEMPOTENCY, key, None, answer).await {
            // Expired meanwhile: the next repeat runs the flow again, as after any expiry.
            Ok(_) | Err(StoreError::NotFound) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Gives a claim back (the publish it guarded failed, so a retry must go through).
    pub async fn release_idempotency(&self, key: &str) -> Result<(), StoreError> {
        self.docs.delete(IDEMPOTENCY, key).await.map(|_| ())
    }
}
