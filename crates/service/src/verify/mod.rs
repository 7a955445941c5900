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

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use etcd_operator_api::{
    EtcdBackup,
    backup::{TransferProgress, VerificationPhase},
};
use etcd_operator_client::{
    storage::{ObjectStorage, ObjectVersion},
    transfer::Transferred,
};
use etcd_operator_common::time::now_rfc3339;
use etcd_operator_resource::managers::Manager;
use tokio::sync::watch;

use crate::{
    ClusterService, ServiceError, call_budget,
    config::component,
    decisions::transfer::{progress, reusable},
};

/// How long a call waits for a verification at most, deadline allowing.
const IN_CALL_WAIT: Duration = Duration::from_secs(20);
/// Outcomes kept per replica.
const CACHE_ENTRIES: usize = 256;

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

/// A verification task's state, published as it reads.
#[derive(Clone, Debug, Default)]
struct TaskState {
    read: Transferred,
    done: Option<Result<(ObjectVersion, String), ServiceError>>,
}

/// This replica's verification tasks (by location) and finished outcomes (by object version).
#[derive(Clone, Default)]
pub(crate) struct Verifications(Arc<Mutex<Table>>);

#[derive(Default)]
struct Table {
    running: HashMap<String, watch::Receiver<TaskState>>,
    done: HashMap<(String, ObjectVersion), String>,
    order: VecDeque<(String, ObjectVersion)>,
}

impl Verifications {
    fn cached(&self, location: &str, version: &ObjectVersion) -> Option<String> {
        let table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        table.done.get(&(location.to_owned(), version.clone())).cloned()
    }

    fn remember(&self, location: &str, version: ObjectVersion, sha256: String) {
        let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (location.to_owned(), version);
        if table.done.insert(key.clone(), sha256).is_none() {
            table.order.push_back(key);
        }
        while table.order.len() > CACHE_ENTRIES {
            if let Some(oldest) = table.order.pop_front() {
                table.done.remove(&oldest);
            }
        }
    }
}

impl ClusterService {
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
            && let Some(phase) = reusable(r, &version, subject.expected_sha256)
        {
            let sha256 = r.sha256.clone().unwrap_or_default();
            tracing::debug!(location, ?phase, "verification reused from the backup's status");
            return Ok(Checked::Read { version, sha256 });
        }
        if let Some(sha256) = self.verifications.cached(&location, &version) {
            return Ok(Checked::Read { version, sha256 });
        }
        let mut state = self.start_or_join_verification(subject, &location);
        let wait = call_budget::wait_for_task(IN_CALL_WAIT);
        let _ = tokio::time::timeout(wait, state.wait_for(|s| s.done.is_some())).await;
        let now = state.borrow().clone();
        match now.done {
            Some(Ok((read, sha256))) if read == version => Ok(Checked::Read { version, sha256 }),
            // The object changed while it was read: the next poll reads the new one.
            Some(Ok(_)) => Ok(Checked::Reading(progress(Transferred::default(), &now_rfc3339(), ""))),
            // Another replica holds the backup's Lease and is reading it: its recorded progress.
            Some(Err(ServiceError::Aborted(_))) => {
                let theirs = recorded
                    .filter(|r| r.phase == VerificationPhase::Verifying)
                    .and_then(|r| r.progress)
                    .unwrap_or_else(|| progress(Transferred::default(), &now_rfc3339(), "another replica"));
                Ok(Checked::Reading(theirs))
            }
            Some(Err(e)) => Err(e),
            None => Ok(Checked::Reading(progress(now.read, &now_rfc3339(), &self.identity()))),
        }
    }

    fn backups_as_verifier(&self, namespace: &str) -> Manager<EtcdBackup> {
        let fm = etcd_operator_client::kubernetes::field_manager(component::VERIFICATION);
        Manager::new(self.kube(), namespace, &fm)
    }

    /// This replica's task reading `location`, started if none runs.
    fn start_or_join_verification(
        &self,
        subject: &Subject<'_>,
        location: &str,
    ) -> watch::Receiver<TaskState> {
        let mut table = self.verifications.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = table.running.get(location) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(TaskState::default());
        table.running.insert(location.to_owned(), rx.clone());
        let job = task::Job {
            service: self.clone(),
            storage: subject.storage.clone(),
            key: subject.key.to_owned(),
            location: location.to_owned(),
            expected_sha256: subject.expected_sha256.to_owned(),
            backup: subject.backup.map(|(ns, name)| (ns.to_owned(), name.to_owned())),
        };
        tokio::spawn(job.run(tx));
        rx
    }
}
