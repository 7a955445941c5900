//! What is stored next to every snapshot: `snapshot.db.sha256` (the format
//! `sha256sum -c` reads) and `metadata.json` (written last: a backup without
//! it is incomplete and is never restored from).

use serde::{Deserialize, Serialize};

/// Contents of `metadata.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// Format version of this file.
    pub format: u32,
    /// Namespace of the cluster.
    pub namespace: String,
    /// EtcdCluster name.
    pub cluster: String,
    /// EtcdBackup name.
    pub backup: String,
    /// etcd cluster ID (hex).
    pub cluster_id: String,
    /// Member the snapshot came from.
    pub member: String,
    /// etcd revision captured.
    pub revision: i64,
    /// etcd version of that member.
    pub etcd_version: String,
    /// Snapshot size in bytes.
    pub size_bytes: u64,
    /// SHA-256 (hex) of the snapshot file.
    pub sha256: String,
    /// Key of the snapshot file.
    pub snapshot_key: String,
    /// When streaming started (RFC 3339).
    pub started_at: String,
    /// When the stored copy was verified (RFC 3339).
    pub completed_at: String,
}

impl BackupRecord {
    /// Current format.
    pub const FORMAT: u32 = 1;

    /// Key of the snapshot in a backup directory.
    pub fn snapshot_key(dir: &str) -> String {
        format!("{dir}/snapshot.db")
    }

    /// Key of the checksum file next to the snapshot.
    pub fn checksum_key(dir: &str) -> String {
        format!("{dir}/snapshot.db.sha256")
    }

    /// Key of the metadata file.
    pub fn metadata_key(dir: &str) -> String {
        format!("{dir}/metadata.json")
    }

    /// The checksum file's content, as `sha256sum` writes it.
    pub fn checksum_line(&self) -> String {
        format!("{}  snapshot.db\n", self.sha256)
    }
}
