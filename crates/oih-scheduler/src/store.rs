//! `scheduler_flows`: the service's own copy of the cron flows it was told about (OIH's
//! scheduler `flows` collection), one document per flow, id = flow id. The body is
//! `{cron, graph?, tenant?, nextRunAt?}`; `nextRunAt` (milliseconds since the epoch, OIH's
//! `dueExecution`) is present only while the flow runs, and is what replicas race for: a run is
//! fired by whoever moves it on first (see [`FlowStore::reschedule`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use oih_store::{
    Collection, CollectionSpec, DocStore, Document, Filter, FindOptions, SortOrder, StoreError,
};
use serde_json::{Map, Value, json};

pub const FLOWS: Collection = Collection("scheduler_flows");
/// The body field holding the next run (milliseconds since the epoch).
pub const NEXT_RUN_AT: &str = "nextRunAt";

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A flow as the scheduler keeps it.
#[derive(Debug, Clone)]
pub struct ScheduledFlow {
    id: String,
    /// The store's document version: the lease token of a run.
    version: i64,
    body: Map<String, Value>,
}

impl From<Document> for ScheduledFlow {
    fn from(doc: Document) -> Self {
        Self {
            id: doc.id,
            version: doc.version,
            // The service only ever stores objects.
            body: match doc.body {
                Value::Object(body) => body,
                _ => Map::new(),
            },
        }
    }
}

impl ScheduledFlow {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn cron(&self) -> &str {
        self.body.get("cron").and_then(Value::as_str).unwrap_or("")
    }

    pub fn graph(&self) -> Option<&Value> {
        self.body.get("graph")
    }

    /// When the next run is due; None while the flow has not been started.
    pub fn next_run_at(&self) -> Option<DateTime<Utc>> {
        self.body
            .get(NEXT_RUN_AT)
            .and_then(Value::as_i64)
            .and_then(DateTime::from_timestamp_millis)
    }
}

/// The body of a flow that is starting: what `flow.execute` needs from the flow, no run yet.
pub fn starting_body(cron: &str, graph: Option<&Value>, tenant: Option<&str>) -> Value {
    let mut body = Map::new();
    body.insert("cron".into(), json!(cron));
    if let Some(graph) = graph {
        body.insert("graph".into(), graph.clone());
    }
    if let Some(tenant) = tenant {
        body.insert("tenant".into(), json!(tenant));
    }
    Value::Object(body)
}

#[derive(Clone)]
pub struct FlowStore {
    docs: Arc<dyn DocStore>,
}

impl FlowStore {
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self> {
        let spec = CollectionSpec {
            unique: Vec::new(),
            indexed: vec![NEXT_RUN_AT],
        };
        docs.ensure_collection(FLOWS, &spec).await?;
        Ok(Self { docs })
    }

    pub async fn get(&self, id: &str) -> Result<Option<ScheduledFlow>> {
        Ok(self.docs.get(FLOWS, id).await?.map(ScheduledFlow::from))
    }

    /// Stores `body` as the flow, replacing what was there (a restart forgets the old runs).
    pub async fn put(&self, id: &str, body: Value) -> Result<()> {
        match self.docs.update(FLOWS, id, None, body.clone()).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound) => {
                match self.docs.insert(FLOWS, id, body.clone(), None).await {
                    Ok(_) => Ok(()),
                    // Inserted meanwhile by another replica handling a redelivery: replace it.
                    Err(StoreError::Duplicate(_)) => {
                        self.docs.update(FLOWS, id, None, body).await.map(|_| ())
                    }
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    pub async fn remove(&self, id: &str) -> Result<bool> {
        self.docs.delete(FLOWS, id).await
    }

    /// Sets the next run (None: no run planned) if the flow is still exactly as `flow` was
    /// read. `StoreError::Conflict` (someone else moved it first) or `NotFound` (it was
    /// stopped) otherwise: this compare-and-set is the lease that lets one replica only fire a
    /// run.
    pub async fn reschedule(
        &self,
        flow: &ScheduledFlow,
        next: Option<DateTime<Utc>>,
    ) -> Result<ScheduledFlow> {
        let mut body = flow.body.clone();
        match next {
            Some(next) => body.insert(NEXT_RUN_AT.into(), json!(next.timestamp_millis())),
            None => body.remove(NEXT_RUN_AT),
        };
        let doc = self
            .docs
            .update(FLOWS, &flow.id, Some(flow.version), Value::Object(body))
            .await?;
        Ok(doc.into())
    }

    /// Flows whose run is due at `now`, the most overdue first.
    pub async fn due(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<ScheduledFlow>> {
        let filter = Filter::Lte(NEXT_RUN_AT.into(), json!(now.timestamp_millis()));
        let opts = FindOptions {
            sort: vec![(NEXT_RUN_AT.into(), SortOrder::Asc)],
            skip: 0,
            limit: Some(limit),
        };
        let found = self.docs.find(FLOWS, &filter, &opts).await?;
        Ok(found.into_iter().map(ScheduledFlow::from).collect())
    }

    /// The earliest planned run of any flow.
    pub async fn earliest_run(&self) -> Result<Option<DateTime<Utc>>> {
        let filter = Filter::Exists(NEXT_RUN_AT.into(), true);
        let opts = FindOptions {
            sort: vec![(NEXT_RUN_AT.into(), SortOrder::Asc)],
            skip: 0,
            limit: Some(1),
        };
        let found = self.docs.find(FLOWS, &filter, &opts).await?;
        Ok(found
            .into_iter()
            .next()
            .map(ScheduledFlow::from)
            .and_then(|flow| flow.next_run_at()))
    }
}
