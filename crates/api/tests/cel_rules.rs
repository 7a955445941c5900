//! Admission rules of the CRDs, evaluated the way the API server does
//! (schema defaults applied, then every `x-kubernetes-validations` rule).

use etcd_operator_api::{EtcdBackup, EtcdBackupSchedule, EtcdCluster};
use kube::CustomResourceExt;
use serde_json::{Value, json};

fn schema<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap())
        .unwrap()
}

fn cluster(spec: Value) -> Value {
    json!({"apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
           "metadata": {"name": "demo", "namespace": "default"}, "spec": spec})
}

/// Messages of every failed rule (empty when the object is admitted).
fn errors<K: CustomResourceExt>(object: &Value, old: Option<&Value>) -> Vec<String> {
    match kube_cel::validate(&schema::<K>(), object, old) {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(|e| format!("{}: {}", e.field_path, e.message)).collect(),
    }
}

fn assert_refused(errs: &[String], needle: &str) {
    assert!(errs.iter().any(|e| e.contains(needle)), "expected an error containing {needle:?}, got {errs:?}");
}

#[test]
fn a_minimal_cluster_is_admitted() {
    assert_eq!(
        errors::<EtcdCluster>(&cluster(json!({"size": 3, "version": "3.5.17"})), None),
        Vec::<String>::new()
    );
}

#[test]
fn data_loss_versions_are_refused() {
    for v in ["3.5.0", "3.5.1", "3.5.2"] {
        let errs = errors::<EtcdCluster>(&cluster(json!({"size": 3, "version": v})), None);
        assert_refused(&errs, "can lose committed writes");
    }
}

#[test]
fn malformed_versions_are_refused() {
    for v in ["3.3.1", "latest", "v3.5.17", "3.5", "3.5.17-rc.1"] {
        let errs = errors::<EtcdCluster>(&cluster(json!({"size": 3, "version": v})), None);
        assert_refused(&errs, "spec.version must be 3.<minor>.<patch>");
    }
}

#[test]
fn storage_size_must_be_a_positive_quantity() {
    for size in ["lots", "0", "-1Gi"] {
        let spec = json!({"size": 1, "version": "3.5.17", "storage": {"size": size}});
        assert_refused(
            &errors::<EtcdCluster>(&cluster(spec), None),
            "spec.storage.size must be a positive quantity",
        );
    }
}

#[test]
fn storage_class_and_size_are_immutable() {
    let old = cluster(
        json!({"size": 3, "version": "3.5.17", "storage": {"size": "8Gi", "storageClassName": "fast"}}),
    );
    let new = cluster(
        json!({"size": 3, "version": "3.5.17", "storage": {"size": "8Gi", "storageClassName": "slow"}}),
    );
    assert_refused(&errors::<EtcdCluster>(&new, Some(&old)), "storageClassName is immutable");
    let new = cluster(
        json!({"size": 3, "version": "3.5.17", "storage": {"size": "16Gi", "storageClassName": "fast"}}),
    );
    assert_refused(&errors::<EtcdCluster>(&new, Some(&old)), "spec.storage.size is immutable");
    // The same quantity written differently is not a change.
    let new = cluster(
        json!({"size": 3, "version": "3.5.17", "storage": {"size": "8192Mi", "storageClassName": "fast"}}),
    );
    assert_eq!(errors::<EtcdCluster>(&new, Some(&old)), Vec::<String>::new());
}

#[test]
fn size_and_version_may_change() {
    let old = cluster(json!({"size": 3, "version": "3.5.16"}));
    let new = cluster(json!({"size": 5, "version": "3.5.17"}));
    assert_eq!(errors::<EtcdCluster>(&new, Some(&old)), Vec::<String>::new());
}

/// The messages of a version change from `from` to `to` on a running cluster.
fn version_change(from: &str, to: &str, spec: Value) -> Vec<String> {
    let with = |v: &str| {
        let mut spec = spec.clone();
        spec["version"] = json!(v);
        cluster(spec)
    };
    errors::<EtcdCluster>(&with(to), Some(&with(from)))
}

