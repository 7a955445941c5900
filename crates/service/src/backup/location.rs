//! Opening the storage a BackupLocation names: credentials from a Secret for
//! S3, a mounted claim for volumes. Every refusal names the field.

use std::path::PathBuf;

use etcd_operator_api::storage::BackupLocation;
use etcd_operator_client::storage::{ObjectStorage, S3Settings};
use etcd_operator_resource::managers::SecretManager;

use super::BackupService;
use crate::{ClusterService, ServiceError};

/// Keys read from the credentials Secret.
pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Keys read from the credentials Secret.
pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";

impl BackupService {
    /// The storage behind `location` (`field` is its path in the object, for errors).
    pub(crate) async fn open_storage(
        &self,
        namespace: &str,
        location: &BackupLocation,
        field: &str,
    ) -> Result<ObjectStorage, ServiceError> {
        open_storage(&self.clusters, namespace, location, field).await
    }
}

/// The storage behind `location` (`field` is its path in the object, for errors).
pub(crate) async fn open_storage(
    clusters: &ClusterService,
    namespace: &str,
    location: &BackupLocation,
    field: &str,
) -> Result<ObjectStorage, ServiceError> {
    {
        let refuse = |m: String| ServiceError::FailedPrecondition(m);
        match (&location.s3, &location.volume) {
            (Some(s3), None) => {
                let fm = etcd_operator_client::kubernetes::field_manager(crate::config::component::BACKUP);
                let secrets = SecretManager::new(clusters.kube(), namespace, &fm);
                let secret = secrets.get(&s3.credentials_secret).await.map_err(|e| {
                    ServiceError::Unavailable(format!(
                        "reading Secret {namespace}/{}: {e}",
                        s3.credentials_secret
                    ))
                })?;
                let secret = secret.ok_or_else(|| {
                    refuse(format!(
                        "{field}.s3.credentialsSecret: Secret {namespace}/{} does not exist",
                        s3.credentials_secret
                    ))
                })?;
                let value = |key: &str| -> Result<String, ServiceError> {
                    let data = secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone());
                    let text = data.and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.trim().is_empty());
                    text.map(|s| s.trim().to_owned()).ok_or_else(|| {
                        refuse(format!(
                            "{field}.s3.credentialsSecret: Secret {namespace}/{} has no {key}",
                            s3.credentials_secret
                        ))
                    })
                };
                let settings = S3Settings {
                    bucket: s3.bucket.clone(),
                    prefix: s3.prefix.clone(),
                    endpoint: s3.endpoint.clone(),
                    region: s3.region.clone(),
                    access_key_id: value(ACCESS_KEY_ID)?,
                    secret_access_key: value(SECRET_ACCESS_KEY)?,
                    path_style: s3.force_path_style,
                };
                Ok(ObjectStorage::s3(&settings).map_err(|e| refuse(format!("{field}.s3: {e}")))?)
            }
            (None, Some(volume)) => {
                let root = clusters.backup_volume_root().ok_or_else(|| {
                    refuse(format!(
                        "{field}.volume: this cluster-service has no --backup-volume-root, so it cannot write to claims; use s3 or mount the claim and set the flag"
                    ))
                })?;
                let claim_dir: PathBuf = root.join(&volume.claim_name);
                if !claim_dir.is_dir() {
                    return Err(refuse(format!(
                        "{field}.volume.claimName: claim {} is not mounted in the cluster-service at {}",
                        volume.claim_name,
                        claim_dir.display()
                    )));
                }
                let dir = claim_dir.join(volume.path.trim_start_matches('/'));
                Ok(ObjectStorage::local(&dir).map_err(|e| refuse(format!("{field}.volume: {e}")))?)
            }
            _ => Err(ServiceError::InvalidArgument(etcd_operator_common::Violations(vec![
                etcd_operator_common::FieldViolation::new(field, "exactly one of s3 or volume must be set"),
            ]))),
        }
    }
}
