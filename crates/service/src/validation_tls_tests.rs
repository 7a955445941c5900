//! What the service refuses about spec.tls and spec.auth: specs that bypass the CRD's
//! rules, and changes the running StatefulSet cannot take.

#[test]
fn certificate_secrets_are_not_swapped_under_running_members() {
    use super::immutable_violations;
    use etcd_operator_resource::templates::{BootstrapConfig, TemplateContext, statefulset};
    let build = |extra: &str| {
        let c = crate::fixtures::cluster(&format!("size: 3\nversion: 3.4.23\n{extra}"));
        let ctx = TemplateContext::new(&c, "cluster.local");
        statefulset(&ctx, 3, &BootstrapConfig::new_cluster(&ctx.names, 3)).unwrap()
    };
    let plain = build("");
    let managed = build("tls:\n  operatorManaged: {}");
    let provided = build("tls:\n  provided: {clientSecretName: c, peerSecretName: p, operatorSecretName: o}");
    let refused = |old, new| immutable_violations(old, new).unwrap_err().to_string();
    // On and off go through the security service's move, phase by phase.
    assert!(immutable_violations(&plain, &managed).is_ok());
    assert!(immutable_violations(&managed, &plain).is_ok());
    assert!(refused(&managed, &provided).contains("cannot be swapped for others while TLS is on"));
    assert!(immutable_violations(&managed, &managed).is_ok());
}

#[test]
fn auth_without_client_certificates_is_refused_by_the_service_too() {
    let spec: etcd_operator_api::EtcdClusterSpec = serde_json::from_value(serde_json::json!({
        "size": 3, "version": "3.5.17", "auth": {"enabled": true}
    }))
    .unwrap();
    let v = super::validate_spec(&spec).unwrap_err();
    assert!(v.to_string().contains("spec.auth.enabled: needs spec.tls with clientCertAuth"), "{v}");
}
