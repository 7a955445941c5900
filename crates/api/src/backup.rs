//! The `EtcdBackup` resource: one snapshot of a cluster, taken once.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::{condition::Condition, storage::BackupLocation};

/// A one-shot backup of an EtcdCluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "etcd.operator.dev",
    version = "v1alpha1",
    kind = "EtcdBackup",
    namespaced,
    status = "EtcdBackupStatus",
    shortname = "etcdbk",
    category = "etcd-operator",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterName"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Size", type_ = "integer", json_path = ".status.sizeBytes"),
    printcolumn(name = "Revision", type_ = "integer", json_path = ".status.revision"),
    printcolumn(name = "Progress", type_ = "integer", json_path = ".status.progress.percent", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: create a new EtcdBackup instead"))]
pub struct EtcdBackupSpec {
    /// Name of the EtcdCluster in the same namespace.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub cluster_name: String,
    /// Where the snapshot is written.
    pub storage: BackupLocation,
}

/// Progress of a backup.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum BackupPhase {
    /// Not started.
    #[default]
    Pending,
    /// Snapshot being taken or uploaded.
    Running,
    /// Snapshot stored and verified.
    Succeeded,
    /// Gave up; see conditions.
    Failed,
}

/// Observed state of a backup.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackupStatus {
    /// Progress.
    #[serde(default)]
    pub phase: BackupPhase,
    /// Conditions, one per type.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Key of the stored snapshot, relative to the storage location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Full location of the stored snapshot (`s3://bucket/prefix/key` or `file:///dir/key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Member the snapshot was streamed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// etcd cluster ID (hex) of the source cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Attempts made so far (failures are retried with backoff up to a limit).
    #[serde(default)]
    pub attempts: i32,
    /// When the latest attempt started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<String>,
    /// Seconds the successful attempt took, from the first byte to the verified copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Snapshot size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// SHA-256 of the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// etcd revision captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// etcd version of the member the snapshot came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_version: Option<String>,
    /// When the backup started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When the backup finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// How much of the snapshot the running attempt has streamed (written by the replica
    /// streaming it, under the backup's Lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<TransferProgress>,
    /// The latest check of the stored copy against `sha256`, done before a restore uses it;
    /// reused while the stored object is unchanged (same size, ETag and modification time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<BackupVerification>,
}

/// How far a transfer (a snapshot streaming, a stored copy being read) has come.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferProgress {
    /// Bytes moved so far.
    pub bytes: i64,
    /// Bytes in all, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<i64>,
    /// `bytes` as a percentage of `totalBytes` (0–100), when the total is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i32>,
    /// When this was recorded (RFC 3339); a stale time means the transfer stopped.
    pub updated: String,
    /// The cluster-service replica doing the transfer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub replica: String,
}

/// Where a verification stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum VerificationPhase {
    /// The stored copy is being read.
    #[default]
    Verifying,
    /// The stored copy matches the recorded sha256.
    Verified,
    /// The stored copy does not match: it is corrupt.
    Mismatch,
    /// The stored copy is gone.
    Missing,
}

/// A check of a backup's stored copy, and the object it was made on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupVerification {
    /// Where the check stands.
    pub phase: VerificationPhase,
    /// Reading progress while Verifying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<TransferProgress>,
    /// Bytes read (once finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// SHA-256 of what was read (once finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The stored object's ETag when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    /// The stored object's modification time when it was read (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// When the check finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}
