//! The binary starts, answers /healthz, serves /metrics and gRPC health, and exits cleanly on
//! SIGTERM; serving TLS, it waits for Kubernetes (where its CA is) alive but not ready.

use std::time::Duration;

use process_harness::{free_port, http_get, start};

#[tokio::test]
async fn starts_serves_admin_and_grpc_and_stops_on_sigterm() {
    let grpc = format!("127.0.0.1:{}", free_port());
    // Plaintext: without Kubernetes there is no CA to serve TLS from.
    let args = [&format!("--listen={grpc}"), "--insecure", "--restore-endpoint=http://127.0.0.1:1"];
    let p = start(env!("CARGO_BIN_EXE_cluster-service"), &args);
    assert_eq!(p.wait_healthy().await, "ok");
    assert_eq!(
        http_get(&p.admin, "/readyz").await.map(|(code, _)| code),
        Some(503),
        "not ready without Kubernetes"
    );

    let channel =
        tonic::transport::Channel::from_shared(format!("http://{grpc}")).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let resp = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(resp.into_inner().status, 1, "SERVING");

    let (code, metrics) = http_get(&p.admin, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("etcd_operator_grpc_requests_total{side=\"server\",service=\"grpc.health.v1.Health\",method=\"Check\",code=\"OK\"} 1"), "{metrics}");
    let status = p.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn serving_tls_it_waits_for_its_ca_alive_but_not_ready_and_stops_on_sigterm() {
    let grpc = format!("127.0.0.1:{}", free_port());
    let p = start(env!("CARGO_BIN_EXE_cluster-service"), &[&format!("--listen={grpc}")]);
    assert_eq!(p.wait_healthy().await, "ok");
    assert_eq!(http_get(&p.admin, "/readyz").await.map(|(code, _)| code), Some(503));
    assert!(tokio::net::TcpStream::connect(&grpc).await.is_err(), "gRPC served before its certificate");
    let status = p.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

#[test]
fn help_documents_every_flag() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_cluster-service")).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--cluster-domain",
        "--etcd-endpoint-rewrite",
        "--lock-duration",
        "--otlp-endpoint",
        "--log-format",
        "--admin-listen",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}
