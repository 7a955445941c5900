//! Verification of a stored snapshot before a restore uses it: the whole copy
//! is read and hashed, which for a large backup takes longer than any call.
//!
//! Where each piece lives:
//! - The reading runs as a task of the replica that first needed it; the call
//!   that started it (and every later poll) waits only while it can still
//!   answer within its caller's deadline, then answers "verifying" with the
//!   task's progress.
//! - For an EtcdBackup, the task holds the backup's Lease and records its
//!   progress and its outcome in the backup's `status.verification`, with the
//!   version of the object it read (size, ETag, modification time). A poll
//!   answered by another replica finds the Lease held and reads the progress
//!   from there; a replica that dies leaves the Lease to expire, and the next
//!   poll, on any replica, reads the copy again from the start.
//! - A finished outcome is reused while the object is unchanged: from the
//!   backup's status on any replica, and from this replica's own cache for
//!   snapshots that are not EtcdBackups (stop and survivor snapshots).

mod task;

use etcd_operator_api::{
    EtcdBackup,
    backup::{TransferProgress, VerificationPhase},
};
use etcd_operator_client::storage::{ObjectStorage, ObjectVersion};
use etcd_operator_common::time::now_rfc3339;
use etcd_operator_resource::managers::Manager;

use crate::{
    ServiceError,
    config::component,
    restore::RestoreService,
    tasks,
    transfer::{StoredVersion, progress, reusable},
};

/// What a stored copy was found to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Read whole (now or on this same version before): what it hashes to.
    Read { version: ObjectVersion, sha256: String },
    /// Not in storage.
    Missing,
    /// Still being read: how far.
    Reading(TransferProgress),
}

/// The stored copy to check.
pub(crate) struct Subject<'a> {
    pub storage: &'a ObjectStorage,
    pub key: &'a str,
    /// The checksum it must have.
    pub expected_sha256: &'a str,
    /// The EtcdBackup (namespace, name) it belongs to, if any.
    pub backup: Option<(&'a str, &'a str)>,
}

impl Subject<'_> {
    fn location(&self) -> String {
        format!("{}/{}", self.storage.url(), self.key)
    }
}

impl RestoreService {
    /// Checks a stored copy: a standing outcome when the object is unchanged since, else the
    /// outcome of a reading task if it finishes within this call's budget, else how far it is.
    pub(crate) async fn check_stored(&self, subject: &Subject<'_>) -> Result<Checked, ServiceError> {
        let location = subject.location();
        let Some(version) = subject.storage.head(subject.key).await? else {
            return Ok(Checked::Missing);
        };
        let backup = match subject.backup {
            Some((namespace, name)) => self.backups_as_verifier(namespace).get(name).await?,
            None => None,
        };
        let recorded = backup.as_ref().and_then(|b| b.status.as_ref()?.verification.clone());
        if let Some(r) = &recorded
            && let Some(phase) = reusable(r, stored_version(&version), subject.expected_sha256)
        {
            let sha256 = r.sha256.clone().unwrap_or_default();
            tracing::debug!(location, ?phase, "verification reused from the backup's status");
            return Ok(Checked::Read { version, sha256 });
        }
        if let Some(sha256) = self.core.verified.get(&(location.clone(), version.clone())) {
            return Ok(Checked::Read { version, sha256 });
        }
        let job = task::Job {
            service: self.clone(),
            storage: subject.storage.clone(),
            key: subject.key.to_owned(),
            location: location.clone(),
            expected_sha256: subject.expected_sha256.to_owned(),
            backup: subject.backup.map(|(ns, name)| (ns.to_owned(), name.to_owned())),
        };
        let running = self.core.verifications.start_or_join(&location, |progress| job.run(progress));
        let now = tasks::wait(running).await;
        match now.done {
            Some(Ok((read, sha256))) if read == version => Ok(Checked::Read { version, sha256 }),
            // The object changed while it was read: the next poll reads the new one.
            Some(Ok(_)) => Ok(Checked::Reading(progress(0, None, &now_rfc3339(), ""))),
            // Another replica holds the backup's Lease and is reading it: its recorded progress.
            Some(Err(e)) if e.is_aborted() => {
                let theirs = recorded
                    .filter(|r| r.phase == VerificationPhase::Verifying)
                    .and_then(|r| r.progress)
                    .unwrap_or_else(|| progress(0, None, &now_rfc3339(), "another replica"));
                Ok(Checked::Reading(theirs))
            }
            Some(Err(e)) => Err(e),
            None => Ok(Checked::Reading(progress(
                now.progress.bytes,
                now.progress.total,
                &now_rfc3339(),
                &self.core.identity(),
            ))),
        }
    }

    fn backups_as_verifier(&self, namespace: &str) -> Manager<EtcdBackup> {
        let fm = etcd_operator_client::kubernetes::field_manager(component::VERIFICATION);
        Manager::new(self.core.kube(), namespace, &fm)
    }
}

/// The version of a stored object as the decisions see it.
fn stored_version(v: &ObjectVersion) -> StoredVersion<'_> {
    StoredVersion { size_bytes: v.size_bytes, e_tag: v.e_tag.as_deref(), last_modified: &v.last_modified }
}
