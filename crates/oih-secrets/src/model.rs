//! The secret document and its validation: OIH's secret types, the `value` fields each one
//! has, and the owner rules (data-services.md §3.3).

use std::fmt;
use std::str::FromStr;

use oih_core::{Identity, Owner, OwnerType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretType {
    Simple,
    Mixed,
    ApiKey,
    SessionAuth,
    Oa1TwoLegged,
    Oa1ThreeLegged,
    Oa2AuthorizationCode,
}

impl SecretType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simple => "SIMPLE",
            Self::Mixed => "MIXED",
            Self::ApiKey => "API_KEY",
            Self::SessionAuth => "SESSION_AUTH",
            Self::Oa1TwoLegged => "OA1_TWO_LEGGED",
            Self::Oa1ThreeLegged => "OA1_THREE_LEGGED",
            Self::Oa2AuthorizationCode => "OA2_AUTHORIZATION_CODE",
        }
    }

    /// The fields `value` may hold, as OIH's discriminator schema declares them; anything else
    /// is dropped, as Mongoose does.
    fn fields(self) -> &'static [Field] {
        use FieldKind::{Any, Text};
        const SIMPLE: &[Field] = &[f("username", Text, true), f("passphrase", Text, true)];
        const MIXED: &[Field] = &[f("payload", Text, true)];
        const API_KEY: &[Field] = &[f("key", Text, true), f("headerName", Text, false)];
        const SESSION_AUTH: &[Field] = &[
            f("authClientId", Text, true),
            f("accessToken", Text, false),
            f("expires", Text, false),
            f("inputFields", Any, false),
        ];
        // OIH's held `expiresAt` only; `authClientId` names the client whose consumer
        // credentials sign the requests (optional, as OIH's secrets lack it).
        const OA1_TWO_LEGGED: &[Field] =
            &[f("authClientId", Text, false), f("expiresAt", Text, false)];
        const OA1_THREE_LEGGED: &[Field] = &[
            f("authClientId", Text, true),
            f("accessToken", Text, true),
            f("accessTokenSecret", Text, true),
            f("scope", Text, false),
            f("expires", Text, false),
            f("externalId", Text, false),
        ];
        const OA2: &[Field] = &[
            f("authClientId", Text, true),
            f("refreshToken", Text, false),
            f("accessToken", Text, true),
            f("scope", Text, false),
            f("expires", Text, true),
            f("externalId", Text, false),
        ];
        match self {
            Self::Simple => SIMPLE,
            Self::Mixed => MIXED,
            Self::ApiKey => API_KEY,
            Self::SessionAuth => SESSION_AUTH,
            Self::Oa1TwoLegged => OA1_TWO_LEGGED,
            Self::Oa1ThreeLegged => OA1_THREE_LEGGED,
            Self::Oa2AuthorizationCode => OA2,
        }
    }

    /// OIH's message when `value.authClientId` names no auth client (it differs by type).
    pub fn missing_auth_client_message(self) -> Option<&'static str> {
        match self {
            Self::SessionAuth | Self::Oa1TwoLegged | Self::Oa1ThreeLegged => {
                Some("Auth client does not exist")
            }
            Self::Oa2AuthorizationCode => Some("Auth client is not existing"),
            _ => None,
        }
    }

    /// The Mongoose model name that prefixes OIH's validation messages.
    pub fn model_name(self) -> String {
        format!("S_{}", self.as_str())
    }
}

impl fmt::Display for SecretType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecretType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        [
            Self::Simple,
            Self::Mixed,
            Self::ApiKey,
            Self::SessionAuth,
            Self::Oa1TwoLegged,
            Self::Oa1ThreeLegged,
            Self::Oa2AuthorizationCode,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or(())
    }
}

