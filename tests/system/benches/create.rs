//! Creating a 3-member cluster: through the operator (CreateCluster, then the lifecycle's
//! UpdateCluster every 100 ms, as its controller answers pod events) until the Available
//! condition is True, against a bare 3-member bootstrap of the same etcd binary (static
//! `--initial-cluster`, on loopback) until every member answers `/health` true, in the same
//! run. The operator's figure holds what a user waits for: its objects, the pods scheduled,
//! each pod's restore agent, etcd's bootstrap, and the health observation that sets Available.
//! Prints medians of 5 rounds and the ratio; `cargo bench -p system-tests --bench create`.

use std::time::{Duration, Instant};

use etcd_operator_api::{ConditionStatus, cluster::CONDITION_AVAILABLE, condition::find};
use etcd_operator_common::ClusterRef;
use system_tests::{median, real::RealCluster};

const ROUNDS: usize = 5;
const LIMIT: Duration = Duration::from_secs(120);

/// CreateCluster, then UpdateCluster until the cluster reports Available.
async fn through_the_operator(c: &RealCluster, r: &ClusterRef) -> Duration {
    let started = Instant::now();
    let lifecycle = &c.services.lifecycle;
    Box::pin(lifecycle.create_cluster(r, Some(system_tests::real::spec(3)))).await.expect("CreateCluster");
    loop {
        let status = Box::pin(lifecycle.update_cluster(r, None)).await.map(|o| o.status);
        let available = status.as_ref().ok().and_then(|s| find(&s.conditions, CONDITION_AVAILABLE).cloned());
        if available.is_some_and(|a| a.status == ConditionStatus::True) {
            return started.elapsed();
        }
        assert!(started.elapsed() < LIMIT, "{r} not Available: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Removes the cluster's objects (forced: the EtcdCluster itself stays, inert, as nothing
/// reconciles it) and waits for its pods to go, so rounds do not overlap (untimed).
async fn remove(c: &RealCluster, r: &ClusterRef) {
    let started = Instant::now();
    while !Box::pin(c.services.lifecycle.delete_cluster(r, true)).await.is_ok_and(|o| o.done) {
        assert!(started.elapsed() < LIMIT, "{r} not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(c.client.clone(), &r.namespace);
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
            operator.push(through_the_operator(&c, &r).await);
            remove(&c, &r).await;
            eprintln!("round {round}: bare {:?}, operator {:?}", bare[round], operator[round]);
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
