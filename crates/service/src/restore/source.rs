//! Where a restore's snapshot is: `spec.restore` (an EtcdBackup or a
//! location), the backup a quorum-loss recovery chose, or the snapshot taken
//! when the cluster stopped; and the check that its bytes still match the
//! recorded sha256.

use etcd_operator_api::{
    EtcdBackup, EtcdCluster,
    backup::BackupPhase,
    cluster::{RestorePhase, RestoreSource, RestoreStatus, RestoreTrigger, SnapshotRecord},
};
use etcd_operator_client::storage::ObjectStorage;
use etcd_operator_resource::managers::Manager;
use kube::ResourceExt;

use crate::refusal::Refusable::{self, Refused, Usable};
use crate::{
    ServiceError,
    backup::{
        BackupRecord,
        location::{check_restore_key, open_storage},
    },
    config::component,
    restore::RestoreService,
    restore::verify::{Checked, Subject},
};

/// A usable restore source: where the snapshot is and what it must hash to.
pub struct ResolvedSource {
    /// The storage holding it.
    pub storage: ObjectStorage,
    /// Its key there.
    pub key: String,
    /// The record for status (phase Restoring).
    pub status: RestoreStatus,
    /// The EtcdBackup (namespace, name) it is, if it is one: its status keeps the verification.
    pub backup: Option<(String, String)>,
}

/// A restore record of a source that cannot be used; nothing is started from it.
pub(crate) fn refused(source: &str, reason: &str, message: String) -> RestoreStatus {
    RestoreStatus {
        phase: RestorePhase::Refused,
        source: source.into(),
        reason: reason.into(),
        message,
        ..RestoreStatus::default()
    }
}

impl RestoreService {
    /// Resolves the source the cluster is restored from to the stored snapshot and its recorded
    /// checksum (not yet read): `spec.restore`, else the backup a quorum-loss recovery recorded,
    /// else the stop snapshot (RestartFromZero without claims).
    pub async fn resolve_restore_source(
        &self,
        cluster: &EtcdCluster,
    ) -> Result<Refusable<ResolvedSource, RestoreStatus>, ServiceError> {
        if let Some(restore) = &cluster.spec.restore {
            return self.resolve_source(cluster, restore, "spec.restore", RestoreTrigger::Spec).await;
        }
        let recorded = cluster.status.as_ref().and_then(|s| s.restore.as_ref());
        let operation = cluster.status.as_ref().and_then(|s| s.operation.as_ref());
        match recorded.filter(|r| r.trigger == RestoreTrigger::QuorumLoss) {
            // A quorum-loss recovery from a survivor's saved data: the operation records it.
            Some(r) if r.backup_name.is_none() => {
                let (op, saved) =
                    operation.and_then(|op| Some((op, op.snapshot.as_ref()?))).ok_or_else(|| {
                        ServiceError::FailedPrecondition(
                            "the quorum-loss recovery's saved data is not recorded".into(),
                        )
                    })?;
                self.survivor_source(op, saved).map(Usable)
            }
            Some(r) => {
                let source = RestoreSource { backup_name: r.backup_name.clone(), ..RestoreSource::default() };
                self.resolve_source(cluster, &source, "status.restore", RestoreTrigger::QuorumLoss).await
            }
            None => self.stop_snapshot_source(cluster).map(Usable),
        }
    }

