//! Retention: every chain keeps at most `max_entries` entries and none recorded longer ago than
//! `max_age`. What is too old or too much is always a prefix of the chain; it is deleted in the
//! transaction that appends a checkpoint entry (`audit.retention.checkpoint`, payload
//! `{tenant, prunedThrough, prunedHash, pruned, reason}`), so the rest of the chain still
//! verifies from the checkpoint and the pruning itself is part of the tamper-evident record.
//!
//! The limits come from the configuration, and an admin can override them per tenant
//! ([`Override`], kept in `audit_retention` so they outlive a restart); every round reads the
//! overrides afresh, so a change applies from the next round on.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oih_http::FieldError;
use oih_store::{Collection, Filter, FindOptions, SortOrder, StoreError};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::chain;
use crate::model::NewEntry;
use crate::store::{Appended, Head, LOGS, LogStore, Result, new_id};

/// Name of the entry recording a pruning.
pub const CHECKPOINT: &str = "audit.retention.checkpoint";
/// The per-tenant overrides: `{tenant, limits: {maxAgeSecs?, maxEntries?}}`.
pub const OVERRIDES: Collection = Collection("audit_retention");

/// The JSON names of the two limits (the configuration's `AUDIT_RETENTION_MAX_AGE_SECS` and
/// `AUDIT_RETENTION_MAX_ENTRIES`).
const MAX_AGE_SECS: &str = "maxAgeSecs";
const MAX_ENTRIES: &str = "maxEntries";
/// Largest accepted limit: what every engine stores as an exact integer.
const MAX_LIMIT: u64 = i64::MAX as u64;
/// How often a write of an override races another before giving up.
const MAX_WRITE_ATTEMPTS: u32 = 10;

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

    /// `{maxAgeSecs, maxEntries}`, `null` for no limit.
    pub fn to_json(&self) -> Value {
        json!({
            MAX_AGE_SECS: self.max_age.map(|d| d.as_secs()),
            MAX_ENTRIES: self.max_entries,
        })
    }
}

/// A tenant's own limits. Per limit: `None` keeps the default, `Some(None)` lifts it (the
/// tenant's chain is not limited that way), `Some(Some(n))` replaces it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Override {
    pub max_age: Option<Option<Duration>>,
    pub max_entries: Option<Option<u64>>,
}

impl Override {
    /// The policy a tenant's chain is held to.
    pub fn apply(&self, default: Policy) -> Policy {
        Policy {
            max_age: self.max_age.unwrap_or(default.max_age),
            max_entries: self.max_entries.unwrap_or(default.max_entries),
        }
    }

    /// Reads `{maxAgeSecs?, maxEntries?}`: each a positive integer, or `null` for no limit; at
    /// least one of them; nothing else. Every failed rule is reported.
    pub fn from_body(body: &Value) -> std::result::Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(obj) = body.as_object() else {
            return Err(vec![FieldError::new("The body must be an object")]);
        };
        for key in obj.keys() {
            if key != MAX_AGE_SECS && key != MAX_ENTRIES {
                errors.push(
                    FieldError::new(format!(
                        "Unknown field {key:?}: only {MAX_AGE_SECS} and {MAX_ENTRIES} can be set"
                    ))
                    .with_field(key.clone()),
                );
            }
        }
        let mut limit = |key: &str| -> Option<Option<u64>> {
            match obj.get(key)? {
                Value::Null => Some(None),
                value => match value.as_u64().filter(|n| (1..=MAX_LIMIT).contains(n)) {
                    Some(n) => Some(Some(n)),
                    None => {
                        errors.push(
                            FieldError::new(format!(
                                "{key} must be a positive integer, or null for no limit"
                            ))
                            .with_field(key),
                        );
                        None
                    }
                },
            }
        };
        let max_age = limit(MAX_AGE_SECS);
        let max_entries = limit(MAX_ENTRIES);
        if errors.is_empty() && obj.is_empty() {
            errors.push(FieldError::new(format!(
                "Set {MAX_AGE_SECS} or {MAX_ENTRIES} (DELETE removes the override)"
            )));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            max_age: max_age.map(|age| age.map(Duration::from_secs)),
            max_entries,
        })
    }

    /// `{maxAgeSecs?, maxEntries?}` as [`Override::from_body`] reads it.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        if let Some(age) = self.max_age {
            obj.insert(MAX_AGE_SECS.into(), json!(age.map(|d| d.as_secs())));
        }
        if let Some(entries) = self.max_entries {
            obj.insert(MAX_ENTRIES.into(), json!(entries));
        }
        Value::Object(obj)
    }
}

