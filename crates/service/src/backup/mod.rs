//! BackupService: one-shot backups, schedules with retention, and the
//! storage they write to. Decisions live in `backup::decide, backup::decide::retention, decisions:://! schedule`; this module gathers what they need and carries them out.

pub mod decide;
pub(crate) mod location;
mod record;
mod restore_source;
mod run;
mod schedule;

pub use record::BackupRecord;
pub use restore_source::RestoreStream;
pub use run::BackupOutcome;
pub use schedule::{PruneOutcome, ScheduleOutcome};

use etcd_operator_api::{EtcdBackup, EtcdBackupSchedule};
use etcd_operator_client::kubernetes::field_manager;
use etcd_operator_resource::managers::{ClusterLock, Manager};

use crate::{ClusterService, ServiceError, config::component, tasks::Tasks};

/// Takes backups, runs schedules and applies retention.
#[derive(Clone)]
pub struct BackupService {
    clusters: ClusterService,
    lock: ClusterLock,
    /// Backups being taken by this replica, by `namespace/name`.
    running: Tasks<BackupOutcome>,
}

impl BackupService {
    /// A backup service sharing `clusters`' connections and settings.
    pub fn new(clusters: ClusterService) -> Self {
        let lock = ClusterLock::new(clusters.kube(), clusters.identity(), clusters.lock_duration());
        Self { clusters, lock, running: Tasks::default() }
    }

    fn backups(&self, namespace: &str) -> Manager<EtcdBackup> {
        Manager::new(self.clusters.kube(), namespace, &field_manager(component::BACKUP))
    }

    fn schedules(&self, namespace: &str) -> Manager<EtcdBackupSchedule> {
        Manager::new(self.clusters.kube(), namespace, &field_manager(component::BACKUP))
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
