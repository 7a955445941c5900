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
fn the_version_a_template_runs_reads_back() {
    let sts = build("size: 3\nversion: 3.4.23");
    let pod = sts.spec.unwrap().template.spec.unwrap();
    assert_eq!(super::etcd_version_of(&pod), Some("3.4.23"));
    assert_eq!(super::etcd_version_of(&Default::default()), None);
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

#[test]
fn over_tls_the_restore_agent_verifies_the_api_with_the_ca_kept_beside_the_cluster() {
    let c = cluster("size: 3\nversion: 3.5.17");
    let bootstrap = BootstrapConfig::new_cluster(&crate::names::ClusterNames::of(&c, "cluster.local"), 3);
    let agent = |ca: Option<&str>| super::super::RestoreAgent {
        endpoint: "https://cluster-service.ops.svc:9090".into(),
        ca: ca.map(str::to_owned),
        ..Default::default()
    };
    let tls = TemplateContext::new(&c, "cluster.local").with_restore_agent(agent(Some("PEM")));
    let pod = statefulset(&tls, 3, &bootstrap).unwrap().spec.unwrap().template.spec.unwrap();
    let init = &pod.init_containers.unwrap()[0];
    assert!(init.args.as_ref().unwrap().contains(&"--ca-file=/var/run/etcd-operator/api-ca/ca.crt".into()));
    let mount = init.volume_mounts.as_ref().unwrap().iter().find(|m| m.name == "operator-api-ca").unwrap();
    assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/var/run/etcd-operator/api-ca", Some(true)));
    let volume = pod.volumes.unwrap().into_iter().find(|v| v.name == "operator-api-ca").unwrap();
    let source = volume.config_map.unwrap();
    assert_eq!((source.name.as_str(), source.optional), ("demo-operator-api-ca", Some(false)));
    let cm = super::super::api_ca::cluster_ca_config_map(&tls).unwrap().unwrap();
    assert_eq!(cm.data.unwrap()["ca.crt"], "PEM");
    assert_eq!(cm.metadata.owner_references.unwrap()[0].name, "demo", "goes with the cluster");

    // Plaintext (--insecure): nothing to mount, no ConfigMap.
    let plain = TemplateContext::new(&c, "cluster.local").with_restore_agent(agent(None));
    let pod = statefulset(&plain, 3, &bootstrap).unwrap().spec.unwrap().template.spec.unwrap();
    assert!(
        !pod.init_containers.unwrap()[0].args.as_ref().unwrap().iter().any(|a| a.starts_with("--ca-file"))
    );
    assert!(super::super::api_ca::cluster_ca_config_map(&plain).unwrap().is_none());
}
