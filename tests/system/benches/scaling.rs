//! Scaling benchmark: one-member scale up (2 → 3) and scale down (3 → 2)
//! through the ScalingService, against the same change done bare in the
//! same run — etcd's learner add, the StatefulSet scaled, promote retried
//! until in sync (and member remove, StatefulSet shrunk) — on the same
//! kube-sim node with real etcd pods. Prints a table of medians and the
//! ratio; `cargo bench -p system-tests --bench scaling`.

use std::time::{Duration, Instant};

use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Pod};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use system_tests::{median, real::RealCluster};

const ROUNDS: usize = 5;
const LIMIT: Duration = Duration::from_secs(120);

async fn scale_sts(c: &RealCluster, replicas: i32) {
    let api: Api<StatefulSet> = Api::namespaced(c.client.clone(), "default");
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    api.patch_scale("demo", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("scale");
}

async fn pods(c: &RealCluster) -> usize {
    Api::<Pod>::namespaced(c.client.clone(), "default")
        .list(&Default::default())
        .await
        .expect("pods")
        .items
        .len()
}

/// Learner add → pod → promote (retried until in sync) → a healthy voter; no records, no checks.
async fn bare_up(c: &RealCluster) -> Duration {
    let started = Instant::now();
    let mut etcd = c.etcd().await;
    let peer = "http://demo-2.demo.default.svc.cluster.local:2380";
    // etcd refuses changes until members have been connected a while ("unhealthy cluster"): retried, as any client must.
    let added = loop {
        match etcd.member_add([peer], Some(etcd_client::MemberAddOptions::new().with_is_learner())).await {
            Ok(added) => break added,
            Err(e) => {
                assert!(started.elapsed() < LIMIT, "bare add never succeeded: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let id = added.member().expect("member").id();
    // The pod joins the members listed in the ConfigMap: write it as the operator would.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let initial = (0..3)
        .map(|i| format!("demo-{i}=http://demo-{i}.demo.default.svc.cluster.local:2380"))
        .collect::<Vec<_>>()
        .join(",");
    let patch = serde_json::json!({"data": {"ETCD_INITIAL_CLUSTER": initial, "ETCD_INITIAL_CLUSTER_STATE": "existing"}});
    cms.patch("demo-config", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("config");
    scale_sts(c, 3).await;
    while etcd.member_promote(id).await.is_err() {
        assert!(started.elapsed() < LIMIT, "bare promote never succeeded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// Member remove → StatefulSet shrunk → pod gone.
async fn bare_down(c: &RealCluster) -> Duration {
    let started = Instant::now();
    let mut etcd = c.etcd().await;
    let id = c.members().await.iter().find(|m| m.name == "demo-2").expect("demo-2").id;
    while let Err(e) = etcd.member_remove(id).await {
        assert!(started.elapsed() < LIMIT, "bare remove never succeeded: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    scale_sts(c, 2).await;
    while pods(c).await > 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// Untimed: the removed member's claim (its data belongs to a removed member ID) is deleted, so
/// both ways of adding start from the same state.
async fn clear_claim(c: &RealCluster) {
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(c.client.clone(), "default");
    let _ = claims.delete("data-demo-2", &Default::default()).await;
    while claims.get_opt("data-demo-2").await.expect("claim").is_some() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(Box::pin(async {
        let c = RealCluster::start(2, Duration::from_secs(30)).await;
        c.write("bench", 1000).await;
        // Let the new cluster's members settle before anything is timed.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (mut bare_ups, mut bare_downs, mut op_ups, mut op_downs) = (vec![], vec![], vec![], vec![]);
        for round in 0..ROUNDS {
            clear_claim(&c).await;
            bare_ups.push(bare_up(&c).await);
            c.assert_settled(3).await;
            bare_downs.push(bare_down(&c).await);
            c.assert_settled(2).await;

            clear_claim(&c).await;
            let t = Instant::now();
            c.converge("operator scale up", LIMIT, || c.services.scaling.scale_up(&c.r, 3)).await;
            op_ups.push(t.elapsed());
            c.assert_settled(3).await;
            let t = Instant::now();
            c.converge("operator scale down", LIMIT, || c.services.scaling.scale_down(&c.r, 2)).await;
            op_downs.push(t.elapsed());
            c.assert_settled(2).await;
            eprintln!("round {round} done");
        }
        assert_eq!(c.count("bench").await, 1000);
        let row = |name: &str, bare: Vec<Duration>, op: Vec<Duration>| {
            let (b, o) = (median(bare), median(op));
            println!(
                "| {name:<28} | {:>9.0} ms | {:>9.0} ms | {:>5.2} |",
                b.as_secs_f64() * 1000.0,
                o.as_secs_f64() * 1000.0,
                o.as_secs_f64() / b.as_secs_f64()
            );
        };
        println!("\nscaling, one member, median of {ROUNDS} rounds (real etcd pods on kube-sim)\n");
        println!("| change                       | bare etcd    | operator     | ratio |");
        println!("| ---------------------------- | ------------ | ------------ | ----- |");
        row("scale up 2 → 3", bare_ups, op_ups);
        row("scale down 3 → 2", bare_downs, op_downs);
    }));
}
