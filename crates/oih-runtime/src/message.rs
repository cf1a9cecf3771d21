//! The OIH step message (runtime.md §2.5/§2.6) and what a step emits.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One message as a step sees it: the OIH message body (`data`, `attachments`, `metadata`,
/// `passthrough` and, for messages that began as a webhook call, the HTTP request fields) plus
/// the AMQP headers and orchestrator-token claims that travel with it.
///
/// Serialising a `StepMessage` gives the body exactly as OIH puts it on the wire; the headers
/// are not part of the body (`#[serde(skip)]`) and are set by whoever reads the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMessage {
    /// The payload (`{}` when absent, as OIH's orchestrator does).
    #[serde(default = "empty_object")]
    pub data: Value,
    /// Attachment descriptors, keyed by name.
    #[serde(default = "empty_object")]
    pub attachments: Value,
    /// Free metadata, e.g. `source` set by the webhook and scheduler services.
    #[serde(default = "empty_object")]
    pub metadata: Value,
    /// Earlier steps' outputs, keyed by step id (Ferryman's `nodeSettings.passthrough`).
    #[serde(default = "empty_object")]
    pub passthrough: Value,
    /// Present when the execution started with a webhook call (OIH copies these fields only
    /// when the source message has a `method`).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub request: Option<WebhookRequest>,
    /// The headers the orchestrator sets (not part of the body).
    #[serde(skip)]
    pub headers: StepHeaders,
}

/// The HTTP request that started a webhook execution (runtime.md §5.3), as carried in the body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRequest {
    pub method: String,
    /// The request's HTTP headers.
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub query: Map<String, Value>,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub original_url: String,
    #[serde(default)]
    pub path_suffix: String,
}

/// The per-message headers (runtime.md §2.5, AMQP headers, and the orchestrator-token claims
/// Ferryman reads), under their wire names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepHeaders {
    /// The flow id (OIH calls it `taskId` in AMQP headers and `flowId` in the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The node id of the step this message is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    /// The id of this step run (new per step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec_id: Option<String>,
    /// The id of the flow execution this message belongs to (token claim `flowExecId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_exec_id: Option<String>,
    /// Ties together all messages caused by one trigger event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<String>,
    /// The user who started the flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The node's `function` (trigger or action name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Where a waiting webhook call expects its reply (set when the caller waits).
    #[serde(rename = "reply_to", skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl StepMessage {
    /// A message carrying `data`, everything else empty.
    pub fn new(data: Value) -> Self {
        Self {
            data,
            attachments: empty_object(),
            metadata: empty_object(),
            passthrough: empty_object(),
            request: None,
            headers: StepHeaders::default(),
        }
    }

    /// The same message (headers, metadata, attachments, passthrough) with new data.
    pub fn with_data(self, data: Value) -> Self {
        Self { data, ..self }
    }
}

/// What one step produced for one input message, in order (Ferryman's emit names, §4.6).
#[derive(Debug, Clone, PartialEq)]
pub enum Emit {
    /// `data`: go on along every outgoing edge.
    Data(StepMessage),
    /// `data` with a routing decision: go on only to these node ids (the router). The
    /// orchestrator checks them against the graph (see [`crate::Step::targets`]).
    Routed { to: Vec<String>, msg: StepMessage },
    /// `error`: processing this message failed.
    Error(String),
    /// `end`: the step is done with this message (always last, exactly once).
    End,
    /// `httpReply`: the answer to the waiting webhook call (the message's `reply_to`).
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// `snapshot`: the step's new persistent state.
    Snapshot(Value),
}
