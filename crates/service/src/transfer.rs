//! Progress of long transfers (a backup streaming, a stored copy being read)
//! as status reports it, and when a verification already made can be reused.

use std::time::Duration;

use etcd_operator_api::backup::{BackupVerification, TransferProgress, VerificationPhase};

/// Which version of a stored object a verification read: what its outcome is cached by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredVersion<'a> {
    /// Size in bytes.
    pub size_bytes: u64,
    /// The store's entity tag, when it gives one.
    pub e_tag: Option<&'a str>,
    /// Last modification (RFC 3339).
    pub last_modified: &'a str,
}

/// How often a running transfer records its progress in status.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);

/// The status record of `bytes` moved so far of `total`, by `replica`, at `now`.
pub fn progress(bytes: u64, total: Option<u64>, now: &str, replica: &str) -> TransferProgress {
    // etcd's total leaves out the checksum it appends, so bytes may pass it by 32.
    let percent = total.filter(|t| *t > 0).map(|t| (bytes.min(t) * 100 / t) as i32);
    TransferProgress {
        bytes: bytes as i64,
        total_bytes: total.map(|t| t as i64),
        percent,
        updated: now.to_owned(),
        replica: replica.to_owned(),
    }
}

/// The outcome of a verification recorded on `version` of the object, if it still stands:
/// finished, made on the same version (size, ETag, modification time), and against the
/// checksum expected now.
pub fn reusable(
    recorded: &BackupVerification,
    version: StoredVersion<'_>,
    expected_sha256: &str,
) -> Option<VerificationPhase> {
    let same_object = recorded.size_bytes == Some(version.size_bytes as i64)
        && recorded.e_tag.as_deref() == version.e_tag
        && recorded.last_modified.as_deref() == Some(version.last_modified);
    if !same_object {
        return None;
    }
    match recorded.phase {
        // What was read is known: it matches the checksum expected now or it does not.
        VerificationPhase::Verified | VerificationPhase::Mismatch => {
            let matches = recorded.sha256.as_deref() == Some(expected_sha256);
            Some(if matches { VerificationPhase::Verified } else { VerificationPhase::Mismatch })
        }
        VerificationPhase::Verifying | VerificationPhase::Missing => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version<'a>(size: u64, e_tag: &'a str, modified: &'a str) -> StoredVersion<'a> {
        StoredVersion { size_bytes: size, e_tag: Some(e_tag), last_modified: modified }
    }

    fn verified(sha: &str) -> BackupVerification {
        BackupVerification {
            phase: VerificationPhase::Verified,
            size_bytes: Some(10),
            sha256: Some(sha.into()),
            e_tag: Some("e1".into()),
            last_modified: Some("t1".into()),
            time: Some("t2".into()),
            ..Default::default()
        }
    }

    #[test]
    fn percent_is_bounded_and_absent_without_a_total() {
        let p = |bytes, total| progress(bytes, total, "now", "r").percent;
        assert_eq!(p(0, Some(200)), Some(0));
        assert_eq!(p(100, Some(200)), Some(50));
        assert_eq!(p(232, Some(200)), Some(100), "etcd's checksum trailer");
        assert_eq!(p(5, None), None);
        assert_eq!(p(5, Some(0)), None);
    }

    #[test]
    fn a_verification_stands_only_for_the_same_object_and_checksum() {
        let v = version(10, "e1", "t1");
        assert_eq!(reusable(&verified("abc"), v, "abc"), Some(VerificationPhase::Verified));
        assert_eq!(reusable(&verified("abc"), v, "def"), Some(VerificationPhase::Mismatch));
        for changed in [version(11, "e1", "t1"), version(10, "e2", "t1"), version(10, "e1", "t9")] {
            assert_eq!(reusable(&verified("abc"), changed, "abc"), None, "{changed:?}");
        }
        let running = BackupVerification { phase: VerificationPhase::Verifying, ..verified("abc") };
        assert_eq!(reusable(&running, v, "abc"), None);
        let corrupt = BackupVerification { phase: VerificationPhase::Mismatch, ..verified("zzz") };
        assert_eq!(reusable(&corrupt, v, "abc"), Some(VerificationPhase::Mismatch));
    }
}
