//! GetClusterStatus (the default: recorded status) over loopback with TLS and
//! authorization on, against a plain tonic server answering gRPC health's
//! Check over the same TLS configuration, in the same run (and, to split the
//! difference, that server with the same bearer token, and the
//! cluster-service's own health Check through its server and layers):
//! - latency at a steady 1 000 calls/s for 10 s (open loop: calls start on a
//!   schedule, whatever earlier ones do), p50, p99 and the worst call;
//! - throughput of 32 callers in a closed loop for 5 s.
//!
//! The cluster-service is the binary's (cluster_service::services and
//! grpc::serve, with its layers, limits, TokenReview and SubjectAccessReview
//! against kube-sim); the client is the generated one over one HTTP/2
//! connection, each call carrying a bearer token.
//!
//! `cargo bench -p system-tests --bench status_rpc`.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use cluster_service::auth::Rpc;
use etcd_operator_proto::v1alpha1::{
    ClusterRef, GetClusterStatusRequest, cluster_service_client::ClusterServiceClient,
};
use system_tests::{Sim, identity};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const RATE: u32 = 1_000;
const STEADY: Duration = Duration::from_secs(10);
const CALLERS: usize = 32;
const FLOOD: Duration = Duration::from_secs(5);

/// One call; `false` when it failed.
trait Call: Fn() -> Self::Fut + Clone + Send + Sync + 'static {
    type Fut: Future<Output = bool> + Send + 'static;
}
impl<F, Fut> Call for F
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    type Fut = Fut;
}

/// Latencies of `RATE` calls a second for `STEADY`, sorted.
async fn steady(call: impl Call) -> Vec<Duration> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = tokio::time::Instant::now();
    let total = RATE * STEADY.as_secs() as u32;
    for i in 0..total {
        tokio::time::sleep_until(start + STEADY * i / total).await;
        let (call, tx) = (call.clone(), tx.clone());
        tokio::spawn(async move {
            let began = Instant::now();
            let ok = call().await;
            let _ = tx.send((began.elapsed(), ok));
        });
    }
    drop(tx);
    let mut latencies = Vec::with_capacity(total as usize);
    while let Some((latency, ok)) = rx.recv().await {
        assert!(ok, "a call failed under the steady load");
        latencies.push(latency);
    }
    latencies.sort();
    latencies
}

