//! How the embedded broker serialises what it persists in the message log: message properties
//! and topology records. JSON, so the log stays readable with the `sqlite3` shell.

use serde::{Deserialize, Serialize};

use crate::{BusError, ExchangeKind, Properties, QueueOptions, Result};

pub(super) const EXCHANGE: &str = "exchange";
pub(super) const QUEUE: &str = "queue";
pub(super) const BINDING: &str = "binding";
pub(super) const EXCHANGE_BINDING: &str = "exchange_binding";

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ExchangeSpec {
    pub kind: ExchangeKind,
}

/// A binding from `source` exchange to a queue or exchange named `destination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BindingSpec {
    pub source: String,
    pub destination: String,
    pub pattern: String,
}

impl BindingSpec {
    /// The record name: unique per (source, destination, pattern). A JSON array keeps the
    /// parts apart whatever they contain, and stays valid text for PostgreSQL (which refuses
    /// NUL in text columns).
    pub fn record_name(&self) -> String {
        serde_json::json!([self.source, self.destination, self.pattern]).to_string()
    }
}

pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail; an empty record would be rejected on load.
    serde_json::to_vec(value).unwrap_or_default()
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| BusError::Invalid(format!("corrupt {what} record in the message log: {e}")))
}

pub(super) fn encode_props(props: &Properties) -> Vec<u8> {
    if *props == Properties::default() {
        Vec::new()
    } else {
        encode(props)
    }
}

pub(super) fn decode_props(bytes: &[u8]) -> Result<Properties> {
    if bytes.is_empty() {
        Ok(Properties::default())
    } else {
        decode(bytes, "message properties")
    }
}

pub(super) fn encode_queue(opts: &QueueOptions) -> Vec<u8> {
    encode(opts)
}
