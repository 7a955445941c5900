//! The built-in StatefulSet controller. Pods are marked ready by the test,
//! standing in for the node agent.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{PersistentVolumeClaim, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

fn sts(policy: &str, retention: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "replicas": 3, "serviceName": "db", "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "etcd:1"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": retention}
        }
    }))
    .unwrap()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut n: Vec<String> =
        api.list(&ListParams::default()).await.unwrap().items.iter().map(|o| o.name_any()).collect();
    n.sort();
    n
}

/// Marks every pending pod ready, as a node agent would.
async fn make_ready(pods: &Api<Pod>) {
    for p in pods.list(&ListParams::default()).await.unwrap() {
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready"));
        if !ready {
            let status =
                json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
            let _ = pods.patch_status(&p.name_any(), &PatchParams::default(), &Patch::Merge(status)).await;
        }
    }
}

#[tokio::test]
async fn parallel_pods_claims_scale_down_and_status() {
    let s = support::start().await;
    let sets: Api<StatefulSet> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), "default");
    sets.create(&PostParams::default(), &sts("Parallel", "Delete")).await.unwrap();
    eventually("three pods at once", || async { names(&pods).await == ["db-0", "db-1", "db-2"] }).await;
    assert_eq!(names(&pvcs).await, ["data-db-0", "data-db-1", "data-db-2"]);
    let p0 = pods.get("db-0").await.unwrap();
    let spec = p0.spec.unwrap();
    assert_eq!((spec.hostname.as_deref(), spec.subdomain.as_deref()), (Some("db-0"), Some("db")));
    assert_eq!(spec.volumes.unwrap()[0].persistent_volume_claim.as_ref().unwrap().claim_name, "data-db-0");
    assert_eq!(p0.metadata.owner_references.unwrap()[0].kind, "StatefulSet");

    make_ready(&pods).await;
    eventually("status counts ready pods", || async {
        sets.get("db")
            .await
            .unwrap()
            .status
            .is_some_and(|st| st.ready_replicas == Some(3) && st.replicas == 3)
    })
    .await;

    sets.patch_scale("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}})))
        .await
        .unwrap();
    eventually("scaled down from the highest ordinal", || async { names(&pods).await == ["db-0"] }).await;
    eventually("whenScaled=Delete removes their claims", || async { names(&pvcs).await == ["data-db-0"] })
        .await;
}

#[tokio::test]
async fn ordered_ready_creates_one_pod_after_another_and_retains_claims() {
    let s = support::start().await;
    let sets: Api<StatefulSet> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), "default");
    sets.create(&PostParams::default(), &sts("OrderedReady", "Retain")).await.unwrap();
    eventually("pod 0", || async { names(&pods).await == ["db-0"] }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(names(&pods).await, ["db-0"], "pod 1 waits for pod 0 to be ready");
    for expected in [vec!["db-0", "db-1"], vec!["db-0", "db-1", "db-2"]] {
        make_ready(&pods).await;
        eventually("the next ordinal", || async { names(&pods).await == expected }).await;
    }
    sets.patch_scale("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 0}})))
        .await
        .unwrap();
    eventually("all pods gone", || async { names(&pods).await.is_empty() }).await;
    assert_eq!(names(&pvcs).await.len(), 3, "whenScaled=Retain keeps the claims");
}

#[tokio::test]
async fn rolling_update_replaces_one_pod_at_a_time_from_the_top_honouring_partition() {
    let s = support::start().await;
    let sets: Api<StatefulSet> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    sets.create(&PostParams::default(), &sts("Parallel", "Retain")).await.unwrap();
    eventually("three pods", || async { names(&pods).await.len() == 3 }).await;
    make_ready(&pods).await;
    let old = sets.get("db").await.unwrap();
    eventually("settled", || async {
        sets.get("db").await.unwrap().status.is_some_and(|s| s.ready_replicas == Some(3))
    })
    .await;
    let old_rev = old.status.and_then(|s| s.update_revision).unwrap_or_default();

    let change = json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
                                 "template": {"spec": {"containers": [{"name": "c", "image": "etcd:2"}]}}}});
    sets.patch("db", &PatchParams::default(), &Patch::Strategic(change)).await.unwrap();
    let revision = |p: &Pod| p.labels().get("controller-revision-hash").cloned().unwrap_or_default();
    let mut order = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while order.len() < 2 {
        assert!(Instant::now() < deadline, "rollout stalled after {order:?}");
        let current = pods.list(&ListParams::default()).await.unwrap().items;
        // Never more than one pod missing or unready during the rollout.
        let ready = current
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some())
            .count();
        assert!(ready + 1 >= 3 || current.len() + 1 >= 3);
        for p in &current {
            if revision(p) != old_rev && !order.contains(&p.name_any()) {
                order.push(p.name_any());
            }
        }
        make_ready(&pods).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(order, ["db-2", "db-1"], "highest ordinal first");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(revision(&pods.get("db-0").await.unwrap()), old_rev, "below the partition stays");
    let status = sets.get("db").await.unwrap().status.unwrap();
    assert_eq!(status.updated_replicas, Some(2));
    assert_ne!(status.update_revision, status.current_revision);
}
