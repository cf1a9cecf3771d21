//! IAM's documents as stored in the `iam_*` collections (iam-ils.md §3), their validation, and
//! how they are rendered in OIH's JSON (`_id`, `createdAt`, `updatedAt`, `__v`; never the
//! password hash).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::Stored;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    #[default]
    Active,
    Disabled,
    Pending,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Safeguard {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<DateTime<Utc>>,
    #[serde(default)]
    pub failed_login_attempts: u32,
}

/// An account (user or service account: OIH has no type, only permissions).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firstname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub confirmed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub safeguard: Safeguard,
    /// argon2id PHC string, or (with `salt`) an OIH PBKDF2 hex hash. Never rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

/// Account fields a client may write (POST/PATCH/PUT `/users`): everything but the hash and
/// the login bookkeeping. Unknown fields are dropped, as OIH's strict schema drops them.
pub const ACCOUNT_WRITABLE: &[&str] = &[
    "username",
    "firstname",
    "lastname",
    "phone",
    "avatar",
    "status",
    "confirmed",
    "tenant",
    "roles",
    "permissions",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub name: String,
    #[serde(default = "yes")]
    pub confirmed: bool,
    #[serde(default)]
    pub status: Status,
}

pub const TENANT_WRITABLE: &[&str] = &["name", "confirmed", "status"];

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum RoleType {
    #[default]
    Tenant,
    System,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: RoleType,
    #[serde(default)]
    pub is_global: bool,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenType {
    EphemeralServiceAccount,
    Persistent,
    #[default]
    #[serde(rename = "SELF")]
    SelfToken,
    Delegate,
}

/// An opaque token (iam-ils.md §3.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenDoc {
    pub token: String,
    #[serde(rename = "type")]
    pub kind: TokenType,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inquirer: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub description: String,
    pub token_life_span: String,
    /// Absent for persistent tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<DateTime<Utc>>,
}

/// A tenant's opaque key (iam-ils.md §3.5), used by secret-service's "tenant key" mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantKey {
    pub tenant: String,
    pub value: String,
}

/// OIH's JSON for a stored document: `_id` first, the body without `hidden` keys, then the
/// Mongoose bookkeeping fields.
pub fn render<T: Serialize>(doc: &Stored<T>, hidden: &[&str]) -> Value {
    let mut out = Map::new();
    out.insert("_id".into(), Value::String(doc.id.clone()));
    if let Ok(Value::Object(body)) = serde_json::to_value(&doc.body) {
        for (k, v) in body {
            if !hidden.contains(&k.as_str()) {
                out.insert(k, v);
            }
        }
    }
    out.insert("createdAt".into(), Value::String(iso(doc.created_at)));
    out.insert("updatedAt".into(), Value::String(iso(doc.updated_at)));
    out.insert("__v".into(), Value::from(doc.version - 1));
    Value::Object(out)
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub const ACCOUNT_HIDDEN: &[&str] = &["hash", "salt"];

/// Applies the `writable` fields of a JSON body to `current` (Mongo's `$set` of the body) and
/// re-validates the whole document through its type. Other body fields are ignored.
pub fn apply_patch<T: Serialize + DeserializeOwned>(
    current: &T,
    patch: &Map<String, Value>,
    writable: &[&str],
) -> Result<T, serde_json::Error> {
    let mut value = serde_json::to_value(current)?;
    if let Value::Object(obj) = &mut value {
        for (k, v) in patch {
            if writable.contains(&k.as_str()) {
                if v.is_null() {
                    obj.remove(k);
                } else {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
    }
    serde_json::from_value(value)
}

/// OIH's username rule: an e-mail address. Deliberately simple (`local@domain.tld`, no spaces).
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rule() {
        assert!(is_email("a@b.de"));
        assert!(is_email("t1_admin@local.dev"));
        assert!(!is_email("nope"));
        assert!(!is_email("a@b"));
        assert!(!is_email("a b@c.de"));
        assert!(!is_email("@c.de"));
    }

    #[test]
    fn token_types_use_oih_names() {
        let names: Vec<Value> = [
            TokenType::EphemeralServiceAccount,
            TokenType::Persistent,
            TokenType::SelfToken,
            TokenType::Delegate,
        ]
        .iter()
        .map(|t| serde_json::to_value(t).expect("serialize"))
        .collect();
        assert_eq!(
            names,
            [
                "EPHEMERAL_SERVICE_ACCOUNT",
                "PERSISTENT",
                "SELF",
                "DELEGATE"
            ]
        );
    }

    #[test]
    fn patch_sets_only_writable_fields_and_revalidates() {
        let tenant = Tenant {
            name: "a".into(),
            confirmed: true,
            status: Status::Active,
        };
        let patch = serde_json::json!({"name": "b", "evil": 1});
        let out =
            apply_patch(&tenant, patch.as_object().expect("obj"), TENANT_WRITABLE).expect("valid");
        assert_eq!(out.name, "b");
        let bad = serde_json::json!({"status": "NOPE"});
        assert!(apply_patch(&tenant, bad.as_object().expect("obj"), TENANT_WRITABLE).is_err());
    }
}
