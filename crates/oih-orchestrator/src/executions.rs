//! Execution records (collection `orchestrator_executions`, OIH's `flow-states`): one per
//! `flowExecId`, counting step inputs and ends the way OIH does (`started`, `succeeded`,
//! `errors`, `stepCounters`-like per-step counters), plus a status OIH lacks.
//!
//! Every change is a read-modify-write guarded by the document version, retried on conflict
//! (another orchestrator replica may update the same record). Records of running executions
//! stay in memory between changes ([`Hot`]), so a change costs one write, not a read and a
//! write: the backchannel handles an execution's messages one at a time, so in one process
//! nothing else changes the record meanwhile, and a replica that did is caught by the
//! version check. Those writes are group-committed ([`run_writer`]): the changes of many
//! executions queued at one moment go to the store in one transaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use oih_core::Owner;
use oih_store::{
    Collection, CollectionSpec, DocStore, Filter, FindOptions, NewDocument, StoreError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

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
    /// Inputs the step failed on and put into the flow's dead-letter queue.
    #[serde(default)]
    pub dead_lettered: u64,
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
    /// The flow's graph version the execution ran (absent for flows started before versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_version: Option<u64>,
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
    /// A step run in place answered that caller (steps behind a queue answer it directly,
    /// unseen here).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replied: bool,
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
            graph_version: None,
            tenant,
            owners,
            status: Status::Running,
            started: 0,
            succeeded: 0,
            errors: 0,
            error: None,
            steps: BTreeMap::new(),
            reply_to: None,
            replied: false,
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
                dead_lettered: 0,
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

    /// `step` failed on one input (and dead-lettered it); the first error is kept as the
    /// execution's.
    pub fn failed(&mut self, step: &str, message: String, dead_lettered: bool) {
        self.errors += 1;
        // The step's record is created here too, so the failure is never lost even if it is
        // counted before the step's input (OIH's separate error queue allowed that).
        let record = self.record(step, Utc::now());
        record.errors += 1;
        record.dead_lettered += u64::from(dead_lettered);
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
    let mut size = Size(0);
    let fits = serde_json::to_writer(&mut size, data).is_ok() && size.0 <= limit;
    Some(if fits {
        data.clone()
    } else {
        serde_json::json!({"truncated": true, "bytes": size.0})
    })
}

/// Counts the bytes serialised into it, without keeping them.
struct Size(usize);

impl std::io::Write for Size {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
    hot: Arc<Hot>,
    writes: mpsc::UnboundedSender<Write>,
}

/// A record write waiting for the group commit, and who waits for its outcome (the new
/// version).
struct Write {
    id: String,
    op: Op,
    body: Value,
    done: oneshot::Sender<Result<i64, StoreError>>,
}

enum Op {
    Insert { expires_at: Option<DateTime<Utc>> },
    Update { version: i64 },
}

/// Most writes committed in one transaction.
const MAX_GROUP: usize = 256;

/// Writes the queued records, all that are waiting in one transaction, until every
/// [`ExecutionStore`] is gone (so it needs no cancellation of its own: the service's
/// workers and routes hold the senders and drop them when they stop).
async fn run_writer(docs: Arc<dyn DocStore>, mut queue: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(write) => group.push(write),
                Err(_) => break,
            }
        }
        if group.len() == 1 {
            let Write { id, op, body, done } = group.pop().expect("one write");
            let outcome = match op {
                Op::Insert { expires_at } => docs.insert(EXECUTIONS, &id, body, expires_at).await,
                Op::Update { version } => docs.update(EXECUTIONS, &id, Some(version), body).await,
            };
            let _ = done.send(outcome.map(|doc| doc.version));
            continue;
        }
        match write_group(docs.as_ref(), &mut group).await {
            Ok(outcomes) => {
                for (write, outcome) in group.into_iter().zip(outcomes) {
                    let _ = write.done.send(outcome);
                }
            }
            Err(err) => {
                let why = err.to_string();
                for write in group {
                    let _ = write.done.send(Err(StoreError::Unavailable(why.clone())));
                }
            }
        }
    }
}

/// The group's writes in one transaction: each one's outcome, or the transaction's error
/// (then none was written). New records go first, all in one insert: a record is inserted
/// and then awaited before anything updates it, so none of the group's updates is for them.
async fn write_group(
    docs: &dyn DocStore,
    group: &mut [Write],
) -> Result<Vec<Result<i64, StoreError>>, StoreError> {
    let mut tx = docs.begin().await?;
    let mut outcomes: Vec<Option<Result<i64, StoreError>>> = group.iter().map(|_| None).collect();
    let (mut new, mut new_at) = (Vec::new(), Vec::new());
    for (at, write) in group.iter_mut().enumerate() {
        if let Op::Insert { expires_at } = write.op {
            new.push(NewDocument {
                id: std::mem::take(&mut write.id),
                body: std::mem::take(&mut write.body),
                expires_at,
            });
            new_at.push(at);
        }
    }
    if !new.is_empty() {
        let inserted = tx.insert_many(EXECUTIONS, new).await?;
        for (at, outcome) in new_at.into_iter().zip(inserted) {
            outcomes[at] = Some(outcome.map(|doc| doc.version));
        }
    }
    for (write, outcome) in group.iter_mut().zip(&mut outcomes) {
        if let Op::Update { version } = write.op {
            let body = std::mem::take(&mut write.body);
            let updated = tx.update(EXECUTIONS, &write.id, Some(version), body).await;
            *outcome = Some(updated.map(|doc| doc.version));
        }
    }
    tx.commit().await?;
    Ok(outcomes.into_iter().flatten().collect())
}

