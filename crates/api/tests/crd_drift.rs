//! The committed CRD YAML must be exactly what the types generate.

use std::path::Path;

#[test]
fn committed_crds_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    for (file, crd) in etcd_operator_api::crd::all() {
        let committed = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(
            committed == etcd_operator_api::crd::to_yaml(&crd),
            "deploy/crds/{file} drifted from the Rust types; run `cargo run -p etcd-operator-api --bin crdgen`"
        );
    }
}

#[test]
fn cluster_crd_has_subresources_columns_and_names() {
    let crd = etcd_operator_api::crd::all().remove(0).1;
    let version = &crd.spec.versions[0];
    let sub = version.subresources.as_ref().expect("subresources");
    assert!(sub.status.is_some());
    let scale = sub.scale.as_ref().expect("scale subresource");
    assert_eq!(scale.spec_replicas_path, ".spec.size");
    assert_eq!(scale.status_replicas_path, ".status.currentSize");
    let columns: Vec<_> =
        version.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["Size", "Ready", "Version", "Phase", "Age"]);
    assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["etcd".to_string()][..]));
    assert!(crd.spec.names.categories.iter().flatten().any(|c| c == "etcd-operator"));
}
