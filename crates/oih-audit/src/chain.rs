//! The tamper-evidence scheme (pure functions, no I/O).
//!
//! Every entry belongs to one chain (its tenant's, or the chain of entries without tenant) and
//! stores its position `seq`, the hash of its predecessor `prev` and its own `hash`:
//!
//! `hash = SHA-256(canonical({v, id, tenant, seq, prev, recordedAt, headers, fields}))`
//!
//! where `fields` maps every top-level payload key to a *field digest*
//! `SHA-256("oih-audit/field/v1" ‖ salt ‖ key ‖ canonical(value))` with a random salt per field.
//! The entry hash therefore covers each payload value only through its digest. GDPR
//! anonymisation replaces a personal value with [`ANONYMISED`], moves the field's digest into
//! `redacted` and forgets its salt: the chain still verifies (the digest is kept), and with the
//! salt gone the digest no longer lets anyone confirm a guessed value.
//!
//! `canonical` is JSON with object keys sorted and numbers in one normal form, so a document
//! hashes the same after a round trip through either engine (PostgreSQL's JSONB reorders keys
//! and rewrites numbers such as `1e3` or `1.50`).

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// What a personal value becomes (OIH's marker).
pub const ANONYMISED: &str = "XXXXXXXXXX";
/// `prev` of the first entry of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Version of the hashed layout, part of every hash.
const LAYOUT: u64 = 1;

/// The chain fields of a stored entry (`chain` in the document body).
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Chain key: the tenant, or `""` for entries without tenant.
    pub tenant: String,
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    /// Milliseconds since the epoch at which the service recorded the entry (retention uses
    /// it: unlike `headers.createdAt`, a client cannot backdate it).
    pub recorded_at: i64,
    /// Salt per live payload field.
    pub salts: Map<String, Value>,
    /// Field digest per anonymised payload field.
    pub redacted: Map<String, Value>,
}

impl Link {
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("tenant".into(), Value::String(self.tenant.clone()));
        obj.insert("seq".into(), Value::from(self.seq));
        obj.insert("prev".into(), Value::String(self.prev.clone()));
        obj.insert("hash".into(), Value::String(self.hash.clone()));
        obj.insert("recordedAt".into(), Value::from(self.recorded_at));
        obj.insert("salts".into(), Value::Object(self.salts.clone()));
        obj.insert("redacted".into(), Value::Object(self.redacted.clone()));
        Value::Object(obj)
    }

    /// Reads the `chain` object back; None when a field is missing or has the wrong type
    /// (which verification reports as tampering).
    pub fn from_json(value: &Value) -> Option<Self> {
        let str_of = |key: &str| value.get(key)?.as_str().map(str::to_owned);
        let obj_of = |key: &str| value.get(key)?.as_object().cloned();
        Some(Self {
            tenant: str_of("tenant")?,
            seq: value.get("seq")?.as_u64()?,
            prev: str_of("prev")?,
            hash: str_of("hash")?,
            recorded_at: value.get("recordedAt")?.as_i64()?,
            salts: obj_of("salts")?,
            redacted: obj_of("redacted")?,
        })
    }
}

/// A fresh random salt for one field.
fn new_salt() -> String {
    hex(&rand::random::<[u8; 16]>())
}

/// Salts for every key of `payload`.
pub fn salts_for(payload: &Map<String, Value>) -> Map<String, Value> {
    payload
        .keys()
        .map(|k| (k.clone(), Value::String(new_salt())))
        .collect()
}

pub fn field_digest(salt: &str, key: &str, value: &Value) -> String {
    let mut h = Sha256::new();
    h.update(b"oih-audit/field/v1\0");
    h.update(salt.as_bytes());
    h.update(b"\0");
    h.update(key.as_bytes());
    h.update(b"\0");
    h.update(canonical(value).as_bytes());
    hex(&h.finalize())
}

/// Why an entry's content does not match its chain fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// A payload field has neither a salt nor a redaction record (added afterwards).
    UnsealedField(String),
    /// A sealed field is missing from the payload (removed afterwards).
    MissingField(String),
    /// An anonymised field no longer holds the anonymisation marker.
    RedactedFieldChanged(String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnsealedField(k) => write!(f, "payload field {k:?} was added after sealing"),
            Self::MissingField(k) => write!(f, "payload field {k:?} was removed after sealing"),
            Self::RedactedFieldChanged(k) => {
                write!(f, "anonymised payload field {k:?} was changed")
            }
        }
    }
}