/// The last written state of running executions, by id, with the version it was written at.
/// Bounded: past [`HOT_LIMIT`] entries one is dropped (and read back if needed).
#[derive(Default)]
struct Hot(Mutex<HashMap<String, (i64, Execution)>>);

/// Running executions kept in memory; beyond that, changes read the record first.
const HOT_LIMIT: usize = 4_096;

impl Hot {
    fn take(&self, id: &str) -> Option<(i64, Execution)> {
        self.lock().remove(id)
    }

    fn keep(&self, version: i64, execution: Execution) {
        let mut hot = self.lock();
        if hot.len() >= HOT_LIMIT
            && let Some(evicted) = hot.keys().next().cloned()
        {
            hot.remove(&evicted);
        }
        hot.insert(execution.flow_exec_id.clone(), (version, execution));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, Execution)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(run_writer(docs.clone(), queue));
        Ok(Self {
            docs,
            retention,
            hot: Arc::default(),
            writes,
        })
    }

    /// Writes `execution` through the group commit; the new version.
    async fn write(&self, op: Op, execution: &Execution) -> Result<i64, StoreError> {
        let (done, outcome) = oneshot::channel();
        let write = Write {
            id: execution.flow_exec_id.clone(),
            op,
            body: to_json(execution)?,
            done,
        };
        let closed = || StoreError::Unavailable("the execution writer has stopped".into());
        self.writes.send(write).map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }

    /// Stores a new execution under its `flowExecId`; `StoreError::Duplicate` if it is taken.
    /// A running one stays in memory for the changes to come.
    pub async fn insert(&self, execution: &Execution) -> Result<(), StoreError> {
        let expires_at = self.retention.map(|r| execution.created_at + r);
        let version = self.write(Op::Insert { expires_at }, execution).await?;
        if execution.status == Status::Running {
            self.hot.keep(version, execution.clone());
        }
        Ok(())
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

    /// Applies `change` to the execution and returns its status before, and the execution
    /// after when it is no longer running (a running one stays in memory, uncopied); `None`
    /// when there is no such execution.
    pub async fn modify(
        &self,
        id: &str,
        change: impl Fn(&mut Execution),
    ) -> Result<Option<(Status, Option<Execution>)>, StoreError> {
        let mut cached = self.hot.take(id);
        loop {
            let (version, mut execution) = match cached.take() {
                Some(hot) => hot,
                None => match self.docs.get(EXECUTIONS, id).await? {
                    Some(doc) => (doc.version, from_json(doc.body)?),
                    None => return Ok(None),
                },
            };
            let before = execution.status;
            change(&mut execution);
            match self.write(Op::Update { version }, &execution).await {
                Ok(version) => {
                    if execution.status == Status::Running {
                        self.hot.keep(version, execution);
                        return Ok(Some((before, None)));
                    }
                    return Ok(Some((before, Some(execution))));
                }
                // Changed elsewhere (or the memory was stale): read it again.
                Err(StoreError::Conflict { .. }) => continue,
                // Deleted (retention) since it was kept in memory.
                Err(StoreError::NotFound) => return Ok(None),
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
        e.failed("a", "boom".into(), false);
        e.failed("a", "second".into(), true);
        assert_eq!(e.status, Status::Failed);
        assert_eq!(e.steps["a"].status, Status::Failed);
        assert_eq!(e.error.as_ref().map(|f| f.message.as_str()), Some("boom"));
        assert_eq!(e.errors, 2);
        assert_eq!(e.steps["a"].dead_lettered, 1);
    }

    #[test]
    fn an_error_counted_before_its_input_still_fails_the_step() {
        let mut e = execution();
        e.inputs(&["a"]);
        e.ended("a");
        e.failed("b", "boom".into(), false);
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
        e.failed("a", "boom".into(), false);
        e.ended("a");
        assert_eq!(e.steps["a"].status, Status::Failed);
        assert_eq!(e.status, Status::Running);
        assert!(e.finished_at.is_none());
        e.ended("b");
        assert_eq!(e.status, Status::Failed);
        assert!(e.finished_at.is_some());
    }
}
