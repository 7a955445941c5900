//! The lifecycle controller and the cluster-service together on kube-sim:
//! a new EtcdCluster gets its objects, drift is repaired, and deletion
//! removes everything as the retention policy says.

use std::time::{Duration, Instant};

use etcd_operator_api::EtcdCluster;
use etcd_operator_controller::reconcilers::lifecycle;
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service},
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use system_tests::{Sim, requests::served};

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exists<K>(client: &Client, name: &str) -> bool
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), "default").get_opt(name).await.unwrap().is_some()
}

async fn count<K>(client: &Client) -> usize
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), "default").list(&ListParams::default()).await.unwrap().items.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_repairs_and_cleans_up_a_cluster() {
    let sim = Sim::start().await;
    sim.install_crds().await;

    let endpoint = sim.start_cluster_service().await;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let ctx = sim.controller_context("lifecycle", &endpoint, shutdown).await;
    tokio::spawn(lifecycle::run(ctx.clone()));

    let client = sim.client().await;
    let clusters: Api<EtcdCluster> = Api::namespaced(client.clone(), "default");
    let cluster: EtcdCluster = serde_json::from_value(json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"size": 3, "version": "3.5.17", "pvcRetentionPolicy": {"whenDeleted": "Delete"}}
    }))
    .unwrap();
    clusters.create(&PostParams::default(), &cluster).await.unwrap();

    eventually("the owned objects", || async {
        exists::<StatefulSet>(&client, "demo").await
            && exists::<Service>(&client, "demo").await
            && exists::<Service>(&client, "demo-client").await
            && exists::<ConfigMap>(&client, "demo-config").await
            && exists::<PodDisruptionBudget>(&client, "demo").await
    })
    .await;
    let demo = clusters.get("demo").await.unwrap();
    assert_eq!(demo.finalizers(), ["etcd.operator.dev/cleanup"]);
    eventually("status from the cluster-service", || async {
        clusters.get("demo").await.unwrap().status.is_some_and(|s| s.observed_generation == Some(1))
    })
    .await;
    // kube-sim's StatefulSet controller made the member pods and their claims.
    eventually("pods and claims", || async {
        count::<Pod>(&client).await == 3 && count::<PersistentVolumeClaim>(&client).await == 3
    })
    .await;
    eventually("caches synced", || async { ctx.synced.get() }).await;
    applies_only_what_changed(&client).await;

    // Drift: an owned object deleted by hand comes back.
    Api::<Service>::namespaced(client.clone(), "default")
        .delete("demo-client", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the client Service recreated", || async { exists::<Service>(&client, "demo-client").await })
        .await;

    // Deletion: everything goes, claims too (whenDeleted: Delete), then the object itself.
    clusters.delete("demo", &DeleteParams::default()).await.unwrap();
    eventually("the cluster and all it owned gone", || async {
        !exists::<EtcdCluster>(&client, "demo").await
            && count::<StatefulSet>(&client).await == 0
            && count::<Service>(&client).await == 0
            && count::<ConfigMap>(&client).await == 0
            && count::<PodDisruptionBudget>(&client).await == 0
            && count::<Pod>(&client).await == 0
            && count::<PersistentVolumeClaim>(&client).await == 0
    })
    .await;
}

/// A reconcile that would change nothing applies neither the StatefulSet, its ConfigMap nor the
/// PodDisruptionBudget; what someone else changed (a Service, the StatefulSet) is applied over.
async fn applies_only_what_changed(client: &Client) {
    let applies = |resource: &'static str| served(client, "APPLY", resource, "");
    let (sts, cm, pdb, services) = (
        applies("statefulsets").await,
        applies("configmaps").await,
        applies("poddisruptionbudgets").await,
        applies("services").await,
    );
    let pdb_reads = served(client, "GET", "poddisruptionbudgets", "").await;
    // An owned object's change brings the cluster back: a label of someone else's on a Service.
    let touched = json!({"metadata": {"labels": {"touched-by": "test"}}});
    Api::<Service>::namespaced(client.clone(), "default")
        .patch("demo-client", &PatchParams::default(), &Patch::Merge(&touched))
        .await
        .unwrap();
    // The PodDisruptionBudget is read (it was applied here before) after everything else: that
    // reconcile is past them.
    eventually("a reconcile", || async {
        served(client, "GET", "poddisruptionbudgets", "").await > pdb_reads
    })
    .await;
    assert_eq!(applies("statefulsets").await, sts, "the StatefulSet is as the last apply left it");
    assert_eq!(applies("configmaps").await, cm, "so is the ConfigMap");
    assert_eq!(applies("poddisruptionbudgets").await, pdb, "and the PodDisruptionBudget, read first");
    assert!(applies("services").await > services, "the Service someone else changed is applied again");

    let sets = Api::<StatefulSet>::namespaced(client.clone(), "default");
    let edited = json!({"metadata": {"labels": {"app.kubernetes.io/component": "edited"}}});
    sets.patch("demo", &PatchParams::default(), &Patch::Merge(&edited)).await.unwrap();
    eventually("the hand edit applied over", || async {
        let labels = sets.get("demo").await.unwrap().metadata.labels.unwrap_or_default();
        labels.get("app.kubernetes.io/component").map(String::as_str) == Some("etcd")
    })
    .await;
    assert!(applies("statefulsets").await > sts);
}
