//! The service's collections and every write to them.
//!
//! - `audit_logs`: the entries: `{headers, payload, chain}` (see [`crate::chain`]).
//! - `audit_chains`: one head document per chain, `{tenant, seq, hash}`: the last entry.
//! - `audit_retention`: per-tenant retention overrides (see [`crate::retention`]).
//!
//! Appends to one chain are serialised through its head: an append reads the head, inserts
//! the entry and moves the head (with `expected_version`) in one transaction, and starts over
//! when another writer got there first. That keeps chains linear across concurrent ingest,
//! `POST /logs` and several replicas.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use oih_core::ObjectId;
use oih_store::{
    Collection, CollectionSpec, DocStore, Document, Filter, FindOptions, SortOrder, StoreError,
    Transaction,
};
use serde_json::{Map, Value, json};

use crate::chain::{self, ANONYMISED, GENESIS, Link};
use crate::model::NewEntry;

pub const LOGS: Collection = Collection("audit_logs");
pub const CHAINS: Collection = Collection("audit_chains");

/// Payload keys that name a user by id in the events OIH services publish; GDPR looks for
/// the deleted user's id in these (OIH looks only in `id` and `user`).
const USER_KEYS: &[&str] = &[
    "id",
    "user",
    "userId",
    "account",
    "ownerId",
    "startedBy",
    "stoppedBy",
];
/// How often an append races another writer before giving up (the caller retries later).
const MAX_APPEND_ATTEMPTS: u32 = 50;
/// Entries read per query when scanning a chain.
pub const SCAN_BATCH: u64 = 500;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// The entry was added; its rendered document.
    Added(Document),
    /// An entry with this id exists already (a redelivered event), or the pruning it records
    /// was done already: nothing was written.
    AlreadyRecorded,
}

/// The head of one chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub tenant: String,
    pub seq: u64,
    pub hash: String,
    /// The last `seq` retention removed (0: none).
    pub pruned_through: u64,
    /// Store version of the head document.
    pub version: i64,
}

impl Head {
    fn from_doc(doc: &Document) -> Option<Self> {
        Some(Self {
            tenant: doc.body.get("tenant")?.as_str()?.to_owned(),
            seq: doc.body.get("seq")?.as_u64()?,
            hash: doc.body.get("hash")?.as_str()?.to_owned(),
            pruned_through: doc
                .body
                .get("prunedThrough")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            version: doc.version,
        })
    }
}

#[derive(Clone)]
pub struct LogStore {
    docs: Arc<dyn DocStore>,
}

impl LogStore {
    pub async fn open(docs: Arc<dyn DocStore>) -> Result<Self> {
        docs.ensure_collection(
            LOGS,
            &CollectionSpec {
                unique: vec![vec!["chain.tenant", "chain.seq"]],
                indexed: vec![
                    "chain.tenant",
                    "headers.createdAt",
                    "headers.name",
                    "headers.serviceName",
                    "payload.tenant",
                    "payload.user",
                    "payload.id",
                ],
            },
        )
        .await?;
        docs.ensure_collection(
            CHAINS,
            &CollectionSpec {
                unique: vec![vec!["tenant"]],
                indexed: vec![],
            },
        )
        .await?;
        docs.ensure_collection(
            crate::retention::OVERRIDES,
            &CollectionSpec {
                unique: vec![vec!["tenant"]],
                indexed: vec![],
            },
        )
        .await?;
        Ok(Self { docs })
    }

    pub fn docs(&self) -> &Arc<dyn DocStore> {
        &self.docs
    }

    /// Appends `entry` under `id` to its tenant's chain.
    pub async fn append(&self, id: &str, entry: &NewEntry) -> Result<Appended> {
        self.append_with(id, entry, None).await
    }

