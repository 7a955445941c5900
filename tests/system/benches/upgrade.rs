//! Upgrade benchmark: a 3-member cluster from etcd 3.4.23 to a 3.5 tag (the
//! 3.5.1 binary on kube-sim), through the operator (spec.version changed, the
//! lifecycle applies the template, the roll converges, until etcd reports
//! cluster version 3.5), against the same binaries swapped by hand in the
//! same run: the StatefulSet's template patched, then each pod deleted in
//! turn (followers first, leadership moved off the last one before it goes),
//! each waited for until ready, until the same cluster version.
//! `cargo bench -p system-tests --bench upgrade`.

use std::time::{Duration, Instant};

use etcd_operator_api::EtcdCluster;
use etcd_operator_resource::templates::DEFAULT_IMAGE_REPOSITORY;
use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Pod};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use system_tests::{median, pods, real::RealCluster};

const ROUNDS: usize = 3;
const LIMIT: Duration = Duration::from_secs(180);
const TARGET: &str = "3.5.7";

/// The cluster version etcd's leader reports (`3.5.0`), by `/version` on demo-0.
async fn cluster_version(c: &RealCluster) -> Option<String> {
    let url = c.member_endpoint("demo", "demo-0").await;
    let options = etcd_operator_client::etcd::EtcdOptions::default();
    etcd_operator_client::etcd::versions(&url, &options).await.ok().map(|v| v.cluster)
}

async fn until_cluster_version(c: &RealCluster, started: Instant) {
    while cluster_version(c).await.as_deref() != Some("3.5.0") {
        assert!(started.elapsed() < LIMIT, "cluster version never reached 3.5");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pod's UID now, if it exists and is not going.
async fn uid(c: &RealCluster, pod: &str) -> Option<String> {
    let p = Api::<Pod>::namespaced(c.client.clone(), "default").get_opt(pod).await.ok()??;
    p.metadata.deletion_timestamp.is_none().then(|| p.metadata.uid.unwrap_or_default())
}

/// By hand: the template patched (image and the agent's version), each pod deleted and waited
/// for in turn, followers first and the leader last after leadership moved.
async fn bare(c: &RealCluster) -> Duration {
    let started = Instant::now();
    let sts = Api::<StatefulSet>::namespaced(c.client.clone(), "default");
    let mut template = sts.get("demo").await.expect("sts");
    let pod = template.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    for container in &mut pod.containers {
        container.image = Some(format!("{DEFAULT_IMAGE_REPOSITORY}:v{TARGET}"));
    }
    for arg in pod.init_containers.iter_mut().flatten().flat_map(|c| c.args.iter_mut().flatten()) {
        if arg.starts_with("--etcd-version=") {
            *arg = format!("--etcd-version={TARGET}");
        }
    }
    template.metadata.managed_fields = None;
    sts.replace("demo", &Default::default(), &template).await.expect("template replaced");
    let leader = {
        let id = c.etcd().await.status().await.expect("status").leader();
        c.members().await.into_iter().find(|m| m.id == id).expect("leader").name
    };
    let mut order: Vec<String> = ["demo-2", "demo-1", "demo-0"].into_iter().map(str::to_owned).collect();
    order.retain(|m| *m != leader);
    order.push(leader.clone());
    let pods_api = Api::<Pod>::namespaced(c.client.clone(), "default");
    for (i, member) in order.iter().enumerate() {
        if *member == leader {
            c.lead_from(&order[0]).await;
        }
        let before = uid(c, member).await;
        pods_api.delete(member, &DeleteParams::default()).await.expect("pod deleted");
        while uid(c, member).await.is_none_or(|u| Some(u) == before) {
            assert!(started.elapsed() < LIMIT, "{member} never came back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pods::all_ready(&c.client, "demo", 3).await;
        eprintln!("bare: {member} restarted ({}/3)", i + 1);
    }
    until_cluster_version(c, started).await;
    started.elapsed()
}

/// Through the operator: spec.version changed, applied by the lifecycle, rolled by the roll.
async fn operator(c: &RealCluster) -> Duration {
    let started = Instant::now();
    let clusters = Api::<EtcdCluster>::namespaced(c.client.clone(), "default");
    let patch = serde_json::json!({"spec": {"version": TARGET}});
    clusters.patch("demo", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("version");
    Box::pin(c.services.lifecycle.update_cluster(&c.r, None)).await.expect("UpdateCluster");
    c.converge("the roll", LIMIT, || c.services.roll.roll(&c.r)).await;
    until_cluster_version(c, started).await;
    started.elapsed()
}

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(Box::pin(async {
        let (mut bares, mut ops) = (vec![], vec![]);
        for round in 0..ROUNDS {
            // A fresh 3.4.23 cluster for each (no way back from 3.5), settled before timing.
            for by_hand in [true, false] {
                let c = RealCluster::start(3, Duration::from_secs(30)).await;
                c.write("bench", 1000).await;
                pods::all_ready(&c.client, "demo", 3).await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                let took = if by_hand { bare(&c).await } else { operator(&c).await };
                assert_eq!(c.count("bench").await, 1000, "every key kept");
                if by_hand { bares.push(took) } else { ops.push(took) }
            }
            eprintln!("round {round} done");
        }
        let (b, o) = (median(bares), median(ops));
        println!("\nupgrade of 3 members 3.4.23 → {TARGET}, median of {ROUNDS} rounds (real etcd pods on kube-sim)\n");
        println!("| change                       | by hand      | operator     | ratio |");
        println!("| ---------------------------- | ------------ | ------------ | ----- |");
        println!(
            "| {:<28} | {:>9.0} ms | {:>9.0} ms | {:>5.2} |",
            format!("3.4.23 → {TARGET}, 3 members"),
            b.as_secs_f64() * 1000.0,
            o.as_secs_f64() * 1000.0,
            o.as_secs_f64() / b.as_secs_f64()
        );
    }));
}