/// Calls a second of `CALLERS` callers calling back to back for `FLOOD`.
async fn flood(call: impl Call) -> f64 {
    let until = Instant::now() + FLOOD;
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < until {
                    assert!(call().await, "a call failed under the flood");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for caller in callers {
        total += caller.await.expect("caller");
    }
    total as f64 / FLOOD.as_secs_f64()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A tonic server with only gRPC health, over `config`: the baseline.
async fn echo(config: Arc<rustls::ServerConfig>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let incoming = cluster_service::tls::incoming(listener, config);
    tokio::spawn(async move {
        let _keep = reporter;
        tonic::transport::Server::builder().add_service(health).serve_with_incoming(incoming).await
    });
    format!("https://localhost:{port}")
}

async fn connect(endpoint: &str, ca: &std::path::Path) -> Channel {
    let endpoint = etcd_operator_proto::endpoint::api(endpoint, Some(ca), false).expect("endpoint");
    endpoint.connect().await.expect("connected")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = Sim::start().await;
    sim.install_crds().await;
    sim.sim
        .apply_yaml("apiVersion: etcd.operator.dev/v1alpha1\nkind: EtcdCluster\nmetadata: {name: demo, namespace: default}\nspec: {size: 3, version: 3.5.17}\n")
        .expect("cluster");
    let kube = sim.client().await;
    // A status of the size a healthy 3-member cluster records.
    let members: Vec<_> = (0..3)
        .map(|i| {
            serde_json::json!({
                "name": format!("demo-{i}"), "id": format!("{:x}", 0x8e9e_05c5_2164_694d_u64 + i),
                "peerUrls": [format!("http://demo-{i}.demo.default.svc.cluster.local:2380")],
                "clientUrls": [format!("http://demo-{i}.demo.default.svc.cluster.local:2379")],
                "healthy": true, "isLeader": i == 0, "dbSizeBytes": 20480, "raftTerm": 2,
                "raftIndex": 1200, "revision": 900, "version": "3.5.17",
            })
        })
        .collect();
    let recorded = serde_json::json!({"status": {
        "phase": "Running", "readyMembers": 3, "currentSize": 3, "members": members,
        "clusterId": "cdf818194e3a8c32", "currentVersion": "3.5.17", "observedGeneration": 1,
    }});
    kube::Api::<etcd_operator_api::EtcdCluster>::namespaced(kube.clone(), "default")
        .patch_status("demo", &Default::default(), &kube::api::Patch::Merge(&recorded))
        .await
        .expect("status recorded");
    let (endpoint, ca, serving) = sim.start_cluster_service_tls(chrono::Duration::hours(1)).await;
    let token = identity::token(&kube, "bench", &[Rpc::GetClusterStatus]).await;
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().expect("header");
    let api = ClusterServiceClient::new(connect(&endpoint, &ca).await);
    let status = move || {
        let (mut api, header) = (api.clone(), header.clone());
        async move {
            let mut request = tonic::Request::new(GetClusterStatusRequest {
                cluster: Some(ClusterRef { namespace: "default".into(), name: "demo".into() }),
                fresh: false,
            });
            request.metadata_mut().insert("authorization", header);
            api.get_cluster_status(request).await.is_ok()
        }
    };
    let echo_endpoint = echo(serving.server_config().expect("TLS configuration")).await;
    let health = HealthClient::new(connect(&echo_endpoint, &ca).await);
    let check = {
        let health = health.clone();
        move || {
            let mut health = health.clone();
            async move { health.check(HealthCheckRequest { service: String::new() }).await.is_ok() }
        }
    };
    // The cluster-service's own gRPC health: its server and layers, no authentication, no handler.
    let own = HealthClient::new(connect(&endpoint, &ca).await);
    let own_check = move || {
        let mut own = own.clone();
        async move { own.check(HealthCheckRequest { service: String::new() }).await.is_ok() }
    };
    // The baseline carrying the same bearer token: what the token costs on the wire alone.
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().expect("header");
    let check_with_token = move || {
        let (mut health, bearer) = (health.clone(), bearer.clone());
        async move {
            let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
            request.metadata_mut().insert("authorization", bearer);
            health.check(request).await.is_ok()
        }
    };
    // Warm both (connections, the caller's reviews, the watch's first list).
    for _ in 0..200 {
        assert!(status().await && check().await, "warm-up calls fail");
    }
    let echo_latency = steady(check.clone()).await;
    let token_latency = steady(check_with_token.clone()).await;
    let own_latency = steady(own_check.clone()).await;
    let served = system_tests::requests::all_served(&kube).await;
    let status_latency = steady(status.clone()).await;
    // Itself a request: what the steady load cost the API server is the rest.
    let asked = system_tests::requests::all_served(&kube).await - served - 1;
    let echo_rate = flood(check).await;
    let token_rate = flood(check_with_token).await;
    let own_rate = flood(own_check).await;
    let status_rate = flood(status).await;
    println!("| server | p50 | p99 | worst | calls/s, {CALLERS} callers |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, latency, rate) in [
        ("tonic health Check (baseline)", &echo_latency, echo_rate),
        ("tonic health Check with the bearer token", &token_latency, token_rate),
        ("the cluster-service's gRPC health Check", &own_latency, own_rate),
        ("GetClusterStatus (recorded)", &status_latency, status_rate),
    ] {
        println!(
            "| {name} | {} | {} | {} | {rate:.0} |",
            ms(quantile(latency, 0.5)),
            ms(quantile(latency, 0.99)),
            ms(*latency.last().expect("calls"))
        );
    }
    println!("Kubernetes requests during {} GetClusterStatus calls: {asked}", status_latency.len());
    println!(
        "ratios: p50 {:.2}, p99 {:.2}, throughput {:.2}",
        quantile(&status_latency, 0.5).as_secs_f64() / quantile(&echo_latency, 0.5).as_secs_f64(),
        quantile(&status_latency, 0.99).as_secs_f64() / quantile(&echo_latency, 0.99).as_secs_f64(),
        status_rate / echo_rate
    );
}
