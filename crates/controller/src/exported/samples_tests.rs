//! The samples of a cluster and of a schedule, from fixtures.

use super::*;

fn cluster() -> EtcdCluster {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
        "metadata": {"name": "demo", "namespace": "team-a"},
        "spec": {"size": 3, "version": "3.5.1", "storage": {"size": "1Gi"}, "etcd": {"quotaBackendBytes": 1_073_741_824_i64}},
        "status": {
            "phase": "Updating", "readyMembers": 2, "quorumMargin": 0, "currentSize": 3,
            "members": [
                {"name": "demo-0", "healthy": true, "isLeader": true, "dbSizeBytes": 4096, "dbSizeInUseBytes": 2048,
                 "raftTerm": 3, "raftIndex": 120, "raftAppliedIndex": 120},
                {"name": "demo-1", "healthy": true, "raftIndex": 118},
                {"name": "demo-2", "healthy": false}
            ],
            "operation": {"type": "ReplaceMember", "step": "AddingLearner", "member": "demo-2",
                          "startedAt": "2026-12-01T10:00:00Z"},
            "certificates": [{"purpose": "client", "secretName": "demo-client-tls", "notAfter": "2027-03-01T00:00:00Z"}]
        }
    }))
    .unwrap()
}

fn value(samples: &[Sample], metric: Metric, extra: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.metric == metric && extra.iter().all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|s| s.value)
}

#[test]
fn a_cluster_exports_its_members_quorum_operation_and_certificates() {
    let s = super::cluster(&cluster(), 4);
    assert!(
        s.iter()
            .all(|x| x.labels[..2]
                == [("namespace".into(), "team-a".into()), ("cluster".into(), "demo".into())])
    );
    assert_eq!(value(&s, PHASE, &[("phase", "Updating")]), Some(1.0));
    assert_eq!(
        (value(&s, MEMBERS, &[]), value(&s, READY, &[]), value(&s, DESIRED, &[])),
        (Some(3.0), Some(2.0), Some(3.0))
    );
    assert_eq!((value(&s, QUORUM_MARGIN, &[]), value(&s, HAS_LEADER, &[])), (Some(0.0), Some(1.0)));
    assert_eq!((value(&s, LEADER_CHANGES, &[]), value(&s, QUOTA, &[])), (Some(4.0), Some(1_073_741_824.0)));
    assert_eq!(value(&s, OPERATION, &[("type", "ReplaceMember"), ("step", "AddingLearner")]), Some(1.0));
    assert_eq!(value(&s, OPERATION_STARTED, &[("type", "ReplaceMember")]), Some(1_796_119_200.0));
    assert_eq!(value(&s, MEMBER_HEALTHY, &[("member", "demo-2")]), Some(0.0));
    assert_eq!(value(&s, DB_IN_USE, &[("member", "demo-0")]), Some(2048.0));
    assert_eq!(value(&s, RAFT_INDEX, &[("member", "demo-1")]), Some(118.0));
    // What a member did not report is no series at all, not a zero.
    assert_eq!(value(&s, DB_SIZE, &[("member", "demo-2")]), None);
    assert_eq!(value(&s, CERT_NOT_AFTER, &[("purpose", "client")]), Some(1_803_859_200.0));
    // Only metrics the list declares, and every label set differs within a metric.
    let mut keys: Vec<_> = s.iter().map(|x| (x.metric.name, x.labels.clone())).collect();
    assert!(s.iter().all(|x| ALL.contains(&x.metric)));
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), s.len());
}

#[test]
fn a_cluster_without_status_exports_its_spec_and_etcds_default_quota() {
    let mut c = cluster();
    c.status = None;
    c.spec.etcd.quota_backend_bytes = None;
    let s = super::cluster(&c, 0);
    assert_eq!(s.len(), 3);
    assert_eq!(value(&s, QUOTA, &[]), Some(2_147_483_648.0));
}

#[test]
fn a_schedule_exports_its_last_success_next_run_and_period() {
    let s: EtcdBackupSchedule = serde_json::from_value(serde_json::json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackupSchedule",
        "metadata": {"name": "hourly", "namespace": "team-a"},
        "spec": {"clusterName": "demo", "schedule": "0 * * * *", "storage": {"volume": {"claimName": "b"}}},
        "status": {"lastScheduleTime": "2026-12-01T10:00:00Z", "lastSuccessfulTime": "2026-12-01T10:00:09Z",
                   "nextScheduleTime": "2026-12-01T11:00:00Z"}
    }))
    .unwrap();
    let out = schedule(&s);
    assert_eq!(value(&out, SCHEDULE_PERIOD, &[("schedule", "hourly"), ("cluster", "demo")]), Some(3600.0));
    assert_eq!(value(&out, SCHEDULE_LAST_SUCCESS, &[]), Some(1_796_119_209.0));
    assert_eq!(value(&out, SCHEDULE_SUSPENDED, &[]), Some(0.0));
}

#[test]
fn each_cluster_exports_its_newest_successful_backup() {
    let backup = |name: &str, cluster: &str, phase: &str, done: &str, size: i64| -> EtcdBackup {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackup",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"clusterName": cluster, "storage": {"volume": {"claimName": "b"}}},
            "status": {"phase": phase, "completionTime": done, "sizeBytes": size}
        }))
        .unwrap()
    };
    let all = [
        backup("old", "demo", "Succeeded", "2026-12-01T10:00:00Z", 100),
        backup("new", "demo", "Succeeded", "2026-12-01T10:00:09Z", 200),
        backup("failed", "demo", "Failed", "2026-12-01T11:00:00Z", 0),
        backup("other", "orders", "Succeeded", "2026-12-01T10:00:00Z", 50),
    ];
    let s = last_backups(&all);
    assert_eq!(s.len(), 4);
    assert_eq!(value(&s, BACKUP_LAST_SUCCESS, &[("cluster", "demo")]), Some(1_796_119_209.0));
    assert_eq!(value(&s, BACKUP_LAST_SIZE, &[("cluster", "demo")]), Some(200.0));
    assert_eq!(value(&s, BACKUP_LAST_SIZE, &[("cluster", "orders")]), Some(50.0));
}
