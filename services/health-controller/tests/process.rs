//! The binary starts, answers /healthz, serves /metrics, and exits cleanly on SIGTERM.

use std::time::Duration;

use process_harness::{http_get, start};

#[tokio::test]
async fn starts_serves_admin_endpoints_and_stops_on_sigterm() {
    let p =
        start(env!("CARGO_BIN_EXE_health-controller"), &["--cluster-service-endpoint=http://127.0.0.1:9"]);
    assert_eq!(p.wait_healthy().await, "ok");
    // The API server is unreachable, so it is alive but not ready, and not leading.
    assert_eq!(http_get(&p.admin, "/readyz").await.map(|(code, _)| code), Some(503));
    let (code, metrics) = http_get(&p.admin, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("etcd_operator_leader 0"), "{metrics}");
    let status = p.terminate(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");
}

#[test]
fn help_documents_every_flag() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_health-controller")).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--cluster-service-endpoint",
        "--lease-duration",
        "--lease-renew-grace",
        "--watch-namespace",
        "--otlp-endpoint",
        "--log-format",
        "--admin-listen",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_health-controller"))
        .args(["--lease-duration=5s", "--lease-renew-grace=10s"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
