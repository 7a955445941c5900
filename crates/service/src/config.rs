//! Settings of the service layer.

use std::{path::PathBuf, time::Duration};

use etcd_operator_client::{etcd::EtcdOptions, storage::ObjectStorage};
use etcd_operator_resource::templates::RestoreAgent;

/// How the services reach clusters and name themselves.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Kubernetes cluster DNS domain used in member URLs.
    pub cluster_domain: String,
    /// How to connect to etcd.
    pub etcd: EtcdOptions,
    /// How long an etcd connection kept between observations may go unused (zero: none is kept).
    pub etcd_idle: Duration,
    /// Identity of this replica in per-cluster locks (unique per process).
    pub holder_identity: String,
    /// How long a per-cluster lock lasts if its holder dies.
    pub lock_duration: Duration,
    /// Snapshot storage for ScaleToZero (`None`: clusters cannot be stopped).
    pub snapshots: Option<ObjectStorage>,
    /// The restore agent that pods of clusters restored from a backup run (image, and how they reach us).
    pub restore_agent: RestoreAgent,
    /// When health-driven maintenance (defragmentation, NOSPACE recovery) acts.
    pub maintenance: MaintenancePolicy,
    /// How long etcd must not hear from a member before it is replaced without being asked (and a
    /// learner that ran before is added again, empty).
    pub replace_grace: Duration,
    /// Where backup volumes are mounted, one directory per claim name (`None`: volume backups are refused).
    pub backup_volume_root: Option<PathBuf>,
    /// Whether clusters get a members' NetworkPolicy unless their spec says otherwise.
    pub member_network_policy: bool,
    /// The cluster-service's own pods, let in on the members' client port by that policy.
    pub operator_pods: etcd_operator_resource::templates::network_policy::OperatorPods,
    /// S3 endpoint origins EtcdBackups may name (none: only AWS's own endpoints).
    pub s3_endpoints: Vec<crate::backup::decide::endpoint::AllowedEndpoint>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".into(),
            etcd: EtcdOptions::default(),
            // Longer than the default health interval (30 s), so probes reuse their connections;
            // short enough that a deleted cluster's do not linger.
            etcd_idle: Duration::from_secs(180),
            holder_identity: "cluster-service".into(),
            lock_duration: Duration::from_secs(30),
            snapshots: None,
            backup_volume_root: None,
            replace_grace: Duration::from_secs(300),
            maintenance: Default::default(),
            restore_agent: RestoreAgent::default(),
            member_network_policy: false,
            operator_pods: Default::default(),
            s3_endpoints: Vec::new(),
        }
    }
}

/// Component names; each writes under the field manager `etcd-operator/<component>`.
pub mod component {
    /// Creation, update and deletion of clusters.
    pub const LIFECYCLE: &str = "lifecycle";
    /// Membership changes: scale up and down.
    pub const SCALING: &str = "scaling";
    /// Replacement of failed members.
    pub const RECOVERY: &str = "recovery";
    /// Backups, schedules and their retention.
    pub const BACKUP: &str = "backup";
    /// Health probes and the maintenance they drive.
    pub const HEALTH: &str = "health";
    /// Checks of stored backups before a restore uses them (`EtcdBackup` `status.verification`).
    pub const VERIFICATION: &str = "verification";
    /// Spec writes made on behalf of API callers (tooling).
    pub const API: &str = "api";
    /// The CA of the operator's own gRPC API and its published certificate.
    pub const API_TLS: &str = "api-tls";
    /// Certificates: the operator-managed CA and the certificates it issues.
    pub const SECURITY: &str = "security";
    /// Moves between plaintext and TLS (`status.transport`). A manager of its own: a server-side
    /// apply replaces everything its manager applied before, and the security component applies
    /// `status.certificateAuthority` alone.
    pub const TRANSPORT: &str = "transport";
}

/// When health-driven maintenance acts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaintenancePolicy {
    /// Share of a member's database that is free pages (1 - in use / size) from which it is defragmented.
    pub fragmentation_threshold: f64,
    /// Databases smaller than this are never defragmented (nothing worth reclaiming).
    pub min_db_size: i64,
    /// A member is defragmented at most once in this period, and space is recovered at most once
    /// in a sixth of it: maintenance that did not help is reported, not repeated in a loop.
    pub cooldown: std::time::Duration,
}

impl Default for MaintenancePolicy {
    fn default() -> Self {
        Self {
            fragmentation_threshold: 0.5,
            min_db_size: 64 << 20,
            cooldown: std::time::Duration::from_secs(3600),
        }
    }
}
