//! Moving data along the graph (runtime.md §3.5–§3.7): `flow.execute` creates the execution
//! and feeds the first step(s); the backchannel consumer forwards each step's data to the
//! targets of its outgoing edges and counts inputs, ends and errors on the execution.
//!
//! The messages of one execution must be handled one at a time, in queue order: a step's data
//! is forwarded (and its targets counted) before its `end` is counted, which is what keeps an
//! execution from looking finished while messages are still under way. Different executions
//! are independent, so the backchannel is consumed in lanes keyed by execution
//! ([`Dataflow::lane_of`], [`crate::events::run_backchannel`]).

use oih_bus::{BusError, Delivery, EventBus, Message, MessageBus};
use oih_core::Event;
use oih_http::step_token::StepTokens;
use oih_runtime::{StepHeaders, StepMessage};
use oih_store::StoreError;
use serde_json::{Value, json};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::executions::{Execution, ExecutionStore, Status};
use crate::inline::Ledger;
use crate::lifecycle::{Registry, RunningFlow};
use crate::token;
use crate::topology::{BACKCHANNEL, ERROR_KEY, FlowNames, OUTPUT_KEY, STATE_KEY};
use crate::wire::{self, ROUTE_TO};

#[derive(Debug, thiserror::Error)]
pub enum DataflowError {
    /// The message can never be handled.
    #[error("malformed: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The step token could not be signed (a bad key: retrying will not help).
    #[error("step token: {0}")]
    Token(String),
    /// The task running an execution in process panicked or was cancelled.
    #[error("execution stopped: {0}")]
    Aborted(String),
}

/// How long the end of an execution that a Ferryman step ended waits for that step's error.
const LATE_ERROR_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// A message for a waiting webhook caller: its `reply_to` routing key, and the message.
pub type ToCaller = (String, Message);

/// Published when an execution has ended (every input ended): `{flowExecId, flowId, status,
/// error, tenant, mayHaveSnapshots}`.
pub const EXECUTION_FINISHED: &str = "flow.execution.finished";

#[derive(Clone)]
pub struct Dataflow {
    pub bus: Arc<dyn MessageBus>,
    pub events: EventBus,
    pub registry: Registry,
    pub executions: ExecutionStore,
    /// Signs the `orchestratorToken` of steps that need one.
    pub tokens: Arc<StepTokens>,
    /// Largest input/output sample kept per step (0: none).
    pub capture_bytes: usize,
    /// The snapshots service of this process, if any (see `Deps::snapshots`).
    pub snapshots: Option<Arc<dyn crate::FinishedExecutions>>,
}

impl Dataflow {
    /// `flow.execute` `{flow, msg, msgOpts?}` from the bus (webhooks, scheduler). A flow this
    /// process does not run is ignored, as in OIH.
    pub async fn execute(&self, mut payload: Value) -> Result<(), DataflowError> {
        let flow_id = flow_id(&payload)?;
        let Some(running) = self.registry.get(flow_id) else {
            tracing::info!(flow = flow_id, "flow.execute for a flow not running here");
            return Ok(());
        };
        // `msgOpts` are the first input's AMQP options; a waiting caller's `reply_to` is there.
        let reply_to = payload
            .pointer("/msgOpts/headers/reply_to")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let msg = payload
            .get_mut("msg")
            .map_or_else(|| Value::Object(Default::default()), Value::take);
        self.start(&running, msg, reply_to, Answers::OverTheBus)
            .await
    }

