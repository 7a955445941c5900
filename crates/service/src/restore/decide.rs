//! Restore safety, pure: a restore never starts members on claims an earlier
//! cluster left, and never reports success over data that was not restored.

use std::time::Duration;

/// A restore's claims check: `Err(reason, message)` when claims an earlier cluster of this name
/// retained would be started on (the restore agent skips a member whose data directory is not
/// empty, so it would serve that data).
pub fn retained_claims(
    cluster: &str,
    namespace: &str,
    claims: &[String],
    clear: bool,
) -> Result<(), (&'static str, String)> {
    if claims.is_empty() {
        return Ok(());
    }
    let list = claims.join(", ");
    if clear {
        return Err((
            "ClearingRetainedClaims",
            format!(
                "deleting claims {list} that an earlier cluster left (spec.restore.clearRetainedClaims); the restore starts once they are gone"
            ),
        ));
    }
    Err((
        "RetainedClaims",
        format!(
            "claims {list} hold the data of an earlier cluster named {cluster} (deleted with whenDeleted: Retain); \
             members started on them would serve that data, not the backup. Nothing was started. Delete them \
             (kubectl delete pvc -n {namespace} {}) or recreate this EtcdCluster with \
             spec.restore.clearRetainedClaims: true",
            claims.join(" ")
        ),
    ))
}

/// Whether the members serve what was restored: a new cluster (a restore never keeps the source's
/// cluster ID) at a revision no lower than the snapshot's. `Err` says what they serve instead.
pub fn verify_restored(
    source_cluster_id: Option<&str>,
    snapshot_revision: Option<i64>,
    serving_cluster_id: &str,
    serving_revision: Option<i64>,
) -> Result<(), String> {
    if source_cluster_id.is_some_and(|id| id.eq_ignore_ascii_case(serving_cluster_id)) {
        return Err(format!(
            "the members serve cluster ID {serving_cluster_id}, the cluster the snapshot was taken from: they started \
             on data that was not restored from it"
        ));
    }
    if let (Some(snapshot), Some(serving)) = (snapshot_revision, serving_revision)
        && serving < snapshot
    {
        return Err(format!(
            "the members serve revision {serving}, below the snapshot's {snapshot}: they started on data that was \
             not restored from it"
        ));
    }
    Ok(())
}

/// How soon to look again at a restore that could not start: soon while work is under way,
/// later while waiting on the user or on a backup, rarely for what only a new spec can fix.
pub fn look_again_after(reason: &str) -> Duration {
    match reason {
        "ClearingRetainedClaims" | "Verifying" => Duration::from_secs(2),
        "BackupNotReady" | "StorageUnusable" | "RetainedClaims" => Duration::from_secs(15),
        _ => Duration::from_secs(300),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_claims_are_refused_naming_them_or_cleared_on_request() {
        assert_eq!(retained_claims("demo", "prod", &[], false), Ok(()));
        let claims = ["data-demo-0".to_owned(), "data-demo-1".to_owned()];
        let (reason, msg) = retained_claims("demo", "prod", &claims, false).unwrap_err();
        assert_eq!(reason, "RetainedClaims");
        assert!(msg.contains("kubectl delete pvc -n prod data-demo-0 data-demo-1"), "{msg}");
        assert!(msg.contains("spec.restore.clearRetainedClaims: true"), "{msg}");
        assert_eq!(retained_claims("demo", "prod", &claims, true).unwrap_err().0, "ClearingRetainedClaims");
    }

    #[test]
    fn a_restore_is_verified_by_a_new_cluster_id_and_no_lower_revision() {
        assert_eq!(verify_restored(Some("abc"), Some(100), "def", Some(1_000_000_100)), Ok(()));
        let same = verify_restored(Some("ABC"), Some(100), "abc", Some(5000)).unwrap_err();
        assert!(same.contains("cluster ID abc, the cluster the snapshot was taken from"), "{same}");
        let behind = verify_restored(None, Some(100), "def", Some(40)).unwrap_err();
        assert!(behind.contains("revision 40, below the snapshot's 100"), "{behind}");
        assert_eq!(
            verify_restored(None, None, "def", None),
            Ok(()),
            "nothing recorded, nothing to contradict"
        );
    }
}
