//! The `EtcdCluster` resource.

pub mod operation;
mod spec;
mod status;
pub mod tls;
mod transport;

pub use operation::{OperationStatus, OperationType};
pub use spec::*;
pub use status::*;
pub use tls::{
    AuthSpec, CaRotationPhase, CaRotationStatus, CertificateAuthorityStatus, CertificateStatus,
    NetworkPolicySpec, TlsSpec,
};
pub use transport::{MemberTransport, TransportMove, TransportPhase, TransportStatus};

/// Condition type: the cluster serves requests (quorum with a leader).
pub const CONDITION_AVAILABLE: &str = "Available";
/// Condition type: the operator is moving the cluster towards its spec.
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// Condition type: some members are unhealthy or missing.
pub const CONDITION_DEGRADED: &str = "Degraded";
/// Condition type: every certificate the members and the operator use is present, valid and not
/// about to expire (clusters with spec.tls only).
pub const CONDITION_CERTIFICATES_READY: &str = "CertificatesReady";
/// Condition type: etcd's authentication is as spec.auth asks, and root's password is the one in
/// the Secret `<name>-etcd-root` (clusters with spec.auth only).
pub const CONDITION_AUTH_READY: &str = "AuthReady";
/// Condition type: members are moving to spec.version (True until every member runs it and etcd
/// reports its minor as the cluster version; the message says who is next, or who stopped it).
pub const CONDITION_UPGRADING: &str = "Upgrading";
/// Condition type: the cluster was bootstrapped from a backup (spec.restore).
pub const CONDITION_RESTORED: &str = "Restored";
/// Condition type: the cluster was recreated from a backup after losing quorum; later writes are gone.
pub const CONDITION_DATA_LOSS_POSSIBLE: &str = "DataLossPossible";

/// Annotation by which a user accepts that a quorum-loss recovery restores from the named
/// EtcdBackup although no member that still answers holds data as new as it (what the members
/// that are down held beyond it is lost). Its value must name the backup the operator proposes.
pub const ANNOTATION_ACCEPT_QUORUM_LOSS_RESTORE: &str = "etcd.operator.dev/accept-quorum-loss-restore-from";

impl EtcdCluster {
    /// Whether the cluster ever formed: etcd reported a cluster ID, recorded in status.
    pub fn formed(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.cluster_id.is_some())
    }

    /// The CAs the members trust and a CA rotation in progress, as the security service recorded.
    pub fn certificate_authority(&self) -> Option<&CertificateAuthorityStatus> {
        self.status.as_ref().and_then(|s| s.certificate_authority.as_ref())
    }
}
