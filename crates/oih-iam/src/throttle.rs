//! Login throttling: after `max_failures` failed logins for one username, further attempts are
//! refused until `lockout` has passed since the last failure (OIH counts failures but never
//! locks). Kept in memory: a restart forgets it, which is acceptable for a rate limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_TRACKED: usize = 100_000;

pub struct Throttle {
    max_failures: u32,
    lockout: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    pub fn new(max_failures: u32, lockout: Duration) -> Self {
        Self {
            max_failures,
            lockout,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// True when the username may try to log in now.
    pub fn allowed(&self, username: &str) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(username) {
            Some((count, last)) if *count >= self.max_failures => {
                if last.elapsed() < self.lockout {
                    false
                } else {
                    map.remove(username);
                    true
                }
            }
            _ => true,
        }
    }

    pub fn failed(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(username) {
            let lockout = self.lockout;
            map.retain(|_, (_, last)| last.elapsed() < lockout);
        }
        let entry = map
            .entry(username.to_owned())
            .or_insert((0, Instant::now()));
        entry.0 += 1;
        entry.1 = Instant::now();
    }

    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_later() {
        let t = Throttle::new(2, Duration::from_millis(30));
        assert!(t.allowed("a"));
        t.failed("a");
        assert!(t.allowed("a"));
        t.failed("a");
        assert!(!t.allowed("a"));
        assert!(t.allowed("b"));
        std::thread::sleep(Duration::from_millis(40));
        assert!(t.allowed("a"));
    }

    #[test]
    fn success_resets() {
        let t = Throttle::new(2, Duration::from_secs(60));
        t.failed("a");
        t.succeeded("a");
        t.failed("a");
        assert!(t.allowed("a"));
    }
}
