//! One verification: the stored copy read whole and hashed, its progress
//! published as it goes, and, for an EtcdBackup, recorded in the backup's
//! status under the backup's Lease.

use crate::{ServiceError, restore::RestoreService, tasks, transfer::progress as progress_of};
use etcd_operator_api::backup::{BackupVerification, VerificationPhase};
use etcd_operator_client::{
    ClientError,
    storage::{ObjectStorage, ObjectVersion},
    transfer::{Progress, Transferred},
};
use etcd_operator_common::time::now_rfc3339;
use etcd_operator_resource::managers::backup_lock_name;

/// What to read, and for whom.
pub(super) struct Job {
    pub service: RestoreService,
    pub storage: ObjectStorage,
    pub key: String,
    pub location: String,
    pub expected_sha256: String,
    pub backup: Option<(String, String)>,
}

impl Job {
    /// Reads the copy (under the backup's Lease, recording in its status, for an EtcdBackup);
    /// a finished read is remembered by the object version it read.
    pub(super) async fn run(self, progress: Progress) -> Result<(ObjectVersion, String), ServiceError> {
        let result = match &self.backup {
            Some((namespace, name)) => {
                let what = format!("the verification of EtcdBackup {namespace}/{name}");
                let work = self.read_recording(&progress, namespace, name);
                crate::lease::hold(&self.service.core.lock, namespace, &backup_lock_name(name), &what, work)
                    .await
            }
            None => self.read(&progress).await,
        };
        if let Ok((version, sha256)) = &result {
            self.service.core.verified.insert((self.location.clone(), version.clone()), sha256.clone());
        }
        tracing::info!(location = self.location, ok = result.is_ok(), "verification finished");
        result
    }

    /// Reads the whole object, publishing the bytes read as it goes.
    async fn read(&self, progress: &Progress) -> Result<(ObjectVersion, String), ServiceError> {
        match self.storage.digest_version(&self.key, progress).await {
            Ok((version, _, sha256)) => Ok((version, sha256)),
            Err(ClientError::ObjectNotFound(_)) => {
                Err(ServiceError::NotFound { kind: "stored snapshot", name: self.location.clone() })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// [`Self::read`], recording progress and then the outcome in the backup's status.
    async fn read_recording(
        &self,
        progress: &Progress,
        namespace: &str,
        name: &str,
    ) -> Result<(ObjectVersion, String), ServiceError> {
        let report = |read: Transferred| {
            let at = progress_of(read.bytes, read.total, &now_rfc3339(), &self.service.core.identity());
            let record = BackupVerification {
                phase: VerificationPhase::Verifying,
                progress: Some(at),
                ..Default::default()
            };
            async move { self.record(namespace, name, &record).await }
        };
        let result = tasks::reporting(self.read(progress), progress, report).await;
        let record = match &result {
            Ok((version, sha256)) => BackupVerification {
                phase: if *sha256 == self.expected_sha256 {
                    VerificationPhase::Verified
                } else {
                    VerificationPhase::Mismatch
                },
                progress: None,
                size_bytes: Some(version.size_bytes as i64),
                sha256: Some(sha256.clone()),
                e_tag: version.e_tag.clone(),
                last_modified: Some(version.last_modified.clone()),
                time: Some(now_rfc3339()),
            },
            Err(e) if e.code() == crate::error::ErrorCode::NotFound => BackupVerification {
                phase: VerificationPhase::Missing,
                time: Some(now_rfc3339()),
                ..BackupVerification::default()
            },
            Err(_) => return result,
        };
        self.record(namespace, name, &record).await;
        result
    }

    /// Writes `status.verification` (its only writer: a report, so a failure is logged).
    async fn record(&self, namespace: &str, name: &str, record: &BackupVerification) {
        let status = serde_json::json!({ "verification": record });
        let backups = self.service.backups_as_verifier(namespace);
        if let Err(e) = backups.apply_status(name, &status).await {
            tracing::warn!(backup = name, "could not record the verification: {e}");
        }
    }
}