    /// Appends `entry` and, when `prune_through` is set, deletes the chain's entries up to that
    /// `seq` in the same transaction (retention: the entry is the checkpoint recording it).
    /// A pruning that another writer already did (or went further) is not repeated.
    pub async fn append_with(
        &self,
        id: &str,
        entry: &NewEntry,
        prune_through: Option<u64>,
    ) -> Result<Appended> {
        let tenant = entry.tenant();
        let head_id = head_id(&tenant);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.docs.begin().await?;
            match append_in(tx.as_mut(), id, &head_id, &tenant, entry, prune_through).await {
                Ok(Appended::AlreadyRecorded) => {
                    tx.rollback().await?;
                    return Ok(Appended::AlreadyRecorded);
                }
                Ok(added) => match tx.commit().await {
                    Ok(()) => return Ok(added),
                    Err(err) if is_race(&err) && attempt < MAX_APPEND_ATTEMPTS => {}
                    Err(err) => return Err(err),
                },
                Err(err) => {
                    // The transaction is unusable after a failed statement; a rollback error
                    // adds nothing to the original one.
                    let _ = tx.rollback().await;
                    if !(is_race(&err) && attempt < MAX_APPEND_ATTEMPTS) {
                        return Err(err);
                    }
                }
            }
            // Another writer moved the head: back off a little, with jitter, and re-read it.
            let pause = u64::from(attempt.min(10)) * 2 + rand::random::<u64>() % 5;
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    /// A page of entries, newest first, and how many match in all.
    pub async fn list(
        &self,
        filter: &Filter,
        skip: u64,
        limit: u64,
    ) -> Result<(Vec<Document>, u64)> {
        let opts = FindOptions {
            sort: vec![
                ("headers.createdAt".into(), SortOrder::Desc),
                ("chain.recordedAt".into(), SortOrder::Desc),
            ],
            skip,
            limit: Some(limit),
        };
        let items = self.docs.find(LOGS, filter, &opts).await?;
        let total = self.docs.count(LOGS, filter).await?;
        Ok((items, total))
    }

    pub async fn heads(&self) -> Result<Vec<Head>> {
        let docs = self
            .docs
            .find(CHAINS, &Filter::All, &FindOptions::default())
            .await?;
        Ok(docs.iter().filter_map(Head::from_doc).collect())
    }

    pub async fn head(&self, tenant: &str) -> Result<Option<Head>> {
        let doc = self.docs.get(CHAINS, &head_id(tenant)).await?;
        Ok(doc.as_ref().and_then(Head::from_doc))
    }

    /// Entries of a chain with `seq` in `from..=to`, in chain order.
    pub async fn segment(
        &self,
        tenant: &str,
        from: u64,
        to: u64,
        limit: u64,
    ) -> Result<Vec<Document>> {
        let filter = Filter::and([
            Filter::eq("chain.tenant", tenant),
            Filter::Gte("chain.seq".into(), json!(from)),
            Filter::Lte("chain.seq".into(), json!(to)),
        ]);
        let opts = FindOptions {
            sort: vec![("chain.seq".into(), SortOrder::Asc)],
            skip: 0,
            limit: Some(limit),
        };
        self.docs.find(LOGS, &filter, &opts).await
    }

    /// GDPR: in every entry naming `user` by id, the values equal to the id and `username`
    /// become [`ANONYMISED`]; the chain stays verifiable (see [`crate::chain`]). Returns how
    /// many entries changed. Safe to repeat.
    pub async fn anonymise(&self, user: &str) -> Result<u64> {
        let filter = Filter::or(
            USER_KEYS
                .iter()
                .map(|k| Filter::eq(format!("payload.{k}"), user)),
        );
        let mut changed = 0;
        loop {
            let opts = FindOptions {
                sort: vec![("_id".into(), SortOrder::Asc)],
                skip: 0,
                limit: Some(SCAN_BATCH),
            };
            let batch = self.docs.find(LOGS, &filter, &opts).await?;
            if batch.is_empty() {
                return Ok(changed);
            }
            let mut progressed = false;
            for doc in batch {
                if self.anonymise_one(doc, user).await? {
                    changed += 1;
                    progressed = true;
                }
            }
            if !progressed {
                // Matches that cannot be redacted (e.g. a damaged chain field): stop rather
                // than loop; verification reports them.
                return Ok(changed);
            }
        }
    }

    async fn anonymise_one(&self, mut doc: Document, user: &str) -> Result<bool> {
        loop {
            let Some(redacted) = redact(&doc.body, user) else {
                return Ok(false);
            };
            match self
                .docs
                .update(LOGS, &doc.id, Some(doc.version), redacted)
                .await
            {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict { .. }) => match self.docs.get(LOGS, &doc.id).await? {
                    Some(fresh) => doc = fresh,
                    None => return Ok(false),
                },
                Err(StoreError::NotFound) => return Ok(false),
                Err(err) => return Err(err),
            }
        }
    }
}

