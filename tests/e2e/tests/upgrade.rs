//! An upgrade end to end: `etcdopctl upgrade` from 3.4.23 to a current 3.5
//! release (Debian's, which kube-sim runs for its own tag, so the members
//! report the version they were moved to) on a 3-member cluster, followed to its end, with the controllers and the
//! cluster-service as OS processes, clients on every member, and the scaling
//! controller's leader (which drives the roll) killed mid-roll. Every
//! acknowledged write is kept, the history is linearizable, the leader restarts
//! last, and the upgrade completes (for the operator and for the CLI following
//! it) only once etcd reports cluster version 3.5.

use std::{collections::BTreeMap, time::Duration};

use e2e_tests::{
    Stack,
    cli::{Cli, TOOLING, tooling_may},
    eventually,
    process::binary,
    workload::{self, Workload},
};
use etcd_operator_api::{ConditionStatus, EtcdCluster, cluster::CONDITION_UPGRADING, condition::find};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, api::ListParams};
use porcupine_rs::CheckResult;

const CLUSTER: &str = "apiVersion: etcd.operator.dev/v1alpha1
kind: EtcdCluster
metadata:
  name: demo
  namespace: default
spec:
  size: 3
  version: 3.4.23
  storage:
    size: 1Gi
";

/// Each member pod's UID now.
async fn uids(stack: &Stack) -> BTreeMap<String, String> {
    let pods = Api::<Pod>::namespaced(stack.client.clone(), "default");
    let list = pods.list(&ListParams::default().labels("app.kubernetes.io/instance=demo")).await.unwrap();
    list.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| (p.metadata.name.unwrap(), p.metadata.uid.unwrap()))
        .collect()
}

/// Members in the order their pods were replaced since `before`, noted into `order`.
async fn note_restarts(stack: &Stack, before: &BTreeMap<String, String>, order: &mut Vec<String>) {
    for (name, uid) in uids(stack).await {
        if before.get(&name).is_some_and(|old| *old != uid) && !order.contains(&name) {
            order.push(name);
        }
    }
}

/// A member's client URL now (its pod's address changes when it is recreated).
fn url(stack: &Stack, member: &str) -> String {
    format!("http://{}:2379", stack.node().pod_ip("default", member).unwrap())
}

