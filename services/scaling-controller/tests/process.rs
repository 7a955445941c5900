//! The binary starts, answers /healthz, serves /metrics, exits cleanly on SIGTERM,
//! documents its flags and refuses inconsistent ones.

use process_harness::{CONTROLLER_FLAGS, check_controller_process, check_help};

const BIN: &str = env!("CARGO_BIN_EXE_scaling-controller");

#[tokio::test]
async fn starts_serves_admin_endpoints_and_stops_on_sigterm() {
    check_controller_process(BIN).await;
}

#[test]
fn help_documents_every_flag_and_bad_settings_are_refused() {
    check_help(BIN, CONTROLLER_FLAGS);
    let bad = std::process::Command::new(BIN)
        .args(["--lease-duration=5s", "--lease-renew-grace=10s"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
