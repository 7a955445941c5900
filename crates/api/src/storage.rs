//! Where backups live: shared by EtcdBackup, EtcdBackupSchedule and restore.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A backup storage location: exactly one of `s3` or `volume`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.s3), has(self.volume)].filter(x, x).size() == 1").message("storage: exactly one of s3 or volume must be set"))]
pub struct BackupLocation {
    /// An S3-compatible object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Location>,
    /// A PersistentVolumeClaim mounted by the backup job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeLocation>,
}

/// An S3 bucket and key prefix.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    /// Bucket name (3–63 characters, DNS-compatible).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"))]
    pub bucket: String,
    /// Key prefix under which snapshots are written.
    #[serde(default)]
    #[schemars(length(max = 512))]
    pub prefix: String,
    /// Endpoint URL for non-AWS object stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("s3.endpoint must be an http:// or https:// URL"))]
    pub endpoint: Option<String>,
    /// Region of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Secret with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[schemars(length(min = 1, max = 253))]
    pub credentials_secret: String,
    /// Use path-style addressing (needed by most S3-compatible servers).
    #[serde(default)]
    pub force_path_style: bool,
}

/// A directory on a PersistentVolumeClaim.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeLocation {
    /// Name of a claim the operator mounted for the backup's namespace (the chart's
    /// `clusterService.backupClaims`); a DNS-1123 subdomain.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("volume.claimName must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')"))]
    pub claim_name: String,
    /// Directory inside the volume.
    #[serde(default)]
    #[x_kube(validation = Rule::new("!self.contains('..')").message("volume.path must not contain '..'"))]
    pub path: String,
}
