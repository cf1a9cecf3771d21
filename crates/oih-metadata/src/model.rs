//! The domain and schema documents as stored, and their JSON views (`_id` shown as `id`,
//! timestamps as `createdAt` / `updatedAt`, as OIH's Mongoose output).

use oih_core::{Owner, OwnerType};
use oih_store::Document;
use serde_json::{Map, Value, json};

/// A domain: a named, owned group of schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub id: String,
    pub version: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub public: bool,
    pub owners: Vec<Owner>,
    pub tenant: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Domain {
    pub fn from_doc(doc: &Document) -> Self {
        let body = &doc.body;
        Self {
            id: doc.id.clone(),
            version: doc.version,
            name: opt_str(body, "name"),
            description: opt_str(body, "description"),
            public: body.get("public").and_then(Value::as_bool).unwrap_or(false),
            owners: owners(body),
            tenant: opt_str(body, "tenant"),
            created_at: doc.created_at.to_rfc3339(),
            updated_at: doc.updated_at.to_rfc3339(),
        }
    }

    /// The stored body (everything but id and timestamps).
    pub fn body(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "public": self.public,
            "owners": self.owners,
            "tenant": self.tenant,
        })
    }

    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), Value::String(self.id.clone()));
        if let Value::Object(body) = self.body() {
            out.extend(body.into_iter().filter(|(_, v)| !v.is_null()));
        }
        out.insert("createdAt".into(), Value::String(self.created_at.clone()));
        out.insert("updatedAt".into(), Value::String(self.updated_at.clone()));
        Value::Object(out)
    }
}

/// The editable fields of a domain, as a caller sends them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub public: bool,
}

impl DomainInput {
    /// Reads `name`, `description` and `public`; other fields (`owners`, `tenant`, …) are
    /// ignored, as OIH sets them itself. Wrong types are refused instead of cast.
    pub fn parse(body: &Value) -> Result<Self, String> {
        let obj = body
            .as_object()
            .ok_or_else(|| "Request body must be a JSON object".to_owned())?;
        let text = |key: &str| match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key} must be a string")),
        };
        let public = match obj.get("public") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("public must be a boolean".into()),
        };
        Ok(Self {
            name: text("name")?,
            description: text("description")?,
            public,
        })
    }
}

/// A stored schema. `uri` is the path of its `$id` (`/api/v1/domains/<d>/schemas/<p>`);
/// `value` the schema serialised as JSON text, as OIH keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub id: String,
    pub version: i64,
    pub name: Option<String>,
    pub domain_id: String,
    pub description: Option<String>,
    pub uri: String,
    pub value: String,
    pub owners: Vec<Owner>,
    /// Every schema uri this one references, directly or through other schemas.
    pub refs: Vec<String>,
    /// The uris this schema's own `$ref`s name; `refs` is recomputed from these when a
    /// referenced schema changes.
    pub direct_refs: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Schema {
    pub fn from_doc(doc: &Document) -> Self {
        let body = &doc.body;
        Self {
            id: doc.id.clone(),
            version: doc.version,
            name: opt_str(body, "name"),
            domain_id: opt_str(body, "domainId").unwrap_or_default(),
            description: opt_str(body, "description"),
            uri: opt_str(body, "uri").unwrap_or_default(),
            value: opt_str(body, "value").unwrap_or_default(),
            owners: owners(body),
            refs: strings(body, "refs"),
            direct_refs: strings(body, "directRefs"),
            created_at: doc.created_at.to_rfc3339(),
            updated_at: doc.updated_at.to_rfc3339(),
        }
    }

    pub fn body(&self) -> Value {
        json!({
            "name": self.name,
            "domainId": self.domain_id,
            "description": self.description,
            "uri": self.uri,
            "value": self.value,
            "owners": self.owners,
            "refs": self.refs,
            "directRefs": self.direct_refs,
        })
    }

    /// The schema document itself.
    pub fn parsed_value(&self) -> Value {
        serde_json::from_str(&self.value).unwrap_or(Value::Null)
    }

    /// OIH's view: `value` stays JSON text unless `parsed` (the single GET parses it).
    pub fn to_json(&self, parsed: bool) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), Value::String(self.id.clone()));
        if let Value::Object(body) = self.body() {
            out.extend(
                body.into_iter()
                    .filter(|(k, v)| !v.is_null() && k != "directRefs"),
            );
        }
        if parsed {
            out.insert("value".into(), self.parsed_value());
        }
        out.insert("createdAt".into(), Value::String(self.created_at.clone()));
        out.insert("updatedAt".into(), Value::String(self.updated_at.clone()));
        Value::Object(out)
    }
}

/// The owner entry OIH writes for a user.
pub fn user_owner(sub: &str) -> Owner {
    Owner {
        id: sub.to_owned(),
        kind: OwnerType::User,
    }
}

fn opt_str(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn strings(body: &Value, key: &str) -> Vec<String> {
    body.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn owners(body: &Value) -> Vec<Owner> {
    body.get("owners")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_input_refuses_wrong_types_and_ignores_owners() {
        let ok =
            DomainInput::parse(&json!({"name": "n", "public": true, "owners": []})).expect("valid");
        assert_eq!(ok.name.as_deref(), Some("n"));
        assert!(ok.public);
        assert!(DomainInput::parse(&json!({"name": 3})).is_err());
        assert!(DomainInput::parse(&json!({"public": "yes"})).is_err());
        assert!(DomainInput::parse(&json!([1])).is_err());
    }
}
