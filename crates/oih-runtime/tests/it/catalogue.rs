//! The catalogue, the pass-through components (webhook, scheduler, noop), log, and run_step.

use async_trait::async_trait;
use oih_runtime::{Emit, Step, StepContext, StepError, StepMessage, catalogue, run_step};
use serde_json::json;

use crate::support::{bad_field, ctx, data_of, run, step};

#[test]
fn descriptors_serialise_as_the_component_repository_reads_them() {
    let descriptors = catalogue().descriptors();
    let http = descriptors
        .iter()
        .find(|d| d.name == "http-request")
        .expect("listed");
    let value = serde_json::to_value(http).expect("serialises");
    assert_eq!(value["name"], "http-request");
    assert_eq!(value["title"], "HTTP request");
    assert_eq!(value["triggers"], json!([]));
    assert_eq!(value["actions"][0]["name"], "request");
    assert_eq!(value["actions"][0]["fields"]["required"], json!(["url"]));
    let webhook = descriptors
        .iter()
        .find(|d| d.name == "webhook")
        .expect("listed");
    assert_eq!(
        serde_json::to_value(webhook).expect("serialises")["triggers"][0]["name"],
        "receive"
    );
}

#[tokio::test]
async fn triggers_and_noop_hand_the_message_on_unchanged() {
    for name in ["webhook", "scheduler", "noop"] {
        let pass = step(name, json!({}));
        let mut msg = StepMessage::new(json!({"sheduledTimestamp": "2026-11-29T10:00:00Z"}));
        msg.metadata = json!({"source": {"name": "scheduler"}});
        msg.headers.task_id = Some("flow".into());
        let emits = run_step(pass.as_ref(), msg.clone(), &ctx()).await;
        assert_eq!(emits, [Emit::Data(msg), Emit::End], "{name}");
        // null fields are OIH's "no fields".
        assert!(
            catalogue()
                .get(name)
                .expect("listed")
                .prepare(&json!(null))
                .is_ok()
        );
        assert_eq!(
            bad_field(name, json!({"cron": "* * * * *"})),
            "cron",
            "{name}"
        );
    }
}

#[tokio::test]
async fn log_passes_the_message_on_at_any_level() {
    for level in ["debug", "info", "warn", "error"] {
        let log = step("log", json!({"level": level}));
        assert_eq!(
            data_of(&run(log.as_ref(), json!({"a": 1})).await),
            [json!({"a": 1})]
        );
    }
    let log = step("log", json!({}));
    assert_eq!(data_of(&run(log.as_ref(), json!([1])).await), [json!([1])]);
    assert_eq!(bad_field("log", json!({"level": "loud"})), "level");
}

#[test]
fn config_errors_read_well() {
    let error = catalogue()
        .get("jsonata")
        .expect("listed")
        .prepare(&json!({}))
        .err()
        .expect("rejected");
    assert_eq!(error.field, "expression");
    assert_eq!(error.to_string(), "field \"expression\": is required");
}

struct Failing;

#[async_trait]
impl Step for Failing {
    async fn process(&self, _: StepMessage, _: &StepContext) -> Result<Vec<Emit>, StepError> {
        Err(StepError::Request("refused".into()))
    }
}

#[tokio::test]
async fn run_step_adds_error_and_a_single_end() {
    let emits = run_step(&Failing, StepMessage::new(json!({})), &ctx()).await;
    assert_eq!(
        emits,
        [Emit::Error("request failed: refused".into()), Emit::End]
    );
}
