//! What each RPC needs in Kubernetes RBAC terms, in one table: platform teams
//! grant the API with ordinary Roles on the operator's resources. Subresources
//! the API server does not serve (`members`, `certificates`) name operations
//! that have no Kubernetes verb of their own.

use etcd_operator_client::access::Permission;

/// API group of the operator's resources.
pub const GROUP: &str = "etcd.operator.dev";

/// The authorized RPCs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rpc {
    /// CreateCluster with a spec: creates the EtcdCluster.
    CreateClusterObject,
    /// CreateCluster or UpdateCluster: reconciles (with a spec: replaces it).
    ReconcileCluster,
    /// DeleteCluster of an EtcdCluster being deleted: its finalizer's work.
    FinalizeCluster,
    /// DeleteCluster with `force` of one that is not.
    ForceDeleteCluster,
    /// GetClusterStatus of the recorded status.
    GetClusterStatus,
    /// ListClusters.
    ListClusters,
    /// Converge, ScaleUp, ScaleDown, ScaleToZero, RestartFromZero.
    Scale,
    /// CheckHealth, and GetClusterStatus with `fresh`: observes the members and records what it
    /// saw in status (a reader may not make the operator call every member at will).
    CheckHealth,
    /// DefragmentMember, ReplaceMember, RecoverQuorum: act on members.
    MemberMaintenance,
    /// ReconcileCertificates, RotateCertificateAuthority.
    ManageCertificates,
    /// GetCertificates.
    GetCertificates,
    /// RunBackup: runs what an EtcdBackup asks for and records it.
    RunBackup,
    /// ReconcileSchedule.
    ReconcileSchedule,
    /// PruneBackups: deletes EtcdBackups past the retention.
    PruneBackups,
    /// CreateBackup: creates an EtcdBackup.
    CreateBackup,
    /// GetBackup.
    GetBackup,
    /// ListBackups.
    ListBackups,
}

impl Rpc {
    /// (verb, resource, subresource) this RPC needs.
    pub fn needs(self) -> (&'static str, &'static str, &'static str) {
        use Rpc::*;
        match self {
            CreateClusterObject => ("create", "etcdclusters", ""),
            ReconcileCluster => ("update", "etcdclusters", ""),
            FinalizeCluster => ("update", "etcdclusters", "finalizers"),
            ForceDeleteCluster => ("delete", "etcdclusters", ""),
            GetClusterStatus => ("get", "etcdclusters", ""),
            ListClusters => ("list", "etcdclusters", ""),
            Scale => ("update", "etcdclusters", "scale"),
            CheckHealth => ("update", "etcdclusters", "status"),
            MemberMaintenance => ("update", "etcdclusters", "members"),
            ManageCertificates => ("update", "etcdclusters", "certificates"),
            GetCertificates => ("get", "etcdclusters", "certificates"),
            RunBackup => ("update", "etcdbackups", "status"),
            ReconcileSchedule => ("update", "etcdbackupschedules", "status"),
            PruneBackups => ("delete", "etcdbackups", ""),
            CreateBackup => ("create", "etcdbackups", ""),
            GetBackup => ("get", "etcdbackups", ""),
            ListBackups => ("list", "etcdbackups", ""),
        }
    }

    /// The permission on object `name` (empty: the collection) in `namespace` (empty: every
    /// namespace).
    pub fn on(self, namespace: &str, name: &str) -> Permission {
        let (verb, resource, subresource) = self.needs();
        // PruneBackups deletes backups of the schedule, not the schedule: the collection.
        let name = if self == Rpc::PruneBackups { "" } else { name };
        Permission {
            verb,
            group: GROUP,
            resource,
            subresource,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// Methods callers reach without a Kubernetes identity: gRPC health (probes), and the restore
/// agent's snapshot fetch, which its per-restore token authorizes (for that cluster only).
pub fn unauthenticated(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path == "/etcd_operator.v1alpha1.BackupService/FetchRestoreSnapshot"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destructive_calls_need_more_than_reading_and_name_their_object() {
        let p = Rpc::Scale.on("team-a", "demo");
        assert_eq!(
            p.to_string(),
            "update etcdclusters.etcd.operator.dev/scale \"demo\" in namespace \"team-a\""
        );
        assert_eq!(
            Rpc::ListClusters.on("", "").to_string(),
            "list etcdclusters.etcd.operator.dev in every namespace"
        );
        assert_eq!(Rpc::PruneBackups.on("a", "nightly").name, "", "prune deletes the schedule's backups");
        for rpc in
            [Rpc::ForceDeleteCluster, Rpc::MemberMaintenance, Rpc::ManageCertificates, Rpc::ReconcileCluster]
        {
            assert_ne!(rpc.needs().0, "get", "{rpc:?}");
        }
        assert_ne!(Rpc::FinalizeCluster.needs(), Rpc::ForceDeleteCluster.needs());
    }

    #[test]
    fn only_health_and_the_restore_fetch_skip_authentication() {
        assert!(unauthenticated("/grpc.health.v1.Health/Check"));
        assert!(unauthenticated("/etcd_operator.v1alpha1.BackupService/FetchRestoreSnapshot"));
        for path in [
            "/etcd_operator.v1alpha1.BackupService/RunBackup",
            "/etcd_operator.v1alpha1.ClusterService/ListClusters",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/etcd_operator.v1alpha1.BackupService/FetchRestoreSnapshotX",
        ] {
            assert!(!unauthenticated(path), "{path}");
        }
    }
}
