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
use etcd_operator_resource::managers::Manager;
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
            // A restart from the stop snapshot (the only other kind of restore).
            return self.stop_snapshot_source(cluster).map(Ok);
        };
        let namespace = cluster.namespace().unwrap_or_default();
        if let Some(name) = &restore.backup_name {
            let source = format!("EtcdBackup {name}");
            let fm = etcd_operator_client::kubernetes::field_manager(component::LIFECYCLE);
            let backup = Manager::<EtcdBackup>::new(self.kube(), &namespace, &fm).get(name).await?;
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
        let previous = cluster.status.as_ref().and_then(|s| s.restore.clone());
        if cluster.spec.restore.is_none() {
            // A restart from the stop snapshot is driven by scaling; the lifecycle only finishes it.
            return match previous {
                Some(p) if p.phase == RestorePhase::Restoring && statefulset_exists => {
                    self.restoring(cluster, p, observation).await
                }
                Some(p) => Ok(RestoreGate::Proceed(p)),
                None => Ok(RestoreGate::NotRestoring),
            };
        }
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

    /// While members restore: done once the new cluster formed.
    async fn restoring(
        &self,
        cluster: &EtcdCluster,
        status: RestoreStatus,
        observation: &Observation,
    ) -> Result<RestoreGate, ServiceError> {
        let done = self.complete_restore(cluster, &status, observation).await?;
        Ok(RestoreGate::Proceed(done.unwrap_or(status)))
    }

    /// Once every member the StatefulSet runs is a healthy voter of the new cluster: deletes the
    /// token (members added later start empty and join), and returns the Completed record.
    pub(crate) async fn complete_restore(
        &self,
        cluster: &EtcdCluster,
        status: &RestoreStatus,
        observation: &Observation,
    ) -> Result<Option<RestoreStatus>, ServiceError> {
        let EtcdState::Reached(view) = &observation.etcd else { return Ok(None) };
        let replicas = observation.statefulset.as_ref().map_or(0, |s| s.replicas);
        let all_voting = replicas > 0
            && view.members.len() as i32 == replicas
            && view.members.iter().all(|m| m.healthy() && !m.info.is_learner);
        if status.phase != RestorePhase::Restoring || !all_voting {
            return Ok(None);
        }
        let r = crate::cluster::cluster_ref(cluster);
        self.managers(&r.namespace).secrets.delete(&self.names(&r).restore_secret()).await?;
        let mut status = status.clone();
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
        Ok(Some(status))
    }

    /// RestartFromZero without claims: verifies the stop snapshot, creates the token, records the
    /// restore (as the lifecycle, which owns status.restore) and puts the agent in the pod template.
    pub(crate) async fn prepare_snapshot_restore(
        &self,
        cluster: &EtcdCluster,
        observation: &Observation,
    ) -> Result<(), ServiceError> {
        let resolved = self.stop_snapshot_source(cluster)?;
        let (size, sha256) = resolved.storage.digest(&resolved.key).await?;
        let expected = resolved.status.sha256.clone().unwrap_or_default();
        if sha256 != expected {
            return Err(ServiceError::FailedPrecondition(format!(
                "the stop snapshot {} has sha256 {sha256} ({size} bytes) but {expected} was recorded: it is corrupt; nothing was started",
                resolved.key
            )));
        }
        self.ensure_restore_token(cluster).await?;
        let mut restore = resolved.status;
        restore.reason = "Restoring".into();
        restore.message =
            format!("every claim is gone: members restore from the stop snapshot ({size} bytes verified)");
        let check = Ok(());
        let proceed = crate::decisions::plan::RolloutDecision::Proceed;
        self.record_status_full(cluster, observation, &check, &proceed, Default::default(), Some(&restore))
            .await?;
        // The pod template gains the restore agent before any member starts.
        let mut updated = cluster.clone();
        updated.status.get_or_insert_with(Default::default).restore = Some(restore);
        let r = crate::cluster::cluster_ref(cluster);
        let names = self.names(&r);
        let m = self.managers(&r.namespace);
        let existing_cm = m.config_maps.get(&names.config_map()).await?;
        let existing_sts = m.statefulsets.get(&names.statefulset()).await?;
        let plan = crate::decisions::plan::plan_apply(&names, 0, existing_sts.as_ref(), existing_cm.as_ref());
        let desired =
            etcd_operator_resource::templates::statefulset(&self.template(&updated), 0, &plan.bootstrap)?;
        m.statefulsets.update(&desired).await?;
        Ok(())
    }

    /// The stop snapshot as a restore source (RestartFromZero without claims).
    fn stop_snapshot_source(&self, cluster: &EtcdCluster) -> Result<ResolvedSource, ServiceError> {
        let snapshot = cluster
            .status
            .as_ref()
            .and_then(|s| s.stopped.as_ref())
            .and_then(|s| s.snapshot.clone())
            .ok_or_else(|| ServiceError::FailedPrecondition("no stop snapshot is recorded".into()))?;
        let storage = self.snapshot_store().ok_or_else(|| {
            ServiceError::FailedPrecondition("no snapshot storage is configured (--snapshot-dir)".into())
        })?;
        let status = RestoreStatus {
            phase: RestorePhase::Restoring,
            source: format!("stop snapshot {}", snapshot.location),
            location: Some(format!("{}/{}", storage.url(), snapshot.location)),
            sha256: Some(snapshot.sha256),
            size_bytes: Some(snapshot.size_bytes),
            revision: Some(snapshot.revision),
            taken_at: Some(snapshot.taken_at),
            ..RestoreStatus::default()
        };
        Ok(ResolvedSource { storage, key: snapshot.location, status })
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
