//! recovery-controller: has failed etcd members replaced by calling the cluster-service.

#![warn(clippy::too_many_lines)]

use clap::Parser;
use etcd_operator_controller::{config::ControllerConfig, reconcilers::recovery, runtime};

/// Looks at every EtcdCluster periodically (with jitter) and asks the cluster-service's
/// RecoveryService to replace a member etcd has not heard from for longer than the service's
/// grace period, one step per call, until the member is a healthy voter again.
/// Only the holder of the Lease `etcd-operator-recovery-controller` reconciles.
#[derive(Parser)]
#[command(name = "recovery-controller", version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    controller: ControllerConfig,
}

// One thread: a controller waits on I/O; each worker thread a multi-thread runtime adds (one per
// core) costs resident memory for nothing (BENCHMARKS.md, idle RSS).
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    runtime::run("recovery", Args::parse().controller, recovery::run).await
}
