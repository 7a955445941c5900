//! The `EtcdBackupSchedule` resource: backups on a cron schedule, with retention.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::{condition::Condition, storage::BackupLocation};

/// Scheduled backups of an EtcdCluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "etcd.operator.dev",
    version = "v1alpha1",
    kind = "EtcdBackupSchedule",
    namespaced,
    status = "EtcdBackupScheduleStatus",
    shortname = "etcdbks",
    category = "etcd-operator",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterName"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Last Success", type_ = "date", json_path = ".status.lastSuccessfulTime"),
    printcolumn(name = "Next", type_ = "date", json_path = ".status.nextScheduleTime"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackupScheduleSpec {
    /// Name of the EtcdCluster in the same namespace.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub cluster_name: String,
    /// Standard 5-field cron expression (minute hour day-of-month month day-of-week), UTC.
    #[x_kube(validation = Rule::new("self.split(' ').filter(f, f != '').size() == 5").message("spec.schedule must be a 5-field cron expression such as '0 */6 * * *'"))]
    pub schedule: String,
    /// Where snapshots are written.
    pub storage: BackupLocation,
    /// Which snapshots to keep.
    #[serde(default)]
    pub retention: RetentionPolicy,
    /// Skip runs while true.
    #[serde(default)]
    pub suspend: bool,
}

/// Retention of scheduled backups; the newest successful one is never deleted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    /// Keep at most this many successful backups.
    #[schemars(range(min = 1, max = 1000))]
    pub max_count: i32,
    /// Delete backups older than this duration (for example `168h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 24))]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(ms|h|m|s))+$')").message("spec.retention.maxAge must be a duration such as 168h or 36h30m"))]
    pub max_age: Option<String>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self { max_count: 7, max_age: None }
    }
}

/// Observed state of a schedule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackupScheduleStatus {
    /// Conditions, one per type.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// When a backup was last started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<String>,
    /// When a backup last succeeded (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<String>,
    /// When the next backup is due (RFC 3339); absent while suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<String>,
    /// Successful backups kept by the retention policy, newest first.
    #[serde(default)]
    pub kept_backups: Vec<String>,
    /// Name of the EtcdBackup in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
}
