//! What a caller sees of a decrypted value (data-services.md §3.7).
//!
//! Without `secrets.secret.readRaw` every credential is masked (OIH masked only some types and
//! left OA1 and session tokens visible). The refresh token and a session secret's input fields
//! are masked for every caller: the service uses them to refresh, no client needs them (OIH
//! returned them as ciphertext, which no client could use either).

use serde_json::{Map, Value};

use crate::model::SecretType;

pub const READ_RAW: &str = "secrets.secret.readRaw";

/// OIH's `maskString`: under 10 characters every character becomes `*`, otherwise all but the
/// last 4.
pub fn mask_string(s: &str) -> String {
    let len = s.chars().count();
    let keep = if len < 10 { 0 } else { 4 };
    s.chars()
        .enumerate()
        .map(|(i, c)| if i + keep < len { '*' } else { c })
        .collect()
}

const FULLY_HIDDEN: &str = "***";

/// Masks `value` (already decrypted) for a caller who may (`raw`) or may not see credentials.
pub fn mask_value(kind: SecretType, value: &mut Map<String, Value>, raw: bool) {
    hide(value, "inputFields", |_| FULLY_HIDDEN.into());
    hide(value, "refreshToken", mask_string);
    if raw {
        return;
    }
    hide(value, "passphrase", |_| FULLY_HIDDEN.into());
    for field in ["key", "accessToken", "accessTokenSecret"] {
        hide(value, field, mask_string);
    }
    if kind == SecretType::Mixed {
        mask_leaves(value);
    }
}

fn hide(value: &mut Map<String, Value>, field: &str, how: impl Fn(&str) -> String) {
    if let Some(v) = value.get_mut(field) {
        let text = match &*v {
            Value::Null => return,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        *v = Value::String(how(&text));
    }
}

/// OIH masks every string leaf of a MIXED value.
fn mask_leaves(value: &mut Map<String, Value>) {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) => *s = mask_string(s),
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    value.values_mut().for_each(walk);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mask_string_as_oih() {
        assert_eq!(mask_string(""), "");
        assert_eq!(mask_string("secret"), "******");
        assert_eq!(mask_string("123456789"), "*********");
        assert_eq!(mask_string("1234567890"), "******7890");
        assert_eq!(mask_string("äöüäöüäöüäöü"), "********üäöü");
    }

    #[test]
    fn masks_by_permission() {
        let mut v = json!({"username": "bob", "passphrase": "pw"})
            .as_object()
            .cloned()
            .expect("obj");
        mask_value(SecretType::Simple, &mut v, false);
        assert_eq!(
            Value::Object(v),
            json!({"username": "bob", "passphrase": "***"})
        );

        let base = json!({"authClientId": "a", "accessToken": "access-token-1", "refreshToken": "refresh-token-1", "expires": "x"});
        let mut raw = base.as_object().cloned().expect("obj");
        mask_value(SecretType::Oa2AuthorizationCode, &mut raw, true);
        assert_eq!(raw["accessToken"], "access-token-1");
        assert_eq!(raw["refreshToken"], "***********en-1");
        let mut masked = base.as_object().cloned().expect("obj");
        mask_value(SecretType::Oa2AuthorizationCode, &mut masked, false);
        assert_eq!(masked["accessToken"], "**********en-1");
        assert_eq!(masked["authClientId"], "a");
    }
}
