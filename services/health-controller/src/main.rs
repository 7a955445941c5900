//! health-controller: probes every etcd cluster through the cluster-service, which records health in status.

#![warn(clippy::too_many_lines)]

use clap::Parser;
use etcd_operator_controller::{config::ControllerConfig, reconcilers::health, runtime};

/// Probes every EtcdCluster periodically (with jitter) through the cluster-service's HealthService.
/// Only the holder of the Lease `etcd-operator-health-controller` reconciles.
#[derive(Parser)]
#[command(name = "health-controller", version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    controller: ControllerConfig,
}

// One thread: a controller waits on I/O; each worker thread a multi-thread runtime adds (one per
// core) costs resident memory for nothing (BENCHMARKS.md, idle RSS).
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    runtime::run("health", Args::parse().controller, health::run).await
}
