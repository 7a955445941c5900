//! lifecycle-controller: creates, updates and deletes etcd clusters by calling the cluster-service.

#![warn(clippy::too_many_lines)]

use clap::Parser;
use etcd_operator_controller::{config::ControllerConfig, reconcilers::lifecycle, runtime};

/// Watches EtcdClusters (and their StatefulSets) and asks the cluster-service to create,
/// update or delete them. Only the holder of the Lease `etcd-operator-lifecycle-controller` reconciles.
#[derive(Parser)]
#[command(name = "lifecycle-controller", version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    controller: ControllerConfig,
}

// One thread: a controller waits on I/O; each worker thread a multi-thread runtime adds (one per
// core) costs resident memory for nothing (BENCHMARKS.md, idle RSS).
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    runtime::run("lifecycle", Args::parse().controller, lifecycle::run).await
}
