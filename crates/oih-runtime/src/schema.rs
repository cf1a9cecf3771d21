//! Checking a node's `fields` against a component's JSON Schema.

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::component::ConfigError;

/// Validates `fields` (`null` counts as `{}`) and deserialises them. The first error is
/// reported with the dotted path of the failing field.
pub(crate) fn parse<T: DeserializeOwned>(schema: &Value, fields: &Value) -> Result<T, ConfigError> {
    let fields = match fields {
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    };
    // A component's schema is a constant; a test compiles every one of them, so this only
    // fails if that test fails too.
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| ConfigError::new("", format!("component schema is invalid: {e}")))?;
    if let Some(error) = validator.iter_errors(&fields).next() {
        let mut path = dotted(error.instance_path().segments());
        let message = match error.kind() {
            ValidationErrorKind::Required { property } => {
                push(&mut path, property.as_str().unwrap_or_default());
                "is required".to_owned()
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                push(
                    &mut path,
                    unexpected.first().map(String::as_str).unwrap_or_default(),
                );
                "is not a known field".to_owned()
            }
            _ => error.to_string(),
        };
        return Err(ConfigError::new(path, message));
    }
    serde_json::from_value(fields).map_err(|e| ConfigError::new("", e.to_string()))
}

fn dotted<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            LocationSegment::Property(name) => push(&mut path, &name),
            LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

fn push(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}
