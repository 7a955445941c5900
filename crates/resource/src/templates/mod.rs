//! Pure builders: EtcdCluster (+ decisions of the service layer) → Kubernetes objects.
//!
//! Nothing here talks to a server, so every template is unit tested from
//! small fixtures.

pub mod api_ca;
mod config_map;
pub mod network_policy;
mod pdb;
mod probes;
mod security;
mod services;
mod statefulset;
pub mod tls;

pub use config_map::{BootstrapConfig, InitialClusterState, config_map};
pub use pdb::pod_disruption_budget;
pub use services::{client_service, metrics_service, peer_service};
pub use statefulset::{
    CONFIG_HASH_ANNOTATION, TEMPLATE_HASH_ANNOTATION, TRANSPORT_ANNOTATION, TRUSTED_CAS_ANNOTATION,
    etcd_version_of, etcd_version_of_statefulset, statefulset,
};

use std::collections::BTreeMap;

use etcd_operator_api::EtcdCluster;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use crate::{ResourceError, names::ClusterNames};

/// Image of the official etcd release for a version.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "gcr.io/etcd-development/etcd";

/// The operator's restore agent, run as an init container of member pods of clusters restored from a backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreAgent {
    /// Operator image holding `/usr/local/bin/restore-agent` and etcd's restore tools.
    pub image: String,
    /// How pods reach the cluster-service's gRPC API.
    pub endpoint: String,
    /// The CA (PEM) that signs the API's serving certificate; `None` when the API is served in
    /// plaintext (`--insecure`).
    pub ca: Option<String>,
}

impl Default for RestoreAgent {
    fn default() -> Self {
        Self {
            image: "ghcr.io/etcd-k8s-operator/etcd-operator:0.1.0".into(),
            endpoint: "http://cluster-service.etcd-operator.svc:9090".into(),
            ca: None,
        }
    }
}

/// What every template needs: the cluster and its derived names.
#[derive(Clone, Debug)]
pub struct TemplateContext<'a> {
    /// The cluster the objects belong to.
    pub cluster: &'a EtcdCluster,
    /// Names derived from it.
    pub names: ClusterNames,
    /// The restore agent (used when `spec.restore` is set).
    pub restore_agent: RestoreAgent,
    /// The operator's pods, and whether clusters get a NetworkPolicy unless their spec says.
    pub network_policy: (bool, network_policy::OperatorPods),
}

impl<'a> TemplateContext<'a> {
    /// Context for a cluster in a cluster DNS domain.
    pub fn new(cluster: &'a EtcdCluster, cluster_domain: &str) -> Self {
        Self {
            cluster,
            names: ClusterNames::of(cluster, cluster_domain),
            restore_agent: RestoreAgent::default(),
            network_policy: (false, network_policy::OperatorPods::default()),
        }
    }

    /// The same context with the operator's NetworkPolicy default and its pods.
    pub fn with_network_policy(mut self, default: bool, operator: network_policy::OperatorPods) -> Self {
        self.network_policy = (default, operator);
        self
    }

    /// The members' NetworkPolicy, if the spec (or the operator's default) asks for one.
    pub fn member_network_policy(
        &self,
    ) -> Result<Option<k8s_openapi::api::networking::v1::NetworkPolicy>, ResourceError> {
        let wanted = self
            .cluster
            .spec
            .network_policy
            .as_ref()
            .and_then(|p| p.enabled)
            .unwrap_or(self.network_policy.0);
        wanted.then(|| network_policy::network_policy(self, &self.network_policy.1)).transpose()
    }

    /// The same context with another restore agent.
    pub fn with_restore_agent(mut self, agent: RestoreAgent) -> Self {
        self.restore_agent = agent;
        self
    }

    /// Container image: the override, else the official image of the version.
    pub fn image(&self) -> String {
        let spec = &self.cluster.spec;
        spec.image.clone().unwrap_or_else(|| format!("{DEFAULT_IMAGE_REPOSITORY}:v{}", spec.version))
    }

    /// Metadata of an owned object: name, namespace, labels and the controller reference.
    pub fn metadata(&self, name: String, kind: &'static str) -> Result<ObjectMeta, ResourceError> {
        let owner = self.cluster.controller_owner_ref(&()).ok_or_else(|| ResourceError::Template {
            kind,
            reason: "the EtcdCluster has no uid yet (it must be read from the API server)".into(),
        })?;
        Ok(ObjectMeta {
            name: Some(name),
            namespace: Some(self.names.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        })
    }

    /// Labels of every owned object (selector labels plus component).
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.names.selector_labels();
        labels.insert("app.kubernetes.io/component".into(), "etcd".into());
        labels
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use etcd_operator_api::EtcdCluster;

    /// An EtcdCluster as read from the API server, from YAML.
    pub fn cluster(spec_yaml: &str) -> EtcdCluster {
        let yaml = format!(
            "apiVersion: etcd.operator.dev/v1alpha1\nkind: EtcdCluster\nmetadata:\n  name: demo\n  namespace: prod\n  uid: 0d7f0b52-4a4e-4f8e-9f55-2f6a0c3f5a11\n  generation: 2\nspec:\n{}",
            spec_yaml.lines().map(|l| format!("  {l}\n")).collect::<String>()
        );
        serde_yaml_ng::from_str(&yaml).expect("fixture parses")
    }
}
