//! `EtcdCluster.status`: what the operator observed.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::OperationStatus;
use crate::condition::Condition;

/// Coarse lifecycle phase, for humans; conditions carry the detail.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum ClusterPhase {
    /// Accepted, nothing created yet.
    #[default]
    Pending,
    /// Members are starting for the first time.
    Creating,
    /// All members healthy and the size matches the spec.
    Running,
    /// Changing size or rolling out a new spec.
    Updating,
    /// Serving, but with unhealthy or missing members.
    Degraded,
    /// No quorum: the cluster does not serve writes.
    Unavailable,
    /// Scaled to zero; data is retained.
    Stopped,
    /// Reconciliation is paused by the user.
    Paused,
    /// The spec cannot be applied; see the Progressing condition.
    Invalid,
    /// Being deleted.
    Deleting,
}

/// One member as etcd and Kubernetes report it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Member (and pod) name.
    pub name: String,
    /// etcd member ID in hex.
    #[serde(default)]
    pub id: String,
    /// Advertised peer URLs.
    #[serde(default)]
    pub peer_urls: Vec<String>,
    /// Advertised client URLs.
    #[serde(default)]
    pub client_urls: Vec<String>,
    /// Whether the member is a non-voting learner.
    #[serde(default)]
    pub is_learner: bool,
    /// Whether the member answered a status request.
    #[serde(default)]
    pub healthy: bool,
    /// Since when the member has not answered (RFC 3339); recovery replaces it after a grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_since: Option<String>,
    /// Whether the member is the Raft leader.
    #[serde(default)]
    pub is_leader: bool,
    /// Backend database size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_size_bytes: Option<i64>,
    /// Bytes of the database in use; the rest is reclaimed by defragmentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_size_in_use_bytes: Option<i64>,
    /// Raft term the member is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_term: Option<i64>,
    /// Raft index the member has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_index: Option<i64>,
    /// Raft index the member has applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_applied_index: Option<i64>,
    /// Latest revision the member reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// etcd server version the member reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Active alarms (for example NOSPACE).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
}

impl MemberStatus {
    /// Whether the member answered its own status call in the latest observation (without a
    /// leader it answers but is not healthy): the fields it reports itself (raft term and index,
    /// revision, sizes, version) are present exactly then.
    pub fn answered(&self) -> bool {
        self.raft_index.is_some()
    }
}

/// Observed state of an etcd cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EtcdClusterStatus {
    /// Generation of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Coarse phase.
    #[serde(default)]
    pub phase: ClusterPhase,
    /// Conditions, one per type.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// etcd cluster ID in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Members as etcd reports them.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub members: Vec<MemberStatus>,
    /// Members that are healthy voting members.
    #[serde(default)]
    pub ready_members: i32,
    /// Healthy voting members beyond quorum: how many more can fail before writes stop (negative: no quorum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_margin: Option<i32>,
    /// Maintenance the health service did (defragmentation, space recovery), kept to pace it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceStatus>,
    /// Members etcd currently has (the /scale subresource reads this).
    #[serde(default)]
    pub current_size: i32,
    /// Label selector of member pods (the /scale subresource reads this).
    #[serde(default)]
    pub selector: String,
    /// etcd version currently running (lowest across members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    /// etcd's cluster version (`3.5.0`), as the leader reports it: it moves to a new minor once
    /// every member runs that minor, and an upgrade is complete only then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_version: Option<String>,
    /// The multi-step operation in progress, recorded before acting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationStatus>,
    /// What a stopped cluster (scaled to zero) needs to come back with its data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StoppedStatus>,
    /// Bootstrapping from a backup (`spec.restore`): the verified source and how far it got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStatus>,
    /// Certificates of the client and peer ports and the operator's client certificate, with
    /// their expiry (clusters with spec.tls only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<super::tls::CertificateStatus>,
    /// The CAs the members trust and a rotation in progress (operator-managed TLS; written by
    /// the security service alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<super::tls::CertificateAuthorityStatus>,
    /// Whether the members' client and peer ports speak TLS, and a move between plaintext and
    /// TLS in progress (written by the security service alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<super::transport::TransportStatus>,
}

/// Progress of a restore.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum RestorePhase {
    /// The source is unusable (missing, not finished, corrupt); nothing was started.
    #[default]
    Refused,
    /// The stored copy is being read and checked against its sha256; nothing was started yet.
    Verifying,
    /// Verified; members are restoring from it.
    Restoring,
    /// Every member restored and the new cluster formed.
    Completed,
}

/// Why a cluster is restored.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum RestoreTrigger {
    /// `spec.restore` at creation.
    #[default]
    Spec,
    /// RestartFromZero with every claim gone: from the snapshot taken when it stopped.
    StopSnapshot,
    /// Quorum was lost for longer than the grace period and `spec.recovery` allowed a restore.
    QuorumLoss,
}

/// Where a restored cluster's data came from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// Progress.
    #[serde(default)]
    pub phase: RestorePhase,
    /// Why the cluster is restored.
    #[serde(default)]
    pub trigger: RestoreTrigger,
    /// The EtcdBackup restored from, when the source is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// The source as given (`EtcdBackup <name>` or the location).
    pub source: String,
    /// CamelCase reason of the phase (BackupNotFound, BackupNotReady, BackupCorrupt, ...).
    #[serde(default)]
    pub reason: String,
    /// Full location of the snapshot (`s3://…` or `file://…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// SHA-256 the snapshot was verified against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Snapshot size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// ID of the cluster the snapshot was taken from, when recorded: a restored cluster never
    /// has it (a restore makes a new cluster), so members serving it started on old data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_cluster_id: Option<String>,
    /// etcd revision the snapshot holds, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// When the snapshot was taken (RFC 3339), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<String>,
    /// Why it was refused, or what was restored.
    #[serde(default)]
    pub message: String,
    /// When the restored cluster formed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// Maintenance done by the health service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceStatus {
    /// The last defragmentation of each member.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["member".into()]))]
    pub defragmentations: Vec<DefragmentationRecord>,
    /// The last recovery from a NOSPACE alarm (RFC 3339), with what it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_space_recovery: Option<String>,
}

/// One member's last defragmentation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefragmentationRecord {
    /// Member (pod) name.
    pub member: String,
    /// When (RFC 3339).
    pub time: String,
    /// Database size before, in bytes.
    pub before_bytes: i64,
    /// Database size after, in bytes.
    pub after_bytes: i64,
}

/// A cluster stopped by ScaleToZero: its members and the verified snapshot taken first.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoppedStatus {
    /// Members it had (pod names, ordinal order); their claims are kept.
    #[serde(default)]
    pub members: Vec<String>,
    /// etcd cluster ID in hex.
    #[serde(default)]
    pub cluster_id: String,
    /// The snapshot taken before stopping, once it is stored and verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRecord>,
}

/// Where a verified snapshot is and what it holds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRecord {
    /// Storage key (location) of the snapshot.
    pub location: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// etcd revision it was taken at.
    pub revision: i64,
    /// When it was taken (RFC 3339).
    pub taken_at: String,
}
