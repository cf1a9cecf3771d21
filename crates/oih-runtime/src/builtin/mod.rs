//! The builtin components (runtime issue item 5), one module each, and their catalogue.

mod filter;
mod http_request;
mod jsonata;
mod log;
mod noop;
mod router;
mod scheduler;
mod splitter;
mod webhook;
mod webhook_reply;

use async_trait::async_trait;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use crate::component::{
    BuiltinComponent, ConfigError, Descriptor, Function, Step, StepContext, StepError,
};
use crate::message::{Emit, StepMessage};
use crate::schema;

/// Every builtin component, looked up by `distribution.name`.
pub struct Catalogue {
    components: Vec<Box<dyn BuiltinComponent>>,
}

impl Catalogue {
    /// The component whose descriptor is named `name`.
    pub fn get(&self, name: &str) -> Option<&dyn BuiltinComponent> {
        self.components
            .iter()
            .find(|c| c.descriptor().name == name)
            .map(AsRef::as_ref)
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn BuiltinComponent> {
        self.components.iter().map(AsRef::as_ref)
    }

    /// What the Component Repository lists.
    pub fn descriptors(&self) -> Vec<Descriptor> {
        self.iter().map(|c| c.descriptor()).collect()
    }
}

/// All ten builtin components.
pub fn catalogue() -> Catalogue {
    Catalogue {
        components: vec![
            Box::new(webhook::Webhook),
            Box::new(scheduler::Scheduler),
            Box::new(http_request::HttpRequest),
            Box::new(jsonata::Jsonata),
            Box::new(filter::Filter),
            Box::new(router::Router),
            Box::new(splitter::Splitter),
            Box::new(webhook_reply::WebhookReply),
            Box::new(log::Log),
            Box::new(noop::Noop),
        ],
    }
}

/// Whether a component's single function is a trigger (first step) or an action.
enum Kind {
    Trigger,
    Action,
}

/// A component with one function, which is how every builtin is built.
fn describe(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    kind: Kind,
    function: Function,
) -> Descriptor {
    let (triggers, actions) = match kind {
        Kind::Trigger => (vec![function], Vec::new()),
        Kind::Action => (Vec::new(), vec![function]),
    };
    Descriptor {
        name,
        title,
        description,
        triggers,
        actions,
    }
}

/// The schema of a `fields` object: these properties, nothing else (a misspelt field is
/// reported instead of silently ignored).
fn fields_schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The schema of a field holding a JSONata expression.
fn expression_schema(description: &str) -> Value {
    json!({"type": "string", "minLength": 1, "description": description})
}

/// The schema of a `headers` field: header name → JSONata expression.
fn headers_schema(description: &str) -> Value {
    json!({
        "type": "object",
        "additionalProperties": {"type": "string", "minLength": 1},
        "description": description,
    })
}

/// The schema of a component without fields.
fn no_fields() -> Value {
    fields_schema(json!({}), &[])
}

/// Prepares a component without fields that hands messages on unchanged.
fn pass_through(fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
    schema::parse::<IgnoredAny>(&no_fields(), fields)?;
    Ok(Box::new(PassThrough))
}

/// Hands the message on unchanged: the two triggers (their services already built the
/// message) and `noop`.
struct PassThrough;

#[async_trait]
impl Step for PassThrough {
    fn inline(&self) -> bool {
        true
    }

    async fn process(&self, msg: StepMessage, _: &StepContext) -> Result<Vec<Emit>, StepError> {
        Ok(vec![Emit::Data(msg)])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn catalogue_lists_ten_distinct_valid_components() {
        let catalogue = catalogue();
        let descriptors = catalogue.descriptors();
        let names: Vec<_> = descriptors.iter().map(|d| d.name).collect();
        assert_eq!(
            names,
            [
                "webhook",
                "scheduler",
                "http-request",
                "jsonata",
                "filter",
                "router",
                "splitter",
                "webhook-reply",
                "log",
                "noop"
            ]
        );
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), names.len());
        for d in &descriptors {
            assert!(
                !d.title.is_empty() && d.title.chars().count() <= 50,
                "{}",
                d.name
            );
            assert!(!d.description.is_empty(), "{}", d.name);
            let functions: Vec<_> = d.triggers.iter().chain(&d.actions).collect();
            assert_eq!(functions.len(), 1, "{}", d.name);
            let schema = &functions[0].fields;
            assert!(jsonschema::meta::is_valid(schema), "{}", d.name);
            assert!(jsonschema::validator_for(schema).is_ok(), "{}", d.name);
            assert!(catalogue.get(d.name).is_some());
        }
        assert!(catalogue.get("docker").is_none());
    }

    #[test]
    fn triggers_are_the_webhook_and_the_scheduler() {
        let triggers: Vec<_> = catalogue()
            .descriptors()
            .into_iter()
            .filter(|d| !d.triggers.is_empty())
            .map(|d| d.name)
            .collect();
        assert_eq!(triggers, ["webhook", "scheduler"]);
    }
}
