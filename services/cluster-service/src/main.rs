//! cluster-service binary.

#![warn(clippy::too_many_lines)]

use std::{sync::Arc, time::Duration};

use clap::Parser;
use cluster_service::{config::Config, grpc, tls::Serving};
use etcd_operator_client::metrics::EtcdMetrics;
use etcd_operator_service::api_tls::ApiCa;
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
    let guard = match etcd_operator_telemetry::logging::init(
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
    let code = match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("cluster-service failed: {e}");
            std::process::ExitCode::FAILURE
        }
    };
    guard.shutdown().await;
    code
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(config: Config) -> Result<(), BoxError> {
    // Flags first: a mistake is named before anything is created.
    config.service_config(None)?;
    let mut registry = Registry::with_prefix("etcd_operator");
    let rpc_metrics = RpcMetrics::register(&mut registry);
    let etcd_metrics = EtcdMetrics::register(&mut registry);
    let client = etcd_operator_client::kubernetes::connect().await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight calls");
        let _ = stop_tx.send(true);
    });
    // The admin endpoint first: alive (and not ready) while the API's CA is read.
    let ready = Readiness::default();
    let admin_listener = tokio::net::TcpListener::bind(config.admin_listen).await?;
    let admin = tokio::spawn(admin::serve(admin_listener, Arc::new(registry), ready.clone(), stopped()));
    let (transport, api_ca) = tokio::select! {
        t = transport(&config, &client) => t?,
        () = stopped() => return Ok(admin.await??),
    };
    let services = cluster_service::services(
        client.clone(),
        config.service_config(api_ca)?,
        etcd_metrics,
        config.watch_namespace.as_deref(),
    );
    // Ready once the Kubernetes API answers: every call needs it.
    let api = client.clone();
    tokio::spawn(async move {
        loop {
            match api.apiserver_version().await {
                Ok(_) => break ready.set(true),
                Err(e) => tracing::warn!("kubernetes API not reachable yet: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });

    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(grpc = %listener.local_addr()?, admin = %config.admin_listen, "serving");
    if let Some(file) = std::env::var_os(etcd_operator_common::time::CLOCK_OFFSET_FILE_ENV) {
        // A fault campaign's hook: never set in a real deployment.
        tracing::warn!(file = ?file, "the wall clock of every decision is offset by the seconds in this file");
    }
    let reviews =
        etcd_operator_client::access::AccessReviews::new(client.clone(), config.auth_audiences.clone());
    let auth = cluster_service::auth::Auth::new(reviews, config.watch_namespace.clone());
    grpc::serve(listener, transport, services, auth, config.limits(), rpc_metrics, stopped()).await?;
    admin.await??;
    tracing::info!("stopped");
    Ok(())
}

/// How the server is reached, and the CA certificate its clients verify it with: the API's CA
/// (made once, kept in a Secret) and this replica's serving certificate, renewed in the
/// background; or plaintext with `--insecure`.
async fn transport(
    config: &Config,
    client: &kube::Client,
) -> Result<(grpc::Transport, Option<String>), BoxError> {
    if config.insecure {
        tracing::warn!("--insecure: serving gRPC in plaintext; bearer tokens cross the network readable");
        return Ok((grpc::Transport::Plaintext, None));
    }
    let api_ca = ApiCa::new(
        client.clone(),
        &config.operator_namespace,
        &config.tls_ca_secret,
        &config.tls_ca_config_map,
    );
    // The Kubernetes API may not answer yet when the pod starts.
    let ca = loop {
        match api_ca.load_or_create(etcd_operator_common::time::now()).await {
            Ok(ca) => break ca,
            Err(e) => tracing::warn!("reading the API's CA: {e}; trying again"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let validity = chrono::Duration::from_std(config.tls_serving_validity)?;
    let serving = Arc::new(Serving::new(ca.clone(), config.serving_names(), validity)?);
    let server_config = serving.server_config()?;
    tracing::info!(renew_at = %serving.renew_at(), "serving TLS");
    tokio::spawn(serving.keep_renewed(std::future::pending()));
    // Published again now and then: a deleted ConfigMap comes back.
    let crt = ca.crt.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = api_ca.publish(&ca).await {
                tracing::warn!("publishing the API's CA: {e}");
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
    Ok((grpc::Transport::Tls(server_config), Some(crt)))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
}
