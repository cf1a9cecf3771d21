//! The flow document and OIH's validation (flow-repository `models/schemas/flow.js` and
//! `utils/validator.js`): the same fields, the same messages, in the order OIH's tests pin.
//!
//! A candidate flow is plain JSON (OIH clients send loosely typed bodies); [`validate`] casts
//! it the way Mongoose would (numbers and booleans become strings, unknown keys are dropped)
//! and lists every failed rule with the path it concerns.

use oih_core::ObjectId;
use oih_http::FieldError;
use serde_json::{Map, Value};

pub const STATUS_INACTIVE: &str = "inactive";
pub const STATUS_STARTING: &str = "starting";
pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_STOPPING: &str = "stopping";

/// Body key holding the number of the flow's current graph version (see `store`).
pub const GRAPH_VERSION: &str = "graphVersion";

const NODE_ID_MAX: usize = 30;
const EDGE_ID_MAX: usize = 10;
const EDGE_CONDITION_MAX: usize = 30;

/// A flow's lifecycle state as stored in `status`. Absent means inactive (Mongoose default).
pub fn status(body: &Map<String, Value>) -> &str {
    body.get("status")
        .and_then(Value::as_str)
        .unwrap_or(STATUS_INACTIVE)
}

/// Checks and normalises a candidate flow. On success returns the document to store: only
/// schema fields, strings cast, `status` defaulted to `inactive`, `owners` defaulted to `[]`.
pub fn validate(input: &Map<String, Value>) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut v = Validator::default();
    let mut out = Map::new();
    for key in ["name", "description"] {
        v.string_field(input, &mut out, key, key);
    }
    match input.get("graph") {
        None | Some(Value::Null) => v.error("graph", "Flows require a graph."),
        Some(graph) => {
            if let Some(graph) = v.graph(graph) {
                out.insert("graph".into(), Value::Object(graph));
            }
        }
    }
    for key in ["type", "tenant"] {
        v.string_field(input, &mut out, key, key);
    }
    let owners = v.object_array(input.get("owners"), "owners", "owner", |v, owner, path| {
        let mut out = Map::new();
        // Mongoose reports a subdocument's errors in reverse declaration order.
        v.required_string(owner, &mut out, "type", path, "Flow owners require a type.");
        v.required_string(owner, &mut out, "id", path, "Flow owners require an id.");
        out
    });
    out.insert("owners".into(), Value::Array(owners.unwrap_or_default()));
    for key in ["status", "cron"] {
        v.string_field(input, &mut out, key, key);
    }
    v.object_id_field(input, &mut out, "fromTemplate", "fromTemplate");
    if let Some(settings) = input.get("flowSettings").filter(|s| !s.is_null()) {
        out.insert("flowSettings".into(), settings.clone());
    }

    let status = out
        .entry("status")
        .or_insert_with(|| Value::String(STATUS_INACTIVE.into()));
    if status.as_str() != Some(STATUS_INACTIVE) {
        v.error(
            "status",
            "Flow status cannot be set manually. Use the flow start/stop end points instead.",
        );
    }
    if let Some(graph) = out.get("graph").and_then(Value::as_object) {
        check_edge_ends(&mut v, graph);
    }
    if let Some(cron) = out.get("cron").and_then(Value::as_str)
        && !cron.is_empty()
        && cron.parse::<croner::Cron>().is_err()
    {
        v.error("cron", "Invalid cron expression.");
    }

    if v.errors.is_empty() {
        Ok(out)
    } else {
        Err(v.errors)
    }
}

/// OIH's second pass: every edge end must name a node (`undefined` when the end is missing).
fn check_edge_ends(v: &mut Validator, graph: &Map<String, Value>) {
    let node_ids: Vec<&str> = array(graph, "nodes")
        .filter_map(|n| n.get("id").and_then(Value::as_str))
        .collect();
    for (i, edge) in array(graph, "edges").enumerate() {
        for end in ["source", "target"] {
            let id = edge.get(end).and_then(Value::as_str);
            if !id.is_some_and(|id| node_ids.contains(&id)) {
                v.error(
                    format!("graph.edges.{i}.{end}"),
                    format!(
                        "Edge {end} with id \"{}\" could not be found among nodes.",
                        id.unwrap_or("undefined")
                    ),
                );
            }
        }
    }
}

