//! Retention: every chain keeps at most `max_entries` entries and none recorded longer ago than
//! `max_age`. What is too old or too much is always a prefix of the chain; it is deleted in the
//! transaction that appends a checkpoint entry (`audit.retention.checkpoint`, payload
//! `{tenant, prunedThrough, prunedHash, pruned, reason}`), so the rest of the chain still
//! verifies from the checkpoint and the pruning itself is part of the tamper-evident record.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oih_store::{Filter, FindOptions, SortOrder};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::model::NewEntry;
use crate::store::{Appended, Head, LOGS, LogStore, Result, new_id};

/// Name of the entry recording a pruning.
pub const CHECKPOINT: &str = "audit.retention.checkpoint";

/// The limits every chain is held to; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub max_age: Option<Duration>,
    pub max_entries: Option<u64>,
}

impl Policy {
    pub fn is_unlimited(&self) -> bool {
        self.max_age.is_none() && self.max_entries.is_none()
    }
}

/// Applies a [`Policy`] to every chain.
#[derive(Clone)]
pub struct Pruner {
    logs: LogStore,
    policy: Policy,
}

impl Pruner {
    pub fn new(logs: LogStore, policy: Policy) -> Self {
        Self { logs, policy }
    }

    /// Prunes every chain as of `now`; returns how many entries were removed.
    pub async fn prune_all(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut removed = 0;
        for head in self.logs.heads().await? {
            removed += self.prune(&head, now).await?;
        }
        Ok(removed)
    }

    /// Runs [`Pruner::prune_all`] every `interval` until cancelled.
    pub async fn run(self, interval: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match self.prune_all(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "audit retention pruned entries"),
                // The next round tries again.
                Err(err) => tracing::warn!(error = %err, "audit retention failed"),
            }
        }
    }

    async fn prune(&self, head: &Head, now: DateTime<Utc>) -> Result<u64> {
        let mut through = 0;
        if let Some(max) = self.policy.max_entries.map(|m| m.max(1)) {
            // Over the limit: prune so that, with the checkpoint (seq + 1), `max` remain. At
            // the limit nothing happens (else every round would replace one entry by a
            // checkpoint).
            if head.seq - head.pruned_through > max {
                through = (head.seq + 1).saturating_sub(max);
            }
        }
        if let Some(age) = self.policy.max_age {
            let cutoff = now - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
            through = through.max(self.last_recorded_before(&head.tenant, cutoff).await?);
        }
        let through = through.min(head.seq);
        if through <= head.pruned_through {
            return Ok(0);
        }
        let Some(last) = self
            .logs
            .segment(&head.tenant, through, through, 1)
            .await?
            .pop()
        else {
            tracing::warn!(tenant = %head.tenant, seq = through, "retention skipped: entry missing");
            return Ok(0);
        };
        let pruned_hash = last
            .body
            .pointer("/chain/hash")
            .cloned()
            .unwrap_or(Value::Null);
        let mut payload = Map::new();
        if !head.tenant.is_empty() {
            payload.insert("tenant".into(), json!(head.tenant));
        }
        payload.insert("prunedThrough".into(), json!(through));
        payload.insert("prunedHash".into(), pruned_hash);
        payload.insert("pruned".into(), json!(through - head.pruned_through));
        payload.insert("reason".into(), json!("retention"));
        let checkpoint = NewEntry {
            name: CHECKPOINT.into(),
            service_name: crate::SERVICE_NAME.into(),
            created_at: now.timestamp_millis(),
            payload,
        };
        match self
            .logs
            .append_with(&new_id(), &checkpoint, Some(through))
            .await?
        {
            Appended::Added(_) => Ok(through - head.pruned_through),
            Appended::AlreadyRecorded => Ok(0),
        }
    }

    /// The highest `seq` of the chain recorded before `cutoff` (0: none).
    async fn last_recorded_before(&self, tenant: &str, cutoff: DateTime<Utc>) -> Result<u64> {
        let filter = Filter::and([
            Filter::eq("chain.tenant", tenant),
            Filter::Lt("chain.recordedAt".into(), json!(cutoff.timestamp_millis())),
        ]);
        let opts = FindOptions {
            sort: vec![("chain.seq".into(), SortOrder::Desc)],
            skip: 0,
            limit: Some(1),
        };
        let found = self.logs.docs().find(LOGS, &filter, &opts).await?;
        Ok(found
            .first()
            .and_then(|d| d.body.pointer("/chain/seq"))
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }
}
