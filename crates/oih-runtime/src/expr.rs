//! JSONata expressions in node fields: parsed once when the flow starts, evaluated per message.

use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorOptions};
use jsonata_core::parser;
use jsonata_core::value::JValue;
use serde_json::{Map, Value};

use crate::component::{ConfigError, StepError};

/// A runaway expression (`$sum([1..100000000])`, deep recursion) is stopped after this long
/// instead of blocking a worker.
const EVALUATION_TIMEOUT_MS: u64 = 5_000;

/// One parsed expression and the field it came from (for error messages).
///
/// It keeps the syntax tree and evaluates with the tree-walking evaluator: jsonata-core's
/// compiled `Expression` caches bytecode holding `Rc`s, so it cannot be shared by the tasks
/// that process messages concurrently, while the tree is plain data.
#[derive(Debug)]
pub(crate) struct Jsonata {
    field: String,
    ast: AstNode,
}

impl Jsonata {
    pub(crate) fn compile(field: impl Into<String>, source: &str) -> Result<Self, ConfigError> {
        let field = field.into();
        match parser::parse(source) {
            Ok(ast) => Ok(Self { field, ast }),
            Err(e) => Err(ConfigError::new(field, format!("invalid JSONata: {e}"))),
        }
    }

    /// Evaluates against `input`; `None` is JSONata's "undefined" (nothing matched).
    pub(crate) fn evaluate(&self, input: &Value) -> Result<Option<Value>, StepError> {
        let options = EvaluatorOptions {
            timeout_ms: Some(EVALUATION_TIMEOUT_MS),
            ..EvaluatorOptions::default()
        };
        let mut evaluator = Evaluator::with_options(Context::new(), options);
        let result = evaluator
            .evaluate(&self.ast, &JValue::from(input.clone()))
            .map_err(|e| StepError::Expression {
                field: self.field.clone(),
                message: e.to_string(),
            })?;
        Ok((!result.is_undefined()).then(|| integers(Value::from(&result))))
    }

    /// Evaluates and casts the result as JSONata's `$boolean` does (undefined is false).
    pub(crate) fn test(&self, input: &Value) -> Result<bool, StepError> {
        Ok(self.evaluate(input)?.is_some_and(|v| truthy(&v)))
    }

    /// A "the result is unusable" error for this expression's field.
    pub(crate) fn bad_result(&self, message: impl Into<String>) -> StepError {
        StepError::Result {
            field: self.field.clone(),
            message: message.into(),
        }
    }
}

/// JSONata computes with f64 only; whole numbers go back to JSON as integers (`2`, not `2.0`),
/// as they do in JavaScript, so data passing through an expression keeps its shape.
fn integers(value: Value) -> Value {
    /// Beyond 2^53 an f64 no longer holds every integer; such values stay floats.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= EXACT => {
                // The cast is exact: `f` is whole and within ±2^53.
                #[allow(clippy::cast_possible_truncation)]
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integers).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, integers(v))).collect())
        }
        other => other,
    }
}

/// JSONata's `$boolean` casting rules.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(truthy),
        Value::Object(map) => !map.is_empty(),
    }
}

/// A map of header name → expression (http-request and webhook-reply `headers`).
#[derive(Debug, Default)]
pub(crate) struct HeaderExprs(Vec<(String, Jsonata)>);

impl HeaderExprs {
    /// Compiles every value of `headers` (field name `<field>.<header>`).
    pub(crate) fn compile(field: &str, headers: &Map<String, Value>) -> Result<Self, ConfigError> {
        headers
            .iter()
            .map(|(name, source)| {
                let field = format!("{field}.{name}");
                let source = source
                    .as_str()
                    .ok_or_else(|| ConfigError::new(&field, "must be a JSONata expression"))?;
                Ok((name.clone(), Jsonata::compile(field, source)?))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The headers for `input`; headers whose expression is undefined are left out.
    pub(crate) fn evaluate(&self, input: &Value) -> Result<Vec<(String, String)>, StepError> {
        let mut headers = Vec::with_capacity(self.0.len());
        for (name, expr) in &self.0 {
            let value = match expr.evaluate(input)? {
                None => continue,
                Some(Value::String(s)) => s,
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                Some(_) => return Err(expr.bad_result("a header value must be a string")),
            };
            headers.push((name.clone(), value));
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness_follows_jsonata_boolean() {
        for (value, expected) in [
            (json!(null), false),
            (json!(0), false),
            (json!(0.5), true),
            (json!(""), false),
            (json!("x"), true),
            (json!([]), false),
            (json!([0, false]), false),
            (json!([0, 1]), true),
            (json!({}), false),
            (json!({"a": 1}), true),
        ] {
            assert_eq!(truthy(&value), expected, "{value}");
        }
    }

    #[test]
    fn whole_numbers_come_back_as_integers() {
        let expr = Jsonata::compile(
            "expression",
            "{'a': n + 1, 'b': n / 4, 'c': [n * 2], 'd': 1e300}",
        )
        .expect("parses");
        let out = expr
            .evaluate(&json!({"n": 3}))
            .expect("runs")
            .expect("defined");
        assert_eq!(out, json!({"a": 4, "b": 0.75, "c": [6], "d": 1e300}));
        assert_eq!(serde_json::to_string(&out["a"]).expect("writes"), "4");
    }

    #[test]
    fn a_runaway_expression_is_stopped() {
        let expr = Jsonata::compile(
            "expression",
            "($f := function($n){ $n > 0 ? $f($n + 1) : 0 }; $f(1))",
        )
        .expect("parses");
        match expr.evaluate(&json!({})) {
            Err(StepError::Expression { field, message }) => {
                assert_eq!(field, "expression");
                assert!(message.contains("D1012"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn evaluates_and_reports_undefined() {
        let expr = Jsonata::compile("expression", "items[price > 10].name").expect("parses");
        let data = json!({"items": [{"name": "a", "price": 5}, {"name": "b", "price": 20}]});
        assert_eq!(expr.evaluate(&data).expect("runs"), Some(json!("b")));
        assert_eq!(expr.evaluate(&json!({})).expect("runs"), None);
    }
}
