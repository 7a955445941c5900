//! Quorum loss end to end: a cluster that opted into automatic recovery
//! loses a majority of its members (cut off from everything, as when their
//! nodes die); after the grace period the recovery controller, as an OS
//! process, has the cluster-service save the data of the member that still
//! answers (ahead of the newest backup, which the backup controller took) and
//! recreate the cluster in place from it. The cluster keeps its name and
//! endpoints, loses no write the survivor held, and says so
//! (DataLossPossible, Events). A cluster that is only cut off from the
//! operator, its pods Ready all along, is never touched.

use std::time::Duration;

use e2e_tests::{Stack, eventually};
use etcd_operator_api::{
    EtcdBackup, EtcdCluster,
    backup::BackupPhase,
    cluster::{
        CONDITION_AVAILABLE, CONDITION_DATA_LOSS_POSSIBLE, ClusterPhase, RestorePhase, RestoreTrigger,
    },
    condition::{ConditionStatus, find},
};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{Api, api::ListParams};
use kube_sim::node::HostCut;

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
async fn a_cluster_that_lost_its_majority_is_recreated_in_place_from_its_survivor() {
    let (stack, clusters) = opted_in_stack("quorum_loss").await;
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
    eventually("the cluster recreated from the survivor and running", Duration::from_secs(240), || async {
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
    assert_eq!(status.restore.unwrap().backup_name, None, "the survivor was ahead of the backup");
    let loss = find(&status.conditions, CONDITION_DATA_LOSS_POSSIBLE).expect("DataLossPossible");
    assert!(loss.message.contains("surviving member demo-0"), "{loss:?}");
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(stack.client.clone(), "default")
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    let said = |reason: &str| {
        events.iter().find(|e| e.reason.as_deref() == Some(reason)).and_then(|e| e.note.clone())
    };
    let started = said("QuorumLossRecovery").expect("a QuorumLossRecovery event");
    assert!(started.contains("demo-1, demo-2") && started.contains("saving the data of demo-0"), "{started}");
    assert!(said("QuorumRecovered").is_some(), "a QuorumRecovered event");

    assert_eq!(count(&stack, "before").await, 100, "everything the survivor held is back");
    assert_eq!(count(&stack, "after").await, 20, "writes after the backup too: the survivor held them");
    put(&stack, "again", 5).await;
}

/// The stack with a cluster-service and the controllers as processes, and a running `demo` that
/// opted into quorum-loss recovery with a 10 s grace period.
async fn opted_in_stack(name: &str) -> (Stack, Api<EtcdCluster>) {
    let mut stack = Stack::start(name).await;
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
    (stack, clusters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_cut_off_only_from_the_operator_is_never_touched() {
    let (stack, clusters) = opted_in_stack("operator_cut_off").await;
    put(&stack, "before", 20).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(stack.client.clone(), "default");
    let uids = || async {
        let mut u: Vec<String> = pvcs
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.uid)
            .collect();
        u.sort();
        u
    };
    let claims = uids().await;
    // Packets from the operator's host vanish; the kubelet's probes still reach the pods.
    stack.node().cut_host_path(Some(HostCut::Drop)).unwrap();
    eventually("the condition naming the kubelet's evidence", Duration::from_secs(90), || async {
        let status = clusters.get("demo").await.unwrap().status.unwrap_or_default();
        find(&status.conditions, CONDITION_AVAILABLE).is_some_and(|c| {
            c.status == ConditionStatus::Unknown
                && c.reason == "MembersUnreachable"
                && c.message.contains("3 of 3 member pods Ready")
        })
    })
    .await;
    // Past the 10 s grace period several times over, under the controllers' RPC deadlines.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let status = clusters.get("demo").await.unwrap().status.unwrap();
    assert!(status.operation.is_none() && status.restore.is_none(), "{status:?}");
    assert_eq!(uids().await, claims, "no claim was deleted");
    stack.node().cut_host_path(None).unwrap();
    eventually("the cluster running again", Duration::from_secs(60), || async {
        clusters.get("demo").await.unwrap().status.is_some_and(|s| s.phase == ClusterPhase::Running)
    })
    .await;
    assert_eq!(count(&stack, "before").await, 20, "every write is there");
}
