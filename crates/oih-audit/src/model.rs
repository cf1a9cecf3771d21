//! An audit entry as OIH models it (`{headers:{name, serviceName, createdAt}, payload}`), the
//! rules a pushed entry must satisfy, and how a stored entry is shown to clients.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use oih_core::Event;
use oih_http::FieldError;
use serde_json::{Map, Value, json};

use crate::chain::Link;

/// The prefix of every validation message (the wording of OIH's disabled validator).
const INVALID: &str = "Messageformat is not valid";
/// Longest accepted event or service name.
const MAX_NAME_LEN: usize = 256;

/// An entry about to be appended to a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub name: String,
    pub service_name: String,
    /// Milliseconds since the epoch (the event's own time).
    pub created_at: i64,
    pub payload: Map<String, Value>,
}

impl NewEntry {
    /// The stored `headers` object (also what the hash covers).
    pub fn headers(&self) -> Value {
        json!({"name": self.name, "serviceName": self.service_name, "createdAt": self.created_at})
    }

    /// The chain the entry belongs to: its `payload.tenant` when that is a non-empty string,
    /// else the chain of entries without tenant (`""`).
    pub fn tenant(&self) -> String {
        self.payload
            .get("tenant")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// An event from the bus. `Err` when it cannot be stored faithfully (dead-lettered).
    pub fn from_event(event: &Event) -> Result<Self, &'static str> {
        let payload = match &event.payload {
            Value::Object(obj) => obj.clone(),
            Value::Null => Map::new(),
            _ => return Err("payload is not an object"),
        };
        if contains_nul(&event.payload) {
            return Err("payload contains a NUL character");
        }
        let created_at = if event.headers.created_at > 0 {
            event.headers.created_at
        } else {
            Utc::now().timestamp_millis()
        };
        Ok(Self {
            name: event.headers.name.clone(),
            service_name: event.headers.service_name.clone(),
            created_at,
            payload,
        })
    }

    /// A body pushed with `POST /logs`: every failed rule is reported. Unknown top-level and
    /// header keys are dropped, as OIH's schema does.
    pub fn from_body(body: &Value) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, why: &str| {
            errors.push(FieldError::new(format!("{INVALID}: {field} {why}")).with_field(field));
        };
        let Some(obj) = body.as_object() else {
            fail("body", "must be an object");
            return Err(errors);
        };
        let empty = Map::new();
        let headers = match obj.get("headers") {
            Some(Value::Object(h)) => h,
            Some(_) => {
                fail("headers", "must be an object");
                &empty
            }
            None => {
                fail("headers", "is required");
                &empty
            }
        };
        let mut text = |key: &str| -> String {
            let field = format!("headers.{key}");
            match headers.get(key) {
                Some(Value::String(s)) if s.trim().is_empty() => fail(&field, "must not be empty"),
                Some(Value::String(s)) if s.chars().count() > MAX_NAME_LEN => {
                    fail(&field, "must be at most 256 characters");
                }
                Some(Value::String(s)) if s.contains('\0') => {
                    fail(&field, "must not contain NUL characters");
                }
                Some(Value::String(s)) => return s.clone(),
                Some(_) => fail(&field, "must be a string"),
                None if obj.get("headers").is_some_and(Value::is_object) => {
                    fail(&field, "is required");
                }
                None => {}
            }
            String::new()
        };
        let name = text("name");
        let service_name = text("serviceName");
        let created_at = match headers.get("createdAt").map(parse_time) {
            None => Utc::now().timestamp_millis(),
            Some(Some(ms)) => ms,
            Some(None) => {
                fail(
                    "headers.createdAt",
                    "must be a date (ISO 8601 or milliseconds since the epoch)",
                );
                0
            }
        };
        let payload = match obj.get("payload") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => {
                if contains_nul(&Value::Object(p.clone())) {
                    fail("payload", "must not contain NUL characters");
                }
                p.clone()
            }
            Some(_) => {
                fail("payload", "must be an object");
                Map::new()
            }
        };
        if errors.is_empty() {
            Ok(Self {
                name,
                service_name,
                created_at,
                payload,
            })
        } else {
            Err(errors)
        }
    }
}

/// Milliseconds since the epoch from a number, a string of digits (as Mongoose casts them) or
/// an RFC 3339 date.
fn parse_time(value: &Value) -> Option<i64> {
    let ms = match value {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(ms) => ms,
            Err(_) => DateTime::parse_from_rfc3339(s.trim())
                .ok()?
                .timestamp_millis(),
        },
        _ => return None,
    };
    // Only instants chrono can render back.
    Utc.timestamp_millis_opt(ms).single().map(|_| ms)
}

/// PostgreSQL cannot store NUL in JSON text; such input is refused rather than failing later.
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(obj) => obj.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// A stored entry as clients see it: OIH's `{_id, headers, payload}` with `createdAt` as an
/// ISO date, plus the entry's place in its chain.
pub fn render(id: &str, body: &Value) -> Value {
    let headers = body.get("headers").cloned().unwrap_or(Value::Null);
    let created_at = headers
        .get("createdAt")
        .and_then(Value::as_i64)
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null);
    let link = body.get("chain").and_then(Link::from_json);
    json!({
        "_id": id,
        "headers": {
            "name": headers.get("name").cloned().unwrap_or(Value::Null),
            "serviceName": headers.get("serviceName").cloned().unwrap_or(Value::Null),
            "createdAt": created_at,
        },
        "payload": body.get("payload").cloned().unwrap_or_else(|| json!({})),
        "chain": link.map(|l| json!({
            "tenant": if l.tenant.is_empty() { Value::Null } else { Value::String(l.tenant) },
            "seq": l.seq,
            "prev": l.prev,
            "hash": l.hash,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oih_test_body_is_accepted() {
        let body = json!({
            "headers": {"name": "flowrepo.flow.started", "serviceName": "flow-repository",
                        "createdAt": "1563994057792", "extra": 1},
            "payload": {"user": "abcdef12345", "flowId": "dhi38fj3oz9fj3"},
            "ignored": true
        });
        let entry = NewEntry::from_body(&body).expect("valid");
        assert_eq!(entry.created_at, 1_563_994_057_792);
        assert_eq!(entry.tenant(), "");
        let dated = json!({"headers": {"name": "a", "serviceName": "b",
                                       "createdAt": "2019-07-24T19:27:37.792Z"}});
        assert_eq!(
            NewEntry::from_body(&dated).expect("valid").created_at,
            1_563_996_457_792
        );
    }

    #[test]
    fn every_failed_rule_is_reported() {
        let errors = NewEntry::from_body(&json!({
            "headers": {"name": 5, "createdAt": "yesterday"},
            "payload": [1]
        }))
        .expect_err("invalid");
        let fields: Vec<_> = errors.iter().filter_map(|e| e.field.clone()).collect();
        assert_eq!(
            fields,
            [
                "headers.name",
                "headers.serviceName",
                "headers.createdAt",
                "payload"
            ]
        );
        assert!(
            errors[0]
                .message
                .starts_with("Messageformat is not valid: ")
        );
    }
}