impl Serialize for SecretType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SecretType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse()
            .map_err(|()| serde::de::Error::custom(format!("unknown secret type {s:?}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// A string; numbers and booleans are turned into strings, as Mongoose casts them.
    Text,
    /// Any JSON value (`inputFields`: the user's answers to the auth client's fields).
    Any,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    kind: FieldKind,
    required: bool,
}

const fn f(name: &'static str, kind: FieldKind, required: bool) -> Field {
    Field {
        name,
        kind,
        required,
    }
}

/// Fields stored encrypted: OIH's list plus the API key's `key`, which OIH left in clear text.
pub const SENSITIVE_FIELDS: &[&str] = &[
    "accessTokenSecret",
    "accessToken",
    "refreshToken",
    "passphrase",
    "username",
    "payload",
    "inputFields",
    "key",
];

/// A secret as stored in `secrets_secrets` (values of [`SENSITIVE_FIELDS`] are envelopes and
/// listed in `encryptedFields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSecret {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SecretType,
    pub owners: Vec<Owner>,
    /// The creator's tenant; selects the data key. OIH never set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_properties: Option<Value>,
    #[serde(default)]
    pub value: Map<String, Value>,
    #[serde(default)]
    pub encrypted_fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_error: Option<Value>,
    /// Set while a replica refreshes the token (the refresh lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl StoredSecret {
    /// OIH's ownership rule for secrets: a USER owner that is the caller, or a TENANT owner
    /// that is the caller's tenant.
    pub fn is_accessible_by(&self, who: &Identity) -> bool {
        who.is_owner_of(&self.owners, None, true)
    }
}

/// A validation failure, worded as OIH's Mongoose messages are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

fn required(model: &str, path: &str) -> Invalid {
    Invalid(format!(
        "{model} validation failed: {path}: Path `{path}` is required."
    ))
}

fn cast(model: &str, path: &str) -> Invalid {
    Invalid(format!(
        "{model} validation failed: {path}: Cast to string failed for value at path `{path}`"
    ))
}

/// The JSON string of a text field, Mongoose-style: numbers and booleans become strings, null
/// means absent, anything else is a cast error.
fn text(value: &Value) -> Option<Result<String, ()>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(Ok(s.clone())),
        Value::Number(n) => Some(Ok(n.to_string())),
        Value::Bool(b) => Some(Ok(b.to_string())),
        _ => Some(Err(())),
    }
}

/// Keeps the fields `kind` declares, cast to their types; `complete` also checks the required
/// ones are present (a whole value on create, the merged value on update).
pub fn clean_value(
    kind: SecretType,
    raw: &Map<String, Value>,
    complete: bool,
) -> Result<Map<String, Value>, Invalid> {
    let model = kind.model_name();
    let mut out = Map::new();
    for field in kind.fields() {
        let path = format!("value.{}", field.name);
        let cleaned = match (raw.get(field.name), field.kind) {
            (None | Some(Value::Null), _) => None,
            (Some(v), FieldKind::Any) => Some(v.clone()),
            (Some(v), FieldKind::Text) => match text(v) {
                Some(Ok(s)) => Some(Value::String(s)),
                Some(Err(())) => return Err(cast(&model, &path)),
                None => None,
            },
        };
        match cleaned {
            Some(v) => {
                out.insert(field.name.to_owned(), normalize(field.name, v));
            }
            None if complete && field.required => return Err(required(&model, &path)),
            None => {}
        }
    }
    Ok(out)
}

/// The fields the caller sent for an update that exist for `kind`. Null is kept (it clears
/// an optional field).
pub fn clean_patch(
    kind: SecretType,
    raw: &Map<String, Value>,
) -> Result<Map<String, Value>, Invalid> {
    let model = kind.model_name();
    let mut out = Map::new();
    for field in kind.fields() {
        let Some(v) = raw.get(field.name) else {
            continue;
        };
        let cleaned = match (v, field.kind) {
            (Value::Null, _) | (_, FieldKind::Any) => v.clone(),
            (_, FieldKind::Text) => match text(v) {
                Some(Ok(s)) => Value::String(s),
                _ => return Err(cast(&model, &format!("value.{}", field.name))),
            },
        };
        out.insert(field.name.to_owned(), normalize(field.name, cleaned));
    }
    Ok(out)
}

/// Ids are stored in lowercase, as ids are generated, so references match however written.
fn normalize(field: &str, value: Value) -> Value {
    match value {
        Value::String(s) if field == "authClientId" => Value::String(s.to_ascii_lowercase()),
        other => other,
    }
}

/// Checks a required text field is present after a merge.
pub fn check_complete(kind: SecretType, value: &Map<String, Value>) -> Result<(), Invalid> {
    let model = kind.model_name();
    for field in kind.fields().iter().filter(|f| f.required) {
        if value.get(field.name).is_none_or(Value::is_null) {
            return Err(required(&model, &format!("value.{}", field.name)));
        }
    }
    Ok(())
}

pub const OWNERS_INVALID: &str = "Owners is not valid";

/// Parses the `owners` of a request: `[{id, type}]` with type USER or TENANT, where a TENANT
/// owner must be the caller's own tenant (OIH's rule; otherwise anyone could share a secret
/// into another tenant).
pub fn parse_owners(raw: &Value, who: &Identity) -> Result<Vec<Owner>, Invalid> {
    let invalid = || Invalid(OWNERS_INVALID.into());
    let Value::Array(items) = raw else {
        return Err(invalid());
    };
    items
        .iter()
        .map(|item| {
            let id = item
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let kind = match item.get("type") {
                None | Some(Value::Null) => Some(OwnerType::User),
                Some(t) => serde_json::from_value::<OwnerType>(t.clone()).ok(),
            };
            match (id, kind) {
                (Some(id), Some(OwnerType::Tenant)) if who.tenant.as_deref() != Some(id) => {
                    Err(invalid())
                }
                (Some(id), Some(kind)) => Ok(Owner {
                    id: id.to_owned(),
                    kind,
                }),
                _ => Err(invalid()),
            }
        })
        .collect()
}

