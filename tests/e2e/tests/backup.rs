//! Backups end to end: the README's example EtcdBackup and
//! EtcdBackupSchedule applied with kubectl, taken by the backup controller
//! and the cluster-service as OS processes from real etcd pods, written to a
//! claim directory; the schedule runs every minute and prunes to its count.

use std::time::Duration;

use e2e_tests::{Stack, eventually};
use etcd_operator_api::{
    EtcdBackup, EtcdBackupSchedule, EtcdCluster, backup::BackupPhase, cluster::ClusterPhase,
};
use kube::{Api, api::ListParams};

const CLUSTER: &str = include_str!("../../../examples/local-etcdcluster.yaml");
const BACKUPS: &str = include_str!("../../../examples/local-etcdbackup.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_backup_and_schedule_run_and_prune() {
    let mut stack = Stack::start("backup").await;
    let endpoint = stack.start_cluster_service("cluster-service-a", &[]).await;
    for kind in ["lifecycle", "backup"] {
        stack.start_controller(kind, &format!("{kind}-a"), &endpoint, &[]).await;
    }
    stack.kubectl_apply(CLUSTER);
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    eventually("the cluster running", Duration::from_secs(90), || async {
        let c = clusters.get("demo").await.unwrap();
        c.status.is_some_and(|s| s.phase == ClusterPhase::Running)
    })
    .await;

    let applied = stack.kubectl_apply(BACKUPS);
    assert!(applied.contains("etcdbackupschedule.etcd.operator.dev/demo-every-minute created"), "{applied}");
    let backups: Api<EtcdBackup> = Api::namespaced(stack.client.clone(), "default");
    eventually("the one-shot backup succeeded", Duration::from_secs(60), || async {
        let b = backups.get("demo-now").await.unwrap();
        b.status.is_some_and(|s| s.phase == BackupPhase::Succeeded)
    })
    .await;
    let b = backups.get("demo-now").await.unwrap().status.unwrap();
    let file = stack.backup_volume_root().join("local/demo").join(b.key.unwrap());
    assert_eq!(std::fs::metadata(&file).unwrap().len() as i64, b.size_bytes.unwrap());
    let printed = stack.kubectl(&["get", "etcdbackup", "demo-now", "-o", "jsonpath={.status.sha256}"]);
    assert_eq!(String::from_utf8_lossy(&printed.stdout), b.sha256.unwrap());

    // Every minute a backup; with maxCount 2 the third run prunes the first.
    let schedules: Api<EtcdBackupSchedule> = Api::namespaced(stack.client.clone(), "default");
    let selector = ListParams::default().labels("etcd.operator.dev/schedule=demo-every-minute");
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually("three scheduled runs", Duration::from_secs(200), || async {
        let items = backups.list(&selector).await.unwrap().items;
        let done = items
            .into_iter()
            .filter(|b| b.status.as_ref().is_some_and(|s| s.phase == BackupPhase::Succeeded));
        let mut seen = seen.lock().unwrap();
        seen.extend(done.map(|b| b.metadata.name.unwrap()));
        seen.len() >= 3
    })
    .await;
    let seen = seen.into_inner().unwrap();
    eventually("retention down to 2", Duration::from_secs(30), || async {
        let kept = schedules.get("demo-every-minute").await.unwrap().status.unwrap_or_default().kept_backups;
        let listed = backups.list(&selector).await.unwrap().items.len();
        kept.len() == 2 && listed == 2
    })
    .await;
    let first = seen.iter().next().unwrap().clone();
    assert!(backups.get_opt(&first).await.unwrap().is_none(), "the oldest run was pruned");
    let status = schedules.get("demo-every-minute").await.unwrap().status.unwrap();
    assert!(status.last_successful_time.is_some() && status.next_schedule_time.is_some(), "{status:?}");
    let stored = walk(&stack.backup_volume_root().join("local/demo"));
    // The one-shot backup and the two kept scheduled ones.
    assert_eq!(stored.iter().filter(|p| p.ends_with("snapshot.db")).count(), 3, "{stored:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}
