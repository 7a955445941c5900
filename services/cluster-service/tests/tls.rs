//! The server's TLS, end to end on loopback: clients that trust the API's CA get in, others do
//! not, and a renewed serving certificate reaches new connections without a restart.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use cluster_service::{grpc, tls::Serving};
use etcd_operator_client::metrics::EtcdMetrics;
use etcd_operator_service::{
    ServiceConfig, Services,
    api_tls::decide::ServingNames,
    security::certs::{self, Pair},
};
use scripted_api::scripted_api;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn names() -> ServingNames {
    ServingNames {
        service: "cluster-service".into(),
        namespace: "etcd-operator".into(),
        cluster_domain: "cluster.local".into(),
        extra: Vec::new(),
    }
}

fn ca() -> Pair {
    certs::issue_named_ca("etcd-operator API CA", chrono::Utc::now()).unwrap()
}

/// A TLS server on loopback with a serving certificate from `ca`; Kubernetes is never asked
/// (health is served without a token).
async fn start(ca: &Pair, validity: chrono::Duration) -> (SocketAddr, Arc<Serving>) {
    let (kube, _record, _api) = scripted_api(vec![]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = Arc::new(Serving::new(ca.clone(), names(), validity).unwrap());
    let transport = grpc::Transport::Tls(serving.server_config().unwrap());
    let services = Services::new(kube.clone(), ServiceConfig::default(), EtcdMetrics::default());
    let metrics = etcd_operator_telemetry::metrics::RpcMetrics::register(&mut Default::default());
    let reviews = etcd_operator_client::access::AccessReviews::new(kube, vec!["etcd-operator".into()]);
    let auth = cluster_service::auth::Auth::new(reviews, None);
    let limits = grpc::Limits::default();
    tokio::spawn(grpc::serve(listener, transport, services, auth, limits, metrics, std::future::pending()));
    (addr, serving)
}

/// Asks the health service through an endpoint built as the controllers build theirs.
async fn health(url: &str, ca_file: Option<&std::path::Path>, insecure: bool) -> Result<(), String> {
    let endpoint = etcd_operator_proto::endpoint::api(url, ca_file, insecure)?;
    let channel = endpoint
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(drop)
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

fn ca_file(dir: &tempfile::TempDir, name: &str, ca: &Pair) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, &ca.crt).unwrap();
    path
}

#[tokio::test]
async fn only_clients_that_verify_the_server_against_its_ca_get_in() {
    let (ca, other) = (ca(), ca());
    let (addr, _serving) = start(&ca, chrono::Duration::hours(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let (trusted, foreign) = (ca_file(&dir, "ca.crt", &ca), ca_file(&dir, "other.crt", &other));
    let port = addr.port();
    // Every name the certificate carries for loopback.
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        let url = format!("https://{host}:{port}");
        if host == "[::1]" && std::net::TcpStream::connect(("::1", port)).is_err() {
            continue; // no IPv6 loopback here; the server listens on IPv4 only anyway
        }
        health(&url, Some(&trusted), false).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let url = format!("https://localhost:{port}");
    let refused = health(&url, Some(&foreign), false).await.unwrap_err();
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    // A name the certificate does not carry.
    let wrong_name = health(&format!("https://127.0.0.2:{port}"), Some(&trusted), false).await;
    assert!(wrong_name.is_err(), "a server certificate without 127.0.0.2 was accepted for it");
    // Plaintext is neither offered by the client without --insecure, nor served.
    let plain = format!("http://127.0.0.1:{port}");
    let refused = health(&plain, None, false).await.unwrap_err();
    assert!(refused.contains("--insecure"), "{refused}");
    assert!(health(&plain, None, true).await.is_err(), "the TLS server answered plaintext");
    let no_ca = health(&url, None, false).await.unwrap_err();
    assert!(no_ca.contains("--ca-file"), "{no_ca}");
}

#[tokio::test]
async fn the_serving_certificate_is_renewed_in_memory_before_it_expires() {
    let ca = ca();
    // Renewed at two thirds of 3 s; the server keeps answering throughout.
    let (addr, serving) = start(&ca, chrono::Duration::seconds(3)).await;
    let first = serving.certificate_der();
    let renewing = tokio::spawn(serving.clone().keep_renewed(std::future::pending()));
    let dir = tempfile::tempdir().unwrap();
    let trusted = ca_file(&dir, "ca.crt", &ca);
    let url = format!("https://localhost:{}", addr.port());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 3 {
        assert!(std::time::Instant::now() < deadline, "renewed {} times in 20 s", seen.len() - 1);
        seen.insert(serving.certificate_der());
        // Each check a new connection: each handshake gets the certificate of its moment.
        health(&url, Some(&trusted), false).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(seen.contains(&first));
    for der in &seen {
        assert!(certs::signed_der(der, &ca.crt), "a renewed certificate not from the API's CA");
    }
    renewing.abort();
}
