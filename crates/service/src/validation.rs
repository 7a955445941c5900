//! Validation of cluster specs: the same rules as the CRD's schema and CEL
//! rules, enforced again here because a spec may come over gRPC or from a
//! CRD installed without them. Every violation names its field and rule.

use etcd_operator_api::cluster::MAX_SIZE;
use etcd_operator_api::{
    EtcdClusterSpec,
    cluster::{AutoCompactionMode, PvcRetention, RecoveryPolicy, StorageType},
    version::EtcdVersion,
};
use etcd_operator_common::Violations;
use k8s_openapi::api::apps::v1::StatefulSet;

/// Checks a spec; all violations are reported at once.
pub fn validate_spec(spec: &EtcdClusterSpec) -> Result<(), Violations> {
    let mut v = Violations::default();
    v.check((0..=MAX_SIZE).contains(&spec.size), "spec.size", format!("must be between 0 and {MAX_SIZE}"));
    if let Err(e) = EtcdVersion::parse_runnable(&spec.version) {
        v.push("spec.version", e.to_string());
    }
    if let Some(image) = &spec.image {
        v.check(
            !image.is_empty() && !image.contains(char::is_whitespace),
            "spec.image",
            "must be an image reference without whitespace, such as registry.example.com/etcd:v3.5.17",
        );
    }
    if let (Some(quota), Some(volume)) = (spec.etcd.quota_backend_bytes, parse_quantity(&spec.storage.size)) {
        v.check(
            volume > quota as f64,
            "spec.etcd.quotaBackendBytes",
            "must be smaller than spec.storage.size: etcd would fill the volume before reaching its quota",
        );
    }
    v.check(
        parse_quantity(&spec.storage.size).is_some_and(|q| q > 0.0),
        "spec.storage.size",
        "must be a positive Kubernetes quantity such as 8Gi",
    );
    if let Some(class) = &spec.storage.storage_class_name {
        v.check(
            !class.is_empty() && class.len() <= 253,
            "spec.storage.storageClassName",
            "must be 1-253 characters",
        );
    }
    let retention = &spec.pvc_retention_policy;
    v.check(
        spec.storage.type_ == StorageType::Persistent
            || (retention.when_deleted == PvcRetention::Retain
                && retention.when_scaled == PvcRetention::Retain),
        "spec.pvcRetentionPolicy",
        "only applies to Persistent storage; leave it at Retain for Ephemeral storage",
    );
    validate_tuning(spec, &mut v);
    if let Some(tls) = &spec.tls {
        crate::security::decide::validate(tls, &mut v);
    }
    v.check(
        !spec.auth.as_ref().is_some_and(|a| a.enabled) || spec.tls.as_ref().is_some_and(|t| t.client_cert_auth),
        "spec.auth.enabled",
        "needs spec.tls with clientCertAuth: the operator authenticates by its client certificate, and passwords \
         must not cross the network in clear text",
    );
    if let Some(restore) = &spec.restore {
        v.check(
            restore.backup_name.is_some() != restore.location.is_some(),
            "spec.restore",
            "exactly one of backupName or location must be set",
        );
    }
    if let Some(recovery) = &spec.recovery {
        match quorum_loss_grace(recovery) {
            Ok(grace) => v.check(
                grace >= MIN_QUORUM_LOSS_GRACE,
                "spec.recovery.quorumLossGracePeriod",
                "must be at least 10s (shorter would restore over members that are only restarting)",
            ),
            Err(e) => v.push("spec.recovery.quorumLossGracePeriod", e),
        }
    }
    v.into_result()
}

/// Shortest grace period before a lost quorum is restored from a backup.
pub const MIN_QUORUM_LOSS_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The grace period of `spec.recovery`, parsed.
pub fn quorum_loss_grace(policy: &RecoveryPolicy) -> Result<std::time::Duration, String> {
    etcd_operator_common::duration::parse_duration(&policy.quorum_loss_grace_period)
}