    /// Resolves an EtcdBackup or a location (`field` names where it was given, for messages).
    pub(crate) async fn resolve_source(
        &self,
        cluster: &EtcdCluster,
        restore: &RestoreSource,
        field: &str,
        trigger: RestoreTrigger,
    ) -> Result<Refusable<ResolvedSource, RestoreStatus>, ServiceError> {
        let namespace = cluster.namespace().unwrap_or_default();
        if let Some(name) = &restore.backup_name {
            let source = format!("EtcdBackup {name}");
            let fm = etcd_operator_client::kubernetes::field_manager(component::LIFECYCLE);
            let backup = Manager::<EtcdBackup>::new(self.core.kube(), &namespace, &fm).get(name).await?;
            let Some(backup) = backup else {
                let msg = format!("{field}.backupName: EtcdBackup {namespace}/{name} does not exist");
                return Ok(Refused(refused(&source, "BackupNotFound", msg)));
            };
            return self.backup_source(&backup, field, trigger).await;
        }
        let Some(location) = &restore.location else {
            return Err(ServiceError::FailedPrecondition(format!(
                "{field} has neither backupName nor location"
            )));
        };
        if let Err(msg) = check_restore_key(&namespace, &location.key, &format!("{field}.location.key")) {
            return Ok(Refused(refused(&location.key, "KeyOutsideNamespace", msg)));
        }
        let storage = match open_storage(
            &self.core,
            &namespace,
            &location.storage,
            &format!("{field}.location.storage"),
        )
        .await
        {
            Ok(s) => s,
            Err(e) => return Ok(Refused(refused(&location.key, "StorageUnusable", e.to_string()))),
        };
        let source = format!("{}/{}", storage.url(), location.key);
        let recorded = recorded_checksum(&storage, &location.key).await?;
        let Some((sha256, record)) = recorded else {
            let msg = format!(
                "{field}.location.key: no checksum next to {source} (expected {}.sha256 or metadata.json); an unverifiable snapshot is never restored",
                location.key
            );
            return Ok(Refused(refused(&source, "ChecksumMissing", msg)));
        };
        let status = RestoreStatus {
            phase: RestorePhase::Restoring,
            trigger,
            location: Some(source.clone()),
            source,
            sha256: Some(sha256),
            size_bytes: record.as_ref().map(|r| r.size_bytes as i64),
            source_cluster_id: record.as_ref().map(|r| r.cluster_id.clone()).filter(|id| !id.is_empty()),
            revision: record.as_ref().map(|r| r.revision),
            taken_at: record.map(|r| r.completed_at),
            ..RestoreStatus::default()
        };
        Ok(Usable(ResolvedSource { storage, key: location.key.clone(), status, backup: None }))
    }

    /// A Succeeded EtcdBackup as a restore source.
    pub(crate) async fn backup_source(
        &self,
        backup: &EtcdBackup,
        field: &str,
        trigger: RestoreTrigger,
    ) -> Result<Refusable<ResolvedSource, RestoreStatus>, ServiceError> {
        let namespace = backup.namespace().unwrap_or_default();
        let name = backup.name_any();
        let source = format!("EtcdBackup {name}");
        let status = backup.status.clone().unwrap_or_default();
        let (Some(key), Some(sha256), BackupPhase::Succeeded) =
            (status.key.clone(), status.sha256.clone(), status.phase)
        else {
            let msg = format!(
                "{field}.backupName: EtcdBackup {namespace}/{name} is {:?}, not Succeeded",
                status.phase
            );
            return Ok(Refused(refused(&source, "BackupNotReady", msg)));
        };
        let storage =
            match open_storage(&self.core, &namespace, &backup.spec.storage, "EtcdBackup spec.storage").await
            {
                Ok(s) => s,
                Err(e) => return Ok(Refused(refused(&source, "StorageUnusable", e.to_string()))),
            };
        let status = RestoreStatus {
            phase: RestorePhase::Restoring,
            trigger,
            backup_name: Some(name.clone()),
            source,
            location: Some(format!("{}/{key}", storage.url())),
            sha256: Some(sha256),
            size_bytes: status.size_bytes,
            source_cluster_id: status.cluster_id,
            revision: status.revision,
            taken_at: status.completion_time,
            ..RestoreStatus::default()
        };
        Ok(Usable(ResolvedSource { storage, key, status, backup: Some((namespace, name)) }))
    }

    /// The stop snapshot as a restore source (RestartFromZero without claims).
    pub(crate) fn stop_snapshot_source(&self, cluster: &EtcdCluster) -> Result<ResolvedSource, ServiceError> {
        let snapshot = cluster
            .status
            .as_ref()
            .and_then(|s| s.stopped.as_ref())
            .and_then(|s| s.snapshot.clone())
            .ok_or_else(|| ServiceError::FailedPrecondition("no stop snapshot is recorded".into()))?;
        let source = format!("stop snapshot {}", snapshot.location);
        self.saved_snapshot_source(&snapshot, RestoreTrigger::StopSnapshot, source)
    }

    /// The saved survivor's data as the restore source.
    pub(crate) fn survivor_source(
        &self,
        op: &etcd_operator_api::cluster::OperationStatus,
        saved: &SnapshotRecord,
    ) -> Result<ResolvedSource, ServiceError> {
        let member = op.member.as_deref().unwrap_or("?");
        let source = format!("the data of surviving member {member} saved as {}", saved.location);
        self.saved_snapshot_source(saved, RestoreTrigger::QuorumLoss, source)
    }

