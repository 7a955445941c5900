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
