//! Settings of the service layer.

use std::time::Duration;

use etcd_operator_client::etcd::EtcdOptions;

/// How the services reach clusters and name themselves.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Kubernetes cluster DNS domain used in member URLs.
    pub cluster_domain: String,
    /// How to connect to etcd.
    pub etcd: EtcdOptions,
    /// Identity of this replica in per-cluster locks (unique per process).
    pub holder_identity: String,
    /// How long a per-cluster lock lasts if its holder dies.
    pub lock_duration: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".into(),
            etcd: EtcdOptions::default(),
            holder_identity: "cluster-service".into(),
            lock_duration: Duration::from_secs(30),
        }
    }
}

/// Component names; each writes under the field manager `etcd-operator/<component>`.
pub mod component {
    /// Creation, update and deletion of clusters.
    pub const LIFECYCLE: &str = "lifecycle";
    /// Membership changes: scale up and down.
    pub const SCALING: &str = "scaling";
    /// Spec writes made on behalf of API callers (tooling).
    pub const API: &str = "api";
}
