//! cluster-service binary.

use clap::Parser;
use cluster_service::{config::Config, grpc};
use etcd_operator_client::metrics::EtcdMetrics;
use etcd_operator_service::ClusterService;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    etcd_operator_common::logging::init(config.log_format, "info,kube=warn,tower=warn,h2=warn");
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("cluster-service failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let service_config = config.service_config()?;
    let client = etcd_operator_client::kubernetes::connect().await?;
    let clusters = ClusterService::new(client, service_config, EtcdMetrics::default());
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving gRPC");
    grpc::serve(listener, clusters, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C; in-flight calls finish, new ones are refused.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
