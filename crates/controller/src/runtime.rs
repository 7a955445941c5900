//! The process skeleton every controller binary shares: telemetry, admin
//! endpoint, Kubernetes and cluster-service connections, leader election and
//! graceful shutdown.

use std::{sync::Arc, time::Duration};

use etcd_operator_telemetry::{
    admin::{self, Readiness},
    metrics::{ControllerMetrics, RpcMetrics},
};
use kube::Client;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::{
    config::ControllerConfig,
    exported::Exported,
    leader::{Election, run_while_leader},
    rpc::{RpcClient, RpcOptions},
};

/// What a reconciler gets: its connections, metrics and settings.
#[derive(Clone)]
pub struct Context {
    /// Controller name (`lifecycle`, `health`, ...).
    pub name: &'static str,
    /// Kubernetes client (watches and finalizer bookkeeping only).
    pub kube: Client,
    /// The cluster-service.
    pub rpc: RpcClient,
    /// Reconcile metrics.
    pub metrics: ControllerMetrics,
    /// Settings.
    pub config: ControllerConfig,
    /// Set once the watch caches have their first full list.
    pub synced: Readiness,
    /// Turns true when the process is shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// Per-cluster metrics this process exports while it leads (health: clusters; backup:
    /// schedules).
    pub exported: Exported,
}

impl Context {
    /// Resolves when the process is shutting down.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.shutdown.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

/// Runs a controller process: `controller` is started whenever this instance leads.
pub async fn run<F, Fut>(
    name: &'static str,
    config: ControllerConfig,
    controller: F,
) -> std::process::ExitCode
where
    F: Fn(Arc<Context>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let guard = match etcd_operator_telemetry::logging::init(
        &format!("{name}-controller"),
        &config.telemetry,
        "info,kube=warn,tower=warn,h2=warn,kube_lease_manager=warn",
    ) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{name}-controller: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match serve(name, config, controller).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{name}-controller failed: {e}");
            std::process::ExitCode::FAILURE
        }
    };
    guard.shutdown().await;
    code
}

async fn serve<F, Fut>(name: &'static str, config: ControllerConfig, controller: F) -> Result<(), String>
where
    F: Fn(Arc<Context>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    config.validate()?;
    let mut registry = Registry::with_prefix("etcd_operator");
    let rpc_metrics = RpcMetrics::register(&mut registry);
    let metrics = ControllerMetrics::register(&mut registry);
    let exported = Exported::default();
    registry.register_collector(Box::new(exported.clone()));
    let rpc_options = RpcOptions {
        timeout: config.rpc_timeout,
        token_file: config.token_file.clone(),
        ca_file: config.ca_file.clone(),
        insecure: config.insecure,
        ..RpcOptions::default()
    };
    if config.insecure {
        tracing::warn!(
            "--insecure: calling the cluster-service in plaintext; the token crosses the network readable"
        );
    }
    let rpc = RpcClient::new(&config.cluster_service_endpoint, rpc_options, rpc_metrics)?;
    let kube = etcd_operator_client::kubernetes::connect().await.map_err(|e| e.to_string())?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let ready = Readiness::default();
    let synced = Readiness::default();
    let admin_listener = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| format!("--admin-listen {}: {e}", config.admin_listen))?;
    let stopping = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let admin = tokio::spawn(admin::serve(admin_listener, Arc::new(registry), ready.clone(), stopping));
    tokio::spawn(readiness_loop(kube.clone(), ready, synced.clone(), metrics.clone()));
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: stopping reconciles and releasing the lease");
        let _ = stop_tx.send(true);
    });

    let election = Election {
        lease_name: format!("etcd-operator-{name}-controller"),
        namespace: config.lease_namespace.clone(),
        identity: config.identity.clone(),
        duration: config.lease_duration,
        grace: config.lease_grace,
    };
    let ctx = Arc::new(Context {
        name,
        kube: kube.clone(),
        rpc,
        metrics: metrics.clone(),
        config,
        synced,
        shutdown: stop_rx.clone(),
        exported,
    });
    run_while_leader(kube, election, metrics, stop_rx, || controller(ctx.clone())).await?;
    let _ = admin.await;
    tracing::info!("stopped");
    Ok(())
}

/// Ready = the Kubernetes API answers, and the watch caches are synced when this instance leads.
async fn readiness_loop(kube: Client, ready: Readiness, synced: Readiness, metrics: ControllerMetrics) {
    loop {
        let connected = kube.apiserver_version().await.is_ok();
        ready.set(connected && (!metrics.is_leader() || synced.get()));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
}
