//! Managers: idempotent operations on the objects a cluster owns.
//!
//! Every write is a server-side apply under the component's field manager,
//! so repeating it is harmless and fields owned by others are left alone.

mod cluster_cache;
mod cluster_lock;
mod etcd_cluster;
mod member_pods;
mod statefulset;

pub use cluster_cache::ClusterCache;
pub use cluster_lock::{
    Acquired, ClusterLock, LockState, backup_lock_name, lock_name, lock_state, snapshot_lock_name,
};
pub use etcd_cluster::EtcdClusterManager;
pub use statefulset::StatefulSetManager;

use std::fmt::Debug;

use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service},
        networking::v1::NetworkPolicy,
        policy::v1::PodDisruptionBudget,
    },
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy},
};
use serde::{Serialize, de::DeserializeOwned};
use tracing::Instrument;

use crate::ResourceError;

/// Manages Services.
pub type ServiceManager = Manager<Service>;
/// Manages ConfigMaps.
pub type ConfigMapManager = Manager<ConfigMap>;
/// Manages Secrets.
pub type SecretManager = Manager<Secret>;
/// Manages PersistentVolumeClaims.
pub type PvcManager = Manager<PersistentVolumeClaim>;
/// Manages PodDisruptionBudgets.
pub type PdbManager = Manager<PodDisruptionBudget>;
/// Manages NetworkPolicies.
pub type NetworkPolicyManager = Manager<NetworkPolicy>;

/// `object` without its managed fields. Nothing here reads them, and a server-side applied object's
/// are about as large as the object: dropped as soon as it is decoded, they are not held across
/// the rest of a call (at 1 000 clusters, ~64 calls are in flight at once).
pub fn without_managed_fields<K: Resource>(mut object: K) -> K {
    object.meta_mut().managed_fields = None;
    object
}

/// Idempotent operations on one kind of namespaced object.
#[derive(Clone)]
pub struct Manager<K> {
    api: Api<K>,
    namespace: String,
    field_manager: String,
}

impl<K> Manager<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    /// A manager for objects in `namespace`, writing as `field_manager`.
    pub fn new(client: Client, namespace: &str, field_manager: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.into(),
            field_manager: field_manager.into(),
        }
    }

    pub(crate) fn err(&self, verb: &'static str, name: &str, source: kube::Error) -> ResourceError {
        ResourceError::Api {
            verb,
            kind: K::kind(&()).into_owned(),
            namespace: self.namespace.clone(),
            name: name.into(),
            source: Box::new(source),
        }
    }

    /// The underlying API handle.
    pub fn api(&self) -> &Api<K> {
        &self.api
    }

    /// Creates or updates the object by server-side apply (forcing ownership of the fields it sets).
    pub async fn apply(&self, object: &K) -> Result<K, ResourceError> {
        let name = object.name_any();
        let params = PatchParams::apply(&self.field_manager).force();
        let span = tracing::info_span!("kube.apply", otel.kind = "client", k8s.kind = %K::kind(&()), k8s.name = %name);
        self.api
            .patch(&name, &params, &Patch::Apply(object))
            .instrument(span)
            .await
            .map(without_managed_fields)
            .map_err(|e| self.err("apply", &name, e))
    }

    /// Creates the object unless one of that name exists (then `None`): for values that must never
    /// be replaced once made, such as a generated password, even when two replicas race.
    pub async fn create_once(&self, object: &K) -> Result<Option<K>, ResourceError> {
        let name = object.name_any();
        let params =
            kube::api::PostParams { field_manager: Some(self.field_manager.clone()), ..Default::default() };
        let span = tracing::info_span!("kube.create", otel.kind = "client", k8s.kind = %K::kind(&()), k8s.name = %name);
        match self.api.create(&params, object).instrument(span).await {
            Ok(created) => Ok(Some(without_managed_fields(created))),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
            Err(e) => Err(self.err("create", &name, e)),
        }
    }

    /// Applies the status fields this manager's component owns (status subresource).
    pub async fn apply_status<S: Serialize>(&self, name: &str, status: &S) -> Result<K, ResourceError> {
        let object = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        let params = PatchParams::apply(&self.field_manager).force();
        let span = tracing::info_span!("kube.apply_status", otel.kind = "client", k8s.kind = %K::kind(&()), k8s.name = %name);
        self.api
            .patch_status(name, &params, &Patch::Apply(&object))
            .instrument(span)
            .await
            .map(without_managed_fields)
            .map_err(|e| self.err("apply status", name, e))
    }

    /// Reads the object; `None` when it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<K>, ResourceError> {
        let span =
            tracing::info_span!("kube.get", otel.kind = "client", k8s.kind = %K::kind(&()), k8s.name = %name);
        let read = self.api.get_opt(name).instrument(span).await.map_err(|e| self.err("get", name, e))?;
        Ok(read.map(without_managed_fields))
    }

    /// Lists objects matching a label selector.
    pub async fn list(&self, selector: &str) -> Result<Vec<K>, ResourceError> {
        Ok(self.list_as(&self.api, selector).await?.into_iter().map(without_managed_fields).collect())
    }

    /// Lists the objects matching `selector` through `api`, which may decode them as another
    /// type of the same kind (fewer fields).
    pub(crate) async fn list_as<T>(&self, api: &Api<T>, selector: &str) -> Result<Vec<T>, ResourceError>
    where
        T: Clone + Debug + DeserializeOwned,
    {
        let params = ListParams::default().labels(selector);
        let span = tracing::info_span!("kube.list", otel.kind = "client", k8s.kind = %K::kind(&()), k8s.selector = %selector);
        Ok(api.list(&params).instrument(span).await.map_err(|e| self.err("list", "", e))?.items)
    }

    /// Deletes the object in the background, with its grace period (a forced delete of a pod
    /// drops the object while its containers still run); returns whether it existed.
    pub async fn delete(&self, name: &str) -> Result<bool, ResourceError> {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match self.api.delete(name, &params).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(self.err("delete", name, e)),
        }
    }

    /// Deletes the object only if it is still the one with `uid` (not a successor of the same
    /// name); returns whether that one existed.
    pub async fn delete_uid(&self, name: &str, uid: &str) -> Result<bool, ResourceError> {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(name, &params).await {
            Ok(_) => Ok(true),
            // Gone, or replaced by a successor (the UID precondition failed).
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
            Err(e) => Err(self.err("delete", name, e)),
        }
    }
}