    /// Starts an execution of `running` with `msg` (`flow.execute`'s) and runs it as far as
    /// its steps run in place (until only queued steps have work). `reply_to` names where a
    /// waiting webhook caller expects its answer; what those steps send there goes as
    /// `answers` says, once what they did is stored.
    pub(crate) async fn start(
        &self,
        running: &RunningFlow,
        msg: Value,
        reply_to: Option<String>,
        answers: Answers,
    ) -> Result<(), DataflowError> {
        let mut msg = wire::parse_body(msg)
            .map_err(|e| DataflowError::Malformed(format!("payload.msg: {e}")))?;
        msg.headers.reply_to = reply_to;
        let first: Vec<String> = running
            .flow
            .graph
            .first_nodes()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let external = msg
            .metadata
            .pointer("/source/externalExecId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        // OIH drops an execution whose external id was used before; here it gets a fresh id
        // when it is stored (before any queued step sees it).
        let id = external.map_or_else(wire::new_id, str::to_owned);
        let flow = &running.flow;
        let mut execution = Execution::new(
            id,
            flow.id.clone(),
            flow.tenant.clone(),
            flow.owners.clone(),
        );
        execution.graph_version = flow.graph_version;
        execution.reply_to.clone_from(&msg.headers.reply_to);
        let mut ledger = Ledger::new(execution, self.capture_bytes, answers);
        ledger.inputs(&first, &msg.data);
        self.forward(running, &mut ledger, first, None, msg).await
    }

    /// Publishes messages for waiting webhook callers to the backchannel, where their
    /// webhooks instance reads them.
    pub(crate) async fn send_to_callers(
        &self,
        to_callers: Vec<ToCaller>,
    ) -> Result<(), DataflowError> {
        for (reply_to, message) in to_callers {
            self.bus.publish(BACKCHANNEL, &reply_to, message).await?;
        }
        Ok(())
    }

    /// Publishes `msg` as the input of each of `steps`, in one confirm round.
    pub(crate) async fn publish_inputs(
        &self,
        running: &RunningFlow,
        steps: &[&str],
        flow_exec_id: &str,
        thread_id: Option<String>,
        msg: &StepMessage,
    ) -> Result<(), DataflowError> {
        if steps.is_empty() {
            return Ok(());
        }
        let names = FlowNames::new(&running.flow.id);
        let inputs = steps
            .iter()
            .map(|step| {
                let message = self.input(running, step, flow_exec_id, thread_id.clone(), msg)?;
                Ok((names.key(step, "input"), message))
            })
            .collect::<Result<Vec<_>, DataflowError>>()?;
        self.bus.publish_batch(&names.exchange, inputs).await?;
        Ok(())
    }

    /// One step's input message: OIH's step headers, and the `orchestratorToken` for steps
    /// that need one.
    fn input(
        &self,
        running: &RunningFlow,
        step: &str,
        flow_exec_id: &str,
        thread_id: Option<String>,
        msg: &StepMessage,
    ) -> Result<Message, DataflowError> {
        let flow = &running.flow;
        let reply_to = msg.headers.reply_to.clone();
        let headers = self.headers_for(running, step, flow_exec_id, thread_id, reply_to);
        let mut message =
            wire::step_input(msg, &headers).map_err(|e| DataflowError::Malformed(e.to_string()))?;
        if running.token_steps.iter().any(|s| s == step)
            && let Some(node) = flow.graph.node(step)
        {
            let token = token::orchestrator_token(&self.tokens, flow, node, flow_exec_id)
                .map_err(|e| DataflowError::Token(e.to_string()))?;
            message = message.with_header(wire::ORCHESTRATOR_TOKEN, token);
        }
        Ok(message)
    }

    /// OIH's headers of an input to `step`.
    pub(crate) fn headers_for(
        &self,
        running: &RunningFlow,
        step: &str,
        flow_exec_id: &str,
        thread_id: Option<String>,
        reply_to: Option<String>,
    ) -> StepHeaders {
        let flow = &running.flow;
        StepHeaders {
            task_id: Some(flow.id.clone()),
            step_id: Some(step.to_owned()),
            exec_id: Some(wire::new_id()),
            flow_exec_id: Some(flow_exec_id.to_owned()),
            thread_id,
            message_id: Some(wire::new_id()),
            parent_message_id: None,
            user_id: flow.started_by.clone(),
            tenant: flow.tenant.clone(),
            function: flow.graph.node(step).map(|n| n.function.clone()),
            reply_to,
        }
    }

    /// A message on `orchestrator_backchannel:messages`: a step's data, error or end.
    pub async fn on_message(&self, delivery: &Delivery) -> Result<(), DataflowError> {
        let headers = self.step_headers(delivery);
        let (flow_id, step, exec) = ids(&headers)?;
        match delivery.routing_key.as_str() {
            ERROR_KEY => {
                let message = error_message(delivery.body());
                let dead_lettered =
                    delivery.headers().get(wire::DEAD_LETTERED) == Some(&json!(true));
                tracing::info!(step, execution = exec, %message, dead_lettered, "step error");
                self.count(exec, |e| e.failed(step, message.clone(), dead_lettered))
                    .await?;
            }
            STATE_KEY => {
                // Ferryman publishes a failed input's `end` before its error (the error goes
                // through a rate limiter), so an execution that such a step ends is announced
                // a moment later, once the error had its chance to count.
                let late_errors = self
                    .registry
                    .get(flow_id)
                    .is_some_and(|running| running.token_steps.iter().any(|s| s == step));
                self.count_then(exec, late_errors, |e| e.ended(step))
                    .await?;
            }
            OUTPUT_KEY => {
                let Some(running) = self.registry.get(flow_id) else {
                    tracing::info!(
                        flow = flow_id,
                        step,
                        "data for a flow not running here dropped"
                    );
                    return Ok(());
                };
                let body: Value = serde_json::from_slice(delivery.body())
                    .map_err(|e| DataflowError::Malformed(format!("body: {e}")))?;
                let mut msg = wire::parse_body(body)
                    .map_err(|e| DataflowError::Malformed(format!("body: {e}")))?;
                msg.headers.reply_to = headers.reply_to.clone();
                let targets: Vec<String> =
                    routed_targets(&running, step, delivery.headers().get(ROUTE_TO))
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                let mut ledger = Ledger::stored(exec, self.capture_bytes);
                ledger.emitted(step, &msg.data);
                ledger.inputs(&targets, &msg.data);
                let thread_id = headers.thread_id.clone();
                self.forward(&running, &mut ledger, targets, thread_id, msg)
                    .await?;
            }
            key if is_rebound(key) => {
                tracing::info!(step, execution = exec, "step input rebounded");
                self.count(exec, |e| e.rebounded(step)).await?;
            }
            other => tracing::info!(routing_key = other, "backchannel message ignored"),
        }
        Ok(())
    }

    /// The backchannel lane of a message: a hash of its execution id, the same for every
    /// message of one execution. Builtin steps send the id as a header; only Ferryman's
    /// messages need their `orchestratorToken` read for it.
    pub fn lane_of(&self, delivery: &Delivery) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        match delivery.headers().get("flowExecId").and_then(Value::as_str) {
            Some(id) => Some(id).hash(&mut hasher),
            None => self
                .step_headers(delivery)
                .flow_exec_id
                .as_deref()
                .hash(&mut hasher),
        }
        hasher.finish()
    }

