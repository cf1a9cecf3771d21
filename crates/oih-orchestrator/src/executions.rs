//! Execution records (collection `orchestrator_executions`, OIH's `flow-states`): one per
//! `flowExecId`, counting step inputs and ends the way OIH does (`started`, `succeeded`,
//! `errors`, `stepCounters`-like per-step counters), plus a status OIH lacks.
//!
//! Every change is a read-modify-write guarded by the document version, retried on conflict:
//! the backchannel and error consumers update the same record concurrently.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use oih_core::Owner;
use oih_store::{Collection, CollectionSpec, DocStore, Filter, FindOptions, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const EXECUTIONS: Collection = Collection("orchestrator_executions");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
}

/// The first error of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFailure {
    pub step_id: String,
    pub message: String,
}

/// One step's share of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub status: Status,
    /// Inputs published to the step.
    #[serde(rename = "in")]
    pub inputs: u64,
    /// Inputs the step finished (OIH's `stepCounters.<id>.out`, its "end" signals).
    pub out: u64,
    /// Data messages the step emitted.
    pub emitted: u64,
    pub errors: u64,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The `data` of the step's first input (see [`sample`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The `data` of the first message the step emitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub flow_exec_id: String,
    pub flow_id: String,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub owners: Vec<Owner>,
    pub status: Status,
    /// Step inputs published (OIH: 1 + every fan-out).
    pub started: u64,
    /// Step inputs finished.
    pub succeeded: u64,
    pub errors: u64,
    #[serde(default)]
    pub error: Option<StepFailure>,
    pub steps: BTreeMap<String, StepRecord>,
    /// Where the waiting webhook caller expects its answer; told when the execution ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl Execution {
    pub fn new(
        flow_exec_id: String,
        flow_id: String,
        tenant: Option<String>,
        owners: Vec<Owner>,
    ) -> Self {
        let now = Utc::now();
        Self {
            flow_exec_id,
            flow_id,
            tenant,
            owners,
            status: Status::Running,
            started: 0,
            succeeded: 0,
            errors: 0,
            error: None,
            steps: BTreeMap::new(),
            reply_to: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }

    /// Inputs published to `steps`.
    pub fn inputs(&mut self, steps: &[&str]) {
        let now = Utc::now();
        for step in steps {
            self.started += 1;
            self.record(step, now).inputs += 1;
        }
        self.settle(now);
    }

    /// The step's record, created on first mention.
    fn record(&mut self, step: &str, now: DateTime<Utc>) -> &mut StepRecord {
        self.steps
            .entry(step.to_owned())
            .or_insert_with(|| StepRecord {
                status: Status::Running,
                inputs: 0,
                out: 0,
                emitted: 0,
                errors: 0,
                started_at: now,
                finished_at: None,
                input: None,
                output: None,
            })
    }

    /// Keeps `data` as the step's input sample, unless it has one.
    pub fn sample_input(&mut self, step: &str, data: &Value, limit: usize) {
        if let Some(record) = self.steps.get_mut(step)
            && record.input.is_none()
        {
            record.input = sample(data, limit);
        }
    }

    /// Keeps `data` as the step's output sample, unless it has one.
    pub fn sample_output(&mut self, step: &str, data: &Value, limit: usize) {
        if let Some(record) = self.steps.get_mut(step)
            && record.output.is_none()
        {
            record.output = sample(data, limit);
        }
    }

    /// `step` put an input back to be retried later (Ferryman's rebound): one more input to
    /// end, since the first attempt ends too.
    pub fn rebounded(&mut self, step: &str) {
        self.inputs(&[step]);
    }

    /// `step` emitted a data message.
    pub fn emitted(&mut self, step: &str) {
        if let Some(record) = self.steps.get_mut(step) {
            record.emitted += 1;
        }
        self.settle(Utc::now());
    }

    /// `step` finished one input.
    pub fn ended(&mut self, step: &str) {
        self.succeeded += 1;
        if let Some(record) = self.steps.get_mut(step) {
            record.out += 1;
        }
        self.settle(Utc::now());
    }

    /// `step` failed on one input; the first error is kept as the execution's.
    pub fn failed(&mut self, step: &str, message: String) {
        self.errors += 1;
        // Errors travel on their own queue and can be counted before the input that caused
        // them: the step's record is created here too, so the failure is never lost.
        self.record(step, Utc::now()).errors += 1;
        self.error.get_or_insert(StepFailure {
            step_id: step.to_owned(),
            message,
        });
        self.settle(Utc::now());
    }

    /// Derives the statuses from the counters. An execution (or step) stays `running` until
    /// every input it was given has ended, so a failure in one branch does not report the
    /// execution finished while other branches still work; then any error fails it, even one
    /// counted after the last end (errors and ends travel on different queues).
    fn settle(&mut self, now: DateTime<Utc>) {
        for record in self.steps.values_mut() {
            let done = record.out >= record.inputs;
            record.status = status(record.errors, done);
            if done {
                record.finished_at.get_or_insert(now);
            } else {
                record.finished_at = None;
            }
        }
        let done = self.succeeded >= self.started;
        self.status = status(self.errors, done);
        if done {
            self.finished_at.get_or_insert(now);
        }
        self.updated_at = now;
    }
}

