//! The contract between the orchestrator and a builtin component.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::message::{Emit, StepMessage};

/// How a builtin component describes itself to the Component Repository. Serialises to the
/// shape `oih_components::BuiltinDescriptor` reads (name, title, description, triggers,
/// actions), so the lead can convert with a serde round trip.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Descriptor {
    /// `distribution.name`, stable across releases.
    pub name: &'static str,
    /// Display name, at most 50 characters (the repository's limit).
    pub title: &'static str,
    pub description: &'static str,
    pub triggers: Vec<Function>,
    pub actions: Vec<Function>,
}

/// A trigger or action (the node's `function`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Function {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// JSON Schema of the node's `fields` for this function.
    pub fields: Value,
}

/// A node's `fields` are not usable; `field` names the culprit (`url`, `routes[1].condition`,
/// or empty when the whole object is wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_config_error(.field, .message))]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

fn display_config_error(field: &str, message: &str) -> String {
    if field.is_empty() {
        format!("fields: {message}")
    } else {
        format!("field {field:?}: {message}")
    }
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Processing one message failed; the message ends in an `error` emit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Evaluating the JSONata expression of `field` failed.
    #[error("expression in field {field:?} failed: {message}")]
    Expression { field: String, message: String },
    /// The expression of `field` ran but gave something the component cannot use.
    #[error("field {field:?}: {message}")]
    Result { field: String, message: String },
    /// An outbound request could not be completed (connection, timeout, oversized answer).
    #[error("request failed: {0}")]
    Request(String),
    /// An outbound request was answered with a failure status (after any retries).
    #[error("request answered with status {status}: {body}")]
    Status { status: u16, body: String },
}

/// What a step may use besides its message: shared resources owned by the runtime.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The shared HTTP client (one connection pool for every step).
    pub http: reqwest::Client,
}

impl StepContext {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

/// A component compiled into the hub.
pub trait BuiltinComponent: Send + Sync {
    fn descriptor(&self) -> Descriptor;

    /// Checks a node's `fields` against the component's schema and compiles its expressions,
    /// once per flow start. `null` fields count as `{}` (OIH's default).
    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError>;
}

/// A prepared node: processes messages, possibly many at once.
#[async_trait]
pub trait Step: Send + Sync {
    /// Processes one message. The returned emits do not include the final `end` (see
    /// [`run_step`]).
    async fn process(&self, msg: StepMessage, ctx: &StepContext) -> Result<Vec<Emit>, StepError>;

    /// The node ids this step may route to by name ([`Emit::Routed`]); the orchestrator checks
    /// them against the flow's edges when the flow starts.
    fn targets(&self) -> Vec<&str> {
        Vec::new()
    }

    /// True when the step answers the webhook call that started the execution
    /// ([`Emit::Reply`]): such a flow's callers wait for the answer.
    fn replies(&self) -> bool {
        false
    }

    /// True when the step has no effect beyond its emits and takes no time to speak of (no
    /// I/O), so the orchestrator may run it in place of a queue hop. A crash then repeats it
    /// together with the steps before it since the last queue, which only such steps make
    /// harmless.
    fn inline(&self) -> bool {
        false
    }
}

/// Runs `step` on `msg` the way Ferryman runs a component's `process()` (runtime.md §4.5
/// step 11): its emits, then `error` if it failed, then exactly one `end`.
pub async fn run_step(step: &dyn Step, msg: StepMessage, ctx: &StepContext) -> Vec<Emit> {
    let mut emits = match step.process(msg, ctx).await {
        Ok(emits) => emits,
        Err(e) => vec![Emit::Error(e.to_string())],
    };
    emits.push(Emit::End);
    emits
}
