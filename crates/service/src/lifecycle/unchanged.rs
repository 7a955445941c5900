//! Applies that would change nothing are skipped. Exact, not a timer: an object is applied again
//! unless it is, apart from its status and bookkeeping, what this process's last apply of the same
//! desired object returned. Then nobody changed it since, and the same apply would be a no-op on
//! the server — where, at 1 000 clusters, server-side apply is the most expensive request the
//! lifecycle makes. Objects the reconcile reads anyway (the StatefulSet, the ConfigMap) are judged
//! from that read; the others (Services, PDB, the API's CA) are read first once this process has
//! applied them. A restart of the process, or another replica, applies once more.

use std::hash::{DefaultHasher, Hash, Hasher};

use kube::Resource;
use serde::Serialize;

use crate::{ServiceError, lifecycle::LifecycleService, tasks::BoundedCache};

/// An object's kind, namespace and name, hashed: six objects per cluster are remembered, and
/// three strings kept twice (the map and the eviction order) were ~1 MiB at 1 000 clusters. Two
/// objects whose keys collide could at worst be applied once more: a skip also needs the
/// fingerprints to match.
pub(crate) type Key = u64;

/// What this process applied last, by fingerprint: the desired object, and the object the apply
/// returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Applied {
    desired: u64,
    result: u64,
}

/// The objects remembered: six per cluster (StatefulSet, ConfigMap, three Services, PDB; seven
/// with the API's CA ConfigMap), so the bound covers ~1 200–1 300 clusters; beyond it the oldest
/// are applied once more.
pub(crate) type AppliedMemo = BoundedCache<Key, Applied>;

/// A memo large enough for the clusters one replica serves.
pub(crate) fn memo() -> AppliedMemo {
    BoundedCache::new(8192)
}

/// A fingerprint of everything in `object` a writer may change: not its status (the StatefulSet
/// controller's), its resourceVersion (moved by status writes) or its managed fields (their
/// timestamps move with them).
pub(crate) fn fingerprint<K: Serialize>(object: &K) -> u64 {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(serde_json::Value::as_object_mut) {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
    }
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

/// The memo's key of an object.
fn key_of<K: Resource<DynamicType = ()>>(object: &K) -> Key {
    let meta = object.meta();
    let mut hasher = DefaultHasher::new();
    (K::kind(&()), meta.namespace.as_deref(), meta.name.as_deref()).hash(&mut hasher);
    hasher.finish()
}

/// Whether applying a desired object of fingerprint `desired` onto an object read as `existing`
/// would change nothing, given what was applied `last`. Pure.
pub(crate) fn unchanged(last: Option<Applied>, desired: u64, existing: Option<u64>) -> bool {
    matches!((last, existing), (Some(l), Some(e)) if l.desired == desired && l.result == e)
}

impl LifecycleService {
    /// [`Self::apply_unless_unchanged`] of an object the reconcile does not read otherwise: read
    /// first through `manager` when this process applied it before, since a read is far cheaper
    /// than an apply for the API server and most looks find nothing to change.
    pub(crate) async fn apply_read_first<K>(
        &self,
        manager: &etcd_operator_resource::managers::Manager<K>,
        desired: &K,
    ) -> Result<Option<K>, ServiceError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + Serialize
            + serde::de::DeserializeOwned,
    {
        let existing = match self.applied.get(&key_of(desired)) {
            Some(_) => manager.get(desired.meta().name.as_deref().unwrap_or_default()).await?,
            None => None,
        };
        self.apply_unless_unchanged(desired, existing.as_ref(), || manager.apply(desired)).await
    }

    /// Applies `desired` with `apply` unless [`unchanged`] says that changes nothing; the object as
    /// the apply returned it, `None` when skipped.
    pub(crate) async fn apply_unless_unchanged<K, Fut>(
        &self,
        desired: &K,
        existing: Option<&K>,
        apply: impl FnOnce() -> Fut,
    ) -> Result<Option<K>, ServiceError>
    where
        K: Resource<DynamicType = ()> + Serialize,
        Fut: Future<Output = Result<K, etcd_operator_resource::ResourceError>>,
    {
        let key = key_of(desired);
        let want = fingerprint(desired);
        if unchanged(self.applied.get(&key), want, existing.map(fingerprint)) {
            return Ok(None);
        }
        let result = apply().await?;
        self.applied.insert(key, Applied { desired: want, result: fingerprint(&result) });
        Ok(Some(result))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn config_map(data: &str, version: &str) -> ConfigMap {
        let time = format!("2026-12-02T18:00:0{version}Z");
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo-config", "namespace": "prod", "resourceVersion": version,
                         "labels": {"app": "etcd"},
                         "managedFields": [{"manager": "etcd-operator/lifecycle", "time": time}]},
            "data": {"initial": data},
        }))
        .unwrap()
    }

    #[test]
    fn only_bookkeeping_is_left_out_of_a_fingerprint() {
        let applied = fingerprint(&config_map("a", "1"));
        assert_eq!(fingerprint(&config_map("a", "7")), applied, "resourceVersion and managed fields");
        assert_ne!(fingerprint(&config_map("b", "1")), applied, "data");
        let mut relabelled = config_map("a", "1");
        relabelled.metadata.labels = None;
        assert_ne!(fingerprint(&relabelled), applied, "labels");
    }

    #[test]
    fn objects_are_remembered_by_kind_namespace_and_name() {
        let cm = config_map("a", "1");
        assert_eq!(key_of(&config_map("b", "2")), key_of(&cm), "the same object, changed");
        let mut elsewhere = cm.clone();
        elsewhere.metadata.namespace = Some("dev".into());
        let mut renamed = cm.clone();
        renamed.metadata.name = Some("other-config".into());
        let service =
            k8s_openapi::api::core::v1::Service { metadata: cm.metadata.clone(), ..Default::default() };
        for other in [key_of(&elsewhere), key_of(&renamed), key_of(&service)] {
            assert_ne!(other, key_of(&cm));
        }
    }

    #[test]
    fn an_apply_is_skipped_only_onto_what_the_same_apply_left() {
        let last = Some(Applied { desired: 1, result: 10 });
        assert!(unchanged(last, 1, Some(10)));
        assert!(!unchanged(last, 2, Some(10)), "a new desired object");
        assert!(!unchanged(last, 1, Some(11)), "changed by another writer since");
        assert!(!unchanged(last, 1, None), "deleted since");
        assert!(!unchanged(None, 1, Some(10)), "nothing applied by this process yet");
    }
}
