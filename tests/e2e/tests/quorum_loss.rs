//! Quorum loss end to end: a cluster that opted into automatic recovery
//! loses a majority of its members (cut off from everything, as when their
//! nodes die); after the grace period the recovery controller, as an OS
//! process, has the cluster-service recreate it in place from its newest
//! backup, taken by the backup controller. The cluster keeps its name and
//! endpoints, holds exactly what the backup held, and says so
//! (DataLossPossible, Events).

use std::time::Duration;

use e2e_tests::{Stack, eventually};
use etcd_operator_api::{
    EtcdBackup, EtcdCluster,
    backup::BackupPhase,
    cluster::{CONDITION_DATA_LOSS_POSSIBLE, ClusterPhase, RestorePhase, RestoreTrigger},
    condition::find,
};
use kube::Api;

const CLUSTER: &str = include_str!("../../../examples/local-etcdcluster.yaml");

const BACKUP: &str = "apiVersion: etcd.operator.dev/v1alpha1
kind: EtcdBackup
metadata:
  name: demo-before-the-loss
  namespace: default
spec:
  clusterName: demo
  storage:
    volume:
      claimName: local
      path: demo
";

async fn count(stack: &Stack, prefix: &str) -> i64 {
    let ip = stack.node().pod_ip("default", "demo-0").unwrap();
    let mut etcd = etcd_client::Client::connect([format!("http://{ip}:2379")], None).await.unwrap();
    let options = etcd_client::GetOptions::new().with_prefix().with_count_only();
    etcd.get(format!("{prefix}/"), Some(options)).await.unwrap().count()
}

async fn put(stack: &Stack, prefix: &str, n: usize) {
    let ip = stack.node().pod_ip("default", "demo-0").unwrap();
    let mut etcd = etcd_client::Client::connect([format!("http://{ip}:2379")], None).await.unwrap();
    for i in 0..n {
        etcd.put(format!("{prefix}/{i:03}"), format!("v{i}"), None).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_lost_its_majority_is_recreated_in_place_from_its_newest_backup() {
    let mut stack = Stack::start("quorum_loss").await;
    let endpoint = stack.start_cluster_service("cluster-service-0", &[]).await;
    let fast = ["--probe-interval=2s".to_owned()];
    for kind in ["lifecycle", "health", "recovery", "backup"] {
        let extra: &[String] = if kind == "health" || kind == "recovery" { &fast } else { &[] };
        stack.start_controller(kind, &format!("{kind}-a"), &endpoint, extra).await;
    }
    let opted_in =
        format!("{CLUSTER}  recovery:\n    restoreOnQuorumLoss: true\n    quorumLossGracePeriod: 10s\n");
    stack.kubectl_apply(&opted_in);
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    eventually("the cluster running", Duration::from_secs(90), || async {
        clusters.get("demo").await.unwrap().status.is_some_and(|s| s.phase == ClusterPhase::Running)
    })
    .await;
    let old_id = clusters.get("demo").await.unwrap().status.unwrap().cluster_id.unwrap();

    put(&stack, "before", 100).await;
    stack.kubectl_apply(BACKUP);
    let backups: Api<EtcdBackup> = Api::namespaced(stack.client.clone(), "default");
    eventually("the backup succeeded", Duration::from_secs(60), || async {
        let b = backups.get("demo-before-the-loss").await.unwrap();
        b.status.is_some_and(|s| s.phase == BackupPhase::Succeeded)
    })
    .await;
    put(&stack, "after", 20).await;

    // Two of three members gone for good, as far as anyone can tell.
    stack.node().partition("default", "demo-1").unwrap();
    stack.node().partition("default", "demo-2").unwrap();

    let seen = std::sync::Mutex::new(String::new());
    eventually("the cluster recreated from the backup and running", Duration::from_secs(240), || async {
        let status = clusters.get("demo").await.unwrap().status.unwrap_or_default();
        // Each new state once: a failure shows where it stopped.
        let now = format!(
            "phase {:?}, restore {:?}, operation {:?}, members {:?}",
            status.phase,
            status.restore.as_ref().map(|r| (&r.phase, &r.trigger)),
            status.operation.as_ref().map(|o| (&o.type_, &o.step)),
            status.members.iter().map(|m| (&m.name, m.healthy, m.is_learner)).collect::<Vec<_>>()
        );
        if *seen.lock().unwrap() != now {
            eprintln!("{now}");
            *seen.lock().unwrap() = now;
        }
        let restored = status
            .restore
            .as_ref()
            .is_some_and(|r| r.trigger == RestoreTrigger::QuorumLoss && r.phase == RestorePhase::Completed);
        restored
            && status.phase == ClusterPhase::Running
            && status.operation.is_none()
            && status.members.len() == 3
            && status.members.iter().all(|m| m.healthy && !m.is_learner)
    })
    .await;
    let status = clusters.get("demo").await.unwrap().status.unwrap();
    assert_ne!(status.cluster_id.as_deref(), Some(old_id.as_str()), "a new cluster under the same name");
    assert_eq!(status.restore.unwrap().backup_name.as_deref(), Some("demo-before-the-loss"));
    let loss = find(&status.conditions, CONDITION_DATA_LOSS_POSSIBLE).expect("DataLossPossible");
    assert!(loss.message.contains("EtcdBackup demo-before-the-loss"), "{loss:?}");
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(stack.client.clone(), "default")
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    let said = |reason: &str| {
        events.iter().find(|e| e.reason.as_deref() == Some(reason)).and_then(|e| e.note.clone())
    };
    let started = said("QuorumLossRecovery").expect("a QuorumLossRecovery event");
    assert!(started.contains("demo-1, demo-2") && started.contains("writes after it are lost"), "{started}");
    assert!(said("QuorumRecovered").is_some(), "a QuorumRecovered event");

    assert_eq!(count(&stack, "before").await, 100, "everything the backup held is back");
    assert_eq!(count(&stack, "after").await, 0, "writes after the backup are gone, as the condition says");
    put(&stack, "again", 5).await;
}
