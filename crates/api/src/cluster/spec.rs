//! `EtcdCluster.spec`: what the user asks for.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::status::EtcdClusterStatus;

/// The most members a cluster may have (etcd clusters beyond 7 rarely help; 9 is the limit).
pub const MAX_SIZE: i32 = 9;

/// Desired state of an etcd cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "etcd.operator.dev",
    version = "v1alpha1",
    kind = "EtcdCluster",
    namespaced,
    status = "EtcdClusterStatus",
    shortname = "etcd",
    category = "etcd-operator",
    category = "all",
    scale(
        spec_replicas_path = ".spec.size",
        status_replicas_path = ".status.currentSize",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Size", type_ = "integer", json_path = ".spec.size"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyMembers"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.restore) == has(oldSelf.restore) && (!has(self.restore) || self.restore == oldSelf.restore)").message("spec.restore is immutable: it only applies when the cluster is first created").field_path(".restore"))]
#[x_kube(validation = Rule::new("!has(self.etcd) || !has(self.etcd.quotaBackendBytes) || !isQuantity(self.storage.size) || quantity(self.storage.size).isGreaterThan(quantity(string(self.etcd.quotaBackendBytes)))").message("spec.etcd.quotaBackendBytes must be smaller than spec.storage.size: etcd would fill the volume before reaching its quota").field_path(".etcd.quotaBackendBytes"))]
#[x_kube(validation = Rule::new("self.storage.type != 'Ephemeral' || self.pvcRetentionPolicy.whenDeleted == 'Retain' && self.pvcRetentionPolicy.whenScaled == 'Retain'").message("spec.pvcRetentionPolicy only applies to Persistent storage; leave it at Retain for Ephemeral storage").field_path(".pvcRetentionPolicy"))]
#[x_kube(validation = Rule::new("!has(self.tls) || !has(oldSelf.tls) || (has(self.tls.operatorManaged) == has(oldSelf.tls.operatorManaged) && (!has(self.tls.provided) || self.tls.provided == oldSelf.tls.provided))").message("spec.tls: the mode and the provided Secret names cannot change while TLS is on (the members would trust another CA at once); remove spec.tls, wait until status.transport shows plaintext, then add the new spec.tls").field_path(".tls"))]
#[x_kube(validation = crate::version::upgrade::auth_rule())]
#[x_kube(validation = Rule::new("!has(self.auth) || !self.auth.enabled || (has(self.tls) && self.tls.clientCertAuth)").message("spec.auth.enabled needs spec.tls with clientCertAuth: the operator authenticates by its client certificate, and passwords must not cross the network in clear text").field_path(".auth.enabled"))]
pub struct EtcdClusterSpec {
    /// Number of members (0 stops the cluster, keeping its data); odd sizes tolerate failures best.
    #[schemars(range(min = 0, max = MAX_SIZE))]
    pub size: i32,
    /// etcd version to run, `3.<minor>.<patch>`; 3.5.0–3.5.2 are refused (they can lose committed writes).
    /// A running cluster moves up a patch, or up one minor from a recent enough patch; never down.
    #[x_kube(
        validation = Rule::new("self.matches('^3\\\\.(4|5|6)\\\\.(0|[1-9][0-9]*)$')").message("spec.version must be 3.<minor>.<patch> with minor 4, 5 or 6 (for example 3.5.17)"),
        validation = Rule::new("!(self in ['3.5.0', '3.5.1', '3.5.2'])").message("spec.version: etcd 3.5.0-3.5.2 can lose committed writes after a crash; use 3.5.6 or later"),
        // A running cluster's version moves as etcd supports (crate::version::upgrade).
        validation = crate::version::upgrade::version_rules()[0].clone(),
        validation = crate::version::upgrade::version_rules()[1].clone(),
        validation = crate::version::upgrade::version_rules()[2].clone()
    )]
    // Bounded so that the rules' split() has a bounded cost.
    #[schemars(length(max = 32))]
    pub version: String,
    /// Container image to run instead of the official image for `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new("self.matches('^[^\\\\s]+$')").message("spec.image must be an image reference without whitespace, such as registry.example.com/etcd:v3.5.17"))]
    pub image: Option<String>,
    /// Storage of each member's data directory.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Compute resources of the etcd container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Overrides applied to every member pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodOverrides>,
    /// etcd server tuning.
    #[serde(default)]
    pub etcd: EtcdTuning,
    /// What happens to member volumes when the cluster is deleted or scaled down.
    #[serde(default)]
    pub pvc_retention_policy: PvcRetentionPolicy,
    /// Stop reconciling this cluster (running members are left alone).
    #[serde(default)]
    pub paused: bool,
    /// Bootstrap the cluster from a backup instead of empty (only at creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSource>,
    /// What the operator may do by itself when the cluster cannot heal on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryPolicy>,
    /// TLS on the members' client and peer ports; off when absent. Adding or removing it on a
    /// running cluster moves the members one at a time (see status.transport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::tls::TlsSpec>,
    /// etcd's authentication (needs spec.tls with client certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<super::tls::AuthSpec>,
    /// The members' NetworkPolicy: peers only from members, clients from the operator and whom
    /// you list, metrics from whom you list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<super::tls::NetworkPolicySpec>,
}

