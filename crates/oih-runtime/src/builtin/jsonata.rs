//! `jsonata`: replaces the message data with the result of a JSONata expression evaluated
//! against it.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Kind, describe, expression_schema, fields_schema};
use crate::component::{
    BuiltinComponent, ConfigError, Descriptor, Function, Step, StepContext, StepError,
};
use crate::expr;
use crate::message::{Emit, StepMessage};
use crate::schema;

pub(super) struct Jsonata;

#[derive(Deserialize)]
struct Fields {
    expression: String,
}

impl BuiltinComponent for Jsonata {
    fn descriptor(&self) -> Descriptor {
        describe(
            "jsonata",
            "JSONata transform",
            "Replaces the message data with the result of a JSONata expression",
            Kind::Action,
            Function {
                name: "transform",
                title: "Transform",
                description: "Evaluates the expression against the data; the result is the new data",
                fields: schema(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        let fields: Fields = schema::parse(&schema(), fields)?;
        Ok(Box::new(Transform {
            expression: expr::Jsonata::compile("expression", &fields.expression)?,
        }))
    }
}

fn schema() -> Value {
    fields_schema(
        json!({"expression": expression_schema("JSONata expression evaluated against the message data")}),
        &["expression"],
    )
}

struct Transform {
    expression: expr::Jsonata,
}

#[async_trait]
impl Step for Transform {
    fn inline(&self) -> bool {
        true
    }

    async fn process(&self, msg: StepMessage, _: &StepContext) -> Result<Vec<Emit>, StepError> {
        // An undefined result becomes `{}`, what OIH's data defaults to.
        let data = self
            .expression
            .evaluate(&msg.data)?
            .unwrap_or_else(|| Value::Object(Map::new()));
        Ok(vec![Emit::Data(msg.with_data(data))])
    }
}
