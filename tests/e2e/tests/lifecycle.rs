//! An EtcdCluster's whole life on kube-sim with the operator running as OS
//! processes: created with kubectl and watched until it runs, etcd answering
//! on every member; the lifecycle controller's leader killed and its standby
//! taking over; a configuration change rolled out by the operator one member
//! at a time, the leader last, while a writer keeps writing; deleted with
//! everything it owned.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use e2e_tests::{Stack, eventually};
use etcd_operator_api::{EtcdCluster, cluster::ClusterPhase, condition::ConditionStatus};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service},
    policy::v1::PodDisruptionBudget,
};
use kube::{Api, api::ListParams};

/// The README demo's cluster (3 members, 3.4.23, claims deleted with the cluster).
const CLUSTER: &str = include_str!("../../../examples/local-etcdcluster.yaml");

async fn pods(stack: &Stack) -> Vec<Pod> {
    pods_of(&stack.client).await
}

async fn pods_of(client: &kube::Client) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), "default").list(&ListParams::default()).await.unwrap().items
}

fn ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Client URLs of the member pods that have an IP now.
async fn endpoints(stack: &Stack) -> Vec<String> {
    endpoints_of(&stack.client).await
}

async fn endpoints_of(client: &kube::Client) -> Vec<String> {
    pods_of(client)
        .await
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.as_ref().map(|ip| format!("http://{ip}:2379")))
        .collect()
}

async fn count<K>(stack: &Stack) -> usize
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(stack.client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len()
}

