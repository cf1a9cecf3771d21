//! The request body as `msg.data`, per content type as OIH's body parser (runtime.md §5.2):
//! JSON (also `text/plain`, as OIH), urlencoded, XML, multipart. Where OIH writes text and binary
//! payloads to a temporary file and sends `data: {}`, they are carried in the message instead
//! (see [`inline`]). Unknown content types are refused rather than silently sent empty.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::{multipart, xml};

/// OIH's text types that it turns into an (unattached) file.
const TEXT_TYPES: &[&str] = &["text/csv", "text/yaml", "text/html", "text/javascript"];
/// OIH's raw types, plus the generic binary type.
const BINARY_TYPES: &[&str] = &[
    "application/pdf",
    "application/zip",
    "application/excel",
    "application/x-excel",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "application/octet-stream",
];

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// OIH's 415 for a body-carrying request without a type.
    #[error("Content-Type header is missing")]
    MissingContentType,
    #[error("Unsupported Content-Type: {0}")]
    Unsupported(String),
    #[error("Invalid JSON body: {0}")]
    Json(String),
    #[error("Invalid XML body: {0}")]
    Xml(#[from] xml::XmlError),
    #[error("Invalid multipart body: {0}")]
    Multipart(#[from] multipart::MultipartError),
    #[error("The body is not valid UTF-8")]
    NotUtf8,
}

/// The media type without parameters, lower-cased (`Application/JSON; charset=x` →
/// `application/json`).
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `text/xml`, `application/xml` and `application/<anything>+xml`, as the XML parser OIH uses.
fn is_xml(essence: &str) -> bool {
    essence == "text/xml"
        || essence == "application/xml"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+xml"))
}

/// Parses `body` sent with `content_type` into `msg.data`.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Value, BodyError> {
    let content_type = content_type.ok_or(BodyError::MissingContentType)?;
    let essence = essence(content_type);
    match essence.as_str() {
        "application/json" | "text/plain" => json(body),
        "application/x-www-form-urlencoded" => Ok(urlencoded(body)),
        "multipart/form-data" => Ok(multipart::parse(content_type, body)?),
        ct if is_xml(ct) => Ok(xml::to_json(utf8(body)?)?),
        ct if TEXT_TYPES.contains(&ct) => Ok(inline(ct, body, true)?),
        ct if BINARY_TYPES.contains(&ct) => Ok(inline(ct, body, false)?),
        _ => Err(BodyError::Unsupported(essence)),
    }
}

fn utf8(body: &[u8]) -> Result<&str, BodyError> {
    std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)
}

/// body-parser's strict JSON: an empty body is `{}`, the document must be an object or an
/// array.
fn json(body: &[u8]) -> Result<Value, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    if value.is_object() || value.is_array() {
        Ok(value)
    } else {
        Err(BodyError::Json(
            "the document must be an object or an array".into(),
        ))
    }
}

/// Form fields (also used for GET query strings): one value per name, repeated names
/// collected into an array as `qs` does.
pub fn urlencoded(body: &[u8]) -> Value {
    let mut fields = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        let value = Value::String(value.into_owned());
        match fields.get_mut(name.as_ref()) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                fields.insert(name.into_owned(), value);
            }
        }
    }
    Value::Object(fields)
}

/// A text or binary payload carried in the message: `{contentType, encoding, content}` with
/// the text as is (`utf-8`) or the bytes in base64.
fn inline(content_type: &str, body: &[u8], text: bool) -> Result<Value, BodyError> {
    let (encoding, content) = if text {
        ("utf-8", utf8(body)?.to_owned())
    } else {
        ("base64", STANDARD.encode(body))
    };
    Ok(json!({"contentType": content_type, "encoding": encoding, "content": content}))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn types_with_parameters_and_case() {
        assert_eq!(
            parse(Some("Application/JSON; charset=utf-8"), br#"{"a":1.50}"#).expect("json"),
            json!({"a": 1.50})
        );
        assert_eq!(
            parse(Some("application/soap+xml"), b"<a>1</a>").expect("xml"),
            json!({"a": "1"})
        );
    }

    #[test]
    fn json_rules() {
        assert_eq!(
            parse(Some("application/json"), b"").expect("empty"),
            json!({})
        );
        assert_eq!(
            parse(Some("text/plain"), b"[1]").expect("array"),
            json!([1])
        );
        assert!(matches!(
            parse(Some("application/json"), b"42"),
            Err(BodyError::Json(_))
        ));
        assert!(matches!(
            parse(Some("application/json"), b"{"),
            Err(BodyError::Json(_))
        ));
    }

    #[test]
    fn urlencoded_repeats() {
        assert_eq!(
            urlencoded(b"a=1&a=2&b=x%20y&c"),
            json!({"a": ["1", "2"], "b": "x y", "c": ""})
        );
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            parse(None, b"x"),
            Err(BodyError::MissingContentType)
        ));
        assert!(matches!(
            parse(Some("application/x-unknown"), b"x"),
            Err(BodyError::Unsupported(_))
        ));
        assert!(matches!(
            parse(Some("text/csv"), &[0xff]),
            Err(BodyError::NotUtf8)
        ));
    }
}
