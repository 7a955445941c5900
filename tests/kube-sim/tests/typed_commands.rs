//! kubectl's typed commands, which send protobuf bodies as they do to any Kubernetes API
//! server: a user's first namespace, secret and config map, and the rest a tutorial creates.

mod support;

use support::kubectl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_commands_send_protobuf_and_work() {
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| kubectl(&s, home.path(), args, None);

    for (args, said) in [
        (vec!["create", "namespace", "team-b"], "namespace/team-b created"),
        (
            vec!["-n", "team-b", "create", "secret", "generic", "s", "--from-literal=password=hunter2"],
            "secret/s created",
        ),
        (
            vec!["-n", "team-b", "create", "configmap", "c", "--from-literal=a=b", "--from-literal=empty="],
            "configmap/c created",
        ),
        (
            vec!["-n", "team-b", "create", "deployment", "d", "--image=busybox", "--replicas=0"],
            "deployment.apps/d created",
        ),
        (vec!["-n", "team-b", "create", "serviceaccount", "reader"], "serviceaccount/reader created"),
        (vec!["-n", "team-b", "create", "role", "r", "--verb=get", "--resource=pods"], "created"),
        (
            vec!["-n", "team-b", "create", "rolebinding", "rb", "--role=r", "--serviceaccount=team-b:reader"],
            "created",
        ),
    ] {
        let (ok, out) = run(&args);
        assert!(ok && out.contains(said), "kubectl {args:?}: {out}");
    }
    // What was sent arrived whole: bytes, empty values, an explicit zero.
    let (_, out) = run(&["-n", "team-b", "get", "secret", "s", "-o", "jsonpath={.data.password}"]);
    assert_eq!(out, "aHVudGVyMg==");
    let (_, out) = run(&["-n", "team-b", "get", "configmap", "c", "-o", "json"]);
    let cm: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cm["data"], serde_json::json!({"a": "b", "empty": ""}));
    let (_, out) = run(&["-n", "team-b", "get", "deployment", "d", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(out, "0");
    // kubectl auth can-i sends a SelfSubjectAccessReview in protobuf too, here as the account.
    let (ok, out) =
        run(&["auth", "can-i", "get", "pods", "-n", "team-b", "--as=system:serviceaccount:team-b:reader"]);
    assert!(ok && out.trim() == "yes", "{out}");
    let (ok, out) =
        run(&["auth", "can-i", "delete", "pods", "-n", "team-b", "--as=system:serviceaccount:team-b:reader"]);
    assert!(!ok && out.starts_with("no"), "{out}");
    // The impersonated identity is the one RBAC judges; one without the right may not impersonate.
    let (ok, out) = run(&["-n", "team-b", "get", "secrets", "--as=system:serviceaccount:team-b:reader"]);
    assert!(
        !ok && out.contains("User \"system:serviceaccount:team-b:reader\" cannot list resource \"secrets\""),
        "{out}"
    );
    let (_, token) = run(&["-n", "team-b", "create", "token", "reader"]);
    let token = format!("--token={}", token.trim());
    let (ok, out) =
        run(&[&token, "-n", "team-b", "get", "pods", "--as=kubernetes-admin", "--as-group=system:masters"]);
    assert!(!ok && out.contains("cannot impersonate resource \"users\""), "{out}");
    // `all` is a category of the kinds Kubernetes puts in it.
    let (ok, out) = run(&["-n", "team-b", "get", "all", "-o", "name"]);
    assert!(ok && out.contains("deployment.apps/d"), "{out}");
    let (ok, out) = run(&["delete", "namespace", "team-b"]);
    assert!(ok && out.contains("deleted"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_resource_has_no_protobuf_form() {
    let s = support::start().await;
    let crds: String =
        etcd_operator_api::crd::all().iter().map(|(_, crd)| etcd_operator_api::crd::to_yaml(crd)).collect();
    s.sim.apply_yaml(&crds).unwrap();
    let code = post_protobuf_cluster(&s).await;
    assert_eq!(code, 415, "kube-apiserver answers 415 too");
}

/// POSTs a protobuf body to the EtcdCluster collection with kube-rs's raw request.
async fn post_protobuf_cluster(s: &support::Sim) -> u16 {
    let request = http::Request::post("/apis/etcd.operator.dev/v1alpha1/namespaces/default/etcdclusters")
        .header("content-type", "application/vnd.kubernetes.protobuf")
        .body(b"k8s\0".to_vec())
        .unwrap();
    match s.client.request::<serde_json::Value>(request).await {
        Err(kube::Error::Api(e)) => e.code,
        other => panic!("expected a refusal: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_prints_the_columns_kubernetes_prints() {
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, home.path(), args, stdin);
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  replicas: 2\n  serviceName: db\n  podManagementPolicy: Parallel\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: etcd, image: etcd}]}\n  volumeClaimTemplates: [{metadata: {name: data}, spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}]\n";
    assert!(run(&["apply", "-f", "-"], Some(sts)).0);
    assert!(run(&["create", "configmap", "c", "--from-literal=a=b", "--from-literal=c=d"], None).0);
    support::eventually("the pods", 5, || async {
        run(&["get", "pods", "-o", "name"], None).1.lines().count() == 2
    })
    .await;
    let header =
        |out: &str| out.lines().next().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    let (_, out) = run(&["get", "pods"], None);
    assert_eq!(header(&out), "NAME READY STATUS RESTARTS AGE", "{out}");
    assert!(out.contains("db-0   0/1     Pending   0"), "{out}");
    let (_, out) = run(&["get", "pods", "-o", "wide"], None);
    assert_eq!(header(&out), "NAME READY STATUS RESTARTS AGE IP NODE", "{out}");
    let (_, out) = run(&["get", "statefulsets"], None);
    assert_eq!(header(&out), "NAME READY AGE", "{out}");
    assert!(out.contains("db     0/2"), "{out}");
    let (_, out) = run(&["get", "pvc"], None);
    assert_eq!(header(&out), "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS AGE", "{out}");
    assert!(out.contains("data-db-0   Bound") && out.contains("RWO"), "{out}");
    let (_, out) = run(&["get", "configmap", "c"], None);
    assert_eq!(header(&out), "NAME DATA AGE", "{out}");
    assert!(out.contains("c      2"), "{out}");
    let (_, out) = run(&["get", "namespace", "default"], None);
    assert!(header(&out) == "NAME STATUS AGE" && out.contains("Active"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_discovers_through_the_aggregated_documents() {
    let s = support::start().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| kubectl(&s, home.path(), args, stdin);
    let (ok, out) = run(&["get", "pods", "-v=8"], None);
    assert!(
        ok && out
            .contains("Content-Type: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
        "{out}"
    );
    assert!(!out.contains("/apis/apps/v1\""), "no legacy per-group request: {out}");
    let crds: String =
        etcd_operator_api::crd::all().iter().map(|(_, crd)| etcd_operator_api::crd::to_yaml(crd)).collect();
    assert!(run(&["apply", "-f", "-"], Some(&crds)).0);
    let (ok, out) = run(&["api-resources", "--api-group=etcd.operator.dev", "-o", "name"], None);
    assert!(ok && out.contains("etcdclusters.etcd.operator.dev"), "{out}");
    let (ok, out) = run(&["get", "sts,etcd", "-A"], None);
    assert!(ok, "{out}");
}