/// `kubectl get --watch` until the phase column says `phase`.
fn watch_phase(stack: &Stack, phase: &str, limit: Duration) -> Vec<String> {
    let mut child = stack
        .kubectl_command(&[
            "get",
            "etcdclusters",
            "demo",
            "--watch",
            "-o",
            "jsonpath={.status.phase}{\"\\n\"}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl get --watch");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while seen.last().is_none_or(|l: &String| l != phase) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("kubectl --watch never showed phase {phase}; saw {seen:?}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_cluster_lives_its_whole_life_on_kube_sim() {
    let mut stack = Stack::start("an_etcd_cluster_lives_its_whole_life_on_kube_sim").await;
    let endpoint = stack.start_cluster_service("cluster-service-0", &[]).await;
    let lifecycle = [
        stack.start_controller("lifecycle", "lifecycle-a", &endpoint, &[]).await,
        stack.start_controller("lifecycle", "lifecycle-b", &endpoint, &[]).await,
    ];
    stack.start_controller("health", "health-a", &endpoint, &[]).await;
    stack.start_controller("scaling", "scaling-a", &endpoint, &[]).await;
    stack.start_controller("backup", "backup-a", &endpoint, &[]).await;
    stack.start_controller("recovery", "recovery-a", &endpoint, &[]).await;

    // Created with kubectl, watched with kubectl until it runs.
    assert!(stack.kubectl_apply(CLUSTER).contains("etcdcluster.etcd.operator.dev/demo created"));
    let phases = watch_phase(&stack, "Running", Duration::from_secs(120));
    assert!(phases.len() >= 2, "a new cluster passes through other phases first: {phases:?}");
    let table = stack.kubectl_ok(&["get", "etcd", "demo"]);
    assert!(table.contains("3.4.23") && table.contains("Running"), "{table}");
    let clusters: Api<EtcdCluster> = Api::namespaced(stack.client.clone(), "default");
    let status = clusters.get("demo").await.unwrap().status.unwrap();
    let available = status.conditions.iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(available.status, ConditionStatus::True, "{available:?}");
    assert_eq!(status.members.len(), 3);

    // etcd answers reads and writes on every member.
    let urls = endpoints(&stack).await;
    assert_eq!(urls.len(), 3);
    let mut etcd = etcd_client::Client::connect(urls.clone(), None).await.unwrap();
    for i in 0..20 {
        etcd.put(format!("k{i}"), format!("v{i}"), None).await.unwrap();
    }
    for url in &urls {
        let mut one = etcd_client::Client::connect([url.clone()], None).await.unwrap();
        let got = one.get("k19", None).await.unwrap();
        assert_eq!(got.kvs()[0].value_str().unwrap(), "v19", "read from {url}");
    }

    // The leading lifecycle controller crashes; its standby takes over within the lease.
    eventually("a lifecycle leader", Duration::from_secs(10), || async {
        stack.processes[lifecycle[0]].is_leader().await || stack.processes[lifecycle[1]].is_leader().await
    })
    .await;
    let (leader, standby) = if stack.processes[lifecycle[0]].is_leader().await {
        (lifecycle[0], lifecycle[1])
    } else {
        (lifecycle[1], lifecycle[0])
    };
    let crashed = Instant::now();
    stack.processes[leader].crash().await;
    eventually("the standby leads", Duration::from_secs(8), || async {
        stack.processes[standby].is_leader().await
    })
    .await;
    let handover = crashed.elapsed();
    eprintln!("lifecycle leader crashed; standby leads after {handover:?}");
    assert!(handover < Duration::from_secs(6), "handover took {handover:?} with a 3 s lease");
    // The new leader reconciles: a deleted Service comes back.
    stack.kubectl_ok(&["delete", "service", "demo-client"]);
    eventually("demo-client recreated by the new leader", Duration::from_secs(20), || async {
        Api::<Service>::namespaced(stack.client.clone(), "default")
            .get_opt("demo-client")
            .await
            .unwrap()
            .is_some()
    })
    .await;

    // A restart-relevant change rolls out one member at a time while writes go on, the operator
    // choosing the order: followers first, the leader last.
    let before: Vec<_> = pods(&stack).await.iter().map(|p| p.metadata.uid.clone()).collect();
    let leader = {
        let mut etcd = etcd.clone();
        let id = etcd.status().await.unwrap().leader();
        let members = etcd.member_list().await.unwrap();
        members.members().iter().find(|m| m.id() == id).unwrap().name().to_owned()
    };
    let restarted = Mutex::new(Vec::<String>::new());
    let written = Arc::new(Mutex::new(BTreeMap::<u32, Duration>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (written, stop) = (written.clone(), stop.clone());
        let mut etcd = etcd.clone();
        let client = stack.client.clone();
        async move {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                // An unacknowledged put is retried until acknowledged: the latency is what a client saw.
                loop {
                    let put = etcd.put(format!("roll/{i:05}"), i.to_string(), None);
                    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), put).await {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    // A replaced member comes back at another address, as a pod does in
                    // Kubernetes: the client follows the pods, as one behind a Service would.
                    if let Ok(c) = etcd_client::Client::connect(endpoints_of(&client).await, None).await {
                        etcd = c;
                    }
                }
                written.lock().unwrap().insert(i, started.elapsed());
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    stack.kubectl_ok(&[
        "patch",
        "etcd",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"etcd":{"snapshotCount":5000}}}"#,
    ]);
    let most_unready = std::sync::atomic::AtomicUsize::new(0);
    eventually("every member replaced and the cluster settled", Duration::from_secs(120), || async {
        let now = pods(&stack).await;
        let unready = 3 - now.iter().filter(|p| ready(p)).count();
        most_unready.fetch_max(unready, std::sync::atomic::Ordering::SeqCst);
        {
            let mut order = restarted.lock().unwrap();
            for p in now.iter().filter(|p| !before.contains(&p.metadata.uid)) {
                let name = p.metadata.name.clone().unwrap();
                if !order.contains(&name) {
                    order.push(name);
                }
            }
        }
        let replaced = now.len() == 3 && now.iter().all(|p| !before.contains(&p.metadata.uid));
        let settled = clusters
            .get("demo")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.observed_generation == Some(2) && s.phase == ClusterPhase::Running);
        replaced && unready == 0 && settled
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    let most_unready = most_unready.into_inner();
    let order = restarted.into_inner().unwrap();
    assert_eq!(order.last(), Some(&leader), "the leader restarts last: {order:?}");
    assert!(most_unready <= 1, "{most_unready} members were down at once during the rollout");
    let written = written.lock().unwrap().clone();
    let slowest = written.values().max().copied().unwrap_or_default();
    eprintln!(
        "rollout: {} writes, slowest {slowest:?}, at most {most_unready} member(s) down",
        written.len()
    );
    assert!(written.len() > 10, "the writer wrote {} keys", written.len());
    assert!(slowest < Duration::from_secs(10), "a write waited {slowest:?}: quorum was lost");
    let mut etcd = etcd_client::Client::connect(endpoints(&stack).await, None).await.unwrap();
    let all = etcd.get("roll/", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
    assert_eq!(all.kvs().len(), written.len(), "every acknowledged write is there");
    assert_eq!(etcd.get("k0", None).await.unwrap().kvs()[0].value_str().unwrap(), "v0");

    // Deleted with kubectl: everything it owned goes, claims too (whenDeleted: Delete), and their data.
    stack.kubectl_ok(&["delete", "etcd", "demo", "--timeout=90s"]);
    eventually("everything gone", Duration::from_secs(60), || async {
        count::<EtcdCluster>(&stack).await == 0
            && count::<StatefulSet>(&stack).await == 0
            && count::<Pod>(&stack).await == 0
            && count::<Service>(&stack).await == 0
            && count::<ConfigMap>(&stack).await == 0
            && count::<PodDisruptionBudget>(&stack).await == 0
            && count::<PersistentVolumeClaim>(&stack).await == 0
    })
    .await;
    eventually("claim data removed from the node", Duration::from_secs(10), || async {
        std::fs::read_dir(stack.node().dir().join("pv")).map_or(true, |mut d| d.next().is_none())
    })
    .await;

    // Every process still running stops cleanly on SIGTERM.
    for p in &mut stack.processes {
        if let Some(status) = p.terminate().await {
            assert!(status.success(), "{} exited with {status:?}", p.name);
        }
    }
}
