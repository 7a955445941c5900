//! RunBackup: take the snapshot an EtcdBackup asks for, stream it to storage,
//! verify the stored copy, and record the outcome. The intent (attempt, key,
//! member) is recorded before streaming, so a crash leaves a Running backup
//! that the next call retries as a new attempt; retries are bounded.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use etcd_operator_api::{
    Condition, ConditionStatus, EtcdBackup, EtcdBackupStatus, backup::BackupPhase,
    condition::merge_conditions,
};
use etcd_operator_client::{
    etcd::{EtcdClient, SnapshotInfo},
    transfer::{Progress, Transferred},
};
use etcd_operator_common::{ClusterRef, time::now_rfc3339};
use etcd_operator_resource::managers::backup_lock_name;
use kube::{Resource, ResourceExt, runtime::events::EventType};
use tokio::sync::watch;

use super::{BackupService, record::BackupRecord};
use crate::{
    ServiceError,
    backup::decide::BackupStep,
    backup::decide::SourceCluster,
    backup::decide::backup_dir,
    backup::decide::next_step,
    backup::decide::retry_delay,
    config::component,
    events::{Note, publish},
    observe::observe_etcd,
    tasks::{self, TaskState},
    transfer::progress,
};

/// When to ask again about a backup still running.
const RUNNING_REQUEUE: Duration = Duration::from_secs(5);

/// The condition that reports a backup's outcome.
pub const SUCCEEDED: &str = "Succeeded";

/// Result of a RunBackup call.
#[derive(Clone, Debug)]
pub struct BackupOutcome {
    /// Status as recorded.
    pub status: EtcdBackupStatus,
    /// When to call again (`None`: finished).
    pub requeue_after: Option<Duration>,
}

impl BackupService {
    /// Takes (or continues) the backup `namespace/name`.
    ///
    /// The snapshot is streamed by a task of this replica that outlives the call (and the
    /// caller's deadline); the call waits for it while its caller's deadline allows ([`tasks::wait`]) and otherwise answers
    /// Running with a requeue, as it does while another replica holds the backup.
    #[tracing::instrument(name = "RunBackup", skip_all, fields(backup.namespace = %namespace, backup.name = %name, operation = "RunBackup"))]
    pub async fn run_backup(&self, namespace: &str, name: &str) -> Result<BackupOutcome, ServiceError> {
        let backup = self.get_backup(namespace, name).await?;
        let status = backup.status.clone().unwrap_or_default();
        if matches!(status.phase, BackupPhase::Succeeded | BackupPhase::Failed) {
            return Ok(BackupOutcome { status, requeue_after: None });
        }
        let task = self.start_or_join(namespace, name);
        match tasks::wait(task).await.done {
            // Another replica is taking it: report its progress, not an error.
            Some(Err(e)) if e.is_aborted() => self.still_running(namespace, name, status).await,
            Some(result) => result,
            // Still streaming here: the progress it recorded so far.
            None => self.still_running(namespace, name, status).await,
        }
    }

    /// A backup still being taken (here or by another replica): its status as last recorded,
    /// progress included, and when to ask again.
    async fn still_running(
        &self,
        namespace: &str,
        name: &str,
        before: EtcdBackupStatus,
    ) -> Result<BackupOutcome, ServiceError> {
        let status = match self.get_backup(namespace, name).await {
            Ok(b) => b.status.unwrap_or_default(),
            Err(_) => before,
        };
        if matches!(status.phase, BackupPhase::Succeeded | BackupPhase::Failed) {
            return Ok(BackupOutcome { status, requeue_after: None });
        }
        Ok(BackupOutcome { status, requeue_after: Some(RUNNING_REQUEUE) })
    }

