//! Claims in use are protected as in Kubernetes: created with the `kubernetes.io/pvc-protection`
//! finalizer, kept while a scheduled pod uses them, deleted once none does.

mod support;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_in_use_stays_until_its_pod_is_gone() {
    let s = support::start().await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let claim = serde_json::from_value(json!({"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
    .unwrap();
    let created = claims.create(&PostParams::default(), &claim).await.unwrap();
    assert_eq!(created.metadata.finalizers, Some(vec!["kubernetes.io/pvc-protection".to_owned()]));
    // A pod the scheduler placed, using the claim.
    let pod =
        serde_json::from_value(json!({"metadata": {"name": "user"}, "spec": {"nodeName": "kube-sim-node",
        "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}))
        .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();

    claims.delete("data", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let kept = claims.get("data").await.expect("kept while its pod uses it");
    assert!(kept.metadata.deletion_timestamp.is_some());

    pods.delete("user", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    support::eventually("the claim goes with its last user", 5, || async {
        claims.get_opt("data").await.unwrap().is_none()
    })
    .await;
}
