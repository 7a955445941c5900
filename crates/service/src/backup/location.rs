//! Opening the storage a BackupLocation names: credentials from a Secret for
//! S3, a mounted claim for volumes. Every refusal names the field.

use std::path::{Component, Path, PathBuf};

use etcd_operator_api::storage::BackupLocation;
use etcd_operator_client::storage::{ObjectStorage, S3Settings};
use etcd_operator_resource::managers::SecretManager;

use super::BackupService;
use crate::{ServiceError, core::Core};

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
        open_storage(&self.core, namespace, location, field).await
    }
}

/// The storage behind `location` (`field` is its path in the object, for errors).
pub(crate) async fn open_storage(
    clusters: &Core,
    namespace: &str,
    location: &BackupLocation,
    field: &str,
) -> Result<ObjectStorage, ServiceError> {
    {
        let refuse = |m: String| ServiceError::FailedPrecondition(m);
        match (&location.s3, &location.volume) {
            (Some(s3), None) => {
                let endpoint_field = format!("{field}.s3.endpoint");
                let allowed = clusters.s3_endpoints();
                if let Some(why) =
                    super::decide::endpoint::refusal(&endpoint_field, s3.endpoint.as_deref(), allowed)
                {
                    return Err(refuse(why));
                }
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
                let dir = volume_dir(root, namespace, &volume.claim_name, &volume.path, field)?;
                Ok(ObjectStorage::local(&dir).map_err(|e| refuse(format!("{field}.volume: {e}")))?)
            }
            _ => Err(ServiceError::InvalidArgument(etcd_operator_common::Violations(vec![
                etcd_operator_common::FieldViolation::new(field, "exactly one of s3 or volume must be set"),
            ]))),
        }
    }
}

/// DNS-1123 subdomain: what Kubernetes accepts as a claim's name (no `/`, no `..`).
pub(crate) fn is_dns1123_subdomain(name: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label)
}

/// The directory of a volume location: `<root>/<namespace>/<claim>/<path>`. A namespace reaches
/// only the claims the operator's configuration mounted for it (the chart's `backupClaims`, each
/// mapped to one namespace), and never leaves them.
pub(crate) fn volume_dir(
    root: &Path,
    namespace: &str,
    claim: &str,
    path: &str,
    field: &str,
) -> Result<PathBuf, ServiceError> {
    let invalid = |f: String, rule: &str| {
        ServiceError::InvalidArgument(etcd_operator_common::Violations(vec![
            etcd_operator_common::FieldViolation::new(f, rule),
        ]))
    };
    if !is_dns1123_subdomain(claim) {
        return Err(invalid(
            format!("{field}.volume.claimName"),
            "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)",
        ));
    }
    let inside = Path::new(path.trim_start_matches('/'));
    if inside.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(invalid(format!("{field}.volume.path"), "must stay inside the volume (no '..')"));
    }
    let claim_dir = root.join(namespace).join(claim);
    if !claim_dir.is_dir() {
        return Err(ServiceError::FailedPrecondition(format!(
            "{field}.volume.claimName: claim {claim} is not mounted for namespace {namespace} in the cluster-service \
             (expected at {}; the chart's clusterService.backupClaims maps each claim to one namespace)",
            claim_dir.display()
        )));
    }
    Ok(claim_dir.join(inside))
}

/// A restore location's key: only keys under the restoring cluster's own namespace prefix,
/// where backups of that namespace are written (`<namespace>/<cluster>/...`).
pub(crate) fn check_restore_key(namespace: &str, key: &str, field: &str) -> Result<(), String> {
    let under = key.strip_prefix(namespace).and_then(|k| k.strip_prefix('/'));
    if under.is_none_or(str::is_empty) || key.split('/').any(|s| s == ".." || s == ".") {
        return Err(format!(
            "{field}: key {key:?} is outside namespace {namespace}'s backups: only keys under \"{namespace}/\" \
             (where its backups are written) may be restored in it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_names_and_paths_never_leave_the_namespaces_own_claims() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("team-a/backups")).unwrap();
        std::fs::create_dir_all(root.path().join("team-b/backups")).unwrap();
        let dir =
            |ns: &str, claim: &str, path: &str| volume_dir(root.path(), ns, claim, path, "spec.storage");
        assert_eq!(dir("team-a", "backups", "x/y").unwrap(), root.path().join("team-a/backups/x/y"));
        for bad in ["..", "../team-b/backups", "a/b", "Backups", "-x", ""] {
            let e = dir("team-a", bad, "").unwrap_err().to_string();
            assert!(e.contains("spec.storage.volume.claimName") && e.contains("DNS-1123"), "{bad}: {e}");
        }
        let e = dir("team-a", "backups", "../../team-b/backups").unwrap_err().to_string();
        assert!(e.contains("spec.storage.volume.path"), "{e}");
        // team-b's claim is not mounted for team-c.
        let e = dir("team-c", "backups", "").unwrap_err().to_string();
        assert!(e.contains("not mounted for namespace team-c"), "{e}");
    }

    #[test]
    fn restore_keys_stay_under_the_namespace() {
        assert_eq!(check_restore_key("team-a", "team-a/demo/x/snapshot.db", "k"), Ok(()));
        for bad in [
            "team-b/demo/snapshot.db",
            "team-a",
            "team-a/",
            "team-a/../team-b/x.db",
            "team-ab/x.db",
            "/team-a/x",
        ] {
            let e = check_restore_key("team-a", bad, "spec.restore.location.key").unwrap_err();
            assert!(
                e.contains("spec.restore.location.key") && e.contains("outside namespace team-a"),
                "{bad}: {e}"
            );
        }
    }
}