#[test]
fn a_version_moves_up_a_patch_or_one_minor_from_the_minimum_patch() {
    let plain = json!({"size": 3});
    for (from, to) in [("3.4.23", "3.4.30"), ("3.4.22", "3.5.7"), ("3.5.32", "3.6.0"), ("3.5.17", "3.5.17")] {
        assert_eq!(version_change(from, to, plain.clone()), Vec::<String>::new(), "{from} → {to}");
    }
    let cases = [
        (
            "3.5.17",
            "3.5.16",
            "spec.version: 3.5.17 → 3.5.16 is a downgrade, which is refused; allowed next: 3.5.17 or a later patch",
        ),
        ("3.5.17", "3.4.23", "3.5.17 → 3.4.23 is a downgrade"),
        (
            "3.4.23",
            "3.6.5",
            "spec.version: 3.4.23 → 3.6.5 skips a minor version; etcd upgrades one minor at a time: move to 3.5 first",
        ),
        (
            "3.4.21",
            "3.5.7",
            "spec.version: 3.4.21 → 3.5.7 needs 3.4.22 or later first; move to that patch, then to 3.5.7",
        ),
        ("3.5.17", "3.6.5", "3.5.17 → 3.6.5 needs 3.5.32 or later first"),
    ];
    for (from, to, needle) in cases {
        assert_refused(&version_change(from, to, plain.clone()), needle);
    }
    // A malformed version is named by the pattern rule alone.
    let errs = version_change("3.5.17", "latest", plain);
    assert!(errs.iter().all(|e| e.contains("must be 3.<minor>.<patch>")), "{errs:?}");
}

#[test]
fn three_four_to_three_five_is_refused_with_auth_on() {
    let auth = json!({"size": 3, "tls": {"operatorManaged": {}}, "auth": {"enabled": true}});
    assert_refused(
        &version_change("3.4.23", "3.5.7", auth.clone()),
        "not supported as a rolling upgrade with spec.auth.enabled",
    );
    assert_eq!(version_change("3.4.23", "3.4.30", auth), Vec::<String>::new());
}

#[test]
fn restore_source_is_set_only_at_creation() {
    let old = cluster(json!({"size": 3, "version": "3.5.17"}));
    let new = cluster(json!({"size": 3, "version": "3.5.17", "restore": {"backupName": "nightly"}}));
    assert_refused(&errors::<EtcdCluster>(&new, Some(&old)), "spec.restore is immutable");
    let both = cluster(json!({"size": 3, "version": "3.5.17", "restore": {}}));
    assert_refused(&errors::<EtcdCluster>(&both, None), "exactly one of backupName or location");
}

#[test]
fn raft_timeouts_must_be_consistent() {
    let spec = json!({"size": 3, "version": "3.5.17", "etcd": {"heartbeatIntervalMs": 100, "electionTimeoutMs": 300}});
    assert_refused(&errors::<EtcdCluster>(&cluster(spec), None), "at least 5 times");
    let spec = json!({"size": 3, "version": "3.5.17", "etcd": {"autoCompactionMode": "Revision", "autoCompactionRetention": "1h"}});
    assert_refused(&errors::<EtcdCluster>(&cluster(spec), None), "number of revisions");
}

#[test]
fn ephemeral_storage_keeps_retain_policy() {
    let spec = json!({"size": 1, "version": "3.5.17", "storage": {"type": "Ephemeral"}, "pvcRetentionPolicy": {"whenDeleted": "Delete"}});
    assert_refused(&errors::<EtcdCluster>(&cluster(spec), None), "only applies to Persistent storage");
}