fn validate_tuning(spec: &EtcdClusterSpec, v: &mut Violations) {
    let t = &spec.etcd;
    let within = |value: Option<i64>, min: i64, max: i64| value.is_none_or(|x| (min..=max).contains(&x));
    v.check(
        within(t.quota_backend_bytes, 100 << 20, 8 << 30),
        "spec.etcd.quotaBackendBytes",
        "must be between 104857600 (100 MiB) and 8589934592 (8 GiB)",
    );
    v.check(
        within(t.snapshot_count, 1000, 1_000_000),
        "spec.etcd.snapshotCount",
        "must be between 1000 and 1000000",
    );
    v.check(
        within(t.heartbeat_interval_ms.map(i64::from), 10, 5000),
        "spec.etcd.heartbeatIntervalMs",
        "must be between 10 and 5000",
    );
    v.check(
        within(t.election_timeout_ms.map(i64::from), 50, 50000),
        "spec.etcd.electionTimeoutMs",
        "must be between 50 and 50000",
    );
    if let (Some(hb), Some(et)) = (t.heartbeat_interval_ms, t.election_timeout_ms) {
        v.check(
            et >= 5 * hb,
            "spec.etcd.electionTimeoutMs",
            "must be at least 5 times spec.etcd.heartbeatIntervalMs",
        );
    }
    if let Some(retention) = &t.auto_compaction_retention {
        let numeric = !retention.is_empty() && retention.bytes().all(|b| b.is_ascii_digit());
        match t.auto_compaction_mode {
            AutoCompactionMode::Revision => v.check(
                numeric,
                "spec.etcd.autoCompactionRetention",
                "must be a number of revisions when autoCompactionMode is Revision",
            ),
            AutoCompactionMode::Periodic => v.check(
                numeric || is_duration(retention),
                "spec.etcd.autoCompactionRetention",
                "must be a duration such as 1h or 30m, or a whole number",
            ),
        }
    }
}

/// Go-style duration: one or more `<number><unit>` with units ns, us, ms, s, m, h.
fn is_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "ms", "s", "m", "h"].into_iter().find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// Parses a Kubernetes quantity into its numeric value (bytes for storage).
pub fn parse_quantity(s: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    let (number, factor) =
        SUFFIXES.iter().find_map(|(suffix, f)| s.strip_suffix(suffix).map(|n| (n, *f))).unwrap_or((s, 1.0));
    let valid = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    valid.then(|| number.parse::<f64>().ok()).flatten().map(|n| n * factor)
}

/// Fields of a running StatefulSet that cannot change (volumeClaimTemplates are immutable).
pub fn immutable_violations(existing: &StatefulSet, desired: &StatefulSet) -> Result<(), Violations> {
    let claim = |sts: &StatefulSet| {
        sts.spec.as_ref().and_then(|s| s.volume_claim_templates.as_ref()).and_then(|c| c.first()).cloned()
    };
    let mut v = Violations::default();
    match (claim(existing), claim(desired)) {
        (Some(old), Some(new)) => {
            let (old, new) = (old.spec.unwrap_or_default(), new.spec.unwrap_or_default());
            v.check(
                old.storage_class_name == new.storage_class_name,
                "spec.storage.storageClassName",
                format!(
                    "is immutable (the cluster uses {:?})",
                    old.storage_class_name.clone().unwrap_or_default()
                ),
            );
            let size = |s: &k8s_openapi::api::core::v1::PersistentVolumeClaimSpec| {
                s.resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"))
                    .map(|q| q.0.clone())
            };
            v.check(
                size(&old).as_deref().and_then(parse_quantity)
                    == size(&new).as_deref().and_then(parse_quantity),
                "spec.storage.size",
                format!(
                    "is immutable for Persistent storage (the cluster uses {})",
                    size(&old).unwrap_or_default()
                ),
            );
        }
        (None, None) => {}
        _ => v.push("spec.storage.type", "is immutable"),
    }
    tls_violations(existing, desired, &mut v);
    v.into_result()
}

/// The certificate Secrets cannot be swapped for others under running members that mount them:
/// every member would trust another CA at once, and they would no longer reach each other. (TLS
/// on or off changes the template only through the security service's move, one phase at a time.)
fn tls_violations(existing: &StatefulSet, desired: &StatefulSet, v: &mut Violations) {
    let secrets = |sts: &StatefulSet| {
        sts.spec
            .as_ref()
            .and_then(|s| s.template.spec.clone())
            .unwrap_or_default()
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|vol| vol.name.starts_with("tls-"))
            .filter_map(|vol| vol.secret.and_then(|s| s.secret_name))
            .collect::<Vec<_>>()
    };
    let (was, is) = (secrets(existing), secrets(desired));
    v.check(
        was.is_empty() || is.is_empty() || was == is,
        "spec.tls",
        format!(
            "the running members use the certificate Secrets {was:?}; they cannot be swapped for others while TLS \
             is on: remove spec.tls, wait until status.transport shows plaintext, then add the new spec.tls"
        ),
    );
}