/// Another writer changed the chain head between our read and our write.
fn is_race(err: &StoreError) -> bool {
    matches!(err, StoreError::Conflict { .. } | StoreError::Duplicate(_))
}

/// Deterministic id of a chain's head document.
fn head_id(tenant: &str) -> String {
    chain::sha256_hex(format!("audit-chain\0{tenant}").as_bytes())[..24].to_owned()
}

/// A fresh id for an entry pushed over HTTP.
pub fn new_id() -> String {
    ObjectId::new().to_string()
}

/// The id an event from the bus is stored under: derived from its content, so a redelivered
/// event is recognised and not recorded twice.
pub fn event_id(entry: &NewEntry) -> String {
    let key = json!({"headers": entry.headers(), "payload": entry.payload});
    chain::sha256_hex(chain::canonical(&key).as_bytes())[..24].to_owned()
}

async fn append_in(
    tx: &mut dyn Transaction,
    id: &str,
    head_id: &str,
    tenant: &str,
    entry: &NewEntry,
    prune_through: Option<u64>,
) -> Result<Appended> {
    if tx.get(LOGS, id).await?.is_some() {
        return Ok(Appended::AlreadyRecorded);
    }
    let head_doc = tx.get(CHAINS, head_id).await?;
    let head = head_doc.as_ref().and_then(Head::from_doc);
    let (seq, prev) = match &head {
        Some(h) => (h.seq + 1, h.hash.clone()),
        None => (1, GENESIS.to_owned()),
    };
    let headers = entry.headers();
    let mut link = Link {
        tenant: tenant.to_owned(),
        seq,
        prev,
        hash: String::new(),
        recorded_at: Utc::now().timestamp_millis(),
        salts: chain::salts_for(&entry.payload),
        redacted: Map::new(),
    };
    let fields = chain::field_digests(&entry.payload, &link)
        .map_err(|m| StoreError::Invalid(m.to_string()))?;
    link.hash = chain::entry_hash(id, &link, &headers, fields);
    let mut pruned_through = head.as_ref().map_or(0, |h| h.pruned_through);
    if let Some(through) = prune_through {
        if through <= pruned_through || through >= seq {
            return Ok(Appended::AlreadyRecorded);
        }
        let prefix = Filter::and([
            Filter::eq("chain.tenant", tenant),
            Filter::Lte("chain.seq".into(), json!(through)),
        ]);
        tx.delete_many(LOGS, &prefix).await?;
        pruned_through = through;
    }
    let body = json!({
        "headers": headers,
        "payload": entry.payload,
        "chain": link.to_json(),
    });
    let doc = tx.insert(LOGS, id, body, None).await?;
    let head_body =
        json!({"tenant": tenant, "seq": seq, "hash": link.hash, "prunedThrough": pruned_through});
    match head_doc {
        Some(h) => {
            tx.update(CHAINS, head_id, Some(h.version), head_body)
                .await?
        }
        None => tx.insert(CHAINS, head_id, head_body, None).await?,
    };
    Ok(Appended::Added(doc))
}

/// The body of an entry with `user`'s personal values anonymised, or None when there is
/// nothing (left) to anonymise.
fn redact(body: &Value, user: &str) -> Option<Value> {
    let mut body = body.clone();
    let mut link = Link::from_json(body.get("chain")?)?;
    let payload = body.get_mut("payload")?.as_object_mut()?;
    let personal: Vec<String> = payload
        .iter()
        .filter(|(k, v)| {
            v.as_str() != Some(ANONYMISED) && (v.as_str() == Some(user) || k.as_str() == "username")
        })
        .map(|(k, _)| k.clone())
        .collect();
    if personal.is_empty() {
        return None;
    }
    for key in personal {
        // Keep the digest the hash was made with; forget the salt that could confirm a guess.
        let Some(Value::String(salt)) = link.salts.remove(&key) else {
            return None;
        };
        let value = payload.insert(key.clone(), Value::String(ANONYMISED.into()))?;
        link.redacted.insert(
            key.clone(),
            Value::String(chain::field_digest(&salt, &key, &value)),
        );
    }
    body["chain"] = link.to_json();
    Some(body)
}
