//! Bootstrapping a new cluster from a backup (EtcdCluster `spec.restore`).
//!
//! Before anything is created the source is resolved and the stored snapshot
//! is read whole and checked against its recorded sha256; a missing,
//! unfinished or corrupt backup stops here with a condition, and nothing is
//! started. Then a restore token is stored in a Secret and the StatefulSet is
//! created with the restore agent as init container: each member's agent
//! fetches the snapshot from the cluster-service (token required), checks the
//! sha256 again and restores its data directory with etcdutl. When the new
//! cluster has formed the token is deleted, so members added later start empty.

use etcd_operator_api::{
    EtcdBackup, EtcdCluster,
    backup::BackupPhase,
    cluster::{RestorePhase, RestoreStatus},
};
use etcd_operator_client::{ClientError, storage::ObjectStorage};
use etcd_operator_common::time::now_rfc3339;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Resource, ResourceExt, runtime::events::EventType};

use crate::{
    ClusterService, ServiceError,
    backup::{BackupRecord, location::open_storage},
    config::component,
    events::{Note, publish},
    observe::{EtcdState, Observation},
};

/// A usable restore source: where the snapshot is and what it must hash to.
pub struct ResolvedSource {
    /// The storage holding it.
    pub storage: ObjectStorage,
    /// Its key there.
    pub key: String,
    /// The record for status (phase Restoring).
    pub status: RestoreStatus,
}

/// What the lifecycle may do with a cluster that has `spec.restore`.
pub(crate) enum RestoreGate {
    /// Not restored from a backup.
    NotRestoring,
    /// The source is unusable: create nothing, record why.
    Refused(RestoreStatus),
    /// Go ahead (restoring, or done), recording this.
    Proceed(RestoreStatus),
}

fn refused(source: &str, reason: &str, message: String) -> RestoreStatus {
    RestoreStatus {
        phase: RestorePhase::Refused,
        source: source.into(),
        reason: reason.into(),
        message,
        ..RestoreStatus::default()
    }
}

