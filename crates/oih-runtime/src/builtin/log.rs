//! `log`: writes each message to the hub's log (tracing) and hands it on unchanged.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Kind, describe, fields_schema};
use crate::component::{
    BuiltinComponent, ConfigError, Descriptor, Function, Step, StepContext, StepError,
};
use crate::message::{Emit, StepMessage};
use crate::schema;

pub(super) struct Log;

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

#[derive(Deserialize)]
struct Fields {
    #[serde(default)]
    level: Level,
}

impl BuiltinComponent for Log {
    fn descriptor(&self) -> Descriptor {
        describe(
            "log",
            "Log",
            "Writes every message to the hub's log and passes it on",
            Kind::Action,
            Function {
                name: "log",
                title: "Log",
                description: "Logs the message data with the flow and step ids",
                fields: schema(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        let fields: Fields = schema::parse(&schema(), fields)?;
        Ok(Box::new(Logger(fields.level)))
    }
}

fn schema() -> Value {
    fields_schema(
        json!({"level": {"enum": ["debug", "info", "warn", "error"], "default": "info"}}),
        &[],
    )
}

struct Logger(Level);

#[async_trait]
impl Step for Logger {
    fn inline(&self) -> bool {
        true
    }

    async fn process(&self, msg: StepMessage, _: &StepContext) -> Result<Vec<Emit>, StepError> {
        let h = &msg.headers;
        let (flow, step, exec) = (&h.task_id, &h.step_id, &h.flow_exec_id);
        let data = msg.data.to_string();
        match self.0 {
            Level::Debug => tracing::debug!(?flow, ?step, ?exec, %data, "flow message"),
            Level::Info => tracing::info!(?flow, ?step, ?exec, %data, "flow message"),
            Level::Warn => tracing::warn!(?flow, ?step, ?exec, %data, "flow message"),
            Level::Error => tracing::error!(?flow, ?step, ?exec, %data, "flow message"),
        }
        Ok(vec![Emit::Data(msg)])
    }
}
