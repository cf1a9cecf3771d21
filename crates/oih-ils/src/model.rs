//! The chunk document and OIH's input rules and messages (iam-ils.md §20.2–20.4).

use chrono::{DateTime, SecondsFormat, Utc};
use oih_http::ApiError;
use serde_json::{Map, Value, json};

pub const INPUT_MISMATCH: &str = "Input does not match schema!";
pub const ILA_ID_CHARS: &str = "ilaId must not contain special characters!";
pub const DEF_MISSING: &str = "Domain ID and Schema URI or custom schema must be specified!";
pub const DEF_BOTH: &str =
    "Either domainId with schemaUri or custom schema must be specified, but not both!";
pub const DOMAIN_DEF_MISSING: &str = "Domain ID and Schema URI must be specified!";
pub const SCHEMA_NOT_FOUND: &str = "DomainId or schemaUri not found!";
pub const SCHEMA_INVALID: &str = "Schema is invalid!";
pub const NO_CID: &str = "Payload does not contain cid!";
pub const MERGE_MISMATCH: &str = "CID and def must match with other flow!";
pub const SPLIT_UNDEFINED: &str = "Split schema is not defined!";
pub const SPLIT_INVALID: &str = "Split schema is not valid!";
pub const SPLIT_KEY_MISSING: &str = "Split key must be defined!";
pub const ILA_ID_REQUIRED: &str = "Integration Layer Adapter ID required!";
pub const NO_CHUNKS: &str = "No chunks found!";

/// Characters OIH refuses in an `ilaId`.
const FORBIDDEN: &[char] = &[
    '\'', '"', '/', '~', '>', '<', '&', '#', '\\', '$', '*', '!', '?', '@', '%', '^', '(', ')', ',',
];

pub fn check_ila_id(ila_id: &str) -> Result<(), ApiError> {
    if ila_id.contains(FORBIDDEN) {
        return Err(ApiError::bad_request(ILA_ID_CHARS));
    }
    Ok(())
}

/// A body of `POST /chunks` or `/chunks/validate` that passed OIH's request schema
/// (`chunk.json`): `ilaId`, `token` (at least 10 characters), `cid` non-empty strings, `def` and
/// `payload` objects, `valid` a boolean when present; other fields are allowed.
#[derive(Debug, Clone)]
pub struct ChunkInput {
    pub ila_id: String,
    pub cid: String,
    pub def: Map<String, Value>,
    pub payload: Map<String, Value>,
}

impl ChunkInput {
    pub fn parse(body: &Value) -> Result<Self, ApiError> {
        let mismatch = || ApiError::bad_request(INPUT_MISMATCH);
        let text = |name: &str, min: usize| {
            body.get(name)
                .and_then(Value::as_str)
                .filter(|s| s.chars().count() >= min)
                .map(str::to_owned)
                .ok_or_else(mismatch)
        };
        let object = |name: &str| {
            body.get(name)
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(mismatch)
        };
        let ila_id = text("ilaId", 1)?;
        text("token", 10)?;
        let cid = text("cid", 1)?;
        let def = object("def")?;
        let payload = object("payload")?;
        if body.get("valid").is_some_and(|v| !v.is_boolean()) {
            return Err(mismatch());
        }
        Ok(Self {
            ila_id,
            cid,
            def,
            payload,
        })
    }

    /// The value of the common-id field, or OIH's 400.
    pub fn cid_value(&self) -> Result<&Value, ApiError> {
        self.payload
            .get(&self.cid)
            .ok_or_else(|| ApiError::bad_request(NO_CID))
    }
}

/// Which schema a `def` names.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaRef {
    Domain {
        domain_id: String,
        schema_uri: String,
    },
    Inline(Value),
}

