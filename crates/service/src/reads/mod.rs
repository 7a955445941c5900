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

use std::{sync::OnceLock, time::Instant};

use etcd_operator_api::EtcdCluster;
use etcd_operator_common::ClusterRef;
use etcd_operator_resource::managers::ClusterCache;

use crate::{
    reads::decide::{Known, Read, after, cache_answers},
    tasks::BoundedCache,
};

/// What a caller saw of a cluster: the `metadata.generation` that brought it (0 when none). A
/// look answers from a cluster at that generation or newer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen(pub i64);

/// The watch cache, and the newest version of each cluster this process read or wrote.
pub(crate) struct Reads {
    cache: OnceLock<ClusterCache>,
    known: BoundedCache<(String, String), Known>,
}

impl Reads {
    pub(crate) fn new() -> Self {
        Self { cache: OnceLock::new(), known: BoundedCache::new(8192) }
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
        self.known.update(key, |known| after(known, read));
    }

    /// The cached cluster when it may start a look by a caller that saw `seen`.
    pub(crate) fn for_look(&self, r: &ClusterRef, seen: Seen) -> Option<EtcdCluster> {
        let cached = self.cached(r)?;
        let known = self.known.get(&(r.namespace.clone(), r.name.clone()));
        let version = cached.metadata.resource_version.as_deref();
        let generation = cached.metadata.generation.unwrap_or_default();
        cache_answers(known.as_ref(), version, generation, seen.0).then(|| (*cached).clone())
    }
}
