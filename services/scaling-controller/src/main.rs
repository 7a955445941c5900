//! scaling-controller: changes etcd membership one safe step at a time by calling the cluster-service.

#![warn(clippy::too_many_lines)]

use clap::Parser;
use etcd_operator_controller::{config::ControllerConfig, reconcilers::scaling, runtime};

/// Watches EtcdClusters and asks the cluster-service's ScalingService to converge each one's
/// membership towards spec.size (the service picks the direction from the live membership).
/// Only the holder of the Lease `etcd-operator-scaling-controller` reconciles.
#[derive(Parser)]
#[command(name = "scaling-controller", version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    controller: ControllerConfig,
}

// One thread: a controller waits on I/O; each worker thread a multi-thread runtime adds (one per
// core) costs resident memory for nothing (BENCHMARKS.md, idle RSS).
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    runtime::run("scaling", Args::parse().controller, scaling::run).await
}
