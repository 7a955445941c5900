use super::*;
use crate::templates::{InitialClusterState, fixtures::cluster};

fn build(spec: &str) -> StatefulSet {
    let c = cluster(spec);
    let bootstrap = BootstrapConfig {
        initial_members: vec!["demo-0".into(), "demo-1".into(), "demo-2".into()],
        state: InitialClusterState::New,
    };
    statefulset(&TemplateContext::new(&c, "cluster.local"), 3, &bootstrap).unwrap()
}

#[test]
fn persistent_members_get_a_claim_each_and_the_retention_policy() {
    let sts = build(
        "size: 3\nversion: 3.5.17\nstorage:\n  size: 20Gi\n  storageClassName: fast\npvcRetentionPolicy:\n  whenDeleted: Delete",
    );
    let spec = sts.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.service_name.as_deref(), Some("demo"));
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    let claim = &spec.volume_claim_templates.unwrap()[0];
    let claim_spec = claim.spec.as_ref().unwrap();
    assert_eq!(claim_spec.storage_class_name.as_deref(), Some("fast"));
    assert_eq!(
        claim_spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"],
        Quantity("20Gi".into())
    );
    let retention = spec.persistent_volume_claim_retention_policy.unwrap();
    assert_eq!(retention.when_deleted.as_deref(), Some("Delete"));
    assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
    assert!(spec.template.spec.unwrap().volumes.is_none());
}

#[test]
fn template_hash_follows_the_pod_template_only() {
    let hash = |sts: StatefulSet| sts.metadata.annotations.unwrap()[TEMPLATE_HASH_ANNOTATION].clone();
    let base = hash(build("size: 3\nversion: 3.5.17"));
    assert_eq!(base, hash(build("size: 5\nversion: 3.5.17")), "size is not part of the pod template");
    assert_ne!(base, hash(build("size: 3\nversion: 3.5.18")));
    assert_ne!(base, hash(build("size: 3\nversion: 3.5.17\netcd:\n  snapshotCount: 5000")));
}

#[test]
fn ephemeral_members_use_a_sized_empty_dir() {
    let sts = build("size: 1\nversion: 3.4.23\nstorage:\n  type: Ephemeral\n  size: 1Gi");
    let spec = sts.spec.unwrap();
    assert!(spec.volume_claim_templates.is_none());
    assert!(spec.persistent_volume_claim_retention_policy.is_none());
    let volumes = spec.template.spec.unwrap().volumes.unwrap();
    assert_eq!(volumes[0].empty_dir.as_ref().unwrap().size_limit, Some(Quantity("1Gi".into())));
}

#[test]
fn container_advertises_dns_urls_and_reads_the_config_map() {
    let sts = build("size: 3\nversion: 3.5.17");
    let pod = sts.spec.unwrap().template.spec.unwrap();
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("gcr.io/etcd-development/etcd:v3.5.17"));
    let args = c.args.as_ref().unwrap();
    assert!(
        args.contains(
            &"--initial-advertise-peer-urls=http://$(POD_NAME).demo.$(POD_NAMESPACE).svc.cluster.local:2380"
                .to_string()
        )
    );
    assert_eq!(c.env_from.as_ref().unwrap()[0].config_map_ref.as_ref().unwrap().name, "demo-config");
    assert_eq!(
        c.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap().path.as_deref(),
        Some("/readyz")
    );
    assert!(pod.affinity.unwrap().pod_anti_affinity.is_some());
}

#[test]
fn user_overrides_apply_but_operator_labels_win() {
    let sts = build(
        "size: 3\nversion: 3.5.17\nimage: registry.local/etcd:3.5.17\npodTemplate:\n  labels:\n    team: db\n    app.kubernetes.io/instance: hijack\n  priorityClassName: critical\n  nodeSelector:\n    disk: ssd",
    );
    let template = sts.spec.unwrap().template;
    let labels = template.metadata.unwrap().labels.unwrap();
    assert_eq!(labels["team"], "db");
    assert_eq!(labels["app.kubernetes.io/instance"], "demo");
    let pod = template.spec.unwrap();
    assert_eq!(pod.priority_class_name.as_deref(), Some("critical"));
    assert_eq!(pod.node_selector.unwrap()["disk"], "ssd");
    assert_eq!(pod.containers[0].image.as_deref(), Some("registry.local/etcd:3.5.17"));
}

#[test]
fn objects_without_uid_are_refused() {
    let mut c = cluster("size: 1\nversion: 3.5.17");
    c.metadata.uid = None;
    let bootstrap = BootstrapConfig { initial_members: vec![], state: InitialClusterState::New };
    let err = statefulset(&TemplateContext::new(&c, "cluster.local"), 1, &bootstrap).unwrap_err();
    assert!(err.to_string().contains("no uid"));
}