/// Deterministic id of a tenant's override document.
fn override_id(tenant: &str) -> String {
    chain::sha256_hex(format!("audit-retention\0{tenant}").as_bytes())[..24].to_owned()
}

impl LogStore {
    /// Every tenant's override, by tenant. A document that no longer reads as an override (it
    /// was edited behind the service's back) is skipped: the tenant gets the default.
    pub async fn overrides(&self) -> Result<Vec<(String, Override)>> {
        let opts = FindOptions {
            sort: vec![("tenant".into(), SortOrder::Asc)],
            skip: 0,
            limit: None,
        };
        let docs = self.docs().find(OVERRIDES, &Filter::All, &opts).await?;
        Ok(docs
            .iter()
            .filter_map(|doc| {
                let parsed = read_override(&doc.body);
                if parsed.is_none() {
                    tracing::warn!(id = %doc.id, "unreadable audit retention override skipped");
                }
                parsed
            })
            .collect())
    }

    pub async fn override_for(&self, tenant: &str) -> Result<Option<Override>> {
        let doc = self.docs().get(OVERRIDES, &override_id(tenant)).await?;
        Ok(doc
            .and_then(|d| read_override(&d.body))
            .map(|(_, limits)| limits))
    }

    /// Sets (or replaces) the override of `tenant`.
    pub async fn set_override(&self, tenant: &str, limits: &Override) -> Result<()> {
        let id = override_id(tenant);
        let body = json!({"tenant": tenant, "limits": limits.to_json()});
        let mut attempt = 0;
        loop {
            attempt += 1;
            let written = match self.docs().get(OVERRIDES, &id).await? {
                Some(doc) => {
                    self.docs()
                        .update(OVERRIDES, &id, Some(doc.version), body.clone())
                        .await
                }
                None => self.docs().insert(OVERRIDES, &id, body.clone(), None).await,
            };
            match written {
                Ok(_) => return Ok(()),
                // Another admin wrote the same tenant's override meanwhile: last write wins.
                Err(
                    StoreError::Conflict { .. } | StoreError::Duplicate(_) | StoreError::NotFound,
                ) if attempt < MAX_WRITE_ATTEMPTS => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Removes the override of `tenant`; false when it had none.
    pub async fn remove_override(&self, tenant: &str) -> Result<bool> {
        self.docs().delete(OVERRIDES, &override_id(tenant)).await
    }
}

fn read_override(body: &Value) -> Option<(String, Override)> {
    let tenant = body.get("tenant")?.as_str()?.to_owned();
    let limits = Override::from_body(body.get("limits")?).ok()?;
    Some((tenant, limits))
}

/// Applies the default [`Policy`], or a tenant's [`Override`] of it, to every chain.
#[derive(Clone)]
pub struct Pruner {
    logs: LogStore,
    default: Policy,
}

impl Pruner {
    pub fn new(logs: LogStore, default: Policy) -> Self {
        Self { logs, default }
    }

    /// Prunes every chain as of `now`; returns how many entries were removed.
    pub async fn prune_all(&self, now: DateTime<Utc>) -> Result<u64> {
        let overrides: HashMap<String, Override> =
            self.logs.overrides().await?.into_iter().collect();
        let mut removed = 0;
        for head in self.logs.heads().await? {
            let policy = overrides
                .get(&head.tenant)
                .map_or(self.default, |o| o.apply(self.default));
            if !policy.is_unlimited() {
                removed += self.prune(&head, policy, now).await?;
            }
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

    async fn prune(&self, head: &Head, policy: Policy, now: DateTime<Utc>) -> Result<u64> {
        let mut through = 0;
        if let Some(max) = policy.max_entries.map(|m| m.max(1)) {
            // Over the limit: prune so that, with the checkpoint (seq + 1), `max` remain. At
            // the limit nothing happens (else every round would replace one entry by a
            // checkpoint).
            if head.seq - head.pruned_through > max {
                through = (head.seq + 1).saturating_sub(max);
            }
        }
        // An age beyond what a date can go back means nothing is old enough.
        let cutoff = policy
            .max_age
            .and_then(|age| chrono::Duration::from_std(age).ok())
            .and_then(|age| now.checked_sub_signed(age));
        if let Some(cutoff) = cutoff {
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
