//! The health controller probes every cluster through the cluster-service on
//! kube-sim and the status says what it found (no etcd answers: no pods run).

use std::time::{Duration, Instant};

use etcd_operator_api::EtcdCluster;
use etcd_operator_controller::reconcilers::health;
use kube::{Api, api::PostParams};
use serde_json::json;
use system_tests::Sim;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cluster_is_probed_and_its_status_recorded() {
    let sim = Sim::start().await;
    sim.install_crds().await;
    let endpoint = sim.start_cluster_service().await;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let ctx = sim.controller_context("health", &endpoint, shutdown).await;
    tokio::spawn(health::run(ctx.clone()));

    let clusters: Api<EtcdCluster> = Api::namespaced(sim.client().await, "default");
    for name in ["a", "b"] {
        let c: EtcdCluster = serde_json::from_value(json!({
            "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"size": 3, "version": "3.5.17"}
        }))
        .unwrap();
        clusters.create(&PostParams::default(), &c).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let probed = clusters
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|c| {
                // Nothing was created for them (the lifecycle controller is not running): Pending, said so.
                c.status.as_ref().is_some_and(|s| {
                    s.observed_generation == Some(1) && format!("{:?}", s.phase) == "Pending"
                })
            })
            .count();
        if probed == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "not every cluster was probed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Metrics are counted when a reconcile returns, just after its status write.
    while ctx.metrics.count("health", "ok") < 2 {
        assert!(Instant::now() < deadline, "every probe was counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A probe's look starts from the cluster-service's watch cache once it holds what the service
/// last read or wrote, but never from a generation older than the caller saw: a caller that saw
/// a newer spec is answered from a live read, and a bad generation is refused naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_reads_the_watch_cache_only_as_new_as_the_caller_saw() {
    use etcd_operator_proto::v1alpha1 as pb;
    let sim = Sim::start().await;
    sim.install_crds().await;
    let endpoint = sim.start_cluster_service().await;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let ctx = sim.controller_context("health", &endpoint, shutdown).await;
    let client = sim.client().await;
    let clusters: Api<EtcdCluster> = Api::namespaced(client.clone(), "default");
    let c: EtcdCluster = serde_json::from_value(json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
        "metadata": {"name": "c", "namespace": "default"}, "spec": {"size": 3, "version": "3.5.17"}
    }))
    .unwrap();
    clusters.create(&PostParams::default(), &c).await.unwrap();
    let probe = |seen_generation: i64| {
        let ctx = ctx.clone();
        async move {
            let r = pb::ClusterRef { namespace: "default".into(), name: "c".into() };
            let req = pb::CheckHealthRequest { cluster: Some(r), seen_generation };
            ctx.rpc
                .call("HealthService", "CheckHealth", |c| {
                    let req = c.request(req.clone());
                    async move { c.health().check_health(req).await }
                })
                .await
        }
    };
    let gets = || async { system_tests::requests::by_kind(&client).await.get("GET etcdclusters").copied() };

    // The first probe reads the cluster (nothing known yet) and records its status; once the
    // watch has delivered that write, probes start from the cache.
    probe(1).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = gets().await;
        probe(1).await.unwrap();
        if gets().await == before {
            break;
        }
        assert!(Instant::now() < deadline, "every probe read the cluster from the API server");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A caller that saw generation 2 (not in the cache, nor on the server yet) is answered live.
    let before = gets().await.unwrap_or_default();
    probe(2).await.unwrap();
    assert!(gets().await.unwrap_or_default() > before, "a newer generation than cached is read live");

    // The spec changes; a probe by a caller that saw it answers for it, however far the cache is.
    let patch = json!({"spec": {"size": 5}});
    clusters.patch("c", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    let out = probe(2).await.unwrap();
    assert_eq!(out.status.unwrap().generation, 2, "the answer is about the spec the caller saw");

    let refused = probe(-1).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("seen_generation"), "{}", refused.message());
}
