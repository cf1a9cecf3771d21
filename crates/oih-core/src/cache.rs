//! A small time-bounded map: IAM's token → identity answers, the webhooks' hookable flows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Entries beyond this are not cached (the map is cleared), so a flood of random keys (tokens,
/// flow ids) cannot grow memory without bound.
const MAX_ENTRIES: usize = 10_000;

pub struct TtlCache<V> {
    ttl: Duration,
    /// key → (the instant the entry stops being served, value)
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((until, v)) if Instant::now() < *until => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for the cache's TTL, but never past `expires` (the token's own expiry):
    /// a cached answer must not keep an expired token alive. Nothing is kept for a token that
    /// has already expired.
    pub fn put(&self, key: &str, value: V, expires: Option<DateTime<Utc>>) {
        let life = match expires {
            None => self.ttl,
            Some(at) => match (at - Utc::now()).to_std() {
                Ok(left) => left.min(self.ttl),
                Err(_) => return,
            },
        };
        if life.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), (Instant::now() + life, value));
    }

    /// Forgets one entry (its source changed).
    pub fn remove(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Forgets everything (after a revocation, a role change, a disabled account).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_clears() {
        let c = TtlCache::new(Duration::from_millis(30));
        c.put("a", 1, None);
        assert_eq!(c.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("a"), None);
        c.put("b", 2, None);
        c.put("c", 3, None);
        c.remove("c");
        assert_eq!(c.get("c"), None);
        assert_eq!(c.get("b"), Some(2));
        c.clear();
        assert_eq!(c.get("b"), None);
        let off = TtlCache::new(Duration::ZERO);
        off.put("a", 1, None);
        assert_eq!(off.get("a"), None);
    }

    #[test]
    fn entries_never_outlive_the_token() {
        let c = TtlCache::new(Duration::from_secs(60));
        let soon = Utc::now() + chrono::Duration::milliseconds(30);
        c.put("short", 1, Some(soon));
        c.put("long", 2, Some(Utc::now() + chrono::Duration::hours(1)));
        assert_eq!(c.get("short"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("short"), None, "gone with the token's expiry");
        assert_eq!(c.get("long"), Some(2), "capped by the TTL only");
        c.put(
            "expired",
            3,
            Some(Utc::now() - chrono::Duration::seconds(1)),
        );
        assert_eq!(c.get("expired"), None);
    }
}
