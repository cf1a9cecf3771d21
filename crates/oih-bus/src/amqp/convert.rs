//! Translation between our types and AMQP's: JSON headers <-> field tables, [`Properties`] <->
//! `BasicProperties`, and lapin errors -> [`BusError`].

use std::time::Duration;

use lapin::BasicProperties;
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Number, Value};

use crate::{BusError, Headers, Properties, QueueOptions, Result};

/// AMQP `delivery-mode` 2: the broker writes the message to disk in durable queues. OIH
/// publishes everything persistent.
const PERSISTENT: u8 = 2;

/// Names, routing keys and most properties are AMQP short strings (at most 255 bytes); lapin
/// panics on longer ones, so every string from a caller goes through here.
pub(super) fn short(value: &str, what: &str) -> Result<ShortString> {
    ShortString::try_new(value).map_err(|_| {
        BusError::Invalid(format!(
            "{what} is {} bytes; AMQP allows at most 255",
            value.len()
        ))
    })
}

pub(super) fn headers_to_table(headers: &Headers) -> Result<FieldTable> {
    let mut table = FieldTable::default();
    for (key, value) in headers {
        table.insert(short(key, "a header name")?, json_to_amqp(value)?);
    }
    Ok(table)
}

fn json_to_amqp(value: &Value) -> Result<AMQPValue> {
    Ok(match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AMQPValue::LongLongInt(i),
            // AMQP (as RabbitMQ speaks it) has no unsigned 64-bit type: integers above i64::MAX
            // can only travel as doubles.
            (None, Some(f)) => AMQPValue::Double(f),
            (None, None) => return Err(BusError::Invalid(format!("unsupported number {n}"))),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(json_to_amqp).collect::<Result<Vec<_>>>()?,
        )),
        Value::Object(map) => {
            let mut table = FieldTable::default();
            for (key, value) in map {
                table.insert(short(key, "a header name")?, json_to_amqp(value)?);
            }
            AMQPValue::FieldTable(table)
        }
    })
}

pub(super) fn table_to_headers(table: &FieldTable) -> Headers {
    table
        .into_iter()
        .map(|(key, value)| (key.to_string(), amqp_to_json(value)))
        .collect()
}

/// Every AMQP field type maps to something: other publishers (amqplib in Node, RabbitMQ itself
/// for `x-death`) use more types than we emit.
fn amqp_to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Void => Value::Null,
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::Float(f) => float(f64::from(*f)),
        AMQPValue::Double(f) => float(*f),
        AMQPValue::DecimalValue(d) => float(f64::from(d.value) / 10f64.powi(i32::from(d.scale))),
        AMQPValue::ShortString(s) => Value::String(s.to_string()),
        // Header strings are UTF-8 in practice; a binary one is kept readable rather than
        // failing the whole delivery.
        AMQPValue::LongString(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into()),
        AMQPValue::ByteArray(bytes) => {
            Value::Array(bytes.as_slice().iter().map(|b| Value::from(*b)).collect())
        }
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(amqp_to_json).collect())
        }
        AMQPValue::FieldTable(table) => Value::Object(
            table
                .into_iter()
                .map(|(key, value)| (key.to_string(), amqp_to_json(value)))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// JSON has no NaN or infinity; those become null.
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

pub(super) fn to_basic_properties(p: &Properties) -> Result<BasicProperties> {
    let mut props = BasicProperties::default().with_delivery_mode(PERSISTENT);
    if !p.headers.is_empty() {
        props = props.with_headers(headers_to_table(&p.headers)?);
    }
    if let Some(v) = &p.content_type {
        props = props.with_content_type(short(v, "content_type")?);
    }
    if let Some(v) = &p.content_encoding {
        props = props.with_content_encoding(short(v, "content_encoding")?);
    }
    if let Some(v) = &p.correlation_id {
        props = props.with_correlation_id(short(v, "correlation_id")?);
    }
    if let Some(v) = &p.reply_to {
        props = props.with_reply_to(short(v, "reply_to")?);
    }
    if let Some(v) = &p.message_id {
        props = props.with_message_id(short(v, "message_id")?);
    }
    if let Some(ts) = p.timestamp {
        props = props.with_timestamp(ts);
    }
    if let Some(ttl) = p.expiration {
        // AMQP's expiration is a string of milliseconds.
        props = props.with_expiration(short(&ttl.as_millis().to_string(), "expiration")?);
    }
    Ok(props)
}

pub(super) fn from_basic_properties(p: &BasicProperties) -> Properties {
    let string = |s: &Option<ShortString>| s.as_ref().map(ToString::to_string);
    Properties {
        headers: p
            .headers()
            .as_ref()
            .map(table_to_headers)
            .unwrap_or_default(),
        content_type: string(p.content_type()),
        content_encoding: string(p.content_encoding()),
        correlation_id: string(p.correlation_id()),
        reply_to: string(p.reply_to()),
        message_id: string(p.message_id()),
        timestamp: *p.timestamp(),
        // A malformed expiration from a foreign publisher is dropped rather than failing the
        // delivery: the broker has already applied it.
        expiration: p
            .expiration()
            .as_ref()
            .and_then(|ms| ms.as_str().parse().ok())
            .map(Duration::from_millis),
    }
}

pub(super) fn queue_arguments(opts: &QueueOptions) -> Result<FieldTable> {
    let mut args = FieldTable::default();
    if let Some(dlx) = &opts.dead_letter_exchange {
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.as_str().into()),
        );
    }
    if let Some(key) = &opts.dead_letter_routing_key {
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(key.as_str().into()),
        );
    }
    if let Some(ttl) = opts.message_ttl {
        let ms = i64::try_from(ttl.as_millis())
            .map_err(|_| BusError::Invalid(format!("message_ttl {ttl:?} is too long")))?;
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ms));
    }
    Ok(args)
}