/// What users see of a message under `/executions`: its `data` when it serialises to at most
/// `limit` bytes, else a note of its size (so a large payload never bloats the record).
/// Nothing when `limit` is 0 (capture off).
fn sample(data: &Value, limit: usize) -> Option<Value> {
    if limit == 0 {
        return None;
    }
    let size = serde_json::to_vec(data).map_or(usize::MAX, |bytes| bytes.len());
    Some(if size <= limit {
        data.clone()
    } else {
        serde_json::json!({"truncated": true, "bytes": size})
    })
}

fn status(errors: u64, done: bool) -> Status {
    match (errors, done) {
        (_, false) => Status::Running,
        (0, true) => Status::Succeeded,
        (_, true) => Status::Failed,
    }
}

/// Access to the `orchestrator_executions` collection.
#[derive(Clone)]
pub struct ExecutionStore {
    docs: Arc<dyn DocStore>,
    /// How long an execution is kept after it was created; `None`: for ever.
    retention: Option<chrono::Duration>,
}

impl ExecutionStore {
    pub async fn open(
        docs: Arc<dyn DocStore>,
        retention: Option<std::time::Duration>,
    ) -> Result<Self, StoreError> {
        docs.ensure_collection(
            EXECUTIONS,
            &CollectionSpec {
                unique: Vec::new(),
                indexed: vec!["flowId", "tenant"],
            },
        )
        .await?;
        let retention = retention.and_then(|r| chrono::Duration::from_std(r).ok());
        Ok(Self { docs, retention })
    }

    /// Stores a new execution under its `flowExecId`; `StoreError::Duplicate` if it is taken.
    pub async fn insert(&self, execution: &Execution) -> Result<(), StoreError> {
        self.docs
            .insert(
                EXECUTIONS,
                &execution.flow_exec_id,
                to_json(execution)?,
                self.retention.map(|r| execution.created_at + r),
            )
            .await
            .map(drop)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        match self.docs.get(EXECUTIONS, id).await? {
            Some(doc) => from_json(doc.body).map(Some),
            None => Ok(None),
        }
    }

    /// At most `limit` executions of the flow, newest first.
    pub async fn of_flow(&self, flow_id: &str, limit: u64) -> Result<Vec<Execution>, StoreError> {
        let opts = FindOptions {
            sort: vec![("createdAt".into(), oih_store::SortOrder::Desc)],
            skip: 0,
            limit: Some(limit),
        };
        let docs = self
            .docs
            .find(EXECUTIONS, &Filter::eq("flowId", flow_id), &opts)
            .await?;
        docs.into_iter().map(|d| from_json(d.body)).collect()
    }

