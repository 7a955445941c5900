//! scaling-controller: changes etcd membership one safe step at a time by calling the cluster-service.

#![warn(clippy::too_many_lines)]

use clap::Parser;
use etcd_operator_controller::{config::ControllerConfig, reconcilers::scaling, runtime};

/// Watches EtcdClusters and, while spec.size differs from the membership etcd reports or a
/// scaling operation is in progress, asks the cluster-service's ScalingService for the next steps.
/// Only the holder of the Lease `etcd-operator-scaling-controller` reconciles.
#[derive(Parser)]
#[command(name = "scaling-controller", version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    controller: ControllerConfig,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::run("scaling", Args::parse().controller, scaling::run).await
}
