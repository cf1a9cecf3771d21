//! `filter`: hands the message on only when a JSONata condition on its data holds (cast as
//! `$boolean` does; nothing matched counts as false).

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

pub(super) struct Filter;

#[derive(Deserialize)]
struct Fields {
    condition: String,
}

impl BuiltinComponent for Filter {
    fn descriptor(&self) -> Descriptor {
        describe(
            "filter",
            "Filter",
            "Passes on only the messages whose data meets a JSONata condition",
            Kind::Action,
            Function {
                name: "filter",
                title: "Filter",
                description: "Drops the message unless the condition is true",
                fields: schema(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        let fields: Fields = schema::parse(&schema(), fields)?;
        Ok(Box::new(Condition(Jsonata::compile(
            "condition",
            &fields.condition,
        )?)))
    }
}

fn schema() -> Value {
    fields_schema(
        json!({"condition": expression_schema("JSONata condition on the message data")}),
        &["condition"],
    )
}

struct Condition(Jsonata);

#[async_trait]
impl Step for Condition {
    fn inline(&self) -> bool {
        true
    }

    async fn process(&self, msg: StepMessage, _: &StepContext) -> Result<Vec<Emit>, StepError> {
        Ok(if self.0.test(&msg.data)? {
            vec![Emit::Data(msg)]
        } else {
            Vec::new()
        })
    }
}
