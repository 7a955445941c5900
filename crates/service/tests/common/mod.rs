//! What the service tests share: the cluster they act on and the service under test.

use etcd_operator_client::metrics::EtcdMetrics;
use etcd_operator_common::ClusterRef;
use etcd_operator_service::{LifecycleService, ServiceConfig, Services};

/// The cluster every scripted step names (`prod/demo`).
pub fn demo() -> ClusterRef {
    ClusterRef { namespace: "prod".into(), name: "demo".into() }
}

/// The lifecycle service of a replica using `client`.
pub fn service(client: kube::Client, config: ServiceConfig) -> LifecycleService {
    Services::new(client, config, EtcdMetrics::default()).lifecycle
}