    /// This replica's task taking the backup, started if none runs.
    fn start_or_join(&self, namespace: &str, name: &str) -> watch::Receiver<TaskState<BackupOutcome>> {
        let this = self.clone();
        let (namespace_owned, name_owned) = (namespace.to_owned(), name.to_owned());
        self.running.start_or_join(&format!("{namespace}/{name}"), |_| async move {
            this.locked(&namespace_owned, &backup_lock_name(&name_owned), async {
                // Read under the lock: another replica may have finished it meanwhile.
                let backup = this.get_backup(&namespace_owned, &name_owned).await?;
                this.step(&backup).await
            })
            .await
        })
    }

    /// EtcdBackup `name` in `namespace` (GetBackup).
    pub async fn get_backup(&self, namespace: &str, name: &str) -> Result<EtcdBackup, ServiceError> {
        self.backups(namespace)
            .get(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound { kind: "EtcdBackup", name: format!("{namespace}/{name}") })
    }

    async fn step(&self, backup: &EtcdBackup) -> Result<BackupOutcome, ServiceError> {
        let namespace = backup.namespace().unwrap_or_default();
        let r = ClusterRef { namespace: namespace.clone(), name: backup.spec.cluster_name.clone() };
        let mut status = backup.status.clone().unwrap_or_default();
        let source = self.source_cluster(&r).await?;
        let now = etcd_operator_common::time::now();
        match next_step(&status, &source, now) {
            BackupStep::Finished => Ok(BackupOutcome { status, requeue_after: None }),
            BackupStep::Wait { after } => Ok(BackupOutcome { status, requeue_after: Some(after) }),
            BackupStep::Retry { reason, message } => {
                status.attempts += 1;
                status.last_attempt_time = Some(now_rfc3339());
                self.record_failed_attempt(backup, status, reason, &message).await
            }
            BackupStep::Fail { reason, message } => {
                status.phase = BackupPhase::Failed;
                status.completion_time = Some(now_rfc3339());
                let status = self.write(backup, status, ConditionStatus::False, reason, &message).await?;
                self.event(backup, EventType::Warning, "BackupFailed", &message).await;
                Ok(BackupOutcome { status, requeue_after: None })
            }
            BackupStep::Take { source, attempt } => {
                let created = backup.creation_timestamp().map(|t| t.0.to_string());
                let created = created.and_then(|t| t.parse::<DateTime<Utc>>().ok()).unwrap_or(now);
                let dir = backup_dir(&namespace, &r.name, &backup.name_any(), created);
                let storage = match self.open_storage(&namespace, &backup.spec.storage, "spec.storage").await
                {
                    Ok(s) => s,
                    Err(e) => {
                        status.attempts = attempt;
                        status.last_attempt_time = Some(now_rfc3339());
                        return self
                            .record_failed_attempt(backup, status, "StorageUnusable", &e.to_string())
                            .await;
                    }
                };
                // Intent first: a crash from here on is seen as a started attempt.
                status.phase = BackupPhase::Running;
                status.attempts = attempt;
                status.last_attempt_time = Some(now_rfc3339());
                status.start_time.get_or_insert_with(now_rfc3339);
                status.key = Some(BackupRecord::snapshot_key(&dir));
                status.location = Some(format!("{}/{}", storage.url(), BackupRecord::snapshot_key(&dir)));
                status.member = Some(source.member.clone());
                status.cluster_id = Some(source.cluster_id.clone());
                // A new attempt starts from nothing.
                status.progress = None;
                let msg = format!("attempt {attempt}: streaming from {}", source.member);
                let status = self.write(backup, status, ConditionStatus::Unknown, "InProgress", &msg).await?;
                fail::fail_point!("backup::after::RecordIntent");
                self.take(backup, status, &storage, &dir, &source).await
            }
        }
    }