/// Automatic recovery the user opts into.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPolicy {
    /// Recreate the cluster from its newest verified EtcdBackup once a majority of members has been
    /// down for longer than quorumLossGracePeriod; writes after that backup are lost. Off by default.
    #[serde(default)]
    pub restore_on_quorum_loss: bool,
    /// How long quorum must stay lost before restoring, such as 10m (at least 10s; default 10m).
    #[serde(default = "default_quorum_loss_grace")]
    // One grammar with the service (etcd_operator_common::duration): CEL's duration() alone would
    // also take 1.5h; the length bound keeps duration() from overflowing.
    #[schemars(length(max = 24))]
    #[x_kube(
        validation = Rule::new("self.matches('^([0-9]+(ms|h|m|s))+$')").message("spec.recovery.quorumLossGracePeriod must be a duration such as 10m, 90s, 1h or 1h30m"),
        validation = Rule::new("!self.matches('^([0-9]+(ms|h|m|s))+$') || duration(self) >= duration('10s')").message("spec.recovery.quorumLossGracePeriod must be at least 10s (shorter would restore over members that are only restarting)")
    )]
    pub quorum_loss_grace_period: String,
}

fn default_quorum_loss_grace() -> String {
    "10m".into()
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        Self { restore_on_quorum_loss: false, quorum_loss_grace_period: default_quorum_loss_grace() }
    }
}

/// Kind of volume backing a member's data directory.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum StorageType {
    /// A PersistentVolumeClaim per member that outlives the pod.
    #[default]
    Persistent,
    /// An emptyDir: data is lost with the pod (tests and caches only).
    Ephemeral,
}

/// Member data volumes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == oldSelf.type").message("spec.storage.type is immutable").field_path(".type"))]
#[x_kube(validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)").message("spec.storage.storageClassName is immutable").field_path(".storageClassName"))]
#[x_kube(validation = Rule::new("self.type == 'Ephemeral' || quantity(self.size).compareTo(quantity(oldSelf.size)) == 0").message("spec.storage.size is immutable for Persistent storage (volume expansion is not supported)").field_path(".size"))]
pub struct StorageSpec {
    /// Persistent (a PVC per member) or Ephemeral (emptyDir).
    #[serde(rename = "type", default)]
    pub type_: StorageType,
    /// Volume size (PVC request, or emptyDir size limit), a Kubernetes quantity.
    #[serde(default = "default_storage_size")]
    #[x_kube(validation = Rule::new("isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))").message("spec.storage.size must be a positive quantity such as 8Gi"))]
    pub size: String,
    /// StorageClass of the member PVCs; empty means the cluster default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

fn default_storage_size() -> String {
    "8Gi".into()
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self { type_: StorageType::Persistent, size: default_storage_size(), storage_class_name: None }
    }
}

/// Overrides for member pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// Extra labels (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Scheduling affinity; by default members prefer distinct nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Tolerations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Topology spread constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// PriorityClass of member pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,
}

/// Auto-compaction mode of etcd.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum AutoCompactionMode {
    /// Keep a time window of history.
    #[default]
    Periodic,
    /// Keep a number of revisions of history.
    Revision,
}

/// etcd server flags the operator lets users tune.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.heartbeatIntervalMs) || !has(self.electionTimeoutMs) || self.electionTimeoutMs >= 5 * self.heartbeatIntervalMs").message("spec.etcd.electionTimeoutMs must be at least 5 times spec.etcd.heartbeatIntervalMs").field_path(".electionTimeoutMs"))]
#[x_kube(validation = Rule::new("!has(self.autoCompactionRetention) || self.autoCompactionMode != 'Revision' || self.autoCompactionRetention.matches('^[0-9]+$')").message("spec.etcd.autoCompactionRetention must be a number of revisions when autoCompactionMode is Revision").field_path(".autoCompactionRetention"))]
pub struct EtcdTuning {
    /// Backend quota in bytes (etcd's default is 2 GiB; 8 GiB is the suggested maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 104857600, max = 8589934592_i64))]
    pub quota_backend_bytes: Option<i64>,
    /// Auto-compaction mode.
    #[serde(default)]
    pub auto_compaction_mode: AutoCompactionMode,
    /// Retention: a duration such as `1h` (Periodic) or a revision count (Revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$|^[0-9]+$')").message("spec.etcd.autoCompactionRetention must be a duration such as 1h or 30m, or a whole number"))]
    pub auto_compaction_retention: Option<String>,
    /// Committed transactions between snapshots to disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1000, max = 1000000))]
    pub snapshot_count: Option<i64>,
    /// Raft heartbeat interval in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 5000))]
    pub heartbeat_interval_ms: Option<i32>,
    /// Raft election timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 50, max = 50000))]
    pub election_timeout_ms: Option<i32>,
}

/// What to do with a member's PVC.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum PvcRetention {
    /// Keep the claim and its data.
    #[default]
    Retain,
    /// Delete the claim.
    Delete,
}

/// PVC retention on cluster deletion and on scale down.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PvcRetentionPolicy {
    /// When the EtcdCluster is deleted.
    #[serde(default)]
    pub when_deleted: PvcRetention,
    /// When a member is removed by scale down.
    #[serde(default)]
    pub when_scaled: PvcRetention,
}

/// Where a new cluster's initial data comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.backupName), has(self.location)].filter(x, x).size() == 1").message("spec.restore: exactly one of backupName or location must be set"))]
pub struct RestoreSource {
    /// A completed EtcdBackup in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub backup_name: Option<String>,
    /// A snapshot at an explicit location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<SnapshotLocation>,
    /// Delete the claims an earlier cluster of this name left behind (`whenDeleted: Retain`)
    /// before restoring. Without it such a restore is refused: members would start on that data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear_retained_claims: bool,
}

/// A snapshot object in backup storage.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotLocation {
    /// Storage holding the snapshot.
    pub storage: crate::storage::BackupLocation,
    /// Key or file name of the snapshot inside the storage.
    #[schemars(length(min = 1, max = 1024))]
    pub key: String,
}
