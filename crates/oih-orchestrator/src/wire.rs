//! What travels on the data plane: step-input messages (runtime.md §2.5) and the headers the
//! steps answer with (§2.6), between AMQP header tables and the runtime's [`StepMessage`].

use oih_bus::{Headers, Message};
use oih_core::ObjectId;
use oih_runtime::{StepHeaders, StepMessage};
use serde_json::Value;

/// Header naming the node ids a routed data message may go to (a router's decision); absent
/// means "every outgoing edge".
pub const ROUTE_TO: &str = "x-oih-route-to";
/// Header of a step's error message when the step put the failed input into the flow's
/// dead-letter queue (builtin steps do, for every input they fail on).
pub const DEAD_LETTERED: &str = "x-oih-dead-lettered";
/// The JWT header of step inputs that Ferryman requires (runtime.md §2.5).
pub const ORCHESTRATOR_TOKEN: &str = "orchestratorToken";
/// Ferryman's protocol version header, on data and end messages.
pub const PROTOCOL_VERSION: &str = "protocolVersion";

/// A fresh id for a step run, an execution or a message.
pub fn new_id() -> String {
    ObjectId::new().to_string()
}

/// The step headers as an AMQP header table (absent ones left out).
pub fn to_headers(headers: &StepHeaders) -> Headers {
    match serde_json::to_value(headers) {
        Ok(Value::Object(map)) => map.into_iter().collect(),
        _ => Headers::new(),
    }
}

/// The step headers found in an AMQP header table; others are ignored.
pub fn from_headers(headers: &Headers) -> StepHeaders {
    let strings = headers
        .iter()
        .filter(|(_, v)| v.is_string())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(strings)).unwrap_or_default()
}

/// Reads an OIH message body (a source message from `flow.execute`, or a step's output). As
/// OIH does, the webhook request fields are kept only when there is a `method`.
pub fn parse_body(body: Value) -> Result<StepMessage, serde_json::Error> {
    let mut msg: StepMessage = serde_json::from_value(body)?;
    if msg.request.as_ref().is_some_and(|r| r.method.is_empty()) {
        msg.request = None;
    }
    Ok(msg)
}

/// The message the orchestrator publishes to a step's input queue.
pub fn step_input(msg: &StepMessage, headers: &StepHeaders) -> Result<Message, serde_json::Error> {
    let mut message = Message::new(serde_json::to_vec(msg)?);
    message.properties.content_type = Some("text/json".into());
    message.properties.headers = to_headers(headers);
    Ok(message)
}