    /// The step headers of a backchannel message. Ferryman does not send `flowExecId` back
    /// (nor `taskId` and `stepId` on every message): it echoes the input's
    /// `orchestratorToken`, whose claims fill in what is missing, as OIH reads them.
    fn step_headers(&self, delivery: &Delivery) -> StepHeaders {
        let mut headers = wire::from_headers(delivery.headers());
        let claims = delivery
            .headers()
            .get(wire::ORCHESTRATOR_TOKEN)
            .and_then(Value::as_str)
            .and_then(|token| self.tokens.read_orchestrator_token(token));
        if let Some(claims) = claims {
            let claim = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
            headers.task_id = headers.task_id.or_else(|| claim("flowId"));
            headers.step_id = headers.step_id.or_else(|| claim("stepId"));
            headers.flow_exec_id = headers.flow_exec_id.or_else(|| claim("flowExecId"));
        }
        headers
    }

    pub(crate) async fn count(
        &self,
        exec: &str,
        change: impl Fn(&mut Execution),
    ) -> Result<(), DataflowError> {
        self.count_then(exec, false, change).await
    }

    /// Applies `change`; when it ends the execution, announces that, at once or (with
    /// `announce_later`) after [`LATE_ERROR_GRACE`], with the execution's status then.
    async fn count_then(
        &self,
        exec: &str,
        announce_later: bool,
        change: impl Fn(&mut Execution),
    ) -> Result<(), DataflowError> {
        match self.executions.modify(exec, change).await? {
            None => tracing::info!(
                execution = exec,
                "backchannel message for an unknown execution"
            ),
            Some((Status::Running, Some(ended))) => {
                if announce_later {
                    self.announce_later(ended.flow_exec_id);
                } else {
                    self.announce(&ended).await?;
                }
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Announces the execution after [`LATE_ERROR_GRACE`]. Not tied to shutdown: it is short,
    /// and an announcement lost with the process only leaves a waiting caller to its timeout.
    fn announce_later(&self, exec: String) {
        let dataflow = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LATE_ERROR_GRACE).await;
            let announced = match dataflow.executions.get(&exec).await {
                Ok(Some(execution)) => dataflow.announce(&execution).await,
                Ok(None) => Ok(()),
                Err(err) => Err(err.into()),
            };
            if let Err(err) = announced {
                tracing::warn!(execution = %exec, error = %err, "execution end not announced");
            }
        });
    }

    /// Announces an execution's end: to a caller that may still wait for a reply, the
    /// outcome, so that it is answered now rather than at its timeout when no step replied;
    /// and `flow.execution.finished` on the event bus (snapshots are purged on it).
    async fn announce(&self, execution: &Execution) -> Result<(), DataflowError> {
        self.send_to_callers(caller_note(execution).into_iter().collect())
            .await?;
        // Queued steps (Ferryman's among them) send their snapshots to the service directly.
        self.publish_finished(execution, true).await
    }

