//! A small, engine-neutral filter language, compiled to SQL by each backend.
//! Paths are dotted JSON paths into the document body (`"status"`, `"graph.nodes"`), or the
//! pseudo-paths `_id`, `_createdAt`, `_updatedAt`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Matches every document.
    All,
    /// The value at the path equals the JSON value (strings, numbers, booleans, null; numbers
    /// compare numerically).
    Eq(String, Value),
    /// Not equal, or the path is missing.
    Ne(String, Value),
    /// Equals one of the values.
    In(String, Vec<Value>),
    Gt(String, Value),
    Gte(String, Value),
    Lt(String, Value),
    Lte(String, Value),
    /// The path is present (true) or absent (false). A JSON `null` counts as present.
    Exists(String, bool),
    /// The value at the path is an array with an element that matches: for a scalar, equal to
    /// it; for an object, containing all of its fields with equal values. This is how
    /// "owners contains {id: u1}" is asked.
    ArrayContains(String, Value),
    /// Case-insensitive substring match on a string value (OIH's `search`).
    ContainsText(String, String),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    pub fn eq(path: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Eq(path.into(), value.into())
    }

    pub fn and(filters: impl IntoIterator<Item = Filter>) -> Self {
        Self::And(filters.into_iter().collect())
    }

    pub fn or(filters: impl IntoIterator<Item = Filter>) -> Self {
        Self::Or(filters.into_iter().collect())
    }
}
