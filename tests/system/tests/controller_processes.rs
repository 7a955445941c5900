//! Every controller binary, one table: each starts, answers /healthz and
//! /metrics, exits cleanly on SIGTERM, documents its flags and refuses
//! inconsistent ones. The binaries are this build's (`scripts/test.sh` builds
//! them before the tests).

use system_tests::operator_binary;

const CONTROLLERS: [&str; 5] = [
    "lifecycle-controller",
    "scaling-controller",
    "health-controller",
    "recovery-controller",
    "backup-controller",
];

fn binary(name: &str) -> String {
    let path = operator_binary(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path.display().to_string()
}

#[tokio::test]
async fn every_controller_starts_serves_admin_endpoints_and_stops_on_sigterm() {
    for name in CONTROLLERS {
        eprintln!("{name}");
        process_harness::check_controller_process(&binary(name)).await;
    }
}

#[test]
fn every_controller_documents_every_flag_and_refuses_bad_settings() {
    for name in CONTROLLERS {
        eprintln!("{name}");
        process_harness::check_controller_flags(&binary(name));
    }
}
