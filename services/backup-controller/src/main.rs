//! backup-controller: takes EtcdBackups and runs EtcdBackupSchedules by calling the cluster-service.

#![warn(clippy::too_many_lines)]

use clap::Parser;
use etcd_operator_controller::{config::ControllerConfig, reconcilers::backup, runtime};

/// Watches EtcdBackups (each taken once, retried with backoff by the cluster-service's
/// BackupService) and EtcdBackupSchedules (backups started when due, retention applied).
/// Only the holder of the Lease `etcd-operator-backup-controller` reconciles.
#[derive(Parser)]
#[command(name = "backup-controller", version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    controller: ControllerConfig,
}

// One thread: a controller waits on I/O; each worker thread a multi-thread runtime adds (one per
// core) costs resident memory for nothing (BENCHMARKS.md, idle RSS).
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    runtime::run("backup", Args::parse().controller, backup::run).await
}
