//! Settings of the service layer.

use std::time::Duration;

use std::sync::Arc;

use etcd_operator_client::{backup_storage::BackupStorage, etcd::EtcdOptions};

/// Where ScaleToZero keeps the snapshot it takes before stopping a cluster.
#[derive(Clone)]
pub struct SnapshotStore(pub Arc<dyn BackupStorage>);

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotStore")
    }
}

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
    /// Snapshot storage for ScaleToZero (`None`: clusters cannot be stopped).
    pub snapshots: Option<SnapshotStore>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".into(),
            etcd: EtcdOptions::default(),
            holder_identity: "cluster-service".into(),
            lock_duration: Duration::from_secs(30),
            snapshots: None,
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
