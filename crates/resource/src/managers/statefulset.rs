//! StatefulSetManager: Create, Update, Delete, Get and Scale.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::{
    Client,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::Manager;
use crate::ResourceError;

/// Operations on a cluster's StatefulSet.
#[derive(Clone)]
pub struct StatefulSetManager {
    inner: Manager<StatefulSet>,
}

impl StatefulSetManager {
    /// A manager for StatefulSets in `namespace`, writing as `field_manager`.
    pub fn new(client: Client, namespace: &str, field_manager: &str) -> Self {
        Self { inner: Manager::new(client, namespace, field_manager) }
    }

    /// Creates the StatefulSet (an apply: creating twice is harmless).
    pub async fn create(&self, sts: &StatefulSet) -> Result<StatefulSet, ResourceError> {
        self.inner.apply(sts).await
    }

    /// Updates the StatefulSet to the given template (the StatefulSet controller rolls pods one at a time).
    pub async fn update(&self, sts: &StatefulSet) -> Result<StatefulSet, ResourceError> {
        self.inner.apply(sts).await
    }

    /// Reads the StatefulSet.
    pub async fn get(&self, name: &str) -> Result<Option<StatefulSet>, ResourceError> {
        self.inner.get(name).await
    }

    /// Deletes the StatefulSet; returns whether it existed.
    pub async fn delete(&self, name: &str) -> Result<bool, ResourceError> {
        self.inner.delete(name).await
    }

    /// A merge patch's parameters: under this component's field manager (it owns what it changes,
    /// as `managedFields` shows), not under the client's User-Agent name.
    fn update_params(&self) -> PatchParams {
        PatchParams { field_manager: Some(self.inner.field_manager.clone()), ..PatchParams::default() }
    }

    /// Sets the replica count through the scale subresource, leaving the template alone.
    pub async fn scale(&self, name: &str, replicas: i32) -> Result<(), ResourceError> {
        let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
        self.inner
            .api()
            .patch_scale(name, &self.update_params(), &patch)
            .await
            .map(drop)
            .map_err(|source| self.inner.err("scale", name, source))
    }

    /// Makes a scale down keep the removed pods' claims (a stop that must keep every member's data).
    pub async fn retain_claims_on_scale_down(&self, name: &str) -> Result<(), ResourceError> {
        let patch = Patch::Merge(
            json!({ "spec": { "persistentVolumeClaimRetentionPolicy": { "whenScaled": "Retain" } } }),
        );
        self.inner
            .api()
            .patch(name, &self.update_params(), &patch)
            .await
            .map(drop)
            .map_err(|source| self.inner.err("retain claims", name, source))
    }
}