impl SchemaRef {
    /// OIH's checks 4 and 5 of `POST /chunks`: a domain schema (both `domainId` and
    /// `schemaUri`) or an inline `schema`, never both. Present means "a non-empty value", as in
    /// OIH's truthiness test.
    pub fn from_def(def: &Map<String, Value>) -> Result<Self, ApiError> {
        let text = |name: &str| {
            def.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let inline = def.get("schema").filter(|v| !v.is_null());
        match (text("domainId"), text("schemaUri"), inline) {
            (Some(_), Some(_), Some(_)) => Err(ApiError::Other {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                message: DEF_BOTH.into(),
            }),
            (Some(domain_id), Some(schema_uri), None) => Ok(Self::Domain {
                domain_id: domain_id.to_owned(),
                schema_uri: schema_uri.to_owned(),
            }),
            (_, _, Some(schema)) => Ok(Self::Inline(schema.clone())),
            _ => Err(ApiError::not_found(DEF_MISSING)),
        }
    }
}

/// Stored fields that never leave the service.
const SCOPE: &str = "scope";
const MERGE_KEY: &str = "mergeKey";

/// The unique key of a mergeable chunk within a scope: the common-id field's name and value.
pub fn merge_key(cid: &str, value: &Value) -> String {
    format!("{cid}\u{1f}{value}")
}

/// What a new chunk is made of.
pub struct NewChunk {
    pub ila_id: String,
    pub cid: Option<String>,
    pub def: Option<Map<String, Value>>,
    pub payload: Map<String, Value>,
    pub split_key: Option<String>,
    pub meta: Map<String, Value>,
    pub valid: bool,
}

impl NewChunk {
    /// The stored body. `expire_at` is kept in the body too, because the store's own expiry
    /// is not part of the document the API returns.
    pub fn body(&self, scope: &str, expire_at: DateTime<Utc>) -> Value {
        let mut body = Map::new();
        body.insert(SCOPE.into(), json!(scope));
        body.insert("ilaId".into(), json!(self.ila_id));
        if let Some(cid) = &self.cid {
            body.insert("cid".into(), json!(cid));
            if let Some(value) = self.payload.get(cid) {
                body.insert(MERGE_KEY.into(), json!(merge_key(cid, value)));
            }
        }
        if let Some(def) = &self.def {
            body.insert("def".into(), Value::Object(def.clone()));
        }
        body.insert("payload".into(), Value::Object(self.payload.clone()));
        if let Some(key) = &self.split_key {
            body.insert("splitKey".into(), json!(key));
        }
        body.insert("meta".into(), Value::Object(self.meta.clone()));
        body.insert("valid".into(), json!(self.valid));
        set_expiry(&mut body, expire_at);
        Value::Object(body)
    }
}

pub fn set_expiry(body: &mut Map<String, Value>, expire_at: DateTime<Utc>) {
    body.insert(
        "expireAt".into(),
        json!(expire_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
}

/// A chunk as the API shows it: OIH's fields with `_id`, without the internal ones.
pub fn render(id: &str, body: &Value) -> Value {
    let mut out = Map::new();
    out.insert("_id".into(), json!(id));
    if let Some(fields) = body.as_object() {
        for (k, v) in fields {
            if k != SCOPE && k != MERGE_KEY {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// One element of a split schema, checked.
pub struct SplitPart {
    pub meta: Map<String, Value>,
    pub split_key: String,
    /// The fields to copy from the source payload.
    pub fields: Vec<String>,
    /// The schema the part's payload is validated against, when the element names one.
    pub def: Option<(Map<String, Value>, SchemaRef)>,
}

/// A checked `POST /chunks/split` body.
pub struct SplitInput {
    pub ila_id: String,
    pub payload: Map<String, Value>,
    pub parts: Vec<SplitPart>,
}

impl SplitInput {
    /// OIH's split checks, all made before anything is stored (OIH stored the good elements
    /// and then answered 400 for a bad one).
    pub fn parse(body: &Value) -> Result<Self, ApiError> {
        let ila_id = body
            .get("ilaId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request(INPUT_MISMATCH))?;
        check_ila_id(ila_id)?;
        let payload = body
            .get("payload")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| ApiError::bad_request(INPUT_MISMATCH))?;
        let schema = match body.get("splitSchema") {
            None | Some(Value::Null) => return Err(ApiError::bad_request(SPLIT_UNDEFINED)),
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(_) => return Err(ApiError::bad_request(SPLIT_INVALID)),
        };
        let parts = schema
            .iter()
            .map(SplitPart::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            ila_id: ila_id.to_owned(),
            payload,
            parts,
        })
    }
}

impl SplitPart {
    fn parse(element: &Value) -> Result<Self, ApiError> {
        let meta = element
            .get("meta")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let split_key = match meta.get("splitKey") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(ApiError::bad_request(SPLIT_KEY_MISSING)),
        };
        let fields = match element.get("payload") {
            Some(Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => return Err(ApiError::bad_request(SPLIT_INVALID)),
        };
        let def = match element.get("def") {
            None | Some(Value::Null) => None,
            Some(Value::Object(def)) => Some((def.clone(), SchemaRef::from_def(def)?)),
            Some(_) => return Err(ApiError::bad_request(SPLIT_INVALID)),
        };
        Ok(Self {
            meta,
            split_key,
            fields,
            def,
        })
    }

    /// OIH's projection: each named field from the source, or `""` when the source lacks it.
    pub fn project(&self, source: &Map<String, Value>) -> Map<String, Value> {
        self.fields
            .iter()
            .map(|f| (f.clone(), source.get(f).cloned().unwrap_or(json!(""))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Result<ChunkInput, ApiError> {
        ChunkInput::parse(&v)
    }

    #[test]
    fn request_schema() {
        let ok = json!({"ilaId":"a","token":"0123456789","cid":"email","def":{},"payload":{}});
        assert!(body(ok.clone()).is_ok());
        for (field, bad) in [
            ("ilaId", json!("")),
            ("token", json!("short")),
            ("cid", json!(1)),
            ("def", json!([])),
            ("payload", json!("x")),
            ("valid", json!("yes")),
        ] {
            let mut b = ok.clone();
            b[field] = bad;
            let err = body(b).expect_err(field);
            assert_eq!(err.report().errors[0].message, INPUT_MISMATCH);
        }
    }

    #[test]
    fn forbidden_ila_id_chars() {
        assert!(check_ila_id("ila-1_x.y").is_ok());
        for c in FORBIDDEN {
            assert!(check_ila_id(&format!("a{c}b")).is_err(), "{c}");
        }
    }

    #[test]
    fn def_classification() {
        let def = |v: Value| SchemaRef::from_def(v.as_object().expect("object"));
        assert_eq!(
            def(json!({"domainId":"d","schemaUri":"s"})).expect("domain"),
            SchemaRef::Domain {
                domain_id: "d".into(),
                schema_uri: "s".into()
            }
        );
        assert!(matches!(
            def(json!({"schema":{"type":"object"}})),
            Ok(SchemaRef::Inline(_))
        ));
        let status = |v: Value| def(v).expect_err("error").status().as_u16();
        assert_eq!(status(json!({})), 404);
        assert_eq!(status(json!({"domainId":"d"})), 404);
        assert_eq!(
            status(json!({"domainId":"d","schemaUri":"s","schema":{}})),
            405
        );
    }

    #[test]
    fn split_projection_fills_missing_fields() {
        let part = SplitPart::parse(&json!({"meta":{"splitKey":"k"},"payload":{"a":1,"b":1}}))
            .expect("part");
        let source = json!({"a": 5, "c": 7});
        let projected = part.project(source.as_object().expect("object"));
        assert_eq!(Value::Object(projected), json!({"a":5,"b":""}));
    }

    #[test]
    fn render_hides_internal_fields() {
        let chunk = NewChunk {
            ila_id: "i".into(),
            cid: Some("email".into()),
            def: None,
            payload: json!({"email":"x"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            split_key: None,
            meta: Map::new(),
            valid: true,
        };
        let out = render("abc", &chunk.body("t1", Utc::now()));
        assert_eq!(out["_id"], "abc");
        assert!(out.get("scope").is_none() && out.get("mergeKey").is_none());
        assert_eq!(out["payload"]["email"], "x");
    }
}