    /// A snapshot this service saved in its snapshot storage (a stop snapshot, a survivor's data)
    /// as a restore source.
    pub(crate) fn saved_snapshot_source(
        &self,
        saved: &SnapshotRecord,
        trigger: RestoreTrigger,
        source: String,
    ) -> Result<ResolvedSource, ServiceError> {
        let storage = self.core.snapshot_store().ok_or_else(|| {
            ServiceError::FailedPrecondition("no snapshot storage is configured (--snapshot-dir)".into())
        })?;
        let status = RestoreStatus {
            phase: RestorePhase::Restoring,
            trigger,
            source,
            location: Some(format!("{}/{}", storage.url(), saved.location)),
            sha256: Some(saved.sha256.clone()),
            size_bytes: Some(saved.size_bytes),
            revision: Some(saved.revision),
            taken_at: Some(saved.taken_at.clone()),
            ..RestoreStatus::default()
        };
        Ok(ResolvedSource { storage, key: saved.location.clone(), status, backup: None })
    }
}

/// What a check of a restore source found.
pub(crate) enum Verification {
    /// The stored copy matches its checksum: the record to restore with.
    Verified(RestoreStatus),
    /// The source cannot be used: the refusal.
    Refused(RestoreStatus),
    /// Still being read (longer than this call could wait): the record saying how far.
    Verifying(RestoreStatus),
}

impl RestoreService {
    /// Checks the stored copy against the recorded sha256 — read whole by a task that outlives
    /// the call, or an earlier outcome on the same object version (see [`crate::restore::verify`]).
    pub(crate) async fn verify_source(
        &self,
        resolved: &ResolvedSource,
    ) -> Result<Verification, ServiceError> {
        let expected = resolved.status.sha256.clone().unwrap_or_default();
        let location = resolved.status.location.clone().unwrap_or_default();
        let subject = Subject {
            storage: &resolved.storage,
            key: &resolved.key,
            expected_sha256: &expected,
            backup: resolved.backup.as_ref().map(|(ns, name)| (ns.as_str(), name.as_str())),
        };
        let source = &resolved.status.source;
        Ok(match self.check_stored(&subject).await? {
            Checked::Missing => {
                let msg = format!("{location} does not exist in storage");
                Verification::Refused(refused(source, "BackupNotFound", msg))
            }
            Checked::Reading(p) => {
                let mut status = resolved.status.clone();
                status.phase = RestorePhase::Verifying;
                status.reason = "Verifying".into();
                status.message = reading_message(&location, &p);
                Verification::Verifying(status)
            }
            Checked::Read { version, sha256 } if sha256 != expected => {
                let msg = format!(
                    "{location} has sha256 {sha256} ({} bytes) but {expected} was recorded: the backup is corrupt; nothing was started",
                    version.size_bytes
                );
                Verification::Refused(refused(source, "BackupCorrupt", msg))
            }
            Checked::Read { version, sha256 } => {
                let mut status = resolved.status.clone();
                status.size_bytes = Some(version.size_bytes as i64);
                status.reason = "Restoring".into();
                status.message = format!(
                    "verified {} bytes (sha256 {sha256}); members restore from it",
                    version.size_bytes
                );
                Verification::Verified(status)
            }
        })
    }
}

/// How far the reading of `location` has come, for status.
fn reading_message(location: &str, p: &etcd_operator_api::backup::TransferProgress) -> String {
    let of = p.total_bytes.map_or_else(String::new, |t| format!(" of {t}"));
    let percent = p.percent.map_or_else(String::new, |pc| format!(" ({pc}%)"));
    let by = if p.replica.is_empty() { String::new() } else { format!(" by {}", p.replica) };
    format!(
        "reading {location} to check it against its sha256: {}{of} bytes{percent}{by}; nothing is started until it matches",
        p.bytes
    )
}

/// The sha256 recorded next to `key`: its `.sha256` file, else the backup's metadata.json.
async fn recorded_checksum(
    storage: &ObjectStorage,
    key: &str,
) -> Result<Option<(String, Option<BackupRecord>)>, ServiceError> {
    let record = match key.strip_suffix("/snapshot.db") {
        Some(dir) => storage
            .get(&BackupRecord::metadata_key(dir))
            .await?
            .and_then(|bytes| serde_json::from_slice::<BackupRecord>(&bytes).ok())
            .filter(|r| r.snapshot_key == key),
        None => None,
    };
    let sidecar = storage.get(&format!("{key}.sha256")).await?;
    let from_sidecar = sidecar
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|line| line.split_whitespace().next().map(str::to_owned))
        .filter(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()));
    Ok(from_sidecar.or_else(|| record.as_ref().map(|r| r.sha256.clone())).map(|sha| (sha, record)))
}
