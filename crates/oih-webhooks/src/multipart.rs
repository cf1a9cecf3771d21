//! `multipart/form-data` bodies (RFC 7578) as `msg.data`: fields by name as OIH sends them
//! (a repeated name becomes an array), and files, which OIH writes to a temporary file and
//! never sends, carried in the message as `{filename, contentType, encoding: "base64",
//! content}`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum MultipartError {
    #[error("the Content-Type has no boundary")]
    NoBoundary,
    #[error("{0}")]
    Malformed(&'static str),
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
            .filter(|b| !b.is_empty())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A `name="value"` parameter of a `Content-Disposition` header.
fn disposition_param<'a>(disposition: &'a str, name: &str) -> Option<&'a str> {
    disposition.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"'))
    })
}

pub fn parse(content_type: &str, body: &[u8]) -> Result<Value, MultipartError> {
    let boundary = boundary(content_type).ok_or(MultipartError::NoBoundary)?;
    let delimiter = format!("--{boundary}");
    let start = find(body, delimiter.as_bytes())
        .ok_or(MultipartError::Malformed("the body has no boundary line"))?;
    let mut rest = &body[start + delimiter.len()..];
    let next_delimiter = format!("\r\n--{boundary}");
    let mut fields = Map::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(Value::Object(fields));
        }
        rest = rest.strip_prefix(b"\r\n").ok_or(MultipartError::Malformed(
            "a boundary line is not followed by CRLF",
        ))?;
        let end = find(rest, next_delimiter.as_bytes()).ok_or(MultipartError::Malformed(
            "the body ends without a closing boundary",
        ))?;
        let (name, value) = part(&rest[..end])?;
        add(&mut fields, name, value);
        rest = &rest[end + next_delimiter.len()..];
    }
}

/// One part: its field name and its value.
fn part(part: &[u8]) -> Result<(String, Value), MultipartError> {
    let split =
        find(part, b"\r\n\r\n").ok_or(MultipartError::Malformed("a part has no header end"))?;
    let head = std::str::from_utf8(&part[..split])
        .map_err(|_| MultipartError::Malformed("part headers are not UTF-8"))?;
    let content = &part[split + 4..];
    let mut disposition = None;
    let mut content_type = None;
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(MultipartError::Malformed("a part header has no colon"))?;
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim());
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim());
        }
    }
    let disposition = disposition.ok_or(MultipartError::Malformed(
        "a part has no Content-Disposition",
    ))?;
    let name = disposition_param(disposition, "name")
        .ok_or(MultipartError::Malformed("a part has no name"))?
        .to_owned();
    let value = match disposition_param(disposition, "filename") {
        Some(filename) => json!({
            "filename": filename,
            "contentType": content_type.unwrap_or("application/octet-stream"),
            "encoding": "base64",
            "content": STANDARD.encode(content),
        }),
        None => Value::String(
            String::from_utf8(content.to_vec())
                .map_err(|_| MultipartError::Malformed("a field value is not UTF-8"))?,
        ),
    };
    Ok((name, value))
}

fn add(fields: &mut Map<String, Value>, name: String, value: Value) {
    match fields.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            fields.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_files_and_repeats() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\n2\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\nContent-Type: image/png\r\n\r\n\x00\x01\r\n--XyZ--\r\n";
        assert_eq!(
            parse("multipart/form-data; boundary=\"XyZ\"", body).expect("parse"),
            json!({"a": ["1", "2"], "f": {"filename": "x.bin", "contentType": "image/png",
                "encoding": "base64", "content": "AAE="}})
        );
    }

    #[test]
    fn malformed_bodies() {
        assert!(matches!(
            parse("multipart/form-data", b""),
            Err(MultipartError::NoBoundary)
        ));
        for bad in [
            &b"no boundary here"[..],
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
            b"--b\r\nX: y\r\n\r\nv\r\n--b--",
            b"--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--",
        ] {
            assert!(parse("multipart/form-data; boundary=b", bad).is_err());
        }
    }
}
