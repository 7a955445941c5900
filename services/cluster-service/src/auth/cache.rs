//! A small map whose entries expire: answers of the API server about callers
//! are reused for a few seconds, so a status call does not cost two reviews.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Entries kept at most; past it, expired ones go, and if that is not enough, all.
const MAX_ENTRIES: usize = 4096;

/// Values by key for `ttl` each.
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// One fetch per missing key at a time: when an answer expires under load, the calls that
    /// miss it wait for one review instead of each asking the API server (a thousand calls a
    /// second made ~20 reviews at each expiry, and each call waited for its own).
    fetching: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// Entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()), fetching: Mutex::new(HashMap::new()) }
    }

    /// The value of `key`, fetched by `fetch` when missing or expired; concurrent misses of one
    /// key share a fetch (the others wait, then read what it kept). A failed fetch keeps nothing.
    pub async fn get_or_fetch<E, Fut>(&self, key: &K, fetch: impl FnOnce() -> Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        let gate = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
            fetching.entry(key.clone()).or_default().clone()
        };
        let held = gate.lock().await;
        let result = match self.get(key) {
            Some(v) => Ok(v),
            None => fetch().await.inspect(|v| self.put(key.clone(), v.clone())),
        };
        drop(held);
        let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        // The map's and ours: nobody else waits at this gate.
        if fetching.get(key).is_some_and(|g| Arc::ptr_eq(g, &gate) && Arc::strong_count(g) == 2) {
            fetching.remove(key);
        }
        result
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_fetch_and_a_failure_keeps_nothing() {
        let c = Arc::new(TtlCache::new(Duration::from_secs(60)));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let (c, fetches) = (c.clone(), fetches.clone());
                tokio::spawn(async move {
                    c.get_or_fetch(&"k", || async {
                        fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), Ok(7));
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1, "one fetch for 50 misses");
        assert!(c.fetching.lock().unwrap().is_empty(), "no gate left behind");
        let failed = c.get_or_fetch(&"e", || async { Err::<i32, _>("down") }).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(c.get(&"e"), None, "a failure is not kept");
        assert_eq!(c.get_or_fetch(&"e", || async { Ok::<_, &str>(1) }).await, Ok(1));
    }

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
