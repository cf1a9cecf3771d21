//! `webhook`: the first step of a flow started by `/hook/{flowId}`. The webhook service has
//! already turned the HTTP call into the message (body or query as `data`, the request in
//! `method`, `headers`, …), so the step hands it on.

use serde_json::Value;

use super::{Kind, describe, no_fields, pass_through};
use crate::component::{BuiltinComponent, ConfigError, Descriptor, Function, Step};

pub(super) struct Webhook;

impl BuiltinComponent for Webhook {
    fn descriptor(&self) -> Descriptor {
        describe(
            "webhook",
            "Webhook",
            "Starts the flow when /hook/{flowId} is called; the request body (or query) is the message data",
            Kind::Trigger,
            Function {
                name: "receive",
                title: "Receive a call",
                description: "Passes the received call on",
                fields: no_fields(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        pass_through(fields)
    }
}
