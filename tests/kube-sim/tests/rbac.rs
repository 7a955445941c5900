//! RBAC for service accounts: requests with a pod's service account token are
//! allowed only as far as the Roles and ClusterRoles bound to the account
//! grant (verbs, resources and subresources, resource names, a RoleBinding's
//! namespace); the kubeconfig's credentials act as a cluster admin.

mod support;

use k8s_openapi::api::{coordination::v1::Lease, core::v1::ConfigMap};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

fn forbidden(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => s.message,
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

async fn apply(s: &support::Sim, yaml: &str) {
    s.sim.apply_yaml(yaml).unwrap();
}

#[tokio::test]
async fn a_service_account_gets_exactly_what_its_bindings_grant() {
    let s = support::start().await;
    apply(
        &s,
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: read-configmaps}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: read-configmaps}
subjects: [{kind: ServiceAccount, name: reader, namespace: ops}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: one-lease, namespace: prod}
rules:
  - {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [create]}
  - {apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [mine], verbs: [get, update, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-lease, namespace: prod}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: one-lease}
subjects: [{kind: ServiceAccount, name: reader, namespace: ops}]
"#,
    )
    .await;
    // The admin creates what the account will touch.
    let admin: Api<ConfigMap> = Api::namespaced(s.client.clone(), "prod");
    admin
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap())
        .await
        .unwrap();

    let client = s.client_as("ops", "reader").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "prod");
    cms.get("c").await.expect("get is granted cluster-wide");
    assert_eq!(cms.list(&ListParams::default()).await.unwrap().items.len(), 1);
    let denied = forbidden(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "d"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        denied,
        "configmaps is forbidden: User \"system:serviceaccount:ops:reader\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"prod\""
    );

    // The Role: any Lease may be created, only "mine" read and changed, and only in prod.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "prod");
    for name in ["mine", "theirs"] {
        leases
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
            )
            .await
            .unwrap();
    }
    leases.get("mine").await.expect("named in resourceNames");
    let patch = Patch::Merge(json!({"spec": {"holderIdentity": "me"}}));
    leases.patch("mine", &PatchParams::default(), &patch).await.expect("patch of its own Lease");
    assert!(forbidden(leases.get("theirs").await.unwrap_err()).contains("leases \"theirs\" is forbidden"));
    forbidden(leases.list(&ListParams::default()).await.unwrap_err());
    let elsewhere: Api<Lease> = Api::namespaced(client, "default");
    let e = forbidden(
        elsewhere
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "mine"}})).unwrap(),
            )
            .await
            .unwrap_err(),
    );
    assert!(e.contains("in the namespace \"default\""), "{e}");

    // An account without bindings can do nothing; the admin everything.
    let nobody: Api<ConfigMap> = Api::namespaced(s.client_as("ops", "nobody").await, "prod");
    forbidden(nobody.get("c").await.unwrap_err());
    admin.delete("c", &Default::default()).await.unwrap();
}

#[tokio::test]
async fn subresources_are_granted_separately() {
    let s = support::start().await;
    apply(
        &s,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: status-only}
rules:
  - {apiGroups: [""], resources: [configmaps/status], verbs: [patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: status-only}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: status-only}
subjects: [{kind: ServiceAccount, name: writer, namespace: default}]
"#,
    )
    .await;
    let admin: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    admin
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(s.client_as("default", "writer").await, "default");
    let patch = Patch::Merge(json!({"data": {"a": "b"}}));
    let e = forbidden(cms.patch("c", &PatchParams::default(), &patch).await.unwrap_err());
    assert!(e.contains("cannot patch resource \"configmaps\""), "{e}");
}

#[tokio::test]
async fn an_apply_that_creates_needs_create_and_one_that_updates_only_patch() {
    let s = support::start().await;
    apply(
        &s,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: patcher, namespace: default}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: patcher, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: patcher}
subjects: [{kind: ServiceAccount, name: patcher, namespace: default}]
"#,
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(s.client_as("default", "patcher").await, "default");
    let cm =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}});
    let ssa = PatchParams::apply("test");
    let e = forbidden(cms.patch("applied", &ssa, &Patch::Apply(&cm)).await.unwrap_err());
    assert!(e.contains("cannot create resource \"configmaps\""), "{e}");
    let admin: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    admin.patch("applied", &ssa, &Patch::Apply(&cm)).await.unwrap();
    let changed =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "2"}});
    cms.patch("applied", &ssa, &Patch::Apply(&changed))
        .await
        .expect("patch is enough for an existing object");
}
