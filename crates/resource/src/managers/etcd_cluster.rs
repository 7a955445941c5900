//! The EtcdCluster objects themselves: read, create from tooling, status by apply.

use etcd_operator_api::{EtcdCluster, EtcdClusterSpec, EtcdClusterStatus};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;
use tracing::Instrument;

use super::without_managed_fields;
use crate::ResourceError;

/// Reads EtcdClusters and writes their spec (tooling path) and status.
#[derive(Clone)]
pub struct EtcdClusterManager {
    client: Client,
    field_manager: String,
}

impl EtcdClusterManager {
    /// A manager writing as `field_manager`.
    pub fn new(client: Client, field_manager: &str) -> Self {
        Self { client, field_manager: field_manager.into() }
    }

    fn api(&self, namespace: &str) -> Api<EtcdCluster> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn err(verb: &'static str, namespace: &str, name: &str, source: kube::Error) -> ResourceError {
        ResourceError::Api {
            verb,
            kind: "EtcdCluster".into(),
            namespace: namespace.into(),
            name: name.into(),
            source: Box::new(source),
        }
    }

    /// Reads one cluster; `None` when it does not exist.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Option<EtcdCluster>, ResourceError> {
        let span =
            tracing::info_span!("kube.get", otel.kind = "client", k8s.kind = "EtcdCluster", k8s.name = %name);
        self.api(namespace)
            .get_opt(name)
            .instrument(span)
            .await
            .map(|read| read.map(without_managed_fields))
            .map_err(|e| Self::err("get", namespace, name, e))
    }

    /// Lists clusters in a namespace, or in all namespaces when `namespace` is empty.
    pub async fn list(&self, namespace: &str) -> Result<Vec<EtcdCluster>, ResourceError> {
        let api: Api<EtcdCluster> =
            if namespace.is_empty() { Api::all(self.client.clone()) } else { self.api(namespace) };
        let listed =
            api.list(&ListParams::default()).await.map_err(|e| Self::err("list", namespace, "", e))?;
        Ok(listed.items.into_iter().map(without_managed_fields).collect())
    }

    /// Applies the spec of a cluster (creating it if needed); admission rules apply. With
    /// `read_at`, only onto that resourceVersion.
    pub async fn apply_spec(
        &self,
        namespace: &str,
        name: &str,
        spec: &EtcdClusterSpec,
        read_at: Option<&str>,
    ) -> Result<EtcdCluster, ResourceError> {
        let mut object = json!({
            "apiVersion": "etcd.operator.dev/v1alpha1",
            "kind": "EtcdCluster",
            "metadata": { "name": name, "namespace": namespace },
            "spec": spec,
        });
        // A spec merged from a read fails (409) if the object changed since, instead of undoing
        // another writer's change to the fields it kept.
        if let Some(rv) = read_at {
            object["metadata"]["resourceVersion"] = json!(rv);
        }
        let params = PatchParams::apply(&self.field_manager).force();
        self.api(namespace)
            .patch(name, &params, &Patch::Apply(&object))
            .await
            .map(without_managed_fields)
            .map_err(|e| Self::err("apply", namespace, name, e))
    }

    /// Applies the status fields this component owns; with `read_at`, only onto that resourceVersion.
    pub async fn apply_status(
        &self,
        namespace: &str,
        name: &str,
        status: &EtcdClusterStatus,
        read_at: Option<&str>,
    ) -> Result<EtcdCluster, ResourceError> {
        let mut object = json!({
            "apiVersion": "etcd.operator.dev/v1alpha1",
            "kind": "EtcdCluster",
            "status": status,
        });
        // A status computed from a read fails (409) if the object changed since, instead of
        // undoing what another writer recorded meanwhile.
        if let Some(rv) = read_at {
            object["metadata"] = json!({ "resourceVersion": rv });
        }
        let params = PatchParams::apply(&self.field_manager).force();
        let span = tracing::info_span!("kube.apply_status", otel.kind = "client", k8s.kind = "EtcdCluster", k8s.name = %name);
        self.api(namespace)
            .patch_status(name, &params, &Patch::Apply(&object))
            .instrument(span)
            .await
            .map(without_managed_fields)
            .map_err(|e| Self::err("apply status", namespace, name, e))
    }
}
