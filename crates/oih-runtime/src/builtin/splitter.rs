//! `splitter`: turns an array in the message data into one message per item.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Kind, describe, expression_schema, fields_schema};
use crate::component::{
    BuiltinComponent, ConfigError, Descriptor, Function, Step, StepContext, StepError,
};
use crate::expr::Jsonata;
use crate::message::{Emit, StepMessage};
use crate::schema;

pub(super) struct Splitter;

#[derive(Deserialize)]
struct Fields {
    path: Option<String>,
}

impl BuiltinComponent for Splitter {
    fn descriptor(&self) -> Descriptor {
        describe(
            "splitter",
            "Splitter",
            "Emits one message per item of an array in the message data",
            Kind::Action,
            Function {
                name: "split",
                title: "Split",
                description: "Each item becomes the data of its own message",
                fields: schema(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        let fields: Fields = schema::parse(&schema(), fields)?;
        let path = fields.path.as_deref().unwrap_or("$");
        Ok(Box::new(Split(Jsonata::compile("path", path)?)))
    }
}

fn schema() -> Value {
    fields_schema(
        json!({"path": expression_schema("JSONata expression selecting the array (default: the data itself)")}),
        &[],
    )
}

struct Split(Jsonata);

#[async_trait]
impl Step for Split {
    fn inline(&self) -> bool {
        true
    }

    async fn process(&self, msg: StepMessage, _: &StepContext) -> Result<Vec<Emit>, StepError> {
        let items = match self.0.evaluate(&msg.data)? {
            // Nothing selected (e.g. a filter matched no item): nothing to split.
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(self
                    .0
                    .bad_result(format!("selected {} instead of an array", kind(&other))));
            }
        };
        Ok(items
            .into_iter()
            .map(|item| Emit::Data(msg.clone().with_data(item)))
            .collect())
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