impl ClusterService {
    /// Resolves `spec.restore` to the stored snapshot and its recorded checksum (not yet read).
    pub async fn resolve_restore_source(
        &self,
        cluster: &EtcdCluster,
    ) -> Result<Result<ResolvedSource, RestoreStatus>, ServiceError> {
        let Some(restore) = &cluster.spec.restore else {
            return Err(ServiceError::FailedPrecondition("spec.restore is not set".into()));
        };
        let namespace = cluster.namespace().unwrap_or_default();
        if let Some(name) = &restore.backup_name {
            let source = format!("EtcdBackup {name}");
            let api: kube::Api<EtcdBackup> = kube::Api::namespaced(self.kube(), &namespace);
            let backup = api.get_opt(name).await.map_err(|e| ServiceError::Unavailable(e.to_string()))?;
            let Some(backup) = backup else {
                let msg = format!("spec.restore.backupName: EtcdBackup {namespace}/{name} does not exist");
                return Ok(Err(refused(&source, "BackupNotFound", msg)));
            };
            let status = backup.status.clone().unwrap_or_default();
            let (Some(key), Some(sha256), BackupPhase::Succeeded) =
                (status.key.clone(), status.sha256.clone(), status.phase)
            else {
                let msg = format!(
                    "spec.restore.backupName: EtcdBackup {namespace}/{name} is {:?}, not Succeeded",
                    status.phase
                );
                return Ok(Err(refused(&source, "BackupNotReady", msg)));
            };
            let storage =
                match open_storage(self, &namespace, &backup.spec.storage, "EtcdBackup spec.storage").await {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(refused(&source, "StorageUnusable", e.to_string()))),
                };
            let status = RestoreStatus {
                phase: RestorePhase::Restoring,
                source,
                location: Some(format!("{}/{key}", storage.url())),
                sha256: Some(sha256),
                size_bytes: status.size_bytes,
                revision: status.revision,
                taken_at: status.completion_time,
                ..RestoreStatus::default()
            };
            return Ok(Ok(ResolvedSource { storage, key, status }));
        }
        let Some(location) = &restore.location else {
            return Err(ServiceError::FailedPrecondition(
                "spec.restore has neither backupName nor location".into(),
            ));
        };
        let storage =
            match open_storage(self, &namespace, &location.storage, "spec.restore.location.storage").await {
                Ok(s) => s,
                Err(e) => return Ok(Err(refused(&location.key, "StorageUnusable", e.to_string()))),
            };
        let source = format!("{}/{}", storage.url(), location.key);
        let recorded = recorded_checksum(&storage, &location.key).await?;
        let Some((sha256, record)) = recorded else {
            let msg = format!(
                "spec.restore.location.key: no checksum next to {source} (expected {}.sha256 or metadata.json); an unverifiable snapshot is never restored",
                location.key
            );
            return Ok(Err(refused(&source, "ChecksumMissing", msg)));
        };
        let status = RestoreStatus {
            phase: RestorePhase::Restoring,
            location: Some(source.clone()),
            source,
            sha256: Some(sha256),
            size_bytes: record.as_ref().map(|r| r.size_bytes as i64),
            revision: record.as_ref().map(|r| r.revision),
            taken_at: record.map(|r| r.completed_at),
            ..RestoreStatus::default()
        };
        Ok(Ok(ResolvedSource { storage, key: location.key.clone(), status }))
    }

    /// Decides (and prepares) the restore of a cluster that has `spec.restore`.
    pub(crate) async fn restore_gate(
        &self,
        cluster: &EtcdCluster,
        statefulset_exists: bool,
        observation: &Observation,
    ) -> Result<RestoreGate, ServiceError> {
        if cluster.spec.restore.is_none() {
            return Ok(RestoreGate::NotRestoring);
        }
        let previous = cluster.status.as_ref().and_then(|s| s.restore.clone());
        match previous {
            Some(p) if p.phase == RestorePhase::Completed => return Ok(RestoreGate::Proceed(p)),
            Some(p) if p.phase == RestorePhase::Restoring && statefulset_exists => {
                return self.restoring(cluster, p, observation).await;
            }
            _ => {}
        }
        let resolved = match self.resolve_restore_source(cluster).await? {
            Ok(r) => r,
            Err(refusal) => return Ok(RestoreGate::Refused(refusal)),
        };
        let expected = resolved.status.sha256.clone().unwrap_or_default();
        let (size, sha256) = match resolved.storage.digest(&resolved.key).await {
            Ok(d) => d,
            Err(ClientError::ObjectNotFound(_)) => {
                let msg = format!(
                    "{} does not exist in storage",
                    resolved.status.location.clone().unwrap_or_default()
                );
                return Ok(RestoreGate::Refused(refused(&resolved.status.source, "BackupNotFound", msg)));
            }
            Err(e) => return Err(e.into()),
        };
        if sha256 != expected {
            let msg = format!(
                "{} has sha256 {sha256} ({size} bytes) but {expected} was recorded: the backup is corrupt; nothing was started",
                resolved.status.location.clone().unwrap_or_default()
            );
            return Ok(RestoreGate::Refused(refused(&resolved.status.source, "BackupCorrupt", msg)));
        }
        self.ensure_restore_token(cluster).await?;
        let mut status = resolved.status;
        status.size_bytes = Some(size as i64);
        status.reason = "Restoring".into();
        status.message = format!("verified {size} bytes (sha256 {sha256}); members restore from it");
        Ok(RestoreGate::Proceed(status))
    }

    /// While members restore: done once the new cluster formed with every member a healthy voter.
    async fn restoring(
        &self,
        cluster: &EtcdCluster,
        mut status: RestoreStatus,
        observation: &Observation,
    ) -> Result<RestoreGate, ServiceError> {
        let EtcdState::Reached(view) = &observation.etcd else { return Ok(RestoreGate::Proceed(status)) };
        let all_voting = view.members.len() as i32 == cluster.spec.size
            && view.members.iter().all(|m| m.healthy() && !m.info.is_learner);
        if !all_voting {
            return Ok(RestoreGate::Proceed(status));
        }
        let r = crate::cluster::cluster_ref(cluster);
        self.managers(&r.namespace).secrets.delete(&self.names(&r).restore_secret()).await?;
        status.phase = RestorePhase::Completed;
        status.reason = "Completed".into();
        status.completed_at = Some(now_rfc3339());
        status.message = format!(
            "restored from {} (revision {}, taken {}); cluster ID {:x}",
            status.source,
            status.revision.map_or_else(|| "unknown".into(), |r| r.to_string()),
            status.taken_at.clone().unwrap_or_else(|| "at an unknown time".into()),
            view.cluster_id
        );
        let note =
            Note { type_: EventType::Normal, reason: "Restored", action: "Restore", note: &status.message };
        publish(self.kube(), component::LIFECYCLE, self.identity(), &cluster.object_ref(&()), note).await;
        Ok(RestoreGate::Proceed(status))
    }

    /// Creates the restore token Secret once (owned by the cluster).
    async fn ensure_restore_token(&self, cluster: &EtcdCluster) -> Result<(), ServiceError> {
        let r = crate::cluster::cluster_ref(cluster);
        let name = self.names(&r).restore_secret();
        let secrets = self.managers(&r.namespace).secrets;
        if secrets.get(&name).await?.is_some() {
            return Ok(());
        }
        let mut token = [0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").map_err(ClientError::from)?,
            &mut token,
        )
        .map_err(ClientError::from)?;
        let ctx = self.template(cluster);
        let secret = Secret {
            metadata: ctx.metadata(name, "Secret")?,
            data: Some([("token".to_owned(), ByteString(hex::encode(token).into_bytes()))].into()),
            ..Secret::default()
        };
        secrets.apply(&secret).await?;
        Ok(())
    }

    /// The restore token of a cluster, if a restore is in progress.
    pub(crate) async fn restore_token(&self, cluster: &EtcdCluster) -> Result<Option<String>, ServiceError> {
        let r = crate::cluster::cluster_ref(cluster);
        let secret = self.managers(&r.namespace).secrets.get(&self.names(&r).restore_secret()).await?;
        Ok(secret
            .and_then(|s| s.data)
            .and_then(|d| d.get("token").cloned())
            .and_then(|t| String::from_utf8(t.0).ok()))
    }
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
