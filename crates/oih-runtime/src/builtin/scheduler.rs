//! `scheduler`: the first step of a flow with a `cron`. The scheduler service has already built
//! the message (`data: {sheduledTimestamp, nextSheduledTimestamp}`, runtime.md §6.3), so the
//! step hands it on.

use serde_json::Value;

use super::{Kind, describe, no_fields, pass_through};
use crate::component::{BuiltinComponent, ConfigError, Descriptor, Function, Step};

pub(super) struct Scheduler;

impl BuiltinComponent for Scheduler {
    fn descriptor(&self) -> Descriptor {
        describe(
            "scheduler",
            "Scheduler",
            "Starts the flow on the flow's cron schedule; the data holds the scheduled time and the next one",
            Kind::Trigger,
            Function {
                name: "tick",
                title: "On schedule",
                description: "Passes the scheduler's tick on",
                fields: no_fields(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        pass_through(fields)
    }
}
