//! Recovery end to end: a member's process is killed and its claim's data
//! lost while a writer keeps writing; the health and recovery controllers,
//! as OS processes, have the cluster-service replace it (after the grace
//! period etcd itself has not heard from it), and every acknowledged write
//! is still there.

use std::time::Duration;

use e2e_tests::{
    Stack, eventually,
    workload::{self, Workload},
};
use etcd_operator_api::{EtcdCluster, cluster::ClusterPhase};
use kube::Api;

const CLUSTER: &str = include_str!("../../../examples/local-etcdcluster.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_lost_its_data_is_replaced_and_no_acknowledged_write_is_lost() {
    let mut stack = Stack::start("a_member_that_lost_its_data_is_replaced").await;
    let endpoint = stack.start_cluster_service("cluster-service-0", &["--replace-after=5s".to_owned()]).await;
    let fast = ["--probe-interval=2s".to_owned()];
    for kind in ["lifecycle", "health", "recovery"] {
        stack.start_controller(kind, &format!("{kind}-a"), &endpoint, &fast).await;
    }
    stack.kubectl_apply(CLUSTER);
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    eventually("the cluster running", Duration::from_secs(90), || async {
        clusters.get("demo").await.unwrap().status.is_some_and(|s| s.phase == ClusterPhase::Running)
    })
    .await;
    let old_id = member_id(&clusters, "demo-2").await;

    let ip = stack.node().pod_ip("default", "demo-0").unwrap();
    let workload = Workload::start(workload::members(stack.node().clone(), "default", "demo", 3), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Its node is lost with the volume: the pod comes back on an empty one and is refused until replaced.
    stack.node().wipe_pvc("default", "data-demo-2").unwrap();
    stack.kubectl_ok(&["delete", "pod", "demo-2", "--grace-period=0", "--force"]);

    eventually("demo-2 replaced and every member healthy", Duration::from_secs(120), || async {
        let status = clusters.get("demo").await.unwrap().status.unwrap_or_default();
        let new_id = status.members.iter().find(|m| m.name == "demo-2").map(|m| m.id.clone());
        status.operation.is_none()
            && status.members.len() == 3
            && status.members.iter().all(|m| m.healthy && !m.is_learner)
            && new_id.is_some_and(|id| id != old_id)
    })
    .await;
    let outcome = workload.stop().await;
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(stack.client.clone(), "default")
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    assert!(
        events.iter().any(|e| e.reason.as_deref() == Some("MemberReplaced")),
        "a MemberReplaced event is published"
    );

    let missing = outcome.lost_writes(&format!("http://{ip}:2379")).await;
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    outcome.assert_substantial(20, 2);
    assert_eq!(outcome.check(Duration::from_secs(60)), porcupine_rs::CheckResult::Ok, "not linearizable");
}

async fn member_id(clusters: &Api<EtcdCluster>, name: &str) -> String {
    let status = clusters.get("demo").await.unwrap().status.unwrap();
    status.members.iter().find(|m| m.name == name).map(|m| m.id.clone()).expect("member")
}
