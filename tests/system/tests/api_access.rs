//! The cluster-service's gRPC API admits only callers Kubernetes vouches for,
//! and only to what RBAC grants them: real tokens from kube-sim's TokenRequest
//! API, reviewed by its TokenReview and SubjectAccessReview APIs, over a real
//! socket over TLS (the API's CA made in kube-sim, as the binary makes it),
//! with the generated client and with grpcurl.

use cluster_service::auth::Rpc;
use etcd_operator_proto::v1alpha1::{
    ClusterRef, DeleteClusterRequest, GetClusterStatusRequest, ListClustersRequest,
    cluster_service_client::ClusterServiceClient,
};
use system_tests::{Sim, identity};
use tonic::{Code, Request, transport::Channel};

fn cluster(namespace: &str) -> Option<ClusterRef> {
    Some(ClusterRef { namespace: namespace.into(), name: "demo".into() })
}

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// A token of `default/<name>` for `audiences`, from the TokenRequest API.
async fn token_of(sim: &Sim, name: &str, audiences: &[&str]) -> String {
    identity::account_token(&sim.client().await, "default", name, audiences).await
}

/// kube-sim with two team namespaces, a tooling account allowed to view team-a's clusters, and
/// a cluster-service serving TLS: the client, the endpoint and the CA's file.
async fn start() -> (Sim, ClusterServiceClient<Channel>, String, std::path::PathBuf) {
    let sim = Sim::start().await;
    sim.install_crds().await;
    sim.sim
        .apply_yaml(
            r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: etcd-viewer, namespace: team-a}
rules:
  - {apiGroups: [etcd.operator.dev], resources: [etcdclusters], verbs: [get, list]}
  - {apiGroups: [etcd.operator.dev], resources: [etcdclusters/finalizers], verbs: [update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: tooling-views, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: etcd-viewer}
subjects: [{kind: ServiceAccount, name: tooling, namespace: default}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: demo-viewer, namespace: team-a}
rules:
  - {apiGroups: [etcd.operator.dev], resources: [etcdclusters], verbs: [get], resourceNames: [demo]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: one-cluster-views, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: demo-viewer}
subjects: [{kind: ServiceAccount, name: one-cluster, namespace: default}]
---
apiVersion: etcd.operator.dev/v1alpha1
kind: EtcdCluster
metadata: {name: demo, namespace: team-a}
spec: {size: 3, version: 3.5.17}
"#,
        )
        .unwrap();
    let (endpoint, ca, _serving) = sim.start_cluster_service_tls(chrono::Duration::hours(1)).await;
    let channel = etcd_operator_proto::endpoint::api(&endpoint, Some(&ca), false).unwrap();
    let client = ClusterServiceClient::new(channel.connect().await.unwrap());
    (sim, client, endpoint, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_authenticated_by_kubernetes_and_refused_without_a_good_token() {
    let (sim, mut grpc, ..) = start().await;
    let get = || GetClusterStatusRequest { cluster: cluster("team-a"), fresh: false };
    let status = grpc.get_cluster_status(get()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("no bearer token"), "{}", status.message());

    let status = grpc.get_cluster_status(with_token(get(), "forged.token.value")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains("forged.token.value"), "never echoes a token: {}", status.message());

    // A real token, but for the API server's audience: not for this API.
    let api_token = token_of(&sim, "tooling", &[]).await;
    let status = grpc.get_cluster_status(with_token(get(), &api_token)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("audiences"), "{}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_decides_each_call_in_its_namespace_and_refusals_name_caller_and_permission() {
    let (sim, mut grpc, ..) = start().await;
    let tooling = token_of(&sim, "tooling", &[identity::AUDIENCE]).await;
    let answer = grpc.get_cluster_status(with_token(
        GetClusterStatusRequest { cluster: cluster("team-a"), fresh: false },
        &tooling,
    ));
    // Allowed: the service answers (no etcd runs here, so the status says so).
    answer.await.expect("get etcdclusters in team-a is granted");

    let status = grpc
        .get_cluster_status(with_token(
            GetClusterStatusRequest { cluster: cluster("team-b"), fresh: false },
            &tooling,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().starts_with(
            "system:serviceaccount:default:tooling may not get etcdclusters.etcd.operator.dev \"demo\" in namespace \"team-b\""
        ),
        "{}",
        status.message()
    );

    let nobody = token_of(&sim, "nobody", &[identity::AUDIENCE]).await;
    let status = grpc
        .get_cluster_status(with_token(
            GetClusterStatusRequest { cluster: cluster("team-a"), fresh: false },
            &nobody,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("system:serviceaccount:default:nobody"), "{}", status.message());

    // A grant on one cluster by name: that cluster, and no other in its namespace (the service
    // asks about every cluster first, and about the one only when that is refused).
    let one = token_of(&sim, "one-cluster", &[identity::AUDIENCE]).await;
    let named = |name: &str| GetClusterStatusRequest {
        cluster: Some(ClusterRef { namespace: "team-a".into(), name: name.into() }),
        fresh: false,
    };
    grpc.get_cluster_status(with_token(named("demo"), &one)).await.expect("granted by name");
    let status = grpc.get_cluster_status(with_token(named("other"), &one)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("may not get etcdclusters.etcd.operator.dev \"other\""),
        "{}",
        status.message()
    );

    // Listing every namespace needs a cluster-wide grant; one namespace, that namespace's.
    let all = grpc
        .list_clusters(with_token(
            ListClustersRequest { namespace: String::new(), ..Default::default() },
            &tooling,
        ))
        .await;
    assert_eq!(all.unwrap_err().code(), Code::PermissionDenied);
    let listed = grpc
        .list_clusters(with_token(
            ListClustersRequest { namespace: "team-a".into(), ..Default::default() },
            &tooling,
        ))
        .await
        .unwrap();
    assert_eq!(listed.into_inner().clusters.len(), 1);

    // Deleting is the EtcdCluster's deletion; a call acts on one being deleted, or with force
    // and `delete` on it.
    let delete = |force| DeleteClusterRequest { cluster: cluster("team-a"), force };
    let status = grpc.delete_cluster(with_token(delete(false), &tooling)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("is not being deleted"), "{}", status.message());
    let status = grpc.delete_cluster(with_token(delete(true), &tooling)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("may not delete etcdclusters"), "{}", status.message());

    // A controller's identity carries its own rights only.
    let scaling =
        identity::token(&sim.client().await, "scaling-controller", identity::controller_rpcs("scaling"))
            .await;
    let status = grpc.delete_cluster(with_token(delete(true), &scaling)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_scoped_install_refuses_other_namespaces_whatever_rbac_grants() {
    let (sim, ..) = start().await;
    let endpoint = sim.start_cluster_service_for(Some("team-a")).await;
    let mut grpc = ClusterServiceClient::connect(endpoint).await.unwrap();
    // Allowed everywhere by RBAC.
    let admin =
        identity::token(&sim.client().await, "ops", &[Rpc::GetClusterStatus, Rpc::ListClusters]).await;
    let mine = grpc.get_cluster_status(with_token(
        GetClusterStatusRequest { cluster: cluster("team-a"), fresh: false },
        &admin,
    ));
    mine.await.expect("its own namespace");
    let status = grpc
        .get_cluster_status(with_token(
            GetClusterStatusRequest { cluster: cluster("team-b"), fresh: false },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("serves namespace \"team-a\" only"), "{}", status.message());
    let all = grpc
        .list_clusters(with_token(
            ListClustersRequest { namespace: String::new(), ..Default::default() },
            &admin,
        ))
        .await;
    assert_eq!(all.unwrap_err().code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls_over_tls_with_a_token() {
    let (sim, _, endpoint, ca) = start().await;
    let address = endpoint.trim_start_matches("https://").to_owned();
    let ca = ca.display().to_string();
    let tooling = token_of(&sim, "tooling", &[identity::AUDIENCE]).await;
    let header = format!("authorization: Bearer {tooling}");
    // Asynchronously: the service answering runs on this test's runtime.
    let grpcurl = |args: Vec<String>| async move {
        let out = tokio::process::Command::new("grpcurl").args(&args).output().await.expect("grpcurl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["-cacert".into(), ca.clone(), "-H".into(), header.clone()];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let (ok, out) = grpcurl(args(&[&address, "list"])).await;
    assert!(ok && out.contains("etcd_operator.v1alpha1.ClusterService"), "{out}");
    let (ok, out) =
        grpcurl(args(&[&address, "describe", "etcd_operator.v1alpha1.ClusterService.DeleteCluster"])).await;
    assert!(ok && out.contains("DeleteClusterRequest"), "{out}");
    let body = r#"{"namespace":"team-a"}"#;
    let (ok, out) =
        grpcurl(args(&["-d", body, &address, "etcd_operator.v1alpha1.ClusterService/ListClusters"])).await;
    assert!(ok && out.contains("\"demo\""), "{out}");
    let (ok, out) = grpcurl(vec!["-cacert".into(), ca.clone(), address.clone(), "list".into()]).await;
    assert!(!ok && out.contains("Unauthenticated"), "reflection too needs a caller: {out}");
    // Neither plaintext, nor TLS without verifying the server against the API's CA (grpcurl
    // retries a failed connection until its connect timeout).
    let (ok, out) = grpcurl(vec![
        "-connect-timeout=2".into(),
        "-plaintext".into(),
        "-H".into(),
        header.clone(),
        address.clone(),
        "list".into(),
    ])
    .await;
    assert!(!ok, "plaintext got an answer: {out}");
    let (ok, out) = grpcurl(vec![
        "-connect-timeout=2".into(),
        "-H".into(),
        header.clone(),
        address.clone(),
        "list".into(),
    ])
    .await;
    assert!(!ok && out.contains("certificate"), "an unverified server was trusted: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_answer_what_is_recorded_from_a_watch_and_observe_only_when_fresh() {
    use etcd_operator_api::EtcdCluster;
    use kube::api::{Api, Patch, PatchParams};
    use system_tests::requests::served;
    let (sim, mut grpc, ..) = start().await;
    let kube = sim.client().await;
    let tooling = token_of(&sim, "tooling", &[identity::AUDIENCE]).await;
    let get = |fresh| with_token(GetClusterStatusRequest { cluster: cluster("team-a"), fresh }, &tooling);
    // What the controllers would have recorded (no etcd runs here: observing finds no member).
    let recorded = serde_json::json!({"status": {"phase": "Running", "readyMembers": 3, "currentSize": 3}});
    let clusters = Api::<EtcdCluster>::namespaced(kube.clone(), "team-a");
    clusters.patch_status("demo", &PatchParams::default(), &Patch::Merge(&recorded)).await.unwrap();
    // The watch delivers the write within moments.
    let mut answer = grpc.get_cluster_status(get(false)).await.unwrap().into_inner();
    for _ in 0..50 {
        if answer.status.as_ref().is_some_and(|s| s.phase == "Running") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answer = grpc.get_cluster_status(get(false)).await.unwrap().into_inner();
    }
    let status = answer.status.unwrap();
    assert_eq!((status.phase.as_str(), status.ready_members, answer.observed), ("Running", 3, false));

    // Recorded reads cost the API server nothing: no read, no write, whatever their number.
    let (gets, applies) = (
        served(&kube, "GET", "etcdclusters", "").await,
        served(&kube, "APPLY", "etcdclusters", "status").await,
    );
    for _ in 0..100 {
        let answer = grpc.get_cluster_status(get(false)).await.unwrap().into_inner();
        assert_eq!(answer.status.unwrap().phase, "Running");
    }
    assert_eq!(served(&kube, "GET", "etcdclusters", "").await, gets, "a recorded read went to the API");
    assert_eq!(served(&kube, "APPLY", "etcdclusters", "status").await, applies);

    // `fresh` observes and records, which a reader may not make the operator do.
    let status = grpc.get_cluster_status(get(true)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("may not update etcdclusters.etcd.operator.dev/status"), "{status:?}");
    // A caller allowed to: no member answers, and that is recorded and returned.
    let observer = identity::token(&kube, "observer", &[Rpc::CheckHealth]).await;
    let fresh = GetClusterStatusRequest { cluster: cluster("team-a"), fresh: true };
    let answer = grpc.get_cluster_status(with_token(fresh, &observer)).await.unwrap().into_inner();
    let observed = answer.status.unwrap();
    assert!(answer.observed);
    assert_ne!(observed.phase, "Running", "{observed:?}");
    assert!(served(&kube, "GET", "etcdclusters", "").await > gets);
    assert_eq!(served(&kube, "APPLY", "etcdclusters", "status").await, applies + 1);
    let written = clusters.get("demo").await.unwrap().status.unwrap();
    assert_eq!(format!("{:?}", written.phase), observed.phase);

    // A cluster the watch has not seen yet (or one that does not exist) is read from the API.
    let missing = GetClusterStatusRequest {
        cluster: Some(ClusterRef { namespace: "team-a".into(), name: "nope".into() }),
        fresh: false,
    };
    let status = grpc.get_cluster_status(with_token(missing, &tooling)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}
