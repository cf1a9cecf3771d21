//! Builtin steps run in place ([`oih_runtime::Step::inline`]): where the graph hands a message
//! to such a step, the dataflow runs the step right there instead of publishing to the step's
//! queue and reading its answers back from the backchannel. A flow made of such steps costs
//! one bus message (`flow.execute`) and one record write per execution, where each queued step
//! costs two bus hops and a record write.
//!
//! The steps' inputs, data, errors and ends are counted as for queued steps, into a [`Ledger`]
//! that is stored in one write. The invariant that keeps an execution from looking finished
//! too early holds across both kinds of step: whatever the ledger counted is stored before
//! any message of the execution goes to a queue (whose step may answer at once).
//!
//! A crash while inline steps run loses nothing: the message that started them (`flow.execute`
//! or a queued step's data) is acknowledged only after they ran, so it is delivered again and
//! they run again, which is harmless for steps without effects beyond their emits.

use oih_runtime::{Emit, StepHeaders, StepMessage};
use serde_json::Value;

use crate::dataflow::{Answers, Dataflow, DataflowError, ToCaller, caller_note, routed_targets};
use crate::driver::{reply_message, snapshot_message};
use crate::executions::{Execution, Status};
use crate::lifecycle::RunningFlow;
use crate::topology::{BACKCHANNEL, COLLECTOR, FlowNames};
use crate::wire;

/// What happened to an execution since its record was last stored.
pub(crate) struct Ledger {
    state: State,
    /// Largest input/output sample kept per step (0: none).
    capture_bytes: usize,
    /// Answers for a waiting caller in this process, handed over only once the steps ran and
    /// what they did is stored: nothing would run them again after a crash, so a caller told
    /// the outcome must find the execution recorded and the work after the reply queued.
    /// Over the bus, a reply goes at once (the message that started the steps is
    /// acknowledged only after they ran); only the outcome note waits here.
    to_callers: Vec<ToCaller>,
    /// Where they go.
    answers: Answers,
    /// A new execution that ended in place, stored and still to be announced.
    ended: Option<Box<Execution>>,
    /// Whether a step run in place took a snapshot.
    snapshotted: bool,
}

enum State {
    /// A new execution, not stored yet: changed in place and stored once.
    New(Box<Execution>),
    /// A stored execution that other messages may change meanwhile: the changes are applied
    /// to the stored record in one go.
    Stored { id: String, changes: Vec<Change> },
}

enum Change {
    Inputs(Vec<String>),
    Emitted(String),
    Ended(String),
    Failed(String, String),
    SampleIn(String, Value),
    SampleOut(String, Value),
    Replied,
}

impl Change {
    fn apply(&self, execution: &mut Execution, capture_bytes: usize) {
        match self {
            Self::Inputs(steps) => {
                let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
                execution.inputs(&steps);
            }
            Self::Emitted(step) => execution.emitted(step),
            Self::Ended(step) => execution.ended(step),
            Self::Failed(step, message) => execution.failed(step, message.clone(), true),
            Self::SampleIn(step, data) => execution.sample_input(step, data, capture_bytes),
            Self::SampleOut(step, data) => execution.sample_output(step, data, capture_bytes),
            Self::Replied => execution.replied = true,
        }
    }
}

impl Ledger {
    /// A new execution, stored at the first [`Dataflow::flush`].
    pub(crate) fn new(execution: Execution, capture_bytes: usize, answers: Answers) -> Self {
        Self {
            state: State::New(Box::new(execution)),
            capture_bytes,
            to_callers: Vec::new(),
            answers,
            ended: None,
            snapshotted: false,
        }
    }

    /// An execution already stored.
    pub(crate) fn stored(id: &str, capture_bytes: usize) -> Self {
        Self {
            state: State::Stored {
                id: id.to_owned(),
                changes: Vec::new(),
            },
            capture_bytes,
            to_callers: Vec::new(),
            answers: Answers::OverTheBus,
            ended: None,
            snapshotted: false,
        }
    }

    pub(crate) fn id(&self) -> &str {
        match &self.state {
            State::New(execution) => &execution.flow_exec_id,
            State::Stored { id, .. } => id,
        }
    }

    fn change(&mut self, change: Change) {
        match &mut self.state {
            State::New(execution) => change.apply(execution, self.capture_bytes),
            State::Stored { changes, .. } => changes.push(change),
        }
    }

    /// Inputs handed to `steps`, with `data` as their sample.
    pub(crate) fn inputs(&mut self, steps: &[String], data: &Value) {
        if steps.is_empty() {
            return;
        }
        self.change(Change::Inputs(steps.to_vec()));
        for step in steps {
            self.sample(Side::In, step, data);
        }
    }