async fn upgraded(stack: &Stack) -> bool {
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    let status = clusters.get("demo").await.unwrap().status.unwrap_or_default();
    let upgrading = find(&status.conditions, CONDITION_UPGRADING);
    upgrading.is_some_and(|c| c.status == ConditionStatus::False && c.reason == "UpToDate")
        && status.cluster_version.as_deref() == Some("3.5.0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_four_to_three_five_under_load_with_the_rolls_controller_killed_loses_nothing() {
    let mut stack =
        Stack::start("three_four_to_three_five_under_load_with_the_rolls_controller_killed").await;
    let endpoint = stack.start_cluster_service("cluster-service-0", &[]).await;
    stack.start_controller("lifecycle", "lifecycle-a", &endpoint, &[]).await;
    stack.start_controller("health", "health-a", &endpoint, &[]).await;
    let scaling = [
        stack.start_controller("scaling", "scaling-a", &endpoint, &[]).await,
        stack.start_controller("scaling", "scaling-b", &endpoint, &[]).await,
    ];
    stack.kubectl_apply(TOOLING);
    // The README's tooling account, here also allowed the rest of the spec (the version).
    stack.kubectl_apply(&tooling_may("upgrader", "update"));
    stack.kubectl_apply(CLUSTER);
    eventually("3 members Running", Duration::from_secs(90), || async {
        let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
        let s = clusters.get("demo").await.unwrap().status.unwrap_or_default();
        s.ready_members == 3 && s.cluster_version.as_deref() == Some("3.4.0")
    })
    .await;

    // kubectl shows the admission refusal as the README does.
    let refused =
        stack.kubectl(&["patch", "etcd", "demo", "--type=merge", "-p", r#"{"spec":{"version":"3.6.5"}}"#]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    eprintln!("{stderr}");
    assert!(!refused.status.success(), "3.4.23 → 3.6.5 was admitted");
    assert!(
        stderr.contains(
            "3.4.23 → 3.6.5 skips a minor version; etcd upgrades one minor at a time: move to 3.5 first"
        ),
        "{stderr}"
    );

    let ip = |m: &str| stack.node().pod_ip("default", m).unwrap();
    let mut etcd =
        etcd_client::Client::connect([format!("http://{}:2379", ip("demo-0"))], None).await.unwrap();
    let leader_id = etcd.status().await.unwrap().leader();
    let members = etcd.member_list().await.unwrap();
    let leader = members.members().iter().find(|m| m.id() == leader_id).unwrap().name().to_owned();
    let workload = Workload::start(workload::members(stack.node().clone(), "default", "demo", 3), 3);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = uids(&stack).await;
    let (_, target) =
        kube_sim::node::images::etcd_3_5_debian().expect("Debian's etcd 3.5 (scripts/setup.sh)");
    let cli = Cli { stack: &stack, server: endpoint.clone() };
    let upgrade =
        tokio::process::Command::from(cli.command(&binary("etcdopctl"), &["upgrade", "demo", &target]))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("etcdopctl starts");
    // The first member restarted: the scaling controller leading the roll dies.
    let mut order = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while order.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no member restarted for the upgrade");
        note_restarts(&stack, &before, &mut order).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut killed = false;
    for i in scaling {
        if stack.processes[i].is_leader().await {
            stack.processes[i].crash().await;
            killed = true;
            eprintln!("killed the leading scaling controller after {order:?} restarted");
        }
    }
    assert!(killed, "a scaling controller led the roll");
    let limit = std::time::Instant::now() + Duration::from_secs(180);
    while !upgraded(&stack).await {
        assert!(std::time::Instant::now() < limit, "the upgrade never completed; restarted {order:?}");
        note_restarts(&stack, &before, &mut order).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    note_restarts(&stack, &before, &mut order).await;
    let outcome = workload.stop().await;
    // The CLI followed it through the controller's death, to the operator's verdict.
    let followed = tokio::time::timeout(Duration::from_secs(30), upgrade.wait_with_output()).await;
    let followed = followed.expect("etcdopctl upgrade ends with the upgrade").unwrap();
    let said = String::from_utf8_lossy(&followed.stderr);
    assert!(followed.status.success(), "etcdopctl upgrade: {said}");
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout),
        format!(
            "upgrade default/demo to {target}: up to date; 3/3 members run {target}; etcd's cluster version is 3.5\n"
        ),
        "{said}"
    );

    assert_eq!(order.len(), 3, "each member restarted once: {order:?}");
    assert_eq!(order.last(), Some(&leader), "the leader ({leader}) restarts last: {order:?}");
    let missing = outcome.lost_writes(&url(&stack, "demo-0")).await;
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    outcome.assert_substantial(50, 3);
    let result = outcome.check(Duration::from_secs(60));
    eprintln!("{} operations, order {order:?}, linearizability: {result:?}", outcome.history.len());
    assert_eq!(result, CheckResult::Ok, "the history of reads and writes is not linearizable");
    let table = stack.kubectl_ok(&["get", "etcd", "demo"]);
    assert!(table.contains(&target), "{table}");
    // The README's way of watching it.
    let upgrading = r#"jsonpath={.status.conditions[?(@.type=="Upgrading")].message}{"\n"}"#;
    let said = stack.kubectl_ok(&["get", "etcd", "demo", "-o", upgrading]);
    assert_eq!(said, format!("3/3 members run {target}; etcd's cluster version is 3.5\n"));
    let members =
        r#"jsonpath={range .status.members[*]}{.name} {.version}{"\n"}{end}{.status.clusterVersion}{"\n"}"#;
    let said = stack.kubectl_ok(&["get", "etcd", "demo", "-o", members]);
    let each = (0..3).map(|i| format!("demo-{i} {target}\n")).collect::<String>();
    assert_eq!(said, format!("{each}3.5.0\n"), "each member reports the release it runs");
}