/// Adds `owner` unless present (Mongo's `$addToSet`); returns whether it was added.
pub fn add_owner(owners: &mut Vec<Owner>, owner: Owner) -> bool {
    if owners.contains(&owner) {
        return false;
    }
    owners.push(owner);
    true
}

/// Builds a new secret from a create request (already unwrapped from `{data}`): the caller
/// becomes the first owner and the secret belongs to the caller's tenant.
pub fn parse_new(body: &Map<String, Value>, who: &Identity) -> Result<StoredSecret, Invalid> {
    let kind = match body.get("type") {
        None | Some(Value::Null) => return Err(required("Secret", "type")),
        Some(Value::String(t)) => t
            .parse::<SecretType>()
            .map_err(|()| Invalid(format!("Unknown secret type {t:?}")))?,
        Some(_) => return Err(Invalid("Secret type must be a string".into())),
    };
    let model = kind.model_name();
    let name = match body.get("name").map(text) {
        Some(Some(Ok(name))) if !name.is_empty() => name,
        Some(Some(Err(()))) => return Err(cast(&model, "name")),
        _ => return Err(required(&model, "name")),
    };
    let mut owners = vec![Owner {
        id: who.sub.clone(),
        kind: OwnerType::User,
    }];
    if let Some(raw) = body.get("owners").filter(|v| !v.is_null()) {
        for owner in parse_owners(raw, who)? {
            add_owner(&mut owners, owner);
        }
    }
    let value = match body.get("value") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(v)) => v.clone(),
        Some(_) => {
            return Err(Invalid(format!(
                "{model} validation failed: value: must be an object"
            )));
        }
    };
    Ok(StoredSecret {
        name,
        kind,
        owners,
        tenant: who.tenant.clone(),
        domain: optional_text(body, "domain", &model)?,
        mixed_properties: body
            .get("mixedProperties")
            .filter(|v| !v.is_null())
            .cloned(),
        value: clean_value(kind, &value, true)?,
        encrypted_fields: Vec::new(),
        current_error: None,
        locked_at: None,
    })
}

/// An optional top-level text field (`domain`).
pub fn optional_text(
    body: &Map<String, Value>,
    field: &str,
    model: &str,
) -> Result<Option<String>, Invalid> {
    match body.get(field).and_then(text) {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s)),
        Some(Err(())) => Err(cast(model, field)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn type_names_round_trip() {
        for name in [
            "SIMPLE",
            "MIXED",
            "API_KEY",
            "SESSION_AUTH",
            "OA1_TWO_LEGGED",
            "OA1_THREE_LEGGED",
            "OA2_AUTHORIZATION_CODE",
        ] {
            let t: SecretType = name.parse().expect(name);
            assert_eq!(t.as_str(), name);
        }
        assert!("simple".parse::<SecretType>().is_err());
    }

    #[test]
    fn values_are_cleaned_and_checked() {
        let v = clean_value(
            SecretType::Simple,
            &obj(json!({"username": "u", "passphrase": 1234, "extra": "x"})),
            true,
        )
        .expect("valid");
        assert_eq!(
            Value::Object(v),
            json!({"username": "u", "passphrase": "1234"})
        );
        assert_eq!(
            clean_value(SecretType::Simple, &obj(json!({"username": "u"})), true),
            Err(Invalid(
                "S_SIMPLE validation failed: value.passphrase: Path `value.passphrase` is required."
                    .into()
            ))
        );
        assert!(clean_value(SecretType::Mixed, &obj(json!({"payload": {"a": 1}})), true).is_err());
        let s = clean_value(
            SecretType::SessionAuth,
            &obj(json!({"authClientId": "x", "inputFields": {"a": 1}})),
            true,
        )
        .expect("valid");
        assert_eq!(s.get("inputFields"), Some(&json!({"a": 1})));
    }

    #[test]
    fn owners_rules() {
        let who = Identity::new("u1", Some("t1".into()), vec![]);
        let owners = parse_owners(&json!([{"id": "t1", "type": "TENANT"}, {"id": "u2"}]), &who)
            .expect("valid");
        assert_eq!(owners.len(), 2);
        assert_eq!(owners[1].kind, OwnerType::User);
        for bad in [
            json!([{"id": "t2", "type": "TENANT"}]),
            json!([{"id": "u2", "type": "GROUP"}]),
            json!([{"type": "USER"}]),
            json!({"id": "u2"}),
        ] {
            assert!(parse_owners(&bad, &who).is_err(), "{bad}");
        }
    }
}
