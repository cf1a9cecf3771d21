//! A snapshot as it arrives from a step (runtime.md §2.6, §7), where it belongs, and how
//! clients see it.
//!
//! Scope: Ferryman's `snapshot` emit is the step's persistent state and carries no
//! `flowExecId`; its `updateSnapshot` emit carries one and lives only as long as that
//! execution. OIH's service keys by whatever `flowExecId` header arrives. Our own step runners
//! put `flowExecId` on every message, so a message marked `snapshotEvent: snapshot` is stored
//! as persistent whatever its headers say; other messages are scoped by their `flowExecId`.

use oih_bus::Headers;
use oih_core::{Owner, OwnerType};
use oih_store::Document;
use serde_json::{Map, Value, json};

/// The `snapshotEvent` value of Ferryman's persistent `snapshot` emit.
pub const PERSISTENT_EVENT: &str = "snapshot";

/// A snapshot to store, read from one message on `flow-snapshots`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSnapshot {
    /// From the `taskId` header.
    pub flow_id: String,
    pub step_id: String,
    /// None: the step's persistent snapshot.
    pub flow_exec_id: Option<String>,
    pub tenant: Option<String>,
    /// The flow's starter (the `userId` header, the token's user): the owner of the snapshot.
    pub user_id: Option<String>,
    pub snapshot: Value,
}

impl NewSnapshot {
    /// Reads a message; `Err` says why it is not a snapshot.
    pub fn from_message(headers: &Headers, body: &[u8]) -> Result<Self, String> {
        let snapshot: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let flow_id = header(headers, "taskId")?.ok_or("no `taskId` header")?;
        let step_id = header(headers, "stepId")?.ok_or("no `stepId` header")?;
        let flow_exec_id = match header(headers, "snapshotEvent")? {
            Some(event) if event == PERSISTENT_EVENT => None,
            _ => header(headers, "flowExecId")?,
        };
        Ok(Self {
            flow_id,
            step_id,
            flow_exec_id,
            tenant: header(headers, "tenant")?,
            user_id: header(headers, "userId")?,
            snapshot,
        })
    }

    /// The stored body (OIH's model: `owners` and `tenant` beside the snapshot).
    pub fn to_body(&self) -> Value {
        let owners: Vec<Owner> = self
            .user_id
            .iter()
            .map(|id| Owner {
                id: id.clone(),
                kind: OwnerType::User,
            })
            .collect();
        let mut body = Map::new();
        body.insert("flowId".into(), json!(self.flow_id));
        body.insert("stepId".into(), json!(self.step_id));
        if let Some(exec) = &self.flow_exec_id {
            body.insert("flowExecId".into(), json!(exec));
        }
        body.insert("snapshot".into(), self.snapshot.clone());
        body.insert("owners".into(), json!(owners));
        if let Some(tenant) = &self.tenant {
            body.insert("tenant".into(), json!(tenant));
        }
        Value::Object(body)
    }
}

/// An optional string header; empty counts as absent, another type is malformed.
fn header(headers: &Headers, key: &str) -> Result<Option<String>, String> {
    match headers.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("header `{key}` is not a string: {other}")),
    }
}

/// The client view, OIH's `toJSON`: `id, snapshot, flowId, stepId, flowExecId` only.
pub fn render(doc: &Document) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(doc.id));
    for key in ["snapshot", "flowId", "stepId", "flowExecId"] {
        if let Some(value) = doc.body.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, Value)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn ferryman_update_snapshot_is_execution_scoped() {
        let h = headers(&[
            ("taskId", json!("f1")),
            ("stepId", json!("step_1")),
            ("flowExecId", json!("e1")),
            ("snapshotEvent", json!("updateSnapshot")),
            ("tenant", json!("t1")),
            ("userId", json!("u1")),
        ]);
        let s = NewSnapshot::from_message(&h, br#"{"n":1}"#).expect("snapshot");
        assert_eq!(s.flow_exec_id.as_deref(), Some("e1"));
        assert_eq!(
            s.to_body(),
            json!({"flowId": "f1", "stepId": "step_1", "flowExecId": "e1", "snapshot": {"n": 1},
                   "owners": [{"id": "u1", "type": "USER"}], "tenant": "t1"})
        );
    }

    #[test]
    fn a_snapshot_event_is_persistent_even_with_an_execution_header() {
        let h = headers(&[
            ("taskId", json!("f1")),
            ("stepId", json!("s")),
            ("flowExecId", json!("e1")),
            ("snapshotEvent", json!("snapshot")),
        ]);
        let s = NewSnapshot::from_message(&h, b"[1,2]").expect("snapshot");
        assert_eq!(s.flow_exec_id, None);
        assert_eq!(s.user_id, None);
        assert_eq!(s.to_body()["owners"], json!([]));
    }

    #[test]
    fn malformed_messages_say_why() {
        let ok = headers(&[("taskId", json!("f")), ("stepId", json!("s"))]);
        assert!(
            NewSnapshot::from_message(&ok, b"not json")
                .expect_err("malformed")
                .contains("not JSON")
        );
        let no_step = headers(&[("taskId", json!("f"))]);
        assert!(
            NewSnapshot::from_message(&no_step, b"{}")
                .expect_err("malformed")
                .contains("stepId")
        );
        let empty_flow = headers(&[("taskId", json!("")), ("stepId", json!("s"))]);
        assert!(
            NewSnapshot::from_message(&empty_flow, b"{}")
                .expect_err("malformed")
                .contains("taskId")
        );
        let numeric = headers(&[("taskId", json!(5)), ("stepId", json!("s"))]);
        assert!(
            NewSnapshot::from_message(&numeric, b"{}")
                .expect_err("malformed")
                .contains("not a string")
        );
    }
}
