//! The lifecycle's own pure decisions. What the objects should be is
//! [`crate::plan::desire`], shared with the status and with restores; what is
//! left here is how a delete treats the claims and when an apply looks again.

use std::time::Duration;

use etcd_operator_api::{
    EtcdCluster,
    cluster::{PvcRetention, RestorePhase, RestoreStatus, StorageType},
};

/// How soon an apply looks again while members restore (to record completion and remove the token).
const RESTORING: Duration = Duration::from_secs(5);

/// Why a delete must not touch the objects of `cluster`: it exists and is not being deleted, and
/// the caller did not `force` it. Deleting the EtcdCluster is how a cluster goes (its finalizer
/// calls the delete); a call alone is not.
pub fn delete_refusal(cluster: Option<&EtcdCluster>, force: bool) -> Option<String> {
    let c = cluster.filter(|c| c.metadata.deletion_timestamp.is_none() && !force)?;
    Some(format!(
        "EtcdCluster {}/{} is not being deleted (generation {}): delete the EtcdCluster, whose finalizer \
         removes its objects, or call DeleteCluster with force",
        c.metadata.namespace.as_deref().unwrap_or_default(),
        c.metadata.name.as_deref().unwrap_or_default(),
        c.metadata.generation.unwrap_or_default()
    ))
}

/// Whether a delete removes the claims: only when the policy says so. Without the object the
/// policy is unknown, and the data is kept (the safe default).
pub fn deletes_claims(cluster: Option<&EtcdCluster>) -> bool {
    cluster.is_some_and(|c| {
        c.spec.storage.type_ == StorageType::Persistent
            && c.spec.pvc_retention_policy.when_deleted == PvcRetention::Delete
    })
}

/// What a delete does with the claims it found (`(name, being deleted)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimPlan {
    /// Claims to delete now.
    pub delete: Vec<String>,
    /// Claims kept by the policy, sorted.
    pub retained: Vec<String>,
    /// Whether claims being deleted are still there (the delete is not done).
    pub left: bool,
}

/// The claims a delete removes or keeps.
pub fn claim_plan(claims: &[(String, bool)], delete: bool) -> ClaimPlan {
    let mut plan = ClaimPlan::default();
    for (name, deleting) in claims {
        match (delete, deleting) {
            (true, false) => plan.delete.push(name.clone()),
            (true, true) => {}
            (false, _) => plan.retained.push(name.clone()),
        }
    }
    plan.left = delete && !claims.is_empty();
    plan.retained.sort();
    plan
}

/// When an apply looks again: as the status says, and within a few seconds while members restore.
pub fn look_again(
    recorded: Option<Duration>,
    restore: Option<&RestoreStatus>,
    rotating: bool,
) -> Option<Duration> {
    // A CA rotation or a move between plaintext and TLS moves on as members restart; looked at
    // again in case no event says so.
    if rotating || restore.is_some_and(|r| r.phase == RestorePhase::Restoring) {
        return Some(recorded.unwrap_or(RESTORING).min(RESTORING));
    }
    recorded
}

/// How soon a cluster waiting for its provided certificate Secrets looks again.
pub const PROVIDED_SECRETS: Duration = Duration::from_secs(10);

/// Members of a cluster with provided certificate Secrets are created only once those Secrets
/// are usable and their CAs recorded: a pod would wait for its Secrets anyway, and its template
/// names the CAs it trusts, so members created earlier would restart once at the first record.
pub fn waits_for_provided_secrets(cluster: &EtcdCluster) -> bool {
    let provided = cluster.spec.tls.as_ref().is_some_and(|t| t.provided.is_some());
    let recorded = cluster.certificate_authority().is_some_and(|c| !c.trusted.is_empty());
    provided && !recorded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cluster_being_deleted_or_gone_is_cleaned_up_unless_forced() {
        let mut c: EtcdCluster = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo", "namespace": "prod", "generation": 3},
            "spec": {"size": 3, "version": "3.5.17"}
        }))
        .unwrap();
        let why = delete_refusal(Some(&c), false).unwrap();
        assert!(why.starts_with("EtcdCluster prod/demo is not being deleted (generation 3)"), "{why}");
        assert_eq!(delete_refusal(Some(&c), true), None);
        assert_eq!(delete_refusal(None, false), None, "gone: its leftovers may go");
        c.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()));
        assert_eq!(delete_refusal(Some(&c), false), None);
    }
    use crate::fixtures::cluster;

    #[test]
    fn members_of_provided_secrets_wait_for_the_secrets_cas_to_be_recorded() {
        let provided = "size: 3\nversion: 3.5.17\ntls:\n  provided: {clientSecretName: c, peerSecretName: p, operatorSecretName: o}";
        let mut c = cluster(provided);
        assert!(waits_for_provided_secrets(&c));
        c.status = Some(etcd_operator_api::cluster::EtcdClusterStatus {
            certificate_authority: Some(etcd_operator_api::cluster::CertificateAuthorityStatus {
                trusted: vec!["ab".into()],
                rotation: None,
            }),
            ..Default::default()
        });
        assert!(!waits_for_provided_secrets(&c));
        assert!(!waits_for_provided_secrets(&cluster(
            "size: 3\nversion: 3.5.17\ntls:\n  operatorManaged: {}"
        )));
        assert!(!waits_for_provided_secrets(&cluster("size: 3\nversion: 3.5.17")));
    }

    #[test]
    fn claims_are_deleted_only_when_the_policy_says_so() {
        let keep = cluster("size: 3\nversion: 3.5.17");
        let delete = cluster("size: 3\nversion: 3.5.17\npvcRetentionPolicy:\n  whenDeleted: Delete");
        let ephemeral = cluster(
            "size: 3\nversion: 3.5.17\npvcRetentionPolicy:\n  whenDeleted: Delete\nstorage:\n  type: Ephemeral",
        );
        assert!(!deletes_claims(Some(&keep)));
        assert!(deletes_claims(Some(&delete)));
        assert!(!deletes_claims(Some(&ephemeral)));
        assert!(!deletes_claims(None), "without the object the data is kept");

        let claims = [("data-demo-1".to_owned(), false), ("data-demo-0".to_owned(), true)];
        let kept = claim_plan(&claims, false);
        assert_eq!(
            (kept.delete.len(), kept.retained.as_slice(), kept.left),
            (0, &["data-demo-0".to_owned(), "data-demo-1".to_owned()][..], false)
        );
        let removed = claim_plan(&claims, true);
        assert_eq!(
            (removed.delete, removed.retained.len(), removed.left),
            (vec!["data-demo-1".to_owned()], 0, true)
        );
        assert!(!claim_plan(&[], true).left, "nothing left: the delete is done");
    }

    #[test]
    fn a_restoring_cluster_is_looked_at_again_within_seconds() {
        let restoring = RestoreStatus { phase: RestorePhase::Restoring, ..RestoreStatus::default() };
        let done = RestoreStatus { phase: RestorePhase::Completed, ..RestoreStatus::default() };
        assert_eq!(look_again(None, Some(&restoring), false), Some(RESTORING));
        assert_eq!(
            look_again(Some(Duration::from_secs(1)), Some(&restoring), false),
            Some(Duration::from_secs(1))
        );
        assert_eq!(look_again(Some(Duration::from_secs(30)), Some(&restoring), false), Some(RESTORING));
        assert_eq!(look_again(None, Some(&done), false), None);
        assert_eq!(look_again(Some(Duration::from_secs(5)), None, false), Some(Duration::from_secs(5)));
        assert_eq!(look_again(None, None, true), Some(RESTORING));
    }
}
