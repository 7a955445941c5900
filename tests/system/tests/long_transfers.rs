//! Backups and verifications that take longer than a call's deadline finish:
//! they run as tasks the calls start and then poll, each call answering within
//! its caller's deadline with the progress so far. Instead of a database of
//! gigabytes, the deadline is short (1 s) and every chunk of a transfer is
//! paced (failpoint `transfer::chunk`), so a snapshot of a few MiB takes many
//! deadlines. Real etcd pods on kube-sim's node; needs root.

use std::time::{Duration, Instant};

use etcd_operator_api::{
    EtcdBackup, EtcdBackupStatus, EtcdCluster,
    backup::{BackupPhase, VerificationPhase},
    cluster::RestorePhase,
};
use etcd_operator_common::ClusterRef;
use etcd_operator_controller::reconcilers::backup::reconcile_backup;
use etcd_operator_service::{ServiceError, call_budget};
use kube::Api;
use system_tests::real::{RealCluster, spec};

const DEADLINE: Duration = Duration::from_secs(1);
/// Per chunk of a snapshot streaming from etcd (32 KiB each).
const STREAM_PACE: &str = "return(60)";
/// Per chunk of a stored copy being read (8 KiB each).
const READ_PACE: &str = "return(15)";

/// Writes about 2 MiB of values.
async fn fill(rc: &RealCluster) {
    let mut etcd = rc.etcd().await;
    let value = "v".repeat(4096);
    for i in 0..500 {
        etcd.put(format!("bulk/{i:04}"), value.as_str(), None).await.expect("put");
    }
}

async fn backup_status(rc: &RealCluster, name: &str) -> EtcdBackupStatus {
    let backups: Api<EtcdBackup> = Api::namespaced(rc.client.clone(), "default");
    backups.get(name).await.expect("EtcdBackup").status.unwrap_or_default()
}

