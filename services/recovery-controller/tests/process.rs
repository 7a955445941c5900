//! The binary starts, answers /healthz, serves /metrics, exits cleanly on SIGTERM,
//! documents its flags and refuses inconsistent ones.

const BIN: &str = env!("CARGO_BIN_EXE_recovery-controller");

#[tokio::test]
async fn starts_serves_admin_endpoints_and_stops_on_sigterm() {
    process_harness::check_controller_process(BIN).await;
}

#[test]
fn help_documents_every_flag_and_bad_settings_are_refused() {
    process_harness::check_controller_flags(BIN);
}
