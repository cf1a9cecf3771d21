//! The four document types and their validation, in Mongoose's terms (data-services.md §2.3):
//! the body is parsed with serde (wrong types → 400), then checked rule by rule, one error
//! entry per failed rule, as OIH's validator reports them.

pub mod component;
pub mod version;
pub mod virtual_component;

use chrono::{DateTime, SecondsFormat, Utc};
use oih_core::ObjectId;
use oih_http::{ApiError, FieldError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const ACCESS_VALUES: &[&str] = &["private", "public"];

/// An `owners` entry. Component-repository writes the type in lowercase (`user`/`tenant`),
/// unlike iam-utils; the value is kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl Owner {
    pub fn user(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            kind: "user".into(),
        }
    }

    pub fn is_user(&self, sub: &str) -> bool {
        self.kind == "user" && self.id == sub
    }
}

/// The failed rules of one document.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    fn push(&mut self, path: &str, message: String) {
        self.0.push(FieldError::new(message).with_field(path));
    }

    pub fn required<T>(&mut self, path: &str, value: Option<&T>) {
        if value.is_none() {
            self.push(path, format!("Path `{path}` is required."));
        }
    }

    /// A required string: absent and empty both fail, as in Mongoose.
    pub fn required_text(&mut self, path: &str, value: Option<&str>) {
        if value.is_none_or(str::is_empty) {
            self.push(path, format!("Path `{path}` is required."));
        }
    }

    pub fn max_len(&mut self, path: &str, value: Option<&str>, max: usize) {
        if value.is_some_and(|v| v.chars().count() > max) {
            self.push(
                path,
                format!("Path `{path}` is longer than the maximum allowed length ({max})."),
            );
        }
    }

    pub fn one_of(&mut self, path: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.push(
                path,
                format!("`{value}` is not a valid enum value for path `{path}`."),
            );
        }
    }

    pub fn object_id(&mut self, path: &str, value: Option<&str>) {
        if value.is_some_and(|v| !ObjectId::is_valid(v)) {
            self.push(path, format!("Path `{path}` must be a 24-hex id."));
        }
    }

    pub fn custom(&mut self, path: &str, message: impl Into<String>) {
        self.push(path, message.into());
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// The request body as a JSON object; anything else is a 400.
pub fn object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(
            "The request body must be a JSON object",
        )),
    }
}

/// Parses a (merged) body into a model; a type error is the caller's fault.
pub fn parse<T: DeserializeOwned>(body: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))
}

/// Removes the keys the server owns (ids and timestamps) from a request body.
pub fn strip_managed(body: &mut Map<String, Value>) {
    for key in ["_id", "id", "__v", "createdAt", "updatedAt"] {
        body.remove(key);
    }
}

/// JavaScript's `Date#toJSON` format, which OIH clients parse.
pub fn timestamp(at: DateTime<Utc>) -> Value {
    Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}