/// A backup taken by the backup controller's own reconcile, over gRPC with a 1 s deadline.
async fn back_up_through_the_controller(rc: &RealCluster, name: &str) -> (EtcdBackupStatus, Vec<i32>) {
    std::fs::create_dir_all(rc.backup_volume_root().join("backups")).expect("claim dir");
    let backup: EtcdBackup = serde_json::from_value(serde_json::json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdBackup",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterName": "demo", "storage": {"volume": {"claimName": "backups"}}}
    }))
    .expect("backup");
    let backups: Api<EtcdBackup> = Api::namespaced(rc.client.clone(), "default");
    let created = backups.create(&Default::default(), &backup).await.expect("create");
    let ctx = rc.controller_context("backup", DEADLINE).await;
    let mut percents = Vec::new();
    let started = Instant::now();
    loop {
        let call = Instant::now();
        let outcome = reconcile_backup(std::sync::Arc::new(created.clone()), ctx.clone()).await;
        // Every call answers within its deadline: no DEADLINE_EXCEEDED, no error at all.
        outcome.unwrap_or_else(|e| panic!("RunBackup after {:?}: {e}", call.elapsed()));
        assert!(call.elapsed() < DEADLINE, "answered after {:?}", call.elapsed());
        let status = backup_status(rc, name).await;
        if let Some(p) = status.progress.as_ref().and_then(|p| p.percent) {
            percents.push(p);
        }
        match status.phase {
            BackupPhase::Succeeded => return (status, percents),
            BackupPhase::Failed => panic!("backup failed: {status:?}"),
            _ => assert!(started.elapsed() < Duration::from_secs(120), "not done: {status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_backup_longer_than_the_callers_deadline_finishes_and_reports_its_progress() {
    let rc = RealCluster::start(1, Duration::from_secs(6)).await;
    fill(&rc).await;
    fail::cfg("transfer::chunk", STREAM_PACE).unwrap();
    let (status, percents) = back_up_through_the_controller(&rc, "paced").await;
    fail::remove("transfer::chunk");

    let took = status.duration_seconds.expect("duration");
    assert!(took > 3.0 * DEADLINE.as_secs_f64(), "the premise: several deadlines long ({took} s)");
    let size = status.size_bytes.expect("size");
    assert!(size > 1 << 20, "a database of MiBs ({size} bytes)");
    let last = status.progress.clone().expect("final progress");
    assert_eq!((last.percent, last.bytes, last.total_bytes), (Some(100), size, Some(size)));
    assert!(!last.replica.is_empty(), "the replica that streamed it");
    // Polls saw it move, from what the streaming task recorded in status.
    let partial: Vec<_> = percents.iter().filter(|p| (1..100).contains(*p)).collect();
    assert!(!partial.is_empty(), "progress between 0 and 100% was reported: {percents:?}");
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {percents:?}");
}

/// Runs a service call as the gRPC layer does: scoped with its caller's deadline, which it meets.
async fn within_deadline<T>(call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call_budget::within(Some(started + DEADLINE), call).await;
    assert!(started.elapsed() < DEADLINE, "answered after {:?}", started.elapsed());
    out
}

fn restore_spec(backup: &str) -> etcd_operator_api::EtcdClusterSpec {
    let mut spec = serde_json::to_value(spec(1)).unwrap();
    spec["restore"] = serde_json::json!({ "backupName": backup });
    serde_json::from_value(spec).unwrap()
}

/// Creates `name` restored from `backup` and reconciles it, each call under a 1 s deadline,
/// until the gate lets the restore start or refuses it; the restore phases seen on the way.
async fn gate(rc: &RealCluster, name: &str, backup: &str) -> Vec<(RestorePhase, String)> {
    let r = ClusterRef { namespace: "default".into(), name: name.into() };
    let create = rc.services.lifecycle.create_cluster(&r, Some(restore_spec(backup)));
    within_deadline(Box::pin(create)).await.expect("accepted");
    let clusters: Api<EtcdCluster> = Api::namespaced(rc.client.clone(), "default");
    let mut seen = Vec::new();
    let started = Instant::now();
    loop {
        let cluster = clusters.get(name).await.expect("cluster");
        let restore = cluster.status.and_then(|s| s.restore).expect("restore recorded");
        seen.push((restore.phase, restore.message.clone()));
        if restore.phase != RestorePhase::Verifying {
            return seen;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "still verifying: {seen:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = within_deadline(Box::pin(rc.services.lifecycle.update_cluster(&r, None))).await;
    }
}

#[tokio::test]
async fn a_verification_longer_than_the_deadline_finishes_is_reused_and_never_hides_a_change() {
    let rc = RealCluster::start(1, Duration::from_secs(6)).await;
    fill(&rc).await;
    let taken = rc.backup("big").await;
    fail::cfg("transfer::chunk", READ_PACE).unwrap();

    // The first restore reads the whole copy over several calls, saying how far it is.
    let seen = gate(&rc, "first", "big").await;
    let verifying: Vec<_> = seen.iter().filter(|(p, _)| *p == RestorePhase::Verifying).collect();
    assert!(verifying.len() >= 2, "read over several calls: {seen:?}");
    assert!(verifying.iter().any(|(_, m)| m.contains('%') && m.contains("bytes")), "{seen:?}");
    assert_eq!(seen.last().map(|s| s.0), Some(RestorePhase::Restoring), "{seen:?}");
    let verification = backup_status(&rc, "big").await.verification.expect("recorded on the backup");
    assert_eq!(verification.phase, VerificationPhase::Verified);
    assert_eq!(verification.sha256, taken.sha256);
    assert_eq!(verification.size_bytes, taken.size_bytes);
    assert!(verification.last_modified.is_some() && verification.e_tag.is_some(), "{verification:?}");

    // A second restore of the same, unchanged object reuses it at once: no reading again.
    let seen = gate(&rc, "second", "big").await;
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![RestorePhase::Restoring], "{seen:?}");
    let again = backup_status(&rc, "big").await.verification.expect("kept");
    assert_eq!(again.time, verification.time, "not verified again");

    // The stored copy changes (one byte, same size): the cached outcome no longer stands, the
    // copy is read again, and the corruption is found.
    let path = rc.backup_volume_root().join("backups").join(taken.key.clone().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let seen = gate(&rc, "third", "big").await;
    fail::remove("transfer::chunk");
    assert_eq!(seen.first().map(|s| s.0), Some(RestorePhase::Verifying), "read again: {seen:?}");
    let (phase, message) = seen.last().cloned().unwrap();
    assert_eq!(phase, RestorePhase::Refused, "{seen:?}");
    assert!(message.contains("corrupt"), "{message}");
    let mismatch = backup_status(&rc, "big").await.verification.expect("recorded");
    assert_eq!(mismatch.phase, VerificationPhase::Mismatch, "{mismatch:?}");
}

#[tokio::test]
async fn a_stop_snapshot_longer_than_the_deadline_is_saved_once_over_several_calls() {
    let rc = RealCluster::start(1, Duration::from_secs(6)).await;
    fill(&rc).await;
    fail::cfg("transfer::chunk", STREAM_PACE).unwrap();
    let (mut saving, started) = (Vec::new(), Instant::now());
    loop {
        match within_deadline(Box::pin(rc.services.scaling.scale_to_zero(&rc.r))).await {
            Ok(out) if out.requeue_after.is_none() => break,
            Ok(_) => {}
            Err(ServiceError::Aborted(why)) if why.contains("saving a snapshot") => saving.push(why),
            Err(e) if e.is_retryable() => {}
            Err(e) => panic!("ScaleToZero: {e}"),
        }
        assert!(started.elapsed() < Duration::from_secs(120), "not stopped; saving: {saving:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    fail::remove("transfer::chunk");
    assert!(saving.len() >= 2, "saved over several calls: {saving:?}");
    assert!(saving.iter().any(|m| m.contains("bytes so far")), "{saving:?}");
    assert_eq!(rc.replicas().await, 0);
    let status = rc.services.lifecycle.get_cluster_status(&rc.r).await.unwrap().status;
    let snapshot = status.stopped.and_then(|s| s.snapshot).expect("stop snapshot recorded");
    assert!(snapshot.size_bytes > 1 << 20, "{snapshot:?}");
    // Saved once, however many calls it took: one snapshot and its record.
    let dir = rc.snapshot_dir().join("default/demo");
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    let name = snapshot.location.rsplit('/').next().unwrap().to_owned();
    assert_eq!(files, vec![name.clone(), format!("{name}.json")]);
}
