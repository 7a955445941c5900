//! BackupService against real etcd members (pods on kube-sim's node) and
//! real storage: a directory standing in for a mounted claim, and an
//! S3-compatible server (moto). Needs root for the node.

use std::time::{Duration, Instant};

use etcd_operator_api::{
    EtcdBackup, EtcdBackupSchedule, EtcdBackupStatus, backup::BackupPhase, condition::find,
};
use etcd_operator_client::storage::{ObjectStorage, S3Settings};
use etcd_operator_service::{BackupService, backup::BackupRecord};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use s3_fixture::S3Server;
use system_tests::real::RealCluster;

async fn create_backup(rc: &RealCluster, name: &str, storage: serde_json::Value) {
    let api: Api<EtcdBackup> = Api::namespaced(rc.client.clone(), "default");
    let backup: EtcdBackup = serde_json::from_value(serde_json::json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackup",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterName": "demo", "storage": storage}
    }))
    .unwrap();
    api.create(&PostParams::default(), &backup).await.expect("EtcdBackup created");
}

/// Calls RunBackup (as the controller does) until the backup is Succeeded or Failed.
async fn run_to_end(service: &BackupService, name: &str) -> EtcdBackupStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Box::pin(service.run_backup("default", name)).await {
            Ok(out) if out.requeue_after.is_none() => return out.status,
            Ok(out) => assert!(out.requeue_after.unwrap() <= Duration::from_secs(20), "{out:?}"),
            Err(e) if e.is_retryable() => {}
            Err(e) => panic!("RunBackup {name}: {e}"),
        }
        assert!(Instant::now() < deadline, "backup {name} did not finish");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn credentials(rc: &RealCluster) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some("s3-creds".into()), ..Default::default() },
        data: Some(
            [
                ("AWS_ACCESS_KEY_ID".to_owned(), ByteString(s3_fixture::ACCESS_KEY_ID.into())),
                ("AWS_SECRET_ACCESS_KEY".to_owned(), ByteString(s3_fixture::SECRET_ACCESS_KEY.into())),
            ]
            .into(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(rc.client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// Checks what was stored against the status: the sidecar files, and etcdctl's own reading of the snapshot.
async fn check_stored(storage: &ObjectStorage, status: &EtcdBackupStatus, min_revision: i64) -> BackupRecord {
    let key = status.key.clone().expect("key");
    let dir = key.strip_suffix("/snapshot.db").expect("key layout");
    let (size, sha256) = storage.digest(&key).await.unwrap();
    assert_eq!(Some(size as i64), status.size_bytes);
    assert_eq!(Some(&sha256), status.sha256.as_ref());
    let line = storage.get(&BackupRecord::checksum_key(dir)).await.unwrap().expect("checksum file");
    assert_eq!(String::from_utf8(line).unwrap(), format!("{sha256}  snapshot.db\n"));
    let meta = storage.get(&BackupRecord::metadata_key(dir)).await.unwrap().expect("metadata");
    let record: BackupRecord = serde_json::from_slice(&meta).unwrap();
    assert_eq!((record.sha256.as_str(), record.size_bytes), (sha256.as_str(), size));
    assert_eq!(Some(record.revision), status.revision);
    assert!(record.revision >= min_revision, "{record:?}");
    assert_eq!((record.cluster.as_str(), record.etcd_version.as_str()), ("demo", "3.4.23"));

    // etcd's own tool reads the stored file: its integrity hash and revision.
    let mut bytes = Vec::new();
    let mut stream = storage.read(&key).await.unwrap();
    while let Some(chunk) = futures_next(&mut stream).await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes).unwrap();
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(file.path())
        .output()
        .expect("etcdctl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["revision"].as_i64(), Some(record.revision), "{report}");
    record
}

async fn futures_next<S: futures::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    use futures::StreamExt;
    s.next().await
}

#[tokio::test]
async fn backups_stream_to_a_volume_and_to_s3_verified_with_checksum_and_metadata() {
    let rc = RealCluster::start(3, Duration::from_secs(10)).await;
    rc.write("data", 300).await;
    let s3 = S3Server::start().await;
    s3.create_bucket("etcd-backups").await;
    credentials(&rc).await;
    std::fs::create_dir_all(rc.backup_volume_root().join("backups")).unwrap();
    let service = rc.services.backup.clone();

    create_backup(&rc, "to-volume", serde_json::json!({"volume": {"claimName": "backups", "path": "etcd"}}))
        .await;
    create_backup(
        &rc,
        "to-s3",
        serde_json::json!({"s3": {"bucket": "etcd-backups", "prefix": "team-a", "endpoint": s3.endpoint,
            "credentialsSecret": "s3-creds", "forcePathStyle": true}}),
    )
    .await;

    let volume = run_to_end(&service, "to-volume").await;
    assert_eq!(volume.phase, BackupPhase::Succeeded, "{volume:?}");
    assert_eq!(volume.attempts, 1);
    assert!(volume.location.as_deref().unwrap().starts_with("file://"), "{volume:?}");
    assert!(volume.duration_seconds.is_some() && volume.completion_time.is_some());
    assert_eq!(find(&volume.conditions, "Succeeded").unwrap().reason, "Completed");
    let local = ObjectStorage::local(&rc.backup_volume_root().join("backups/etcd")).unwrap();
    let record = check_stored(&local, &volume, 300).await;
    // A follower serves the snapshot, so the leader is not loaded by it.
    let leader = rc.services.lifecycle.get_cluster_status(&rc.r).await.unwrap().status.members;
    let leader = leader.iter().find(|m| m.is_leader).map(|m| m.name.clone());
    assert_ne!(Some(record.member), leader);

    let remote = run_to_end(&service, "to-s3").await;
    assert_eq!(remote.phase, BackupPhase::Succeeded, "{remote:?}");
    assert!(
        remote.location.as_deref().unwrap().starts_with("s3://etcd-backups/team-a/default/demo/"),
        "{remote:?}"
    );
    let settings = S3Settings {
        bucket: "etcd-backups".into(),
        prefix: "team-a".into(),
        endpoint: Some(s3.endpoint.clone()),
        access_key_id: s3_fixture::ACCESS_KEY_ID.into(),
        secret_access_key: s3_fixture::SECRET_ACCESS_KEY.into(),
        path_style: true,
        ..S3Settings::default()
    };
    check_stored(&ObjectStorage::s3(&settings).unwrap(), &remote, 300).await;

    // A finished backup is never taken again.
    let again = service.run_backup("default", "to-s3").await.unwrap();
    assert_eq!((again.status.attempts, again.requeue_after), (1, None));
}

#[tokio::test]
async fn failures_are_reported_retried_with_backoff_and_finally_failed() {
    let rc = RealCluster::start(1, Duration::from_secs(10)).await;
    let service = rc.services.backup.clone();
    create_backup(
        &rc,
        "no-creds",
        serde_json::json!({"s3": {"bucket": "etcd-backups", "endpoint": "http://127.0.0.1:1", "credentialsSecret": "missing"}}),
    )
    .await;
    let first = service.run_backup("default", "no-creds").await.unwrap();
    assert_eq!((first.status.phase, first.status.attempts), (BackupPhase::Pending, 1));
    assert_eq!(first.requeue_after, Some(Duration::from_secs(10)));
    let c = find(&first.status.conditions, "Succeeded").unwrap();
    assert_eq!(c.reason, "StorageUnusable");
    assert!(c.message.contains("spec.storage.s3.credentialsSecret"), "{}", c.message);
    // Called again at once: backing off, no new attempt.
    let second = service.run_backup("default", "no-creds").await.unwrap();
    assert_eq!(second.status.attempts, 1);
    assert!(second.requeue_after.unwrap() <= Duration::from_secs(10));

    // The last allowed attempt fails too; then the backup is Failed, for good.
    let api: Api<EtcdBackup> = Api::namespaced(rc.client.clone(), "default");
    let status = serde_json::json!({"status": {"attempts": 4, "lastAttemptTime": "2020-01-01T00:00:00Z"}});
    api.patch_status("no-creds", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    let fifth = service.run_backup("default", "no-creds").await.unwrap();
    assert_eq!(fifth.status.attempts, 5);
    api.patch_status("no-creds", &PatchParams::default(), &Patch::Merge(&status_at(5))).await.unwrap();
    let last = service.run_backup("default", "no-creds").await.unwrap();
    assert_eq!((last.status.phase, last.requeue_after), (BackupPhase::Failed, None));
    let c = find(&last.status.conditions, "Succeeded").unwrap();
    assert_eq!(c.reason, "AttemptsExhausted");
    assert!(c.message.contains("credentialsSecret"), "the last cause is kept: {}", c.message);

    // An endpoint the operator admin did not allow is never called, whatever the credentials.
    create_backup(
        &rc,
        "metadata-service",
        serde_json::json!({"s3": {"bucket": "etcd-backups", "endpoint": "http://169.254.169.254", "credentialsSecret": "missing"}}),
    )
    .await;
    let out = service.run_backup("default", "metadata-service").await.unwrap();
    let c = find(&out.status.conditions, "Succeeded").unwrap();
    assert_eq!(c.reason, "StorageUnusable");
    assert!(
        c.message.contains(
            "spec.storage.s3.endpoint: http://169.254.169.254 is not an S3 endpoint this operator may call"
        ),
        "{}",
        c.message
    );

    // A backup of a cluster that does not exist says so.
    let other: EtcdBackup = serde_json::from_value(serde_json::json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackup",
        "metadata": {"name": "orphan", "namespace": "default"},
        "spec": {"clusterName": "nope", "storage": {"volume": {"claimName": "x"}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &other).await.unwrap();
    let out = service.run_backup("default", "orphan").await.unwrap();
    assert_eq!(find(&out.status.conditions, "Succeeded").unwrap().reason, "ClusterNotFound");
}

fn status_at(attempts: i32) -> serde_json::Value {
    serde_json::json!({"status": {"attempts": attempts, "lastAttemptTime": "2020-01-01T00:00:00Z"}})
}

#[tokio::test]
async fn a_crash_after_recording_intent_is_retried_as_a_new_attempt() {
    let rc = RealCluster::start(1, Duration::from_secs(3)).await;
    rc.write("data", 20).await;
    std::fs::create_dir_all(rc.backup_volume_root().join("backups")).unwrap();
    let service = rc.services.backup.clone();
    create_backup(&rc, "crashy", serde_json::json!({"volume": {"claimName": "backups"}})).await;
    fail::cfg("backup::after::RecordIntent", "1*panic(crash)").unwrap();
    let out = service.run_backup("default", "crashy").await.unwrap();
    fail::remove("backup::after::RecordIntent");
    // The answer is the status as recorded (the intent), and asks to be called again.
    assert_eq!((out.status.phase, out.requeue_after.is_some()), (BackupPhase::Running, true));
    let api: Api<EtcdBackup> = Api::namespaced(rc.client.clone(), "default");
    let recorded = api.get("crashy").await.unwrap().status.unwrap();
    assert_eq!(
        (recorded.phase, recorded.attempts),
        (BackupPhase::Running, 1),
        "intent recorded before the crash"
    );
    // The next call is a new attempt (after the backoff, skipped here) and completes.
    api.patch_status("crashy", &PatchParams::default(), &Patch::Merge(&status_at(1))).await.unwrap();
    let done = run_to_end(&service, "crashy").await;
    assert_eq!((done.phase, done.attempts), (BackupPhase::Succeeded, 2));
}

#[tokio::test]
async fn schedules_start_due_backups_and_prune_by_count_keeping_the_newest() {
    let rc = RealCluster::start(1, Duration::from_secs(10)).await;
    rc.write("data", 10).await;
    std::fs::create_dir_all(rc.backup_volume_root().join("backups")).unwrap();
    let service = rc.services.backup.clone();
    let api: Api<EtcdBackupSchedule> = Api::namespaced(rc.client.clone(), "default");
    let schedule: EtcdBackupSchedule = serde_json::from_value(serde_json::json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackupSchedule",
        "metadata": {"name": "hourly", "namespace": "default"},
        "spec": {"clusterName": "demo", "schedule": "*/1 * * * *", "storage": {"volume": {"claimName": "backups"}},
                 "retention": {"maxCount": 2}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &schedule).await.unwrap();
    let first = service.reconcile_schedule("default", "hourly").await.unwrap();
    assert!(first.status.next_schedule_time.is_some(), "{first:?}");

    // Three runs, each as if the previous one was two minutes ago.
    let mut taken = Vec::new();
    for _ in 0..3 {
        let ago = (chrono::Utc::now() - chrono::Duration::minutes(2 + taken.len() as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let patch = serde_json::json!({"status": {"lastScheduleTime": ago, "active": null}});
        api.patch_status("hourly", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        let out = service.reconcile_schedule("default", "hourly").await.unwrap();
        let started = out.started.clone().expect("a due run starts a backup");
        assert_eq!(out.status.active.as_deref(), Some(started.as_str()));
        // While it runs, nothing else starts.
        assert_eq!(service.reconcile_schedule("default", "hourly").await.unwrap().started, None);
        assert_eq!(run_to_end(&service, &started).await.phase, BackupPhase::Succeeded);
        // Rename so the next run (same minute) is a different object, as runs minutes apart are.
        taken.push(started);
        let backups: Api<EtcdBackup> = Api::namespaced(rc.client.clone(), "default");
        let b = backups.get(taken.last().unwrap()).await.unwrap();
        let key = b.status.as_ref().unwrap().key.clone().unwrap();
        assert!(rc.backup_volume_root().join("backups").join(&key).exists());
        if taken.len() < 3 {
            backups.delete(taken.last().unwrap(), &Default::default()).await.unwrap();
            let mut copy = b.clone();
            copy.metadata = kube::api::ObjectMeta {
                name: Some(format!("hourly-old-{}", taken.len())),
                namespace: Some("default".into()),
                labels: b.metadata.labels.clone(),
                ..Default::default()
            };
            let created = backups.create(&PostParams::default(), &copy).await.unwrap();
            let status = serde_json::json!({"status": b.status});
            backups
                .patch_status(
                    &created.metadata.name.clone().unwrap(),
                    &PatchParams::default(),
                    &Patch::Merge(&status),
                )
                .await
                .unwrap();
            *taken.last_mut().unwrap() = created.metadata.name.unwrap();
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
    }
    let out = service.reconcile_schedule("default", "hourly").await.unwrap();
    assert_eq!(out.status.kept_backups.len(), 2, "{out:?}");
    assert_eq!(out.status.kept_backups[0], taken[2], "the newest is kept first");
    let backups: Api<EtcdBackup> = Api::namespaced(rc.client.clone(), "default");
    assert!(backups.get_opt(&taken[0]).await.unwrap().is_none(), "the oldest was pruned");
    let left =
        ObjectStorage::local(&rc.backup_volume_root().join("backups")).unwrap().list("").await.unwrap();
    assert_eq!(left.iter().filter(|o| o.key.ends_with("/snapshot.db")).count(), 2, "{left:?}");
    assert!(out.status.last_successful_time.is_some());
}

/// This file runs twice, as written and as its TLS variant (`*_tls_variant` in Cargo.toml).
#[test]
fn runs_the_variant_its_target_names() {
    system_tests::secure::assert_runs_the_variant_of(env!("CARGO_CRATE_NAME"));
}
