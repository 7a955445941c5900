//! The cluster-service: a tonic server hosting the service layer.
//!
//! It is the only process that writes the objects the operator manages and
//! the only one that changes etcd. It is stateless: any replica can serve any
//! call.

#![warn(clippy::too_many_lines)]

pub mod auth;
pub mod config;
pub mod grpc;
pub mod tls;

use etcd_operator_client::metrics::EtcdMetrics;
use etcd_operator_resource::managers::ClusterCache;
use etcd_operator_service::{ServiceConfig, Services};

/// The services a replica serves, GetClusterStatus's recorded reads answered from a watch of the
/// clusters in `namespace` (all when `None`); the watch runs as a task of the current runtime.
pub fn services(
    client: kube::Client,
    config: ServiceConfig,
    metrics: EtcdMetrics,
    namespace: Option<&str>,
) -> Services {
    let (cache, watch) = ClusterCache::new(client.clone(), namespace);
    tokio::spawn(watch);
    Services::new(client, config, metrics).with_cluster_cache(cache)
}
