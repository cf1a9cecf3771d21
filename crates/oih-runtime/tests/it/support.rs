//! Helpers: prepare a catalogue component and run it on a message.

use oih_runtime::{ConfigError, Emit, Step, StepContext, StepMessage, catalogue, run_step};
use serde_json::Value;

pub fn prepare(name: &str, fields: Value) -> Result<Box<dyn Step>, ConfigError> {
    catalogue()
        .get(name)
        .unwrap_or_else(|| panic!("no component {name}"))
        .prepare(&fields)
}

pub fn step(name: &str, fields: Value) -> Box<dyn Step> {
    prepare(name, fields).expect("fields are valid")
}

/// The field named by a rejected configuration.
pub fn bad_field(name: &str, fields: Value) -> String {
    match prepare(name, fields) {
        Ok(_) => panic!("{name} accepted invalid fields"),
        Err(e) => e.field,
    }
}

pub fn ctx() -> StepContext {
    StepContext::new(reqwest::Client::new())
}

/// Runs the step as the orchestrator will (emits, then error, then end).
pub async fn run(step: &dyn Step, data: Value) -> Vec<Emit> {
    run_step(step, StepMessage::new(data), &ctx()).await
}

/// The data of the `Data` emits, checking the run ended cleanly.
pub fn data_of(emits: &[Emit]) -> Vec<Value> {
    assert_eq!(emits.last(), Some(&Emit::End), "{emits:?}");
    emits[..emits.len() - 1]
        .iter()
        .map(|e| match e {
            Emit::Data(msg) => msg.data.clone(),
            other => panic!("unexpected emit {other:?}"),
        })
        .collect()
}

/// The error message of a failed run.
pub fn error_of(emits: &[Emit]) -> String {
    match emits {
        [Emit::Error(message), Emit::End] => message.clone(),
        other => panic!("expected error then end, got {other:?}"),
    }
}
