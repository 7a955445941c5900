//! Scaling end to end: 1 → 3 → 5 → 3 → 1, then 3 → 0 → 3, driven by `kubectl patch` of
//! spec.size, with the scaling controller and the cluster-service as OS
//! processes, while clients read and write. At the end every acknowledged
//! write is there and the history of reads and writes is linearizable.

use std::time::Duration;

use e2e_tests::{
    Stack, eventually,
    workload::{self, Workload},
};
use etcd_operator_api::{EtcdCluster, cluster::ClusterPhase};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{Api, api::ListParams};
use porcupine_rs::CheckResult;

const CLUSTER: &str = e2e_tests::ONE_MEMBER_DEMO;

async fn settled_at(stack: &Stack, size: i32) -> bool {
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    let Some(status) = clusters.get("demo").await.unwrap().status else { return false };
    let pods =
        Api::<Pod>::namespaced(stack.client.clone(), "default").list(&ListParams::default()).await.unwrap();
    let seen = format!(
        "size {} ready {} op {:?} phase {:?} pods {}",
        status.current_size,
        status.ready_members,
        status.operation.as_ref().map(|o| (&o.type_, &o.step)),
        status.phase,
        pods.items.len()
    );
    static LAST: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    if *LAST.lock().unwrap() != seen {
        eprintln!("want {size}: {seen}");
        *LAST.lock().unwrap() = seen;
    }
    status.current_size == size
        && status.ready_members == size
        && status.operation.is_none()
        && status.phase == ClusterPhase::Running
        && pods.items.len() == size as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_three_five_three_one_then_three_zero_three_under_load_loses_nothing() {
    let mut stack =
        Stack::start("one_three_five_three_one_then_three_zero_three_under_load_loses_nothing").await;
    let endpoint = stack.start_cluster_service("cluster-service-0", &[]).await;
    for kind in ["lifecycle", "scaling", "health"] {
        stack.start_controller(kind, &format!("{kind}-a"), &endpoint, &[]).await;
    }
    stack.kubectl_apply(CLUSTER);
    eventually("a 1-member cluster", Duration::from_secs(60), || settled_at(&stack, 1)).await;

    // Clients move over every member there is, followers included, as the cluster grows and shrinks.
    let ip = stack.node().pod_ip("default", "demo-0").unwrap();
    let workload = Workload::start(workload::members(stack.node().clone(), "default", "demo", 5), 3);
    for size in [3, 5, 3, 1] {
        stack.kubectl_ok(&[
            "patch",
            "etcd",
            "demo",
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"size":{size}}}}}"#),
        ]);
        eventually(&format!("scaled to {size}"), Duration::from_secs(120), || settled_at(&stack, size)).await;
        // whenScaled: Delete: the removed members' claims go with them.
        eventually(&format!("{size} claims"), Duration::from_secs(20), || async {
            Api::<PersistentVolumeClaim>::namespaced(stack.client.clone(), "default")
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len()
                == size as usize
        })
        .await;
        eprintln!("settled at {size}");
    }
    let outcome = workload.stop().await;

    let missing = outcome.lost_writes(&format!("http://{ip}:2379")).await;
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    let mut etcd = etcd_client::Client::connect([format!("http://{ip}:2379")], None).await.unwrap();
    let count_only = || Some(etcd_client::GetOptions::new().with_prefix().with_count_only());
    let present = etcd.get("ack/", count_only()).await.unwrap().count() as usize;
    outcome.assert_substantial(50, 3);
    let result = outcome.check(Duration::from_secs(60));
    eprintln!(
        "{} operations, {} acknowledged appends, served by {:?}, linearizability: {result:?}",
        outcome.history.len(),
        outcome.acked.len(),
        outcome.served
    );
    assert_eq!(result, CheckResult::Ok, "the history of reads and writes is not linearizable");

    // 3 → 0 → 3: stopped with a snapshot, back on the kept claims as the same cluster.
    let id = etcd.status().await.unwrap().header().unwrap().cluster_id();
    for size in [3, 0, 3] {
        stack.kubectl_ok(&[
            "patch",
            "etcd",
            "demo",
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"size":{size}}}}}"#),
        ]);
        eventually(&format!("size {size}"), Duration::from_secs(120), || async {
            if size > 0 {
                return settled_at(&stack, size).await;
            }
            let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
            let status = clusters.get("demo").await.unwrap().status.unwrap_or_default();
            status.phase == ClusterPhase::Stopped && status.operation.is_none() && status.stopped.is_some()
        })
        .await;
        eprintln!("settled at {size}");
    }
    let ip = stack.node().pod_ip("default", "demo-0").unwrap();
    let mut etcd = etcd_client::Client::connect([format!("http://{ip}:2379")], None).await.unwrap();
    assert_eq!(etcd.status().await.unwrap().header().unwrap().cluster_id(), id, "the same cluster came back");
    let after = etcd.get("ack/", count_only()).await.unwrap();
    assert_eq!(after.count() as usize, present, "every write survived the stop");
}
