//! `noop`: hands every message on unchanged (for tests and benchmarks of the runtime itself).

use serde_json::Value;

use super::{Kind, describe, no_fields, pass_through};
use crate::component::{BuiltinComponent, ConfigError, Descriptor, Function, Step};

pub(super) struct Noop;

impl BuiltinComponent for Noop {
    fn descriptor(&self) -> Descriptor {
        describe(
            "noop",
            "No operation",
            "Passes every message on unchanged",
            Kind::Action,
            Function {
                name: "noop",
                title: "Pass on",
                description: "Emits the input message as it is",
                fields: no_fields(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        pass_through(fields)
    }
}
