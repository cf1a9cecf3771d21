//! Auth clients (data-services.md §3.3): the OAuth / session-login configurations secrets are
//! obtained and refreshed with. Each type's fields are described by a small schema, checked
//! on create and update with Mongoose-style messages.

use oih_core::{Identity, Owner};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{Invalid, SecretType};

/// A field's expected shape.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Text,
    Bool,
    OneOf(&'static [&'static str]),
    Object(&'static [Field]),
    ListOf(&'static [Field]),
}

#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    shape: Shape,
    required: bool,
}

const fn req(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: true,
    }
}

const fn opt(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: false,
    }
}

use Shape::{Bool, Object, Text};

const REQUEST_CONFIG: &[Field] = &[
    opt(
        "requestFields",
        Shape::ListOf(&[req("key", Text), opt("value", Text)]),
    ),
    opt("label", Text),
    req(
        "authType",
        Shape::OneOf(&["HEADER_AUTH", "BODY_AUTH", "PARAMS_AUTH", "FORM_AUTH"]),
    ),
    req("url", Text),
];

const OA1_TWO_LEGGED: &[Field] = &[
    req("consumerKey", Text),
    req("consumerSecret", Text),
    req("nonce", Text),
    req("signature", Text),
    req("signatureMethod", Text),
    opt("verifier", Text),
];

const OA1_THREE_LEGGED: &[Field] = &[
    opt("appName", Text),
    req("key", Text),
    req("secret", Text),
    opt("nonce", Text),
    opt("signature", Text),
    opt("signatureMethod", Text),
    opt("expiration", Text),
    req(
        "endpoints",
        Object(&[
            req("request", Text),
            req("authorize", Text),
            req("access", Text),
        ]),
    ),
    req("redirectUri", Text),
];

const OA2: &[Field] = &[
    req("clientId", Text),
    req("clientSecret", Text),
    req("redirectUri", Text),
    opt("refreshWithScope", Bool),
    req(
        "endpoints",
        Object(&[
            req("auth", Text),
            req("token", Text),
            opt("userinfo", Text),
            opt("revocation", Text),
            opt("endSession", Text),
        ]),
    ),
    opt("predefinedScope", Text),
];

const SESSION_AUTH: &[Field] = &[
    req(
        "fields",
        Shape::ListOf(&[req("key", Text), opt("label", Text), opt("required", Bool)]),
    ),
    opt("tokenPath", Text),
    opt("expirationPath", Text),
    req(
        "endpoints",
        Object(&[
            req("auth", Object(REQUEST_CONFIG)),
            opt("verification", Object(REQUEST_CONFIG)),
        ]),
    ),
];

/// Credentials of auth clients: sealed at rest, and masked for callers without
/// `secrets.authClient.readRaw`.
pub const CLIENT_SENSITIVE: &[&str] = &["clientSecret", "consumerSecret", "secret"];
/// Masked for callers without readRaw (OIH masked `clientId` too).
const CLIENT_MASKED: &[&str] = &["clientId", "clientSecret", "consumerSecret", "secret"];
pub const CLIENT_READ_RAW: &str = "secrets.authClient.readRaw";

/// The auth client types (OIH has no SIMPLE/MIXED/API_KEY clients).
fn schema(kind: SecretType) -> Option<&'static [Field]> {
    match kind {
        SecretType::Oa1TwoLegged => Some(OA1_TWO_LEGGED),
        SecretType::Oa1ThreeLegged => Some(OA1_THREE_LEGGED),
        SecretType::Oa2AuthorizationCode => Some(OA2),
        SecretType::SessionAuth => Some(SESSION_AUTH),
        _ => None,
    }
}

/// OIH's discriminator model names, which prefix its validation messages.
fn model_name(kind: SecretType) -> String {
    let prefix = match kind {
        SecretType::Oa1TwoLegged | SecretType::Oa1ThreeLegged => "C",
        _ => "A",
    };
    format!("{prefix}_{}", kind.as_str())
}

/// An auth client as stored in `secrets_auth_clients`; the type's fields are kept flat next
/// to the common ones, as OIH stores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredClient {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SecretType,
    pub owners: Vec<Owner>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Names how the callback derives the account id (`value.externalId`) of a new secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessor: Option<String>,
    #[serde(default)]
    pub encrypted_fields: Vec<String>,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl StoredClient {
    /// May use the client (start flows, reference it from secrets): a USER owner, or a member
    /// of a TENANT owner. OIH let anyone use any client.
    pub fn is_usable_by(&self, who: &Identity) -> bool {
        who.is_owner_of(&self.owners, None, true)
    }

    /// May change or delete it: a USER owner, or a tenant admin of a TENANT owner.
    pub fn is_manageable_by(&self, who: &Identity) -> bool {
        who.is_owner_of(&self.owners, None, false)
    }

    pub fn text(&self, path: &[&str]) -> Option<&str> {
        let (last, parents) = path.split_last()?;
        let mut map = &self.fields;
        for p in parents {
            map = map.get(*p)?.as_object()?;
        }
        map.get(*last)?.as_str()
    }
}

