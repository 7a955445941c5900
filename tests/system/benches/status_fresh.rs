//! GetClusterStatus with `fresh` (observe the cluster now, record what changed) over the
//! cluster-service's gRPC API, against the same Kubernetes and etcd calls made bare in the same
//! run: GET the EtcdCluster and its StatefulSet, LIST the member pods while etcd is asked for its
//! membership (of every member at once, the first answer taken), each member's status on its
//! own kept connection and the leader's `/version`, then GET the ConfigMap. A running 3-member
//! cluster (real etcd 3.4.23 pods on kube-sim's node), calls one after another, the two paths
//! alternating in blocks so both see the same noise. The bench also counts the Kubernetes
//! requests each path made per call: the figures compare like with like only if they match.
//!
//! `cargo bench -p system-tests --bench status_fresh`.

use std::time::{Duration, Instant};

use cluster_service::auth::Rpc;
use etcd_operator_api::EtcdCluster;
use etcd_operator_proto::v1alpha1::{
    ClusterRef, GetClusterStatusRequest, cluster_service_client::ClusterServiceClient,
};
use etcd_operator_resource::names::ClusterNames;
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Pod},
};
use kube::{Api, api::ListParams};
use system_tests::{identity, real::RealCluster, requests};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BLOCKS: usize = 10;
const CALLS: usize = 50;

/// The bare path's kept connections: one etcd client per member, as the operator keeps them.
struct Bare {
    kube: kube::Client,
    names: ClusterNames,
    /// (client endpoint as dialled, its own connection).
    members: Vec<(String, etcd_client::Client)>,
}

impl Bare {
    async fn call(&mut self) {
        let ns = &self.names.namespace;
        let cluster = Api::<EtcdCluster>::namespaced(self.kube.clone(), ns);
        cluster.get(&self.names.name).await.expect("GET etcdcluster");
        let sts = Api::<StatefulSet>::namespaced(self.kube.clone(), ns);
        sts.get(&self.names.statefulset()).await.expect("GET statefulset");
        let pods = Api::<Pod>::namespaced(self.kube.clone(), ns);
        let selector = ListParams::default().labels(&self.names.selector_string());
        let listed = pods.list(&selector);
        let (listed, ()) = tokio::join!(listed, etcd(&mut self.members));
        assert_eq!(listed.expect("LIST pods").items.len(), 3);
        let cm = Api::<ConfigMap>::namespaced(self.kube.clone(), ns);
        cm.get(&self.names.config_map()).await.expect("GET configmap");
    }
}

/// The membership from the first member to answer, each member's status, the leader's version.
async fn etcd(members: &mut [(String, etcd_client::Client)]) {
    let lists = members.iter().map(|(_, c)| {
        let mut c = c.clone();
        Box::pin(async move { c.member_list().await })
    });
    let (list, _) = futures::future::select_ok(lists).await.expect("member list");
    assert_eq!(list.members().len(), 3);
    let statuses = members.iter().map(|(_, c)| {
        let mut c = c.clone();
        async move { c.status().await.expect("status") }
    });
    let statuses = futures::future::join_all(statuses).await;
    let leader = statuses.iter().position(|s| s.leader() == s.header().expect("header").member_id());
    let (endpoint, _) = &members[leader.expect("a leader")];
    version(endpoint).await;
}

/// `GET /version` over a new connection, as the operator asks it.
async fn version(endpoint: &str) {
    let address = endpoint.split("://").nth(1).expect("scheme").trim_end_matches('/');
    let mut tcp = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!("GET /version HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.expect("answer");
    assert!(String::from_utf8_lossy(&answer).contains("etcdcluster"), "a version answer");
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The bare path speaks plaintext to etcd.
    assert!(
        !system_tests::secure::enabled(),
        "the bench measures a plaintext cluster: unset SYSTEM_TESTS_TLS"
    );
    let c = RealCluster::start(3, Duration::from_secs(10)).await;
    let token = identity::token(&c.client, "bench", &[Rpc::CheckHealth]).await;
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().expect("header");
    let channel = tonic::transport::Endpoint::from_shared(c.grpc_endpoint.clone()).expect("endpoint");
    let mut api = ClusterServiceClient::new(channel.connect().await.expect("gRPC connects"));
    let mut fresh = async || {
        let mut request = tonic::Request::new(GetClusterStatusRequest {
            cluster: Some(ClusterRef { namespace: "default".into(), name: "demo".into() }),
            fresh: true,
        });
        request.metadata_mut().insert("authorization", header.clone());
        let status = api.get_cluster_status(request).await.expect("GetClusterStatus").into_inner();
        assert_eq!(status.status.map(|s| s.ready_members), Some(3), "a running cluster observed");
    };
    let mut members = Vec::new();
    for i in 0..3 {
        let endpoint = c.member_endpoint("demo", &format!("demo-{i}")).await;
        members.push((endpoint.clone(), c.connect("demo", vec![endpoint]).await.expect("etcd connects")));
    }
    let names = ClusterNames::new("default", "demo", "cluster.local");
    let mut bare = Bare { kube: c.client.clone(), names, members };
    // Warm both: connections, the caller's reviews, the operator's kept etcd connections.
    for _ in 0..20 {
        fresh().await;
        bare.call().await;
    }
    let (mut operator, mut baseline) = (Vec::new(), Vec::new());
    let (mut operator_requests, mut bare_requests) = (0, 0);
    for _ in 0..BLOCKS {
        let before = requests::all_served(&c.client).await;
        for _ in 0..CALLS {
            let began = Instant::now();
            fresh().await;
            operator.push(began.elapsed());
        }
        let middle = requests::all_served(&c.client).await;
        for _ in 0..CALLS {
            let began = Instant::now();
            bare.call().await;
            baseline.push(began.elapsed());
        }
        let after = requests::all_served(&c.client).await;
        // Each count is itself one request.
        operator_requests += middle - before - 1;
        bare_requests += after - middle - 1;
    }
    operator.sort();
    baseline.sort();
    let calls = (BLOCKS * CALLS) as f64;
    println!("| path | p50 | p99 | Kubernetes requests per call |");
    println!("| --- | --- | --- | --- |");
    for (name, latencies, asked) in [
        ("the same calls, bare", &baseline, bare_requests),
        ("GetClusterStatus, fresh", &operator, operator_requests),
    ] {
        let (p50, p99) = (quantile(latencies, 0.5), quantile(latencies, 0.99));
        println!("| {name} | {} | {} | {:.2} |", ms(p50), ms(p99), asked as f64 / calls);
    }
    println!(
        "ratio: p50 {:.2}, p99 {:.2} ({} calls each)",
        quantile(&operator, 0.5).as_secs_f64() / quantile(&baseline, 0.5).as_secs_f64(),
        quantile(&operator, 0.99).as_secs_f64() / quantile(&baseline, 0.99).as_secs_f64(),
        calls
    );
}