/// The digest of every payload field, from the live value or the redaction record.
pub fn field_digests(
    payload: &Map<String, Value>,
    link: &Link,
) -> Result<Map<String, Value>, Mismatch> {
    let mut out = Map::new();
    for (key, value) in payload {
        let digest = match (link.redacted.get(key), link.salts.get(key)) {
            (Some(digest), _) => {
                if value.as_str() != Some(ANONYMISED) {
                    return Err(Mismatch::RedactedFieldChanged(key.clone()));
                }
                digest.clone()
            }
            (None, Some(Value::String(salt))) => Value::String(field_digest(salt, key, value)),
            (None, _) => return Err(Mismatch::UnsealedField(key.clone())),
        };
        out.insert(key.clone(), digest);
    }
    for key in link.salts.keys().chain(link.redacted.keys()) {
        if !payload.contains_key(key) {
            return Err(Mismatch::MissingField(key.clone()));
        }
    }
    Ok(out)
}

/// The entry hash over its identity, position, headers and field digests.
pub fn entry_hash(id: &str, link: &Link, headers: &Value, fields: Map<String, Value>) -> String {
    let mut sealed = Map::new();
    sealed.insert("v".into(), Value::from(LAYOUT));
    sealed.insert("id".into(), Value::String(id.to_owned()));
    sealed.insert("tenant".into(), Value::String(link.tenant.clone()));
    sealed.insert("seq".into(), Value::from(link.seq));
    sealed.insert("prev".into(), Value::String(link.prev.clone()));
    sealed.insert("recordedAt".into(), Value::from(link.recorded_at));
    sealed.insert("headers".into(), headers.clone());
    sealed.insert("fields".into(), Value::Object(fields));
    hex(&Sha256::digest(
        canonical(&Value::Object(sealed)).as_bytes(),
    ))
}

/// A hash of arbitrary bytes as lowercase hex (also used for deterministic ids).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// JSON with sorted keys and normalised numbers.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(obj) => {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = obj.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
    }
}

/// Integers (and floats with an integral value below 2^53) as plain integers; other floats in
/// Rust's shortest round-trip form. Equal numbers give equal text whatever their notation.
fn write_number(n: &serde_json::Number, out: &mut String) {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        if f.fract() == 0.0 && f.abs() < EXACT {
            // Exact: the value is an integer below 2^53.
            #[allow(clippy::cast_possible_truncation)]
            let i = f as i64;
            let _ = write!(out, "{i}");
        } else {
            let _ = write!(out, "{f}");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_ignores_key_order_and_number_notation() {
        let a: Value =
            serde_json::from_str(r#"{"b":1e3,"a":{"y":1.50,"x":[1,2.0]}}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"a":{"x":[1,2],"y":1.5},"b":1000}"#).expect("json");
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), r#"{"a":{"x":[1,2],"y":1.5},"b":1000}"#);
        assert_ne!(canonical(&json!({"a": "1"})), canonical(&json!({"a": 1})));
    }

    #[test]
    fn redaction_keeps_the_digest_and_detects_changes() {
        let payload = json!({"id": "u1", "username": "jane@example.org"});
        let payload = payload.as_object().expect("object").clone();
        let mut link = Link {
            tenant: String::new(),
            seq: 1,
            prev: GENESIS.into(),
            hash: String::new(),
            recorded_at: 1,
            salts: salts_for(&payload),
            redacted: Map::new(),
        };
        let headers = json!({"name": "iam.user.created"});
        let hash = entry_hash(
            "e1",
            &link,
            &headers,
            field_digests(&payload, &link).expect("ok"),
        );

        let mut anonymised = payload.clone();
        let digest = field_digests(&payload, &link).expect("ok")["username"].clone();
        anonymised.insert("username".into(), json!(ANONYMISED));
        link.salts.remove("username");
        link.redacted.insert("username".into(), digest);
        let again = field_digests(&anonymised, &link).expect("still sealed");
        assert_eq!(entry_hash("e1", &link, &headers, again), hash);

        anonymised.insert("username".into(), json!("someone else"));
        assert_eq!(
            field_digests(&anonymised, &link),
            Err(Mismatch::RedactedFieldChanged("username".into()))
        );
        anonymised.insert("extra".into(), json!(1));
        anonymised.insert("username".into(), json!(ANONYMISED));
        assert_eq!(
            field_digests(&anonymised, &link),
            Err(Mismatch::UnsealedField("extra".into()))
        );
    }
}