/// Maps a failed AMQP operation to our error. RabbitMQ reports "no such exchange/queue" with
/// one code (404) for both, so the kind is read from its reply text
/// (`NOT_FOUND - no exchange 'x' in vhost '/'`).
pub(super) fn bus_error(error: &lapin::Error) -> BusError {
    if let lapin::ErrorKind::ProtocolError(amqp) = error.kind() {
        let text = amqp.get_message().as_str();
        match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED) => {
                return BusError::PreconditionFailed(text.to_string());
            }
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => {
                if let Some(name) = quoted_name(text, "no exchange '") {
                    return BusError::ExchangeNotFound(name);
                }
                if let Some(name) = quoted_name(text, "no queue '") {
                    return BusError::QueueNotFound(name);
                }
            }
            _ => {}
        }
    }
    BusError::Amqp(error.to_string())
}

fn quoted_name(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    let rest = &text[start..];
    // Names may themselves contain quotes; the vhost clause is what closes the name.
    let end = rest.rfind("' in vhost").or_else(|| rest.rfind('\''))?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_round_trip_through_field_tables() {
        let headers: Headers = [
            ("s".to_string(), json!("text")),
            ("i".to_string(), json!(-42)),
            ("big".to_string(), json!(1_700_000_000_000_i64)),
            ("f".to_string(), json!(1.5)),
            ("b".to_string(), json!(true)),
            ("n".to_string(), json!(null)),
            ("a".to_string(), json!([1, "two", [3], {"four": 4}])),
            ("o".to_string(), json!({"nested": {"deep": [true, null]}})),
        ]
        .into_iter()
        .collect();
        let table = headers_to_table(&headers).expect("encodable");
        assert_eq!(table_to_headers(&table), headers);
    }

    #[test]
    fn foreign_field_types_map_to_json() {
        let mut table = FieldTable::default();
        table.insert("int".into(), AMQPValue::LongInt(7));
        table.insert("ts".into(), AMQPValue::Timestamp(1_700_000_000));
        table.insert("short".into(), AMQPValue::ShortString("s".into()));
        table.insert(
            "dec".into(),
            AMQPValue::DecimalValue(lapin::types::DecimalValue {
                scale: 2,
                value: 125,
            }),
        );
        let headers = table_to_headers(&table);
        assert_eq!(headers["int"], json!(7));
        assert_eq!(headers["ts"], json!(1_700_000_000));
        assert_eq!(headers["short"], json!("s"));
        assert_eq!(headers["dec"], json!(1.25));
    }

    #[test]
    fn properties_round_trip() {
        let props = Properties {
            headers: [("k".to_string(), json!({"x": [1]}))].into_iter().collect(),
            content_type: Some("application/json".into()),
            content_encoding: Some("utf8".into()),
            correlation_id: Some("corr".into()),
            reply_to: Some("replies".into()),
            message_id: Some("m-1".into()),
            timestamp: Some(1_700_000_000),
            expiration: Some(Duration::from_millis(1500)),
        };
        let basic = to_basic_properties(&props).expect("encodable");
        assert_eq!(*basic.delivery_mode(), Some(PERSISTENT));
        assert_eq!(
            basic.expiration().as_ref().map(|s| s.as_str()),
            Some("1500")
        );
        assert_eq!(from_basic_properties(&basic), props);
    }

    #[test]
    fn overlong_short_strings_are_rejected_not_panicking() {
        let props = Properties {
            content_type: Some("x".repeat(300)),
            ..Properties::default()
        };
        assert!(matches!(
            to_basic_properties(&props),
            Err(BusError::Invalid(_))
        ));
    }

    #[test]
    fn not_found_names_are_parsed() {
        assert_eq!(
            quoted_name(
                "NOT_FOUND - no exchange 'a'b' in vhost '/'",
                "no exchange '"
            ),
            Some("a'b".to_string())
        );
        assert_eq!(
            quoted_name("NOT_FOUND - no queue 'q' in vhost '/'", "no exchange '"),
            None
        );
    }
}