#[cfg(test)]
#[path = "validation_tls_tests.rs"]
mod tls_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> EtcdClusterSpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn fields(r: Result<(), Violations>) -> Vec<String> {
        r.err().map(|v| v.0.into_iter().map(|f| f.field).collect()).unwrap_or_default()
    }

    #[test]
    fn a_sound_spec_passes() {
        assert_eq!(fields(validate_spec(&spec("size: 3\nversion: 3.5.17"))), Vec::<String>::new());
    }

    #[test]
    fn every_violation_is_reported_with_its_field() {
        let s = spec(
            "size: 12\nversion: 3.5.1\nimage: ' '\nstorage:\n  size: lots\netcd:\n  heartbeatIntervalMs: 100\n  electionTimeoutMs: 200\n  snapshotCount: 5\n  autoCompactionMode: Revision\n  autoCompactionRetention: 1h",
        );
        let err = validate_spec(&s).unwrap_err();
        let listed: Vec<_> = err.0.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            listed,
            [
                "spec.size",
                "spec.version",
                "spec.image",
                "spec.storage.size",
                "spec.etcd.snapshotCount",
                "spec.etcd.electionTimeoutMs",
                "spec.etcd.autoCompactionRetention"
            ]
        );
        assert!(err.to_string().contains("can lose committed writes"));
    }

    #[test]
    fn a_quota_the_volume_cannot_hold_and_an_image_with_spaces_are_refused() {
        let s = spec(
            "size: 3\nversion: 3.5.17\nimage: 'etcd :v3'\nstorage:\n  size: 1Gi\netcd:\n  quotaBackendBytes: 8589934592",
        );
        let err = validate_spec(&s).unwrap_err();
        assert_eq!(
            err.0.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
            ["spec.image", "spec.etcd.quotaBackendBytes"]
        );
        assert!(err.to_string().contains("smaller than spec.storage.size"), "{err}");
        let fits =
            spec("size: 3\nversion: 3.5.17\nstorage:\n  size: 8Gi\netcd:\n  quotaBackendBytes: 2147483648");
        assert_eq!(fields(validate_spec(&fits)), Vec::<String>::new());
    }

    #[test]
    fn ephemeral_storage_cannot_delete_claims() {
        let s = spec(
            "size: 1\nversion: 3.4.23\nstorage:\n  type: Ephemeral\npvcRetentionPolicy:\n  whenScaled: Delete",
        );
        assert_eq!(fields(validate_spec(&s)), ["spec.pvcRetentionPolicy"]);
    }

    #[test]
    fn the_quorum_loss_grace_period_is_a_duration_of_at_least_ten_seconds() {
        let with = |grace: &str| {
            spec(&format!(
                "size: 3\nversion: 3.5.17\nrecovery:\n  restoreOnQuorumLoss: true\n  quorumLossGracePeriod: {grace}"
            ))
        };
        assert_eq!(fields(validate_spec(&with("90s"))), Vec::<String>::new());
        let short = validate_spec(&with("5s")).unwrap_err().to_string();
        assert!(
            short.contains("spec.recovery.quorumLossGracePeriod") && short.contains("at least 10s"),
            "{short}"
        );
        assert_eq!(fields(validate_spec(&with("1m30s"))), Vec::<String>::new());
        for bad in ["ten", "1.5h", "99999999999999999999h"] {
            assert_eq!(fields(validate_spec(&with(bad))), ["spec.recovery.quorumLossGracePeriod"], "{bad}");
        }
        let defaulted = spec("size: 3\nversion: 3.5.17\nrecovery:\n  restoreOnQuorumLoss: true");
        assert_eq!(
            quorum_loss_grace(defaulted.recovery.as_ref().unwrap()),
            Ok(std::time::Duration::from_secs(600))
        );
    }

    #[test]
    fn quantities_and_durations() {
        assert_eq!(parse_quantity("8Gi"), Some(8.0 * 1073741824.0));
        assert_eq!(parse_quantity("1500M"), Some(1.5e9));
        assert_eq!(parse_quantity("0.5Gi"), Some(536870912.0));
        assert_eq!(parse_quantity("Gi"), None);
        assert_eq!(parse_quantity("-1"), None);
        assert!(is_duration("1h30m") && is_duration("0.5s") && !is_duration("1d") && !is_duration("h"));
    }
}
