//! Creating a 3-member cluster: through the operator (CreateCluster, then the lifecycle's
//! UpdateCluster every 100 ms, as its controller answers pod events) until the Available
//! condition is True, against a bare 3-member bootstrap of the same etcd binary (static
//! `--initial-cluster`, on loopback) until every member answers `/health` true, in the same
//! run. The operator's figure holds what a user waits for: its objects, the pods scheduled,
//! each pod's restore agent, etcd's bootstrap, and the health observation that sets Available.
//! Each round also notes when the pods existed, when every etcd container ran and when every pod
//! was Ready, to show where the operator's time goes.
//! Prints medians of 5 rounds and the ratio; `cargo bench -p system-tests --bench create`.

use std::time::{Duration, Instant};

use etcd_operator_api::{ConditionStatus, cluster::CONDITION_AVAILABLE, condition::find};
use etcd_operator_common::ClusterRef;
use k8s_openapi::api::core::v1::Pod;
use system_tests::{median, real::RealCluster};

const ROUNDS: usize = 5;
const LIMIT: Duration = Duration::from_secs(120);

/// When, from CreateCluster, the cluster's 3 pods existed, all ran their etcd container, and all
/// were Ready (pods as kube-sim reports them, polled every 20 ms).
#[derive(Debug, Default)]
struct Milestones {
    pods: Option<Duration>,
    running: Option<Duration>,
    ready: Option<Duration>,
    /// Every member answered `/health` true on its metrics port (etcd bootstrapped, a leader).
    healthy: Option<Duration>,
    /// Container restarts (init and etcd) when the last pod became Ready.
    restarts: i32,
}

impl Milestones {
    fn note(&mut self, pods: &[Pod], at: Duration) {
        let all = |f: &dyn Fn(&Pod) -> bool| pods.len() == 3 && pods.iter().all(f);
        let running = |p: &Pod| {
            let statuses = p.status.as_ref().and_then(|s| s.container_statuses.as_ref());
            statuses.is_some_and(|c| c.iter().any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some())))
        };
        let ready = |p: &Pod| {
            let conditions = p.status.as_ref().and_then(|s| s.conditions.as_ref());
            conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        };
        self.restarts = pods
            .iter()
            .filter_map(|p| p.status.as_ref())
            .flat_map(|s| {
                s.init_container_statuses.iter().flatten().chain(s.container_statuses.iter().flatten())
            })
            .map(|c| c.restart_count)
            .sum();
        for (slot, reached) in [
            (&mut self.pods, pods.len() == 3),
            (&mut self.running, all(&running)),
            (&mut self.ready, all(&ready)),
        ] {
            if reached && slot.is_none() {
                *slot = Some(at);
            }
        }
    }
}

/// Every pod's etcd answers `/health` true on its metrics port, asked at its pod IP.
async fn healthy(pods: &[Pod]) -> bool {
    let ips: Vec<String> =
        pods.iter().filter_map(|p| p.status.as_ref().and_then(|s| s.pod_ip.clone())).collect();
    let mut all = ips.len() == 3;
    for ip in ips {
        let answer = process_harness::http_get(&format!("{ip}:2381"), "/health").await;
        all &= answer.is_some_and(|(code, body)| code == 200 && body.contains("\"true\""));
    }
    all
}

/// CreateCluster, then UpdateCluster until the cluster reports Available.
async fn through_the_operator(c: &RealCluster, r: &ClusterRef) -> (Duration, Milestones) {
    let started = Instant::now();
    let lifecycle = &c.services.lifecycle;
    let watch = async {
        let api = kube::Api::<Pod>::namespaced(c.client.clone(), &r.namespace);
        let params =
            kube::api::ListParams::default().labels(&format!("app.kubernetes.io/instance={}", r.name));
        let mut milestones = Milestones::default();
        while milestones.ready.is_none() {
            if let Ok(pods) = api.list(&params).await {
                milestones.note(&pods.items, started.elapsed());
                if milestones.healthy.is_none() && milestones.running.is_some() && healthy(&pods.items).await
                {
                    milestones.healthy = Some(started.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        milestones
    };
    let create = async {
        Box::pin(lifecycle.create_cluster(r, Some(system_tests::real::spec(3))))
            .await
            .expect("CreateCluster");
        loop {
            let status = Box::pin(lifecycle.update_cluster(r, None)).await.map(|o| o.status);
            let available =
                status.as_ref().ok().and_then(|s| find(&s.conditions, CONDITION_AVAILABLE).cloned());
            if available.is_some_and(|a| a.status == ConditionStatus::True) {
                return started.elapsed();
            }
            assert!(started.elapsed() < LIMIT, "{r} not Available: {status:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (available, milestones) = tokio::join!(create, tokio::time::timeout(LIMIT, watch));
    (available, milestones.unwrap_or_default())
}

/// Removes the cluster's objects (forced: the EtcdCluster itself stays, inert, as nothing
/// reconciles it) and waits for its pods to go, so rounds do not overlap (untimed).
async fn remove(c: &RealCluster, r: &ClusterRef) {
    let started = Instant::now();
    while !Box::pin(c.services.lifecycle.delete_cluster(r, true)).await.is_ok_and(|o| o.done) {
        assert!(started.elapsed() < LIMIT, "{r} not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pods = kube::Api::<Pod>::namespaced(c.client.clone(), &r.namespace);
    let selector = format!("app.kubernetes.io/instance={}", r.name);
    while !pods
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .expect("pods")
        .items
        .is_empty()
    {
        assert!(started.elapsed() < LIMIT, "{r}'s pods not gone");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(Box::pin(async {
        // The stack on kube-sim, with a 1-member cluster of its own (left running, as in a fleet).
        let c = RealCluster::start(1, Duration::from_secs(10)).await;
        let (mut bare, mut operator) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let t = Instant::now();
            let etcd = etcd_fixture::EtcdCluster::start(3).await;
            etcd.wait_healthy().await;
            bare.push(t.elapsed());
            drop(etcd);

            let r = ClusterRef { namespace: "default".into(), name: format!("create-{round}") };
            let (available, m) = through_the_operator(&c, &r).await;
            operator.push(available);
            remove(&c, &r).await;
            eprintln!(
                "round {round}: bare {:?}; operator: pods {:?}, etcd running {:?}, etcd healthy {:?}, Available {available:?}, Ready {:?} ({} restarts)",
                bare[round], m.pods, m.running, m.healthy, m.ready, m.restarts
            );
        }
        let (b, o) = (median(bare), median(operator));
        println!(
            "\ncreate a 3-member cluster, median of {ROUNDS} rounds (etcd {})\n",
            etcd_fixture::etcd_binary().display()
        );
        println!("| bare bootstrap to healthy | operator to Available | ratio |");
        println!("| --- | --- | --- |");
        println!(
            "| {:.0} ms | {:.0} ms | {:.2} |",
            b.as_secs_f64() * 1e3,
            o.as_secs_f64() * 1e3,
            o.as_secs_f64() / b.as_secs_f64()
        );
    }));
}
