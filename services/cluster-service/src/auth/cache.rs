//! A small map whose entries expire: answers of the API server about callers
//! are reused for a few seconds, so a status call does not cost two reviews.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Entries kept at most; past it, expired ones go, and if that is not enough, all.
const MAX_ENTRIES: usize = 4096;

/// Values by key for `ttl` each.
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// Entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The value of `key` while fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    /// Keeps `value` for `key`.
    pub fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let c = TtlCache::new(Duration::from_millis(50));
        c.put("a", 1);
        assert_eq!(c.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get(&"a"), None);
        let big = TtlCache::new(Duration::from_secs(60));
        for i in 0..=MAX_ENTRIES {
            big.put(i, i);
        }
        assert!(big.entries.lock().unwrap().len() <= MAX_ENTRIES);
        assert_eq!(big.get(&MAX_ENTRIES), Some(MAX_ENTRIES));
    }
}
