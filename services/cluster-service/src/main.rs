//! cluster-service binary.

#![warn(clippy::too_many_lines)]

use std::sync::Arc;

use clap::Parser;
use cluster_service::{config::Config, grpc};
use etcd_operator_client::metrics::EtcdMetrics;
use etcd_operator_service::Services;
use etcd_operator_telemetry::{admin, admin::Readiness, metrics::RpcMetrics};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// Stack of the runtime's threads: the multi-step operations (scaling, stop and restore) nest
/// deep futures, whose poll frames in debug builds outgrow tokio's 2 MiB default.
const THREAD_STACK: usize = 8 << 20;

fn main() -> std::process::ExitCode {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(THREAD_STACK).build();
    match runtime {
        Ok(rt) => rt.block_on(serve_process()),
        Err(e) => {
            eprintln!("cluster-service: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve_process() -> std::process::ExitCode {
    let config = Config::parse();
    let _guard = match etcd_operator_telemetry::logging::init(
        "cluster-service",
        &config.telemetry,
        "info,kube=warn,tower=warn,h2=warn",
    ) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cluster-service: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
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
    let mut registry = Registry::with_prefix("etcd_operator");
    let rpc_metrics = RpcMetrics::register(&mut registry);
    let etcd_metrics = EtcdMetrics::register(&mut registry);
    let client = etcd_operator_client::kubernetes::connect().await?;
    let services = Services::new(client.clone(), service_config, etcd_metrics);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let ready = Readiness::default();
    let admin_listener = tokio::net::TcpListener::bind(config.admin_listen).await?;
    let admin = tokio::spawn(admin::serve(admin_listener, Arc::new(registry), ready.clone(), stopped()));
    // Ready once the Kubernetes API answers: every call needs it.
    let api = client.clone();
    tokio::spawn(async move {
        loop {
            match api.apiserver_version().await {
                Ok(_) => break ready.set(true),
                Err(e) => tracing::warn!("kubernetes API not reachable yet: {e}"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    });

    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(grpc = %listener.local_addr()?, admin = %config.admin_listen, "serving");
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight calls");
        let _ = stop_tx.send(true);
    });
    let reviews =
        etcd_operator_client::access::AccessReviews::new(client.clone(), config.auth_audiences.clone());
    let auth = cluster_service::auth::Auth::new(reviews, config.watch_namespace.clone());
    grpc::serve(listener, services, auth, config.limits(), rpc_metrics, stopped()).await?;
    admin.await??;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
}
