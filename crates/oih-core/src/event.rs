//! The event-bus envelope exactly as OIH's `@openintegrationhub/event-bus` puts it on the wire:
//! `{"headers":{"name","createdAt","serviceName",…},"payload":…}`, routing key = `name`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventHeaders {
    pub name: String,
    /// Milliseconds since the epoch, set by the publisher. (OIH's receiver overwrites it with
    /// the receive time; we keep the publisher's value.)
    #[serde(rename = "createdAt", default)]
    pub created_at: i64,
    #[serde(
        rename = "serviceName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub service_name: String,
    /// Any other header OIH producers add (for example `type: "webhooks"` on `flow.execute`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub headers: EventHeaders,
    #[serde(default)]
    pub payload: Value,
}

impl Event {
    pub fn new(name: impl Into<String>, payload: Value) -> Self {
        Self {
            headers: EventHeaders {
                name: name.into(),
                created_at: chrono::Utc::now().timestamp_millis(),
                service_name: String::new(),
                extra: Map::new(),
            },
            payload,
        }
    }

    pub fn name(&self) -> &str {
        &self.headers.name
    }

    pub fn with_header(mut self, key: impl Into<String>, value: Value) -> Self {
        self.headers.extra.insert(key.into(), value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_with_oih_field_names() {
        let mut event =
            Event::new("flow.started", json!({"id": "abc"})).with_header("type", json!("webhooks"));
        event.headers.created_at = 1_700_000_000_000;
        event.headers.service_name = "component-orchestrator".into();
        let wire = serde_json::to_value(&event).expect("serialize");
        assert_eq!(
            wire,
            json!({
                "headers": {"name": "flow.started", "createdAt": 1_700_000_000_000_i64,
                            "serviceName": "component-orchestrator", "type": "webhooks"},
                "payload": {"id": "abc"}
            })
        );
    }

    #[test]
    fn parses_an_oih_message_with_extra_headers() {
        let wire = r#"{"headers":{"name":"iam.user.deleted","createdAt":1,"serviceName":"iam","x":1},"payload":{"id":"u1"}}"#;
        let event: Event = serde_json::from_str(wire).expect("parse");
        assert_eq!(event.name(), "iam.user.deleted");
        assert_eq!(event.headers.extra.get("x"), Some(&json!(1)));
        assert_eq!(event.payload, json!({"id": "u1"}));
    }
}
