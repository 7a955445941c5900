//! Snapshot tests of the generated manifests. The committed YAML under
//! `tests/snapshots/` is also validated against the Kubernetes schemas by
//! `scripts/check-manifests.sh`. Regenerate with `UPDATE_SNAPSHOTS=1`.

use std::path::PathBuf;

use etcd_operator_api::EtcdCluster;
use etcd_operator_resource::{
    names::ClusterNames,
    templates::{
        BootstrapConfig, TemplateContext, client_service, config_map, peer_service, pod_disruption_budget,
        statefulset,
    },
};
use serde::Serialize;

const CLUSTER: &str = r#"
apiVersion: etcd.operator.dev/v1alpha1
kind: EtcdCluster
metadata:
  name: demo
  namespace: prod
  uid: 0d7f0b52-4a4e-4f8e-9f55-2f6a0c3f5a11
  generation: 1
spec:
  size: 3
  version: 3.5.17
  storage:
    size: 20Gi
    storageClassName: fast
  resources:
    requests:
      cpu: 500m
      memory: 1Gi
  podTemplate:
    labels:
      team: storage
    tolerations:
      - key: dedicated
        operator: Equal
        value: etcd
        effect: NoSchedule
    priorityClassName: system-cluster-critical
  etcd:
    quotaBackendBytes: 4294967296
    autoCompactionRetention: 30m
  pvcRetentionPolicy:
    whenDeleted: Delete
"#;

fn check(name: &str, object: &impl Serialize) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.yaml"));
    let rendered = format!(
        "# Snapshot of the resource layer's output; regenerate with UPDATE_SNAPSHOTS=1 cargo test -p etcd-operator-resource --test snapshots\n{}",
        serde_yaml_ng::to_string(object).unwrap()
    );
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    pretty_assertions::assert_eq!(
        committed,
        rendered,
        "{name} changed; review and regenerate with UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn manifests_of_a_three_member_cluster() {
    let cluster: EtcdCluster = serde_yaml_ng::from_str(CLUSTER).unwrap();
    let ctx = TemplateContext::new(&cluster, "cluster.local");
    let bootstrap = BootstrapConfig::new_cluster(&ClusterNames::of(&cluster, "cluster.local"), 3);
    check("statefulset", &statefulset(&ctx, 3, &bootstrap).unwrap());
    check("configmap", &config_map(&ctx, &bootstrap).unwrap());
    check("service-peer", &peer_service(&ctx).unwrap());
    check("service-client", &client_service(&ctx).unwrap());
    check("poddisruptionbudget", &pod_disruption_budget(&ctx, 3).unwrap());
}
