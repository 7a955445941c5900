//! Every capability's service over one core: what a cluster-service replica
//! serves. Each service holds the core and only the other services it hands
//! work to, so its fields show what it depends on.

use std::sync::Arc;

use etcd_operator_client::metrics::EtcdMetrics;
use kube::Client;

use crate::{
    ServiceConfig, backup::BackupService, core::Core, health::HealthService, lifecycle::LifecycleService,
    recovery::RecoveryService, restore::RestoreService, roll::RollService, scaling::ScalingService,
    security::SecurityService,
};

/// The services of one replica, sharing one core (client, settings, lock, task tables).
#[derive(Clone)]
pub struct Services {
    /// Create, update, delete, status (the design's ClusterService).
    pub lifecycle: LifecycleService,
    /// Scaling, stop and restart.
    pub scaling: ScalingService,
    /// Member replacement and quorum recovery.
    pub recovery: RecoveryService,
    /// Health and maintenance.
    pub health: HealthService,
    /// Backups, schedules, retention and the restore agent's snapshot stream.
    pub backup: BackupService,
    /// Restore sources and their verification.
    pub restore: RestoreService,
    /// Members restarted one at a time on a new pod template (scaling's Converge calls it too).
    pub roll: RollService,
    /// Certificates of clusters with spec.tls.
    pub security: SecurityService,
}

impl Services {
    /// The services of a replica using `client` for Kubernetes.
    pub fn new(client: Client, config: ServiceConfig, metrics: EtcdMetrics) -> Self {
        let core = Arc::new(Core::new(client, config, metrics));
        Self {
            lifecycle: LifecycleService::new(core.clone()),
            scaling: ScalingService::new(core.clone()),
            recovery: RecoveryService::new(core.clone()),
            health: HealthService::new(core.clone()),
            backup: BackupService::new(core.clone()),
            restore: RestoreService::new(core.clone()),
            roll: RollService::new(core.clone()),
            security: SecurityService::new(core),
        }
    }

    /// GetClusterStatus's recorded reads, and the looks of CheckHealth, Converge and
    /// RecoverQuorum, answer from `cache` (a watch the caller runs) when it may (see `reads`).
    #[must_use]
    pub fn with_cluster_cache(self, cache: etcd_operator_resource::managers::ClusterCache) -> Self {
        self.lifecycle.core.reads.use_cache(cache);
        self
    }
}
