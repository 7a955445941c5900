//! Reads of EtcdClusters: live, or, for a look that acts on nothing without the lock, from the
//! watch cache when [`decide::cache_answers`] says it holds what a live read would show this
//! process. Every live read and every write of a cluster by this process goes through here, so
//! that what it knows stays current.
//!
//! Which decisions may start from the cache: only the unlocked looks (CheckHealth, Converge and
//! RecoverQuorum before they act). Anything they write is a status onto the version read (409
//! when it moved, then read again live); anything they start takes the cluster's lock and
//! decides again from live reads. Nothing under the lock reads the cache.

pub mod decide;

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock, PoisonError},
    time::Instant,
};

use etcd_operator_api::EtcdCluster;
use etcd_operator_common::ClusterRef;
use etcd_operator_resource::managers::ClusterCache;

use crate::reads::decide::{Known, Read, after, cache_answers};

/// Clusters remembered before all are forgotten at once (far more than one replica serves).
const REMEMBERED: usize = 16_384;

/// What a caller saw of a cluster: the `metadata.generation` that brought it (0 when none). A
/// look answers from a cluster at that generation or newer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen(pub i64);

/// The watch cache, and the newest version of each cluster this process read or wrote.
pub(crate) struct Reads {
    cache: OnceLock<ClusterCache>,
    known: Mutex<Remembered>,
}

/// What is known by cluster, and when the last forgetting happened: a cluster not in the map is
/// known as of then (nothing), so a read that overlapped the forgetting is not taken as newest.
struct Remembered {
    by_cluster: HashMap<(String, String), Known>,
    forgotten: Instant,
}

impl Reads {
    pub(crate) fn new() -> Self {
        let known = Remembered { by_cluster: HashMap::new(), forgotten: Instant::now() };
        Self { cache: OnceLock::new(), known: Mutex::new(known) }
    }

    /// Looks may answer from `cache` from now on (set once).
    pub(crate) fn use_cache(&self, cache: ClusterCache) {
        let _ = self.cache.set(cache);
    }

    /// The cluster as the watch last delivered it, whatever this process knows (recorded status).
    pub(crate) fn cached(&self, r: &ClusterRef) -> Option<std::sync::Arc<EtcdCluster>> {
        self.cache.get()?.get(&r.namespace, &r.name)
    }

    /// Notes a live read or write of a cluster that began at `began` and answered `cluster`.
    pub(crate) fn saw(&self, began: Instant, cluster: &EtcdCluster) {
        let Some(version) = cluster.metadata.resource_version.as_deref() else { return };
        let key = (
            cluster.metadata.namespace.clone().unwrap_or_default(),
            cluster.metadata.name.clone().unwrap_or_default(),
        );
        let read = Read { version, began, ended: Instant::now() };
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.by_cluster.len() >= REMEMBERED && !known.by_cluster.contains_key(&key) {
            known.by_cluster.clear();
            known.forgotten = Instant::now();
        }
        let before = known.by_cluster.get(&key).cloned();
        let before = before.unwrap_or(Known { version: None, ended: known.forgotten });
        known.by_cluster.insert(key, after(Some(&before), read));
    }

    /// The cached cluster when it may start a look by a caller that saw `seen`.
    pub(crate) fn for_look(&self, r: &ClusterRef, seen: Seen) -> Option<EtcdCluster> {
        let cached = self.cached(r)?;
        let key = (r.namespace.clone(), r.name.clone());
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner).by_cluster.get(&key).cloned();
        let version = cached.metadata.resource_version.as_deref();
        let generation = cached.metadata.generation.unwrap_or_default();
        cache_answers(known.as_ref(), version, generation, seen.0).then(|| (*cached).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, version: &str) -> EtcdCluster {
        let mut c = crate::fixtures::cluster("size: 3\nversion: 3.5.17");
        c.metadata.name = Some(name.into());
        c.metadata.resource_version = Some(version.into());
        c
    }

    fn known(reads: &Reads, name: &str) -> Option<String> {
        let known = reads.known.lock().unwrap();
        known.by_cluster.get(&("prod".to_owned(), name.to_owned())).and_then(|k| k.version.clone())
    }

    #[test]
    fn a_read_that_began_before_everything_was_forgotten_is_not_taken_as_the_newest() {
        let reads = Reads::new();
        let long_ago = Instant::now();
        reads.saw(Instant::now(), &cluster("a", "5"));
        assert_eq!(known(&reads, "a").as_deref(), Some("5"));
        // Fill up to the bound: the next new cluster makes everything be forgotten.
        for i in 0..REMEMBERED {
            reads.saw(Instant::now(), &cluster(&format!("c{i}"), "1"));
        }
        assert_eq!(known(&reads, "a"), None, "forgotten");
        // Sent before the forgetting: another read of `a` (forgotten) may have been answered later.
        reads.saw(long_ago, &cluster("a", "4"));
        assert_eq!(known(&reads, "a"), None);
        reads.saw(Instant::now(), &cluster("a", "6"));
        assert_eq!(known(&reads, "a").as_deref(), Some("6"));
    }
}