#[test]
fn schema_bounds_are_declared() {
    let s = schema::<EtcdCluster>();
    let size = &s["properties"]["spec"]["properties"]["size"];
    assert_eq!(size["minimum"].as_f64(), Some(0.0));
    assert_eq!(size["maximum"].as_f64(), Some(9.0));
    assert!(s["properties"]["spec"]["required"].as_array().unwrap().contains(&json!("version")));
    let conditions = &s["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
}

#[test]
fn backup_needs_exactly_one_location_and_is_immutable() {
    let obj = |storage: Value| {
        json!({"apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackup",
        "metadata": {"name": "b"}, "spec": {"clusterName": "demo", "storage": storage}})
    };
    let both = obj(json!({"s3": {"bucket": "bkt", "credentialsSecret": "s"}, "volume": {"claimName": "c"}}));
    assert_refused(&errors::<EtcdBackup>(&both, None), "exactly one of s3 or volume");
    let ok = obj(json!({"volume": {"claimName": "c", "path": "x"}}));
    assert_eq!(errors::<EtcdBackup>(&ok, None), Vec::<String>::new());
    let changed = obj(json!({"volume": {"claimName": "c", "path": "y"}}));
    assert_refused(&errors::<EtcdBackup>(&changed, Some(&ok)), "spec is immutable");
    let escape = obj(json!({"volume": {"claimName": "c", "path": "../etc"}}));
    assert_refused(&errors::<EtcdBackup>(&escape, None), "must not contain '..'");
    for claim in ["..", "../other", "a/b", "Backups", "-x", "x-"] {
        let bad = obj(json!({"volume": {"claimName": claim}}));
        assert_refused(&errors::<EtcdBackup>(&bad, None), "volume.claimName must be a DNS-1123 subdomain");
    }
    assert_eq!(
        errors::<EtcdBackup>(&obj(json!({"volume": {"claimName": "etcd.backups-1"}})), None),
        Vec::<String>::new()
    );
}

#[test]
fn schedule_needs_a_cron_expression() {
    let obj = |schedule: &str, max_age: &str| {
        json!({"apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackupSchedule",
        "metadata": {"name": "s"}, "spec": {"clusterName": "demo", "schedule": schedule,
        "storage": {"volume": {"claimName": "c"}}, "retention": {"maxCount": 3, "maxAge": max_age}}})
    };
    assert_eq!(errors::<EtcdBackupSchedule>(&obj("0 */6 * * *", "168h"), None), Vec::<String>::new());
    assert_refused(&errors::<EtcdBackupSchedule>(&obj("@every 5m", "168h"), None), "5-field cron");
    assert_refused(
        &errors::<EtcdBackupSchedule>(&obj("0 * * * *", "a week"), None),
        "maxAge must be a duration",
    );
}

#[test]
fn the_quorum_loss_grace_period_is_checked_at_admission_with_the_services_grammar() {
    let with = |grace: &str| {
        cluster(json!({"size": 3, "version": "3.5.17",
                       "recovery": {"restoreOnQuorumLoss": true, "quorumLossGracePeriod": grace}}))
    };
    for ok in ["10s", "1m30s", "10m", "1h"] {
        assert_eq!(errors::<EtcdCluster>(&with(ok), None), Vec::<String>::new(), "{ok}");
        assert!(etcd_operator_common::duration::parse_duration(ok).is_ok(), "{ok}");
    }
    assert_refused(&errors::<EtcdCluster>(&with("1s"), None), "must be at least 10s");
    assert_refused(&errors::<EtcdCluster>(&with("9999ms"), None), "must be at least 10s");
    // CEL's duration() would take these; the service would not, so neither does admission.
    for bad in ["1.5h", "1h30", "ten", "-10m"] {
        assert_refused(&errors::<EtcdCluster>(&with(bad), None), "must be a duration such as");
        assert!(etcd_operator_common::duration::parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_quota_larger_than_the_volume_and_an_image_with_spaces_are_refused() {
    let spec = json!({"size": 3, "version": "3.5.17", "storage": {"size": "1Gi"},
                      "etcd": {"quotaBackendBytes": 8589934592_i64}});
    assert_refused(
        &errors::<EtcdCluster>(&cluster(spec), None),
        "quotaBackendBytes must be smaller than spec.storage.size",
    );
    let fits = json!({"size": 3, "version": "3.5.17", "storage": {"size": "8Gi"},
                      "etcd": {"quotaBackendBytes": 2147483648_i64}});
    assert_eq!(errors::<EtcdCluster>(&cluster(fits), None), Vec::<String>::new());
    let spaced = json!({"size": 3, "version": "3.5.17", "image": "etcd :v3.5.17"});
    assert_refused(
        &errors::<EtcdCluster>(&cluster(spaced), None),
        "spec.image must be an image reference without whitespace",
    );
}

#[test]
fn tls_sets_exactly_one_mode_with_sound_durations_and_secret_names() {
    let with = |tls: Value| cluster(json!({"size": 3, "version": "3.5.17", "tls": tls}));
    assert_eq!(errors::<EtcdCluster>(&with(json!({"operatorManaged": {}})), None), Vec::<String>::new());
    let provided =
        json!({"provided": {"clientSecretName": "c", "peerSecretName": "p", "operatorSecretName": "o"}});
    assert_eq!(errors::<EtcdCluster>(&with(provided.clone()), None), Vec::<String>::new());
    assert_refused(&errors::<EtcdCluster>(&with(json!({})), None), "exactly one of operatorManaged");
    let both = json!({"operatorManaged": {}, "provided": provided["provided"]});
    assert_refused(&errors::<EtcdCluster>(&with(both), None), "exactly one of operatorManaged");
    let short = json!({"operatorManaged": {"validity": "5m", "renewBefore": "1m"}});
    assert_refused(&errors::<EtcdCluster>(&with(short), None), "validity must be at least 10m");
    let late = json!({"operatorManaged": {"validity": "1h", "renewBefore": "2h"}});
    assert_refused(&errors::<EtcdCluster>(&with(late), None), "renewBefore must be shorter than");
    let bad =
        json!({"provided": {"clientSecretName": "C_1", "peerSecretName": "p", "operatorSecretName": "o"}});
    assert_refused(
        &errors::<EtcdCluster>(&with(bad), None),
        "spec.tls.provided.clientSecretName must be a Secret name",
    );
}

#[test]
fn tls_is_switched_on_or_off_on_an_existing_cluster_but_not_to_another_mode() {
    let plain = cluster(json!({"size": 3, "version": "3.5.17"}));
    let managed = cluster(json!({"size": 3, "version": "3.5.17", "tls": {"operatorManaged": {}}}));
    let provided = cluster(json!({"size": 3, "version": "3.5.17", "tls": {"provided": {
        "clientSecretName": "c", "peerSecretName": "p", "operatorSecretName": "o"}}}));
    // The members move one at a time; see status.transport.
    assert_eq!(errors::<EtcdCluster>(&managed, Some(&plain)), Vec::<String>::new());
    assert_eq!(errors::<EtcdCluster>(&plain, Some(&managed)), Vec::<String>::new());
    assert_refused(
        &errors::<EtcdCluster>(&provided, Some(&managed)),
        "the mode and the provided Secret names",
    );
    let mut renamed = provided.clone();
    renamed["spec"]["tls"]["provided"]["peerSecretName"] = json!("p2");
    assert_refused(
        &errors::<EtcdCluster>(&renamed, Some(&provided)),
        "the mode and the provided Secret names",
    );
    let mut longer = managed.clone();
    longer["spec"]["tls"]["operatorManaged"]["validity"] = json!("4320h");
    assert_eq!(errors::<EtcdCluster>(&longer, Some(&managed)), Vec::<String>::new());
}

#[test]
fn auth_needs_tls_with_client_certificates() {
    let refused = |spec: Value| errors::<EtcdCluster>(&cluster(spec), None);
    let needle = "spec.auth.enabled needs spec.tls with clientCertAuth";
    assert_refused(&refused(json!({"size": 3, "version": "3.5.17", "auth": {"enabled": true}})), needle);
    let no_mtls = json!({"operatorManaged": {}, "clientCertAuth": false});
    assert_refused(
        &refused(json!({"size": 3, "version": "3.5.17", "tls": no_mtls, "auth": {"enabled": true}})),
        needle,
    );
    let fine =
        json!({"size": 3, "version": "3.5.17", "tls": {"operatorManaged": {}}, "auth": {"enabled": true}});
    assert_eq!(refused(fine), Vec::<String>::new());
}

#[test]
fn every_example_cluster_is_admitted() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let object: Value = serde::Deserialize::deserialize(doc).unwrap();
            if object["kind"] == "EtcdCluster" {
                assert_eq!(errors::<EtcdCluster>(&object, None), Vec::<String>::new(), "{:?}", entry.path());
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "{checked} example clusters");
}
