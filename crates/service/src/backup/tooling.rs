//! Backups tooling asks for: create one now, read one, list them. The backup controller runs
//! what is created, as for any EtcdBackup.

use etcd_operator_api::{EtcdBackup, EtcdBackupSpec, storage::BackupLocation};
use etcd_operator_common::ClusterRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::{BackupService, schedule::SCHEDULE_LABEL};
use crate::ServiceError;

/// Label naming the cluster of every backup the operator creates.
const CLUSTER_LABEL: &str = "etcd.operator.dev/cluster";

impl BackupService {
    /// Creates EtcdBackup `name` of `cluster` into `storage`; the same request again answers the
    /// existing backup, another spec under that name is ALREADY_EXISTS.
    #[tracing::instrument(name = "CreateBackup", skip_all, fields(backup.namespace = %cluster.namespace, backup.name = %name, operation = "CreateBackup"))]
    pub async fn create_backup(
        &self,
        cluster: &ClusterRef,
        name: &str,
        storage: BackupLocation,
    ) -> Result<EtcdBackup, ServiceError> {
        // The cluster must exist (NOT_FOUND names it), and the storage open as a run would open
        // it (one of s3 and volume, an allowed endpoint, its Secret, a claim path inside the
        // namespace): a bad location is refused now, naming the field, not after the object.
        self.core.get(cluster).await?;
        self.open_storage(&cluster.namespace, &storage, "storage").await?;
        let spec = EtcdBackupSpec { cluster_name: cluster.name.clone(), storage };
        let backups = self.backups(&cluster.namespace);
        if let Some(existing) = backups.get(name).await? {
            return if existing.spec == spec {
                Ok(existing)
            } else {
                Err(ServiceError::AlreadyExists(format!(
                    "EtcdBackup {}/{name} exists with another spec",
                    cluster.namespace
                )))
            };
        }
        let mut backup = EtcdBackup::new(name, spec);
        backup.metadata = ObjectMeta {
            name: Some(name.into()),
            namespace: Some(cluster.namespace.clone()),
            labels: Some([(CLUSTER_LABEL.to_owned(), cluster.name.clone())].into()),
            ..ObjectMeta::default()
        };
        // Created once: a concurrent create of the same name answers what is there.
        Ok(match backups.create_once(&backup).await? {
            Some(created) => created,
            None => backups.get(name).await?.ok_or_else(|| {
                ServiceError::Aborted(format!(
                    "EtcdBackup {}/{name} was deleted while created",
                    cluster.namespace
                ))
            })?,
        })
    }

    /// The EtcdBackups of `namespace` (of `cluster` only, when given), newest first.
    pub async fn list_backups(
        &self,
        namespace: &str,
        cluster: Option<&str>,
    ) -> Result<Vec<EtcdBackup>, ServiceError> {
        let mut all = self.backups(namespace).list("").await?;
        all.retain(|b| cluster.is_none_or(|c| b.spec.cluster_name == c));
        all.sort_by(|a, b| {
            b.creation_timestamp().cmp(&a.creation_timestamp()).then_with(|| a.name_any().cmp(&b.name_any()))
        });
        Ok(all)
    }
}

/// The schedule that created a backup, if one did.
pub fn schedule_of(b: &EtcdBackup) -> Option<String> {
    b.labels().get(SCHEDULE_LABEL).cloned()
}