    /// Publishes `flow.execution.finished`: `{flowExecId, flowId, status, error, tenant,
    /// mayHaveSnapshots}`. The Snapshots service skips the purge of an execution known to
    /// have none; when it runs in this process it is not bound to the event and purges here.
    pub(crate) async fn publish_finished(
        &self,
        execution: &Execution,
        may_have_snapshots: bool,
    ) -> Result<(), DataflowError> {
        if may_have_snapshots && let Some(snapshots) = &self.snapshots {
            let exec = execution.flow_exec_id.as_str();
            // A purge that failed leaves the snapshots until the flow is deleted; the
            // execution itself is done, so that is no reason to fail it.
            if let Err(err) = snapshots.purge(exec).await {
                tracing::warn!(execution = exec, error = %err, "snapshots not purged");
            }
        }
        let mut event = outcome(execution);
        event["tenant"] = json!(execution.tenant);
        event["mayHaveSnapshots"] = json!(may_have_snapshots);
        self.events
            .publish(Event::new(EXECUTION_FINISHED, event))
            .await?;
        Ok(())
    }
}

/// Where the answers for a waiting webhook caller go.
pub(crate) enum Answers {
    /// To the backchannel, where the caller's webhooks instance reads them.
    OverTheBus,
    /// To the caller in this process, all at once (none is sent again).
    Here(Option<tokio::sync::oneshot::Sender<Vec<ToCaller>>>),
}

/// What the caller still waiting for a reply is told when the execution ended without one.
pub(crate) fn caller_note(execution: &Execution) -> Option<ToCaller> {
    let reply_to = execution.reply_to.as_ref().filter(|_| !execution.replied)?;
    let note = Message::json(&json!({ "executionFinished": outcome(execution) }));
    Some((reply_to.clone(), note))
}

fn outcome(execution: &Execution) -> Value {
    json!({
        "flowExecId": execution.flow_exec_id,
        "flowId": execution.flow_id,
        "status": serde_json::to_value(execution.status).unwrap_or(Value::Null),
        "error": execution.error,
    })
}

/// The id of `flow.execute`'s flow.
pub(crate) fn flow_id(payload: &Value) -> Result<&str, DataflowError> {
    let flow = payload.get("flow").unwrap_or(&Value::Null);
    ["_id", "id"]
        .iter()
        .find_map(|k| flow.get(k).and_then(Value::as_str))
        .ok_or_else(|| DataflowError::Malformed("payload.flow has no id".into()))
}

/// A step's rebound as the flow exchange routes it: `flow-<flowId>.<stepId>.rebound`.
fn is_rebound(routing_key: &str) -> bool {
    routing_key.starts_with("flow-") && routing_key.ends_with(".rebound")
}

fn ids(headers: &StepHeaders) -> Result<(&str, &str, &str), DataflowError> {
    match (&headers.task_id, &headers.step_id, &headers.flow_exec_id) {
        (Some(flow), Some(step), Some(exec)) => Ok((flow, step, exec)),
        _ => Err(DataflowError::Malformed(
            "taskId, stepId and flowExecId headers are required".into(),
        )),
    }
}

/// The targets of the step's outgoing edges; a routed message goes only to those it names.
pub(crate) fn routed_targets<'a>(
    running: &'a RunningFlow,
    step: &str,
    route: Option<&Value>,
) -> Vec<&'a str> {
    let targets = running.flow.graph.targets_of(step);
    match route.and_then(Value::as_array) {
        Some(names) => targets
            .into_iter()
            .filter(|t| names.iter().any(|n| n.as_str() == Some(t)))
            .collect(),
        None => targets,
    }
}

/// The text of an error message body: Ferryman's `{"error": "<JSON of {name, message}>"}`,
/// read tolerantly.
fn error_message(body: &[u8]) -> String {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = match body.get("error") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Some(other) => other.clone(),
        None => body,
    };
    match error.get("message").and_then(Value::as_str) {
        Some(message) => message.to_owned(),
        None => error
            .as_str()
            .map_or_else(|| error.to_string(), str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn error_messages_are_read_from_ferrymans_shape() {
        let ferryman =
            br#"{"error": "{\"name\":\"Error\",\"message\":\"boom\"}", "errorInput": "{}"}"#;
        assert_eq!(error_message(ferryman), "boom");
        assert_eq!(error_message(br#"{"error": "plain"}"#), "plain");
        assert_eq!(error_message(b"not json"), "null");
    }
}