    /// Applies `change` to the execution and returns its status before and the execution
    /// after; `None` when there is no such execution.
    pub async fn modify(
        &self,
        id: &str,
        change: impl Fn(&mut Execution),
    ) -> Result<Option<(Status, Execution)>, StoreError> {
        loop {
            let Some(doc) = self.docs.get(EXECUTIONS, id).await? else {
                return Ok(None);
            };
            let mut execution: Execution = from_json(doc.body)?;
            let before = execution.status;
            change(&mut execution);
            match self
                .docs
                .update(EXECUTIONS, id, Some(doc.version), to_json(&execution)?)
                .await
            {
                Ok(_) => return Ok(Some((before, execution))),
                Err(StoreError::Conflict { .. }) => continue,
                Err(err) => return Err(err),
            }
        }
    }
}

fn to_json(execution: &Execution) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(execution).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn from_json(body: serde_json::Value) -> Result<Execution, StoreError> {
    serde_json::from_value(body).map_err(|e| StoreError::Invalid(format!("execution record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution() -> Execution {
        Execution::new("x".into(), "f".into(), None, Vec::new())
    }

    #[test]
    fn succeeds_when_every_input_ended() {
        let mut e = execution();
        e.inputs(&["a"]);
        assert_eq!(e.status, Status::Running);
        e.emitted("a");
        e.inputs(&["b", "c"]);
        e.ended("a");
        assert_eq!(e.status, Status::Running);
        assert_eq!(e.steps["a"].status, Status::Succeeded);
        e.ended("b");
        e.ended("c");
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!((e.started, e.succeeded), (3, 3));
        assert!(e.finished_at.is_some());
    }

    #[test]
    fn an_error_fails_it_even_after_the_last_end() {
        let mut e = execution();
        e.inputs(&["a"]);
        e.ended("a");
        assert_eq!(e.status, Status::Succeeded);
        e.failed("a", "boom".into());
        e.failed("a", "second".into());
        assert_eq!(e.status, Status::Failed);
        assert_eq!(e.steps["a"].status, Status::Failed);
        assert_eq!(e.error.as_ref().map(|f| f.message.as_str()), Some("boom"));
        assert_eq!(e.errors, 2);
    }

    #[test]
    fn an_error_counted_before_its_input_still_fails_the_step() {
        let mut e = execution();
        e.inputs(&["a"]);
        e.ended("a");
        e.failed("b", "boom".into());
        e.inputs(&["b"]);
        assert_eq!(e.steps["b"].status, Status::Running);
        e.ended("b");
        assert_eq!(e.steps["b"].status, Status::Failed);
        assert_eq!(e.status, Status::Failed);
    }

    #[test]
    fn a_rebound_keeps_it_running_until_the_retry_ended() {
        let mut e = execution();
        e.inputs(&["a"]);
        e.rebounded("a");
        e.ended("a");
        assert_eq!(e.status, Status::Running);
        e.ended("a");
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!((e.started, e.succeeded, e.steps["a"].inputs), (2, 2, 2));
    }

    #[test]
    fn samples_keep_the_first_message_and_note_large_ones() {
        let mut e = execution();
        e.inputs(&["a"]);
        e.sample_input("a", &serde_json::json!({"n": 1}), 100);
        e.sample_input("a", &serde_json::json!({"n": 2}), 100);
        e.sample_output("a", &serde_json::json!({"big": "x".repeat(200)}), 100);
        assert_eq!(e.steps["a"].input, Some(serde_json::json!({"n": 1})));
        assert_eq!(
            e.steps["a"].output,
            Some(serde_json::json!({"truncated": true, "bytes": 210}))
        );
        e.inputs(&["b"]);
        e.sample_input("b", &serde_json::json!(1), 0);
        assert_eq!(e.steps["b"].input, None, "capture off");
    }

    #[test]
    fn a_failed_branch_keeps_it_running_until_the_others_end() {
        let mut e = execution();
        e.inputs(&["a", "b"]);
        e.failed("a", "boom".into());
        e.ended("a");
        assert_eq!(e.steps["a"].status, Status::Failed);
        assert_eq!(e.status, Status::Running);
        assert!(e.finished_at.is_none());
        e.ended("b");
        assert_eq!(e.status, Status::Failed);
        assert!(e.finished_at.is_some());
    }
}
