//! 24-hex ids shaped like MongoDB ObjectIds, because OIH clients, queue names
//! (`flow-<flowId>`) and URLs carry them and some clients validate the shape.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 12 bytes: 4-byte big-endian seconds since the epoch, 5 bytes fixed per process, 3-byte
/// counter. Ids made by one process sort by creation time, as Mongo's do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {0:?}: expected 24 hexadecimal characters")]
pub struct ParseObjectIdError(pub String);

fn process_unique() -> &'static [u8; 5] {
    static UNIQUE: OnceLock<[u8; 5]> = OnceLock::new();
    UNIQUE.get_or_init(rand::random)
}

fn counter() -> &'static AtomicU32 {
    static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
    COUNTER.get_or_init(|| AtomicU32::new(rand::random::<u32>() & 0x00ff_ffff))
}

impl ObjectId {
    pub fn new() -> Self {
        let secs = u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX);
        Self::from_parts(secs, counter().fetch_add(1, Ordering::Relaxed))
    }

    fn from_parts(secs: u32, count: u32) -> Self {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&secs.to_be_bytes());
        bytes[4..9].copy_from_slice(process_unique());
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        Self(bytes)
    }

    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> [u8; 12] {
        self.0
    }

    /// Seconds since the epoch at which the id was made.
    pub fn timestamp(&self) -> i64 {
        i64::from(u32::from_be_bytes([
            self.0[0], self.0[1], self.0[2], self.0[3],
        ]))
    }

    /// True when `s` has the shape of an id. Handlers use it to answer 400 (or 404) for a
    /// malformed id before touching storage.
    pub fn is_valid(s: &str) -> bool {
        s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

impl Default for ObjectId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = ParseObjectIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !Self::is_valid(s) {
            return Err(ParseObjectIdError(s.to_owned()));
        }
        let mut bytes = [0u8; 12];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| ParseObjectIdError(s.to_owned()))?;
        }
        Ok(Self(bytes))
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = ObjectId::new();
        let text = id.to_string();
        assert_eq!(text.len(), 24);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(text.parse::<ObjectId>(), Ok(id));
    }

    #[test]
    fn parses_mongo_ids_in_either_case() {
        let id: ObjectId = "5F6A7B8C9D0E1F2A3B4C5D6E".parse().expect("valid");
        assert_eq!(id.to_string(), "5f6a7b8c9d0e1f2a3b4c5d6e");
        assert_eq!(id.timestamp(), 0x5f6a_7b8c);
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "abc",
            "zz6a7b8c9d0e1f2a3b4c5d6e",
            "5f6a7b8c9d0e1f2a3b4c5d6e0",
            "5f6a7b8c9d0e1f2a3b4c5d6",
        ] {
            assert!(
                bad.parse::<ObjectId>().is_err(),
                "{bad:?} should be rejected"
            );
            assert!(!ObjectId::is_valid(bad));
        }
    }

    #[test]
    fn ids_made_in_sequence_are_distinct_and_ordered() {
        let ids: Vec<ObjectId> = (0..1000).map(|_| ObjectId::new()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }

    #[test]
    fn serde_uses_the_hex_string() {
        let id: ObjectId = "5f6a7b8c9d0e1f2a3b4c5d6e".parse().expect("valid");
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, "\"5f6a7b8c9d0e1f2a3b4c5d6e\"");
        assert_eq!(
            serde_json::from_str::<ObjectId>(&json).expect("deserialize"),
            id
        );
        assert!(serde_json::from_str::<ObjectId>("\"nope\"").is_err());
    }
}
