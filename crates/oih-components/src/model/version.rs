//! `ComponentVersion` (one release of a virtual component: its functions and authorization)
//! and `ComponentConfig` (a tenant's settings for one version).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Problems;

pub const AUTH_TYPES: &[&str] = &[
    "NO_AUTH",
    "API_KEY",
    "OA1_TWO_LEGGED",
    "OA1_THREE_LEGGED",
    "OA2_AUTHORIZATION_CODE",
    "SIMPLE",
    "MIXED",
    "SESSION_AUTH",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentVersion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_id: Option<String>,
    #[serde(default)]
    pub authorization: Authorization,
    #[serde(default)]
    pub actions: Vec<Function>,
    #[serde(default)]
    pub triggers: Vec<Function>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_component_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_setup_link: Option<String>,
}

/// A trigger or action of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<Schemas>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schemas {
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, rename = "out", skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

impl ComponentVersion {
    pub fn validate(&self) -> Result<(), oih_http::ApiError> {
        let mut p = Problems::default();
        p.required_text("name", self.name.as_deref());
        p.max_len("name", self.name.as_deref(), 50);
        p.max_len("description", self.description.as_deref(), 300);
        match self.component_id.as_deref() {
            None | Some("") => p.required_text("componentId", None),
            id => p.object_id("componentId", id),
        }
        match self.authorization.auth_type.as_deref() {
            None | Some("") => p.required_text("authorization.authType", None),
            Some(kind) => p.one_of("authorization.authType", kind, AUTH_TYPES),
        }
        for (list, functions) in [("actions", &self.actions), ("triggers", &self.triggers)] {
            for (i, f) in functions.iter().enumerate() {
                p.required_text(&format!("{list}.{i}.name"), f.name.as_deref());
                p.required_text(&format!("{list}.{i}.function"), f.function.as_deref());
            }
        }
        p.finish()
    }

    /// The light projection of `GET /virtual-components/defaults?verbose=false`.
    pub fn light(&self) -> Map<String, Value> {
        let functions = |list: &[Function]| -> Vec<Value> {
            list.iter()
                .map(|f| {
                    let mut o = Map::new();
                    for (key, value) in [
                        ("name", &f.name),
                        ("title", &f.title),
                        ("description", &f.description),
                    ] {
                        if let Some(v) = value {
                            o.insert(key.into(), json!(v));
                        }
                    }
                    o.insert("active".into(), json!(f.active));
                    Value::Object(o)
                })
                .collect()
        };
        let mut o = Map::new();
        o.insert("name".into(), json!(self.name));
        o.insert("authorization".into(), json!(self.authorization));
        if let Some(logo) = &self.logo {
            o.insert("logo".into(), json!(logo));
        }
        if let Some(description) = &self.description {
            o.insert("description".into(), json!(description));
        }
        o.insert("componentId".into(), json!(self.component_id));
        o.insert(
            "virtualComponentId".into(),
            json!(self.virtual_component_id),
        );
        o.insert("triggers".into(), Value::Array(functions(&self.triggers)));
        o.insert("actions".into(), Value::Array(functions(&self.actions)));
        o
    }
}

/// component.json describes functions as a map `name → {title, main, description, fields,
/// metadata:{in,out}}`; versions store a list. A map in a request body is converted.
pub fn functions_from_map(body: &mut Map<String, Value>) {
    for key in ["actions", "triggers"] {
        let Some(Value::Object(map)) = body.get(key) else {
            continue;
        };
        let list: Vec<Value> = map
            .iter()
            .map(|(name, f)| {
                let field = |k: &str| f.get(k).cloned().unwrap_or(Value::Null);
                let meta = |k: &str| f.pointer(&format!("/metadata/{k}")).cloned();
                json!({
                    "name": name,
                    "title": field("title"),
                    "function": field("main"),
                    "description": field("description"),
                    "fields": field("fields"),
                    "schemas": {"in": meta("in"), "out": meta("out")},
                })
            })
            .collect();
        body.insert(key.into(), Value::Array(list));
    }
}

/// A tenant's configuration of one component version (e.g. which auth client to use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentConfig {
    pub component_version_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_client_id: Option<String>,
    pub tenant: String,
}