fn array<'a>(obj: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a Value> {
    obj.get(key).and_then(Value::as_array).into_iter().flatten()
}

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors
            .push(FieldError::new(message).with_field(path.into()));
    }

    /// Mongoose's cast failure, naming the local path as Mongoose does.
    fn cast_error(&mut self, full_path: &str, kind: &str, value: &Value) {
        let local = full_path.rsplit('.').next().unwrap_or(full_path);
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let type_name = match value {
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Array(_) => "Array",
            Value::Object(_) => "Object",
            Value::Null => "null",
        };
        self.error(
            full_path,
            format!(
                "Cast to {kind} failed for value \"{shown}\" (type {type_name}) at path \"{local}\""
            ),
        );
    }

    /// A String path: absent/null stays absent; numbers and booleans are cast to text.
    fn cast_string(&mut self, value: Option<&Value>, path: &str) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.cast_error(path, "string", other);
                None
            }
        }
    }

    fn string_field(
        &mut self,
        input: &Map<String, Value>,
        out: &mut Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<String> {
        let s = self.cast_string(input.get(key), path)?;
        out.insert(key.into(), Value::String(s.clone()));
        Some(s)
    }

    fn required_string(
        &mut self,
        input: &Map<String, Value>,
        out: &mut Map<String, Value>,
        key: &str,
        parent: &str,
        missing: &str,
    ) -> Option<String> {
        let path = format!("{parent}.{key}");
        let present = input.get(key).is_some_and(|v| !v.is_null());
        let value = self.string_field(input, out, key, &path);
        // Mongoose treats an empty string as missing for `required`.
        if !present || value.as_deref() == Some("") {
            if present {
                out.remove(key);
            }
            self.error(path, missing);
            return None;
        }
        value
    }

    fn max_length(&mut self, value: Option<&str>, path: &str, max: usize) {
        if let Some(s) = value.filter(|s| s.chars().count() > max) {
            let local = path.rsplit('.').next().unwrap_or(path);
            self.error(
                path,
                format!(
                    "Path `{local}` (`{s}`) is longer than the maximum allowed length ({max})."
                ),
            );
        }
    }

    /// An ObjectId path, stored as its 24-hex string.
    fn object_id(&mut self, value: Option<&Value>, path: &str) -> Option<Value> {
        match value? {
            Value::Null => None,
            Value::String(s) if ObjectId::is_valid(s) => Some(Value::String(s.to_lowercase())),
            other => {
                self.cast_error(path, "ObjectId", other);
                None
            }
        }
    }

    fn object_id_field(
        &mut self,
        input: &Map<String, Value>,
        out: &mut Map<String, Value>,
        key: &str,
        path: &str,
    ) {
        if let Some(id) = self.object_id(input.get(key), path) {
            out.insert(key.into(), id);
        }
    }

    /// A subdocument array: absent/null → None, not an array → cast error; each element must
    /// be an object and is checked by `each`.
    fn object_array(
        &mut self,
        value: Option<&Value>,
        path: &str,
        kind: &str,
        mut each: impl FnMut(&mut Self, &Map<String, Value>, &str) -> Map<String, Value>,
    ) -> Option<Vec<Value>> {
        let items = match value? {
            Value::Null => return None,
            Value::Array(items) => items,
            other => {
                self.cast_error(path, &format!("[{kind}]"), other);
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}.{i}");
            match item {
                Value::Object(obj) => out.push(Value::Object(each(self, obj, &item_path))),
                other => self.cast_error(&item_path, kind, other),
            }
        }
        Some(out)
    }

    fn graph(&mut self, graph: &Value) -> Option<Map<String, Value>> {
        let Value::Object(graph) = graph else {
            self.cast_error("graph", "Embedded", graph);
            return None;
        };
        let mut out = Map::new();
        let nodes = self
            .object_array(graph.get("nodes"), "graph.nodes", "node", Self::node)
            .unwrap_or_default();
        if nodes.is_empty() {
            self.error("graph.nodes", "Flows require at least one node.");
        }
        let node_count = nodes.len();
        out.insert("nodes".into(), Value::Array(nodes));
        let edges = self
            .object_array(graph.get("edges"), "graph.edges", "edge", Self::edge)
            .unwrap_or_default();
        if node_count > 1 && edges.is_empty() {
            self.error(
                "graph.edges",
                "Flows with more than one node require edges.",
            );
        }
        out.insert("edges".into(), Value::Array(edges));
        Some(out)
    }

    fn node(&mut self, node: &Map<String, Value>, path: &str) -> Map<String, Value> {
        let mut out = Map::new();
        // Reverse declaration order, as Mongoose reports them.
        for key in ["nodeSettings", "fields"] {
            if let Some(value) = node.get(key).filter(|v| !v.is_null()) {
                out.insert(key.into(), value.clone());
            }
        }
        self.string_field(
            node,
            &mut out,
            "description",
            &format!("{path}.description"),
        );
        self.object_id_field(
            node,
            &mut out,
            "credentials_id",
            &format!("{path}.credentials_id"),
        );
        self.string_field(node, &mut out, "name", &format!("{path}.name"));
        self.required_string(
            node,
            &mut out,
            "function",
            path,
            "Flow nodes require a function.",
        );
        let component_path = format!("{path}.componentId");
        match self.object_id(node.get("componentId"), &component_path) {
            Some(id) => {
                out.insert("componentId".into(), id);
            }
            None if node.get("componentId").is_none_or(Value::is_null) => {
                self.error(component_path, "Flow nodes require a componentId.");
            }
            // Already reported as a cast error.
            None => {}
        }
        let id = self.required_string(node, &mut out, "id", path, "Flow nodes require an id.");
        self.max_length(id.as_deref(), &format!("{path}.id"), NODE_ID_MAX);
        out
    }

    fn edge(&mut self, edge: &Map<String, Value>, path: &str) -> Map<String, Value> {
        let mut out = Map::new();
        self.required_string(
            edge,
            &mut out,
            "target",
            path,
            "Flow edges require a target.",
        );
        self.required_string(
            edge,
            &mut out,
            "source",
            path,
            "Flow edges require a source.",
        );
        match edge.get("config") {
            None | Some(Value::Null) => {}
            Some(Value::Object(config)) => {
                let mut config_out = Map::new();
                if let Some(mapper) = config.get("mapper").filter(|m| !m.is_null()) {
                    config_out.insert("mapper".into(), mapper.clone());
                }
                let condition_path = format!("{path}.config.condition");
                let condition =
                    self.string_field(config, &mut config_out, "condition", &condition_path);
                self.max_length(condition.as_deref(), &condition_path, EDGE_CONDITION_MAX);
                out.insert("config".into(), Value::Object(config_out));
            }
            Some(other) => self.cast_error(&format!("{path}.config"), "Embedded", other),
        }
        let id_path = format!("{path}.id");
        let id = self.string_field(edge, &mut out, "id", &id_path);
        self.max_length(id.as_deref(), &id_path, EDGE_ID_MAX);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(input: Value) -> Vec<String> {
        let Value::Object(input) = input else {
            panic!("object expected")
        };
        validate(&input)
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn casts_and_drops_unknown_keys() {
        let input = json!({
            "name": 5, "bogus": true,
            "graph": {"nodes": [{"id": "a", "componentId": "5CA5C44C187C040010A9BB8B",
                                 "function": "f", "extra": 1, "fields": {"x": 1}}]}
        });
        let out = validate(input.as_object().expect("object")).expect("valid");
        assert_eq!(out["name"], json!("5"));
        assert!(out.get("bogus").is_none());
        assert_eq!(out["status"], json!("inactive"));
        assert_eq!(out["owners"], json!([]));
        let node = &out["graph"]["nodes"][0];
        assert_eq!(node["componentId"], json!("5ca5c44c187c040010a9bb8b"));
        assert!(node.get("extra").is_none());
        assert_eq!(node["fields"], json!({"x": 1}));
    }

    #[test]
    fn cast_errors_name_the_path() {
        let errors = messages(json!({
            "graph": {"nodes": [{"id": "a", "componentId": "abc", "function": "f",
                                 "credentials_id": 7}]}
        }));
        assert_eq!(
            errors,
            [
                "Cast to ObjectId failed for value \"7\" (type number) at path \"credentials_id\"",
                "Cast to ObjectId failed for value \"abc\" (type string) at path \"componentId\"",
            ]
        );
    }

    #[test]
    fn max_lengths() {
        let long = "x".repeat(31);
        let errors = messages(json!({
            "graph": {"nodes": [{"id": long, "componentId": "5ca5c44c187c040010a9bb8b", "function": "f"}]}
        }));
        assert_eq!(
            errors,
            [format!(
                "Path `id` (`{long}`) is longer than the maximum allowed length (30)."
            )]
        );
    }

    #[test]
    fn cron_accepts_five_to_seven_fields() {
        for cron in [
            "*/5 * * * *",
            "0 */5 * * * *",
            "0 0 12 * * ? 2030",
            "0 0 * * FRI",
        ] {
            let input = json!({"cron": cron, "graph": {"nodes": [
                {"id": "a", "componentId": "5ca5c44c187c040010a9bb8b", "function": "f"}]}});
            assert!(
                validate(input.as_object().expect("object")).is_ok(),
                "{cron} should be valid"
            );
        }
        assert_eq!(
            messages(json!({"cron": "* * *", "graph": {"nodes": [
                {"id": "a", "componentId": "5ca5c44c187c040010a9bb8b", "function": "f"}]}})),
            ["Invalid cron expression."]
        );
    }
}
