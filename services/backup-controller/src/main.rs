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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    runtime::run("backup", Args::parse().controller, backup::run).await
}