    /// `step` emitted `data`.
    pub(crate) fn emitted(&mut self, step: &str, data: &Value) {
        self.change(Change::Emitted(step.to_owned()));
        self.sample(Side::Out, step, data);
    }

    /// Keeps `data` as the step's input or output sample. A new execution takes it from the
    /// borrowed data, so nothing is copied that the record already has.
    fn sample(&mut self, side: Side, step: &str, data: &Value) {
        let limit = self.capture_bytes;
        if limit == 0 {
            return;
        }
        match (&mut self.state, side) {
            (State::New(execution), Side::In) => execution.sample_input(step, data, limit),
            (State::New(execution), Side::Out) => execution.sample_output(step, data, limit),
            (State::Stored { changes, .. }, Side::In) => {
                changes.push(Change::SampleIn(step.to_owned(), data.clone()));
            }
            (State::Stored { changes, .. }, Side::Out) => {
                changes.push(Change::SampleOut(step.to_owned(), data.clone()));
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Side {
    In,
    Out,
}

impl Dataflow {
    /// Hands `msg` to `targets` (their inputs already counted in `ledger`) and runs whatever
    /// reaches inline steps, until only queued steps have work left; then stores the ledger,
    /// answers the waiting caller, and announces the execution's end if it ended here.
    pub(crate) async fn forward(
        &self,
        running: &RunningFlow,
        ledger: &mut Ledger,
        targets: Vec<String>,
        thread_id: Option<String>,
        msg: StepMessage,
    ) -> Result<(), DataflowError> {
        let mut work = Vec::new();
        self.hand_over(running, ledger, targets, thread_id, msg, &mut work)
            .await?;
        while let Some((step, thread_id, msg)) = work.pop() {
            self.run_inline(running, ledger, &step, thread_id, msg, &mut work)
                .await?;
        }
        self.flush(ledger).await?;
        let ended = ledger.ended.take();
        if let Some(note) = ended.as_deref().and_then(caller_note) {
            ledger.to_callers.push(note);
        }
        let to_callers = std::mem::take(&mut ledger.to_callers);
        match &mut ledger.answers {
            Answers::OverTheBus => self.send_to_callers(to_callers).await?,
            Answers::Here(caller) => {
                if let Some(caller) = caller.take() {
                    let _ = caller.send(to_callers);
                }
            }
        }
        // After the answers: the event is for observers, the caller need not wait for it. An
        // execution that began and ended here never reached a queued step, so its only
        // snapshots are those its steps took here.
        if let Some(ended) = ended {
            self.publish_finished(&ended, ledger.snapshotted).await?;
        }
        Ok(())
    }

    /// Publishes `msg` to the queued ones of `targets` (after storing the ledger) and puts
    /// the inline ones on the `work` list.
    async fn hand_over(
        &self,
        running: &RunningFlow,
        ledger: &mut Ledger,
        targets: Vec<String>,
        thread_id: Option<String>,
        msg: StepMessage,
        work: &mut Vec<Work>,
    ) -> Result<(), DataflowError> {
        let (mut inline, queued): (Vec<String>, Vec<String>) = targets
            .into_iter()
            .partition(|step| running.inline.contains_key(step));
        if !queued.is_empty() {
            self.flush(ledger).await?;
            let queued: Vec<&str> = queued.iter().map(String::as_str).collect();
            self.publish_inputs(running, &queued, ledger.id(), thread_id.clone(), &msg)
                .await?;
        }
        // Reversed, so that the first target's work is taken first. It is pushed last and
        // takes the message itself; the others get a copy each.
        let first = (!inline.is_empty()).then(|| inline.remove(0));
        for step in inline.into_iter().rev() {
            work.push((step, thread_id.clone(), msg.clone()));
        }
        if let Some(step) = first {
            work.push((step, thread_id, msg));
        }
        Ok(())
    }

    /// Runs one inline step on one input and deals with its emits as the backchannel would.
    async fn run_inline(
        &self,
        running: &RunningFlow,
        ledger: &mut Ledger,
        step: &str,
        thread_id: Option<String>,
        mut input: StepMessage,
        work: &mut Vec<Work>,
    ) -> Result<(), DataflowError> {
        let Some(inline) = running.inline.get(step) else {
            return Ok(());
        };
        let reply_to = input.headers.reply_to.take();
        input.headers = self.headers_for(running, step, ledger.id(), thread_id, reply_to);
        let headers = input.headers.clone();
        // Kept for the dead-letter queue, should the step fail on it.
        let kept = input.clone();
        let answer = StepHeaders {
            thread_id: headers.thread_id.clone().or_else(|| Some(wire::new_id())),
            parent_message_id: headers.message_id.clone(),
            message_id: None,
            ..headers.clone()
        };
        for emit in inline.run(input).await {
            match emit {
                Emit::Data(out) => {
                    self.emitted(running, ledger, step, &answer, None, out, work)
                        .await?;
                }
                Emit::Routed { to, msg } => {
                    self.emitted(running, ledger, step, &answer, Some(to), msg, work)
                        .await?;
                }
                Emit::Error(text) => {
                    tracing::info!(step, execution = ledger.id(), message = %text, "step error");
                    ledger.change(Change::Failed(step.to_owned(), text));
                    let names = FlowNames::new(&running.flow.id);
                    let message = wire::step_input(&kept, &headers)
                        .map_err(|e| DataflowError::Malformed(e.to_string()))?;
                    self.bus
                        .publish(&names.exchange, &names.key(step, "deadletter"), message)
                        .await?;
                }
                Emit::End => ledger.change(Change::Ended(step.to_owned())),
                Emit::Reply {
                    status,
                    headers: reply_headers,
                    body,
                } => match &headers.reply_to {
                    Some(reply_to) => {
                        let message = reply_message(&answer, status, reply_headers, body);
                        match ledger.answers {
                            // At once: should the process stop before the record is stored,
                            // the message that started the steps runs them again.
                            Answers::OverTheBus => {
                                self.bus.publish(BACKCHANNEL, reply_to, message).await?;
                            }
                            Answers::Here(_) => ledger.to_callers.push((reply_to.clone(), message)),
                        }
                        ledger.change(Change::Replied);
                    }
                    None => tracing::warn!(step, "httpReply without reply_to dropped"),
                },
                Emit::Snapshot(state) => {
                    ledger.snapshotted = true;
                    let message = snapshot_message(&answer, &state);
                    self.bus
                        .publish(COLLECTOR, inline.snapshot_key(), message)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// `step` emitted `out` (to the targets named in `to`, or all): counted, then handed on.
    #[allow(clippy::too_many_arguments)]
    async fn emitted(
        &self,
        running: &RunningFlow,
        ledger: &mut Ledger,
        step: &str,
        answer: &StepHeaders,
        to: Option<Vec<String>>,
        mut out: StepMessage,
        work: &mut Vec<Work>,
    ) -> Result<(), DataflowError> {
        out.headers.reply_to.clone_from(&answer.reply_to);
        let route = to.map(Value::from);
        let targets: Vec<String> = routed_targets(running, step, route.as_ref())
            .into_iter()
            .map(str::to_owned)
            .collect();
        ledger.emitted(step, &out.data);
        ledger.inputs(&targets, &out.data);
        self.hand_over(
            running,
            ledger,
            targets,
            answer.thread_id.clone(),
            out,
            work,
        )
        .await
    }

    /// Stores what the ledger counted. A new execution that this ended is kept in the ledger,
    /// to be announced; a stored one is announced at once.
    async fn flush(&self, ledger: &mut Ledger) -> Result<(), DataflowError> {
        let capture_bytes = ledger.capture_bytes;
        match &mut ledger.state {
            State::New(execution) => {
                self.store_new(execution).await?;
                let done = execution.status != Status::Running;
                let stored = Ledger::stored(&execution.flow_exec_id, capture_bytes);
                let State::New(execution) = std::mem::replace(&mut ledger.state, stored.state)
                else {
                    unreachable!("the state was New");
                };
                if done {
                    ledger.ended = Some(execution);
                }
            }
            State::Stored { id, changes } if !changes.is_empty() => {
                let changes = std::mem::take(changes);
                let id = id.clone();
                self.count(&id, |e| {
                    for change in &changes {
                        change.apply(e, capture_bytes);
                    }
                })
                .await?;
            }
            State::Stored { .. } => {}
        }
        Ok(())
    }

    /// Inserts a new execution. OIH drops an execution whose external id was used before;
    /// here it gets a fresh id instead.
    async fn store_new(&self, execution: &mut Execution) -> Result<(), DataflowError> {
        loop {
            match self.executions.insert(execution).await {
                Ok(()) => return Ok(()),
                Err(oih_store::StoreError::Duplicate(_)) => {
                    execution.flow_exec_id = wire::new_id();
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// An inline step's input waiting to be run: the step, the thread, the message.
type Work = (String, Option<String>, StepMessage);
