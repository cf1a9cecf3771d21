//! A small time-bounded map for token → identity answers, shared by both authenticators.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries beyond this are not cached (the map is cleared), so a flood of random tokens cannot
/// grow memory without bound.
const MAX_ENTRIES: usize = 10_000;

pub struct TtlCache<V> {
    ttl: Duration,
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
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: &str, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), (Instant::now(), value));
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
        c.put("a", 1);
        assert_eq!(c.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("a"), None);
        c.put("b", 2);
        c.clear();
        assert_eq!(c.get("b"), None);
        let off = TtlCache::new(Duration::ZERO);
        off.put("a", 1);
        assert_eq!(off.get("a"), None);
    }
}
