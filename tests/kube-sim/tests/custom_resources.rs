//! CustomResourceDefinitions become served resources, validated by their
//! structural schema and CEL rules, with status and scale subresources.

mod support;

use etcd_operator_api::{EtcdCluster, crd};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

async fn with_crds() -> support::Sim {
    let s = support::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    for (_, crd) in crd::all() {
        let created = crds.create(&PostParams::default(), &crd).await.unwrap();
        let established = created
            .status
            .unwrap()
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established);
    }
    s
}

fn cluster(spec: serde_json::Value) -> EtcdCluster {
    serde_json::from_value(json!({"apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster", "metadata": {"name": "demo"}, "spec": spec})).unwrap()
}

fn invalid(err: kube::Error) -> String {
    match err {
        kube::Error::Api(s) if s.code == 422 => s.message,
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn schema_bounds_and_cel_rules_are_enforced_with_defaults() {
    let s = with_crds().await;
    let api: Api<EtcdCluster> = Api::namespaced(s.client.clone(), "default");
    let msg = invalid(
        api.create(&PostParams::default(), &cluster(json!({"size": 10, "version": "3.5.17"})))
            .await
            .unwrap_err(),
    );
    assert!(msg.contains("spec.size") && msg.contains("less than or equal to 9"), "{msg}");
    let msg = invalid(
        api.create(&PostParams::default(), &cluster(json!({"size": 3, "version": "3.5.1"})))
            .await
            .unwrap_err(),
    );
    assert!(msg.contains("can lose committed writes"), "{msg}");

    let created =
        api.create(&PostParams::default(), &cluster(json!({"size": 3, "version": "3.5.17"}))).await.unwrap();
    assert_eq!(created.spec.storage.size, "8Gi", "schema defaults are applied");
    assert_eq!(created.metadata.generation, Some(1));

    let msg = invalid(
        api.patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"storage": {"storageClassName": "fast"}}})),
        )
        .await
        .unwrap_err(),
    );
    assert!(msg.contains("storageClassName is immutable"), "{msg}");
    let scaled = api
        .patch("demo", &PatchParams::default(), &Patch::Merge(json!({"spec": {"size": 5}})))
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
}

#[tokio::test]
async fn status_and_scale_subresources_of_a_custom_resource() {
    let s = with_crds().await;
    let api: Api<EtcdCluster> = Api::namespaced(s.client.clone(), "default");
    api.create(&PostParams::default(), &cluster(json!({"size": 3, "version": "3.5.17"}))).await.unwrap();
    let status = json!({"apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster", "status": {"phase": "Running", "currentSize": 3, "readyMembers": 3, "selector": "app=etcd"}});
    let after = api
        .patch_status("demo", &PatchParams::apply("etcd-operator/lifecycle").force(), &Patch::Apply(status))
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(1), "status writes do not bump the generation");
    assert_eq!(after.status.as_ref().unwrap().current_size, 3);
    let scale = api.get_scale("demo").await.unwrap();
    assert_eq!((scale.spec.unwrap().replicas, scale.status.as_ref().unwrap().replicas), (Some(3), 3));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=etcd"));
    api.patch_scale("demo", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 5}})))
        .await
        .unwrap();
    assert_eq!(api.get("demo").await.unwrap().spec.size, 5);
    let msg = invalid(
        api.patch_scale("demo", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 12}})))
            .await
            .unwrap_err(),
    );
    assert!(msg.contains("spec.size"), "scale goes through the same validation: {msg}");
}

#[tokio::test]
async fn deleting_a_crd_stops_serving_it() {
    let s = with_crds().await;
    let api: Api<EtcdCluster> = Api::namespaced(s.client.clone(), "default");
    api.create(&PostParams::default(), &cluster(json!({"size": 1, "version": "3.5.17"}))).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    crds.delete("etcdclusters.etcd.operator.dev", &DeleteParams::default()).await.unwrap();
    let err = api.get("demo").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err:?}");
    assert!(
        crds.list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|c| c.name_any() != "etcdclusters.etcd.operator.dev")
    );
}

#[tokio::test]
async fn a_dry_run_is_validated_by_the_schema_and_cel_and_a_crds_dry_run_serves_nothing() {
    let s = with_crds().await;
    let api: Api<EtcdCluster> = Api::namespaced(s.client.clone(), "default");
    let dry = PostParams { dry_run: true, ..Default::default() };
    let msg =
        invalid(api.create(&dry, &cluster(json!({"size": 10, "version": "3.5.17"}))).await.unwrap_err());
    assert!(msg.contains("spec.size") && msg.contains("less than or equal to 9"), "{msg}");
    let answered = api.create(&dry, &cluster(json!({"size": 3, "version": "3.5.17"}))).await.unwrap();
    assert_eq!(answered.spec.size, 3);
    assert!(api.get_opt("demo").await.unwrap().is_none(), "never stored");

    // A CRD's dry run is checked and answered established, and serves nothing.
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    crds.delete("etcdclusters.etcd.operator.dev", &DeleteParams::default()).await.unwrap();
    let (_, crd) =
        crd::all().into_iter().find(|(_, c)| c.name_any() == "etcdclusters.etcd.operator.dev").unwrap();
    let answered = crds.create(&dry, &crd).await.unwrap();
    assert!(answered.status.is_some_and(|s| s.conditions.is_some()));
    let err = api.list(&Default::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err:?}");
}

#[tokio::test]
async fn manifests_are_applied_at_start_crds_first() {
    let s = support::start().await;
    let mut yaml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/etcdcluster.yaml"))
            .unwrap();
    for (_, crd) in crd::all() {
        yaml.push_str(&crd::to_yaml(&crd));
    }
    assert_eq!(s.sim.apply_yaml(&yaml).unwrap(), 4);
    let api: Api<EtcdCluster> = Api::namespaced(s.client.clone(), "default");
    assert_eq!(api.get("demo").await.unwrap().spec.size, 3);
    assert!(
        s.sim
            .apply_yaml("apiVersion: v1\nkind: Nonsense\nmetadata: {name: x}\n")
            .unwrap_err()
            .contains("not served")
    );
}
