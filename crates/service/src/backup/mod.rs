//! BackupService: one-shot backups, schedules with retention, and the
//! storage they write to. Decisions live in `backup::decide, backup::decide::retention, decisions:://! schedule`; this module gathers what they need and carries them out.

pub mod decide;
pub(crate) mod location;
mod record;
mod restore_source;
mod run;
mod schedule;
mod tooling;

pub use record::BackupRecord;
pub use restore_source::RestoreStream;
pub use run::BackupOutcome;
pub use schedule::{PruneOutcome, ScheduleOutcome};
pub use tooling::schedule_of;

use etcd_operator_api::{EtcdBackup, EtcdBackupSchedule};
use etcd_operator_client::kubernetes::field_manager;
use etcd_operator_resource::managers::{ClusterLock, Manager};

use std::sync::Arc;

use crate::{ServiceError, config::component, core::Core, restore::RestoreService, tasks::Tasks};

/// Takes backups, runs schedules and applies retention.
#[derive(Clone)]
pub struct BackupService {
    core: Arc<Core>,
    /// Restore sources, which the restore agent's snapshot stream reads.
    restore: RestoreService,
    lock: ClusterLock,
    /// Backups being taken by this replica, by `namespace/name`.
    running: Tasks<BackupOutcome>,
}

impl BackupService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        let lock = ClusterLock::new(core.kube(), core.identity(), core.lock_duration());
        Self { restore: RestoreService::new(core.clone()), core, lock, running: Tasks::default() }
    }

    fn backups(&self, namespace: &str) -> Manager<EtcdBackup> {
        Manager::new(self.core.kube(), namespace, &field_manager(component::BACKUP))
    }

    fn schedules(&self, namespace: &str) -> Manager<EtcdBackupSchedule> {
        Manager::new(self.core.kube(), namespace, &field_manager(component::BACKUP))
    }

    /// Runs `work` holding the Lease `lease` (renewed while it runs); ABORTED when another replica holds it.
    async fn locked<T>(
        &self,
        namespace: &str,
        lease: &str,
        work: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ServiceError> {
        crate::lease::hold(&self.lock, namespace, lease, &format!("{namespace}/{lease}"), work).await
    }
}