/// Masks a client's credentials for a caller without readRaw.
pub fn mask_client(fields: &mut Map<String, Value>, raw: bool) {
    if raw {
        return;
    }
    for name in CLIENT_MASKED {
        if let Some(v) = fields.get_mut(*name)
            && !v.is_null()
        {
            *v = Value::String("***".into());
        }
    }
}

/// The type of a create request: one of the four client types.
pub fn parse_kind(body: &Map<String, Value>) -> Result<SecretType, Invalid> {
    let name = match body.get("type") {
        Some(Value::String(t)) => t,
        None | Some(Value::Null) => {
            return Err(Invalid(
                "AuthClient validation failed: type: Path `type` is required.".into(),
            ));
        }
        Some(_) => return Err(Invalid("Auth client type must be a string".into())),
    };
    name.parse::<SecretType>()
        .ok()
        .filter(|k| schema(*k).is_some())
        .ok_or_else(|| Invalid(format!("Unknown auth client type {name:?}")))
}

/// The type's fields of `body`, checked and cleaned (unknown keys dropped, as Mongoose does).
pub fn clean_fields(
    kind: SecretType,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, Invalid> {
    let Some(fields) = schema(kind) else {
        return Err(Invalid(format!(
            "Unknown auth client type {:?}",
            kind.as_str()
        )));
    };
    clean_object(&model_name(kind), "", fields, body)
}

fn clean_object(
    model: &str,
    prefix: &str,
    fields: &[Field],
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, Invalid> {
    let mut out = Map::new();
    for field in fields {
        let path = format!("{prefix}{}", field.name);
        match body.get(field.name) {
            None | Some(Value::Null) if field.required => {
                return Err(Invalid(format!(
                    "{model} validation failed: {path}: Path `{path}` is required."
                )));
            }
            None | Some(Value::Null) => {}
            Some(v) => {
                out.insert(field.name.to_owned(), clean(model, &path, field.shape, v)?);
            }
        }
    }
    Ok(out)
}

fn clean(model: &str, path: &str, shape: Shape, v: &Value) -> Result<Value, Invalid> {
    let wrong = |what: &str| Invalid(format!("{model} validation failed: {path}: must be {what}"));
    match (shape, v) {
        (Text, Value::String(_)) => Ok(v.clone()),
        (Text, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (Text, _) => Err(wrong("a string")),
        (Bool, Value::Bool(_)) => Ok(v.clone()),
        (Bool, _) => Err(wrong("a boolean")),
        (Shape::OneOf(allowed), Value::String(s)) if allowed.contains(&s.as_str()) => Ok(v.clone()),
        (Shape::OneOf(allowed), _) => Err(wrong(&format!("one of {}", allowed.join(", ")))),
        (Object(fields), Value::Object(map)) => Ok(Value::Object(clean_object(
            model,
            &format!("{path}."),
            fields,
            map,
        )?)),
        (Object(_), _) => Err(wrong("an object")),
        (Shape::ListOf(fields), Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => {
                    clean_object(model, &format!("{path}.{i}."), fields, map).map(Value::Object)
                }
                _ => Err(wrong("a list of objects")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (Shape::ListOf(_), _) => Err(wrong("a list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn oa2_fields() {
        let body = obj(
            json!({"clientId": "id", "clientSecret": "s", "redirectUri": "https://x/cb",
            "endpoints": {"auth": "https://p/auth?scope={{scope}}", "token": "https://p/token", "junk": 1},
            "mappings": {}}),
        );
        let clean = clean_fields(SecretType::Oa2AuthorizationCode, &body).expect("valid");
        assert!(clean.get("mappings").is_none());
        assert_eq!(
            clean["endpoints"],
            json!({"auth": "https://p/auth?scope={{scope}}", "token": "https://p/token"})
        );
        let mut missing = body.clone();
        missing.insert("endpoints".into(), json!({"auth": "a"}));
        assert_eq!(
            clean_fields(SecretType::Oa2AuthorizationCode, &missing),
            Err(Invalid("A_OA2_AUTHORIZATION_CODE validation failed: endpoints.token: Path `endpoints.token` is required.".into()))
        );
    }

    #[test]
    fn session_fields() {
        let body = obj(json!({"fields": [{"key": "user", "required": true}],
            "endpoints": {"auth": {"url": "https://x/login", "authType": "BODY_AUTH",
                                   "requestFields": [{"key": "u", "value": "{{fields.user}}"}]}}}));
        assert!(clean_fields(SecretType::SessionAuth, &body).is_ok());
        let bad = obj(
            json!({"fields": [{"label": "x"}], "endpoints": {"auth": {"url": "u", "authType": "BODY_AUTH"}}}),
        );
        assert!(clean_fields(SecretType::SessionAuth, &bad).is_err());
        let bad_type =
            obj(json!({"fields": [], "endpoints": {"auth": {"url": "u", "authType": "MAGIC"}}}));
        assert!(clean_fields(SecretType::SessionAuth, &bad_type).is_err());
        assert!(parse_kind(&obj(json!({"type": "SIMPLE"}))).is_err());
        assert!(parse_kind(&obj(json!({"type": "foo"}))).is_err());
    }
}