    async fn take(
        &self,
        backup: &EtcdBackup,
        mut status: EtcdBackupStatus,
        storage: &etcd_operator_client::storage::ObjectStorage,
        dir: &str,
        source: &crate::backup::decide::Source,
    ) -> Result<BackupOutcome, ServiceError> {
        let started = Instant::now();
        let started_at = status.last_attempt_time.clone().unwrap_or_else(now_rfc3339);
        let streamed = self.stream_reporting(backup, &status, storage, dir, source).await;
        match streamed {
            Ok(info) => {
                let record = BackupRecord {
                    format: BackupRecord::FORMAT,
                    namespace: backup.namespace().unwrap_or_default(),
                    cluster: backup.spec.cluster_name.clone(),
                    backup: backup.name_any(),
                    cluster_id: source.cluster_id.clone(),
                    member: source.member.clone(),
                    revision: info.revision,
                    etcd_version: info.etcd_version.clone(),
                    size_bytes: info.size_bytes,
                    sha256: info.sha256.clone(),
                    snapshot_key: BackupRecord::snapshot_key(dir),
                    started_at,
                    completed_at: now_rfc3339(),
                };
                if let Err(e) = self.write_sidecars(storage, dir, &record).await {
                    return self.record_failed_attempt(backup, status, "StorageFailed", &e.to_string()).await;
                }
                status.phase = BackupPhase::Succeeded;
                let whole = Transferred { bytes: info.size_bytes, total: Some(info.size_bytes) };
                status.progress =
                    Some(progress(whole.bytes, whole.total, &now_rfc3339(), &self.core.identity()));
                status.size_bytes = Some(info.size_bytes as i64);
                status.sha256 = Some(info.sha256);
                status.revision = Some(info.revision);
                status.etcd_version = Some(info.etcd_version);
                status.completion_time = Some(record.completed_at.clone());
                status.duration_seconds = Some((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
                let msg = format!(
                    "{} bytes at revision {} from {}, sha256 {}",
                    record.size_bytes, record.revision, record.member, record.sha256
                );
                let status = self.write(backup, status, ConditionStatus::True, "Completed", &msg).await?;
                tracing::info!(
                    location = status.location,
                    size = record.size_bytes,
                    "backup stored and verified"
                );
                self.event(backup, EventType::Normal, "BackupSucceeded", &msg).await;
                Ok(BackupOutcome { status, requeue_after: None })
            }
            Err(e) => {
                tracing::warn!("backup attempt {} failed: {e}", status.attempts);
                self.record_failed_attempt(backup, status, "AttemptFailed", &e.to_string()).await
            }
        }
    }

    /// [`Self::stream`], recording in status how far it has come every [`REPORT_EVERY`] so that
    /// polls (answered by any replica) can tell.
    async fn stream_reporting(
        &self,
        backup: &EtcdBackup,
        status: &EtcdBackupStatus,
        storage: &etcd_operator_client::storage::ObjectStorage,
        dir: &str,
        source: &crate::backup::decide::Source,
    ) -> Result<SnapshotInfo, ServiceError> {
        let (streamed, _) = watch::channel(Transferred::default());
        let r = ClusterRef {
            namespace: backup.namespace().unwrap_or_default(),
            name: backup.spec.cluster_name.clone(),
        };
        let streaming = self.stream(&r, storage, dir, source, &streamed);
        let report = |done: Transferred| {
            let mut now = status.clone();
            now.progress = Some(progress(done.bytes, done.total, &now_rfc3339(), &self.core.identity()));
            let (namespace, name) = (backup.namespace().unwrap_or_default(), backup.name_any());
            async move {
                // Progress is a report: a failed write is logged, never a failed backup.
                if let Err(e) = self.backups(&namespace).apply_status(&name, &now).await {
                    tracing::warn!("could not record the backup's progress: {e}");
                }
            }
        };
        tasks::reporting(streaming, &streamed, report).await
    }

    /// Streams the snapshot to storage and checks the stored copy against what was streamed.
    async fn stream(
        &self,
        r: &ClusterRef,
        storage: &etcd_operator_client::storage::ObjectStorage,
        dir: &str,
        source: &crate::backup::decide::Source,
        progress: &Progress,
    ) -> Result<SnapshotInfo, ServiceError> {
        let key = BackupRecord::snapshot_key(dir);
        let endpoints = std::slice::from_ref(&source.endpoint);
        let options = self.core.etcd_options(&self.core.get(r).await?).await?;
        let client = EtcdClient::connect(endpoints, options, self.core.etcd_metrics()).await?;
        let mut writer = storage.writer(&key)?;
        let info = match client.snapshot_with_progress(&source.endpoint, &mut writer, progress).await {
            Ok(info) => info,
            Err(e) => {
                writer.abort().await;
                return Err(e.into());
            }
        };
        writer.commit().await?;
        fail::fail_point!("backup::after::Upload", |_| Err(ServiceError::Unavailable("failpoint".into())));
        let (size, sha256) = storage.digest(&key).await?;
        if size != info.size_bytes || sha256 != info.sha256 {
            storage.delete(&key).await?;
            return Err(ServiceError::Unavailable(format!(
                "the stored copy of {key} does not match what was streamed ({size} bytes, sha256 {sha256}; streamed {} bytes, sha256 {}); deleted it",
                info.size_bytes, info.sha256
            )));
        }
        Ok(info)
    }

    async fn write_sidecars(
        &self,
        storage: &etcd_operator_client::storage::ObjectStorage,
        dir: &str,
        record: &BackupRecord,
    ) -> Result<(), ServiceError> {
        storage.put(&BackupRecord::checksum_key(dir), record.checksum_line().into_bytes()).await?;
        let json = serde_json::to_vec_pretty(record)?;
        // Written last: its presence marks the backup complete.
        storage.put(&BackupRecord::metadata_key(dir), json).await?;
        Ok(())
    }

    async fn record_failed_attempt(
        &self,
        backup: &EtcdBackup,
        mut status: EtcdBackupStatus,
        reason: &str,
        message: &str,
    ) -> Result<BackupOutcome, ServiceError> {
        status.phase = BackupPhase::Pending;
        let delay = retry_delay(status.attempts);
        let msg = format!("attempt {} failed: {message}; retrying in {}s", status.attempts, delay.as_secs());
        let status = self.write(backup, status, ConditionStatus::False, reason, &msg).await?;
        self.event(backup, EventType::Warning, reason, &msg).await;
        Ok(BackupOutcome { status, requeue_after: Some(delay) })
    }

    async fn write(
        &self,
        backup: &EtcdBackup,
        mut status: EtcdBackupStatus,
        condition: ConditionStatus,
        reason: &str,
        message: &str,
    ) -> Result<EtcdBackupStatus, ServiceError> {
        // status.verification has its own writer (whoever verifies the stored copy).
        status.verification = None;
        let fresh = vec![Condition::new(SUCCEEDED, condition, reason, message)];
        status.conditions = merge_conditions(&status.conditions, fresh, &now_rfc3339());
        let namespace = backup.namespace().unwrap_or_default();
        self.backups(&namespace).apply_status(&backup.name_any(), &status).await?;
        Ok(status)
    }

    async fn source_cluster(&self, r: &ClusterRef) -> Result<SourceCluster, ServiceError> {
        let Some(cluster) = self.core.find(r).await? else { return Ok(SourceCluster::Missing) };
        if cluster.spec.size == 0 {
            return Ok(SourceCluster::NotRunning);
        }
        let names = self.core.names_of(&cluster);
        let state = match self.core.etcd_options(&cluster).await {
            Ok(options) => {
                let moving = cluster.transport_move().is_some();
                observe_etcd(&names, cluster.spec.size, &options, self.core.etcd_pool(), moving).await
            }
            Err(e) => crate::observe::EtcdState::Unreachable(e.to_string()),
        };
        Ok(SourceCluster::Etcd(state))
    }

    async fn event(&self, backup: &EtcdBackup, type_: EventType, reason: &str, note: &str) {
        let note = Note { type_, reason, action: "Backup", note };
        publish(self.core.kube(), component::BACKUP, self.core.identity(), &backup.object_ref(&()), note)
            .await;
    }
}
