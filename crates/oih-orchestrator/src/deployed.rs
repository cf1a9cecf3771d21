//! The flows this orchestrator has deployed (collection `orchestrator_flows`), so that a
//! restarted hub deploys them again before it handles any step output: OIH re-derives them
//! from the flow repository on its next reconcile tick, and drops what arrives before.

use std::sync::Arc;

use oih_store::{Collection, CollectionSpec, DocStore, Filter, FindOptions, StoreError};

use crate::model::Flow;

pub const DEPLOYED: Collection = Collection("orchestrator_flows");

#[derive(Clone)]
pub struct Deployed {
    docs: Arc<dyn DocStore>,
}

impl Deployed {
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self, StoreError> {
        docs.ensure_collection(DEPLOYED, &CollectionSpec::default())
            .await?;
        Ok(Self { docs })
    }

    /// Records the flow as deployed (a redeploy replaces the record).
    pub async fn save(&self, flow: &Flow) -> Result<(), StoreError> {
        let body = serde_json::to_value(flow).map_err(|e| StoreError::Invalid(e.to_string()))?;
        match self
            .docs
            .insert(DEPLOYED, &flow.id, body.clone(), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::Duplicate(_)) => self
                .docs
                .update(DEPLOYED, &flow.id, None, body)
                .await
                .map(drop),
            Err(err) => Err(err),
        }
    }

    pub async fn remove(&self, flow_id: &str) -> Result<(), StoreError> {
        self.docs.delete(DEPLOYED, flow_id).await.map(drop)
    }

    /// Every deployed flow; a record that no longer reads as a flow is skipped with a warning.
    pub async fn all(&self) -> Result<Vec<Flow>, StoreError> {
        let docs = self
            .docs
            .find(DEPLOYED, &Filter::All, &FindOptions::default())
            .await?;
        Ok(docs
            .into_iter()
            .filter_map(|doc| match serde_json::from_value(doc.body) {
                Ok(flow) => Some(flow),
                Err(err) => {
                    tracing::warn!(flow = %doc.id, error = %err, "unreadable deployed-flow record skipped");
                    None
                }
            })
            .collect())
    }
}
