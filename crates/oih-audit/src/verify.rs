//! Recomputing a chain: every entry's hash from its content, every link to its predecessor,
//! the start (first entry, or the prefix retention pruned as its checkpoint records) and the
//! end (the head). The first entry that does not fit is named.

use oih_store::{Document, Filter, FindOptions, SortOrder};
use serde_json::{Value, json};

use crate::chain::{self, GENESIS, Link};
use crate::retention::CHECKPOINT;
use crate::store::{Head, LOGS, LogStore, Result, SCAN_BATCH};

/// How often a chain is re-read when it changed (an append or a pruning) while it was checked.
const ATTEMPTS: u32 = 3;

/// The outcome for one chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub tenant: String,
    pub entries: u64,
    pub head: Head,
    pub broken: Option<Broken>,
}

/// The first entry that does not verify.
#[derive(Debug, Clone, PartialEq)]
pub struct Broken {
    /// The entry's id; None when the entry itself is missing.
    pub id: Option<String>,
    pub seq: u64,
    pub reason: String,
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "tenant": if self.tenant.is_empty() { Value::Null } else { Value::String(self.tenant.clone()) },
            "valid": self.broken.is_none(),
            "entries": self.entries,
            "head": {"seq": self.head.seq, "hash": self.head.hash},
            "firstBroken": self.broken.as_ref().map(|b| json!({"_id": b.id, "seq": b.seq, "reason": b.reason})),
        })
    }
}

impl LogStore {
    /// Verifies the chain of `tenant` (`""`: entries without tenant); None if it has none.
    pub async fn verify(&self, tenant: &str) -> Result<Option<Report>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(head) = self.head(tenant).await? else {
                return Ok(None);
            };
            let report = self.verify_once(head.clone()).await?;
            // A failure seen while the chain moved may be a pruning that happened mid-scan.
            let moved = self.head(tenant).await?.map(|h| h.version) != Some(head.version);
            if report.broken.is_none() || !moved || attempt >= ATTEMPTS {
                return Ok(Some(report));
            }
        }
    }

    async fn verify_once(&self, head: Head) -> Result<Report> {
        let tenant = head.tenant.clone();
        let mut report = Report {
            tenant: tenant.clone(),
            entries: 0,
            head: head.clone(),
            broken: None,
        };
        // Where the chain must start: at 1, or right after the prefix the last pruning removed
        // (the checkpoint is appended in the transaction that deletes the prefix).
        let (mut expected_seq, mut expected_prev) =
            match self.last_checkpoint(&tenant, head.seq).await? {
                Some((through, hash)) => (through + 1, hash),
                None => (1, GENESIS.to_owned()),
            };
        while expected_seq <= head.seq {
            let batch = self
                .segment(&tenant, expected_seq, head.seq, SCAN_BATCH)
                .await?;
            if batch.is_empty() {
                break;
            }
            for doc in &batch {
                if let Err(broken) = check(doc, &tenant, expected_seq, &expected_prev) {
                    report.broken = Some(broken);
                    return Ok(report);
                }
                report.entries += 1;
                expected_prev = doc
                    .body
                    .pointer("/chain/hash")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                expected_seq += 1;
            }
        }
        if expected_seq <= head.seq {
            report.broken = Some(Broken {
                id: None,
                seq: expected_seq,
                reason: format!("entries {expected_seq} to {} are missing", head.seq),
            });
        } else if expected_prev != head.hash {
            report.broken = Some(Broken {
                id: None,
                seq: head.seq,
                reason: "the last entry does not match the chain head".into(),
            });
        }
        Ok(report)
    }

    /// `(prunedThrough, prunedHash)` of the chain's latest retention checkpoint up to the head.
    /// (Only one inside the checked range counts: it is then verified like any entry.)
    async fn last_checkpoint(&self, tenant: &str, head_seq: u64) -> Result<Option<(u64, String)>> {
        let filter = Filter::and([
            Filter::eq("chain.tenant", tenant),
            Filter::Lte("chain.seq".into(), json!(head_seq)),
            Filter::eq("headers.name", CHECKPOINT),
            Filter::eq("headers.serviceName", crate::SERVICE_NAME),
        ]);
        let opts = FindOptions {
            sort: vec![("chain.seq".into(), SortOrder::Desc)],
            skip: 0,
            limit: Some(1),
        };
        let found = self.docs().find(LOGS, &filter, &opts).await?;
        Ok(found.first().and_then(|doc| {
            let through = doc.body.pointer("/payload/prunedThrough")?.as_u64()?;
            let hash = doc.body.pointer("/payload/prunedHash")?.as_str()?;
            Some((through, hash.to_owned()))
        }))
    }
}

/// Checks one entry against its expected position.
fn check(
    doc: &Document,
    tenant: &str,
    expected_seq: u64,
    expected_prev: &str,
) -> Result<(), Broken> {
    let broken = |seq: u64, reason: String| Broken {
        id: Some(doc.id.clone()),
        seq,
        reason,
    };
    let Some(link) = doc.body.get("chain").and_then(Link::from_json) else {
        return Err(broken(expected_seq, "its chain fields are damaged".into()));
    };
    if link.seq != expected_seq {
        return Err(Broken {
            id: None,
            seq: expected_seq,
            reason: format!("entry {expected_seq} is missing"),
        });
    }
    if link.tenant != tenant {
        return Err(broken(link.seq, "it was moved from another chain".into()));
    }
    if link.prev != expected_prev {
        return Err(broken(
            link.seq,
            "it does not link to the previous entry".into(),
        ));
    }
    let Some(payload) = doc.body.get("payload").and_then(Value::as_object) else {
        return Err(broken(link.seq, "its payload was altered".into()));
    };
    let fields =
        chain::field_digests(payload, &link).map_err(|m| broken(link.seq, m.to_string()))?;
    let headers = doc.body.get("headers").cloned().unwrap_or(Value::Null);
    if chain::entry_hash(&doc.id, &link, &headers, fields) != link.hash {
        return Err(broken(
            link.seq,
            "its content does not match its hash (the entry was altered)".into(),
        ));
    }
    Ok(())
}
