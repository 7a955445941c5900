//! The headless peer Service, the client Service and the headless metrics Service.

use k8s_openapi::{
    api::core::v1::{Service, ServicePort, ServiceSpec},
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::TemplateContext;
use crate::{
    ResourceError,
    names::{CLIENT_PORT, METRICS_PORT, PEER_PORT},
};

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// Headless Service giving each member a stable DNS name.
///
/// Not-ready addresses are published: members must find each other to
/// become ready at all.
pub fn peer_service(ctx: &TemplateContext<'_>) -> Result<Service, ResourceError> {
    Ok(Service {
        metadata: ctx.metadata(ctx.names.peer_service(), "Service")?,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(ctx.names.selector_labels()),
            ports: Some(vec![port("peer", PEER_PORT), port("client", CLIENT_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// ClusterIP Service clients connect to; only ready members receive traffic.
pub fn client_service(ctx: &TemplateContext<'_>) -> Result<Service, ResourceError> {
    Ok(Service {
        metadata: ctx.metadata(ctx.names.client_service(), "Service")?,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(ctx.names.selector_labels()),
            ports: Some(vec![port("client", CLIENT_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// Headless Service over every member's metrics port (etcd's own metrics, plain HTTP), so a
/// scraper finds each member: not-ready members too, whose metrics say why.
pub fn metrics_service(ctx: &TemplateContext<'_>) -> Result<Service, ResourceError> {
    Ok(Service {
        metadata: ctx.metadata(ctx.names.metrics_service(), "Service")?,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(ctx.names.selector_labels()),
            ports: Some(vec![port("metrics", METRICS_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::fixtures::cluster;

    #[test]
    fn peer_service_is_headless_and_publishes_not_ready_members() {
        let c = cluster("size: 3\nversion: 3.5.17");
        let svc = peer_service(&TemplateContext::new(&c, "cluster.local")).unwrap();
        let spec = svc.spec.unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("demo"));
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(spec.selector.unwrap()["app.kubernetes.io/instance"], "demo");
    }

    #[test]
    fn client_service_serves_the_client_port_only() {
        let c = cluster("size: 3\nversion: 3.5.17");
        let svc = client_service(&TemplateContext::new(&c, "cluster.local")).unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("demo-client"));
        let ports = svc.spec.unwrap().ports.unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 2379);
    }

    #[test]
    fn metrics_service_lists_every_members_metrics_port() {
        let c = cluster("size: 3\nversion: 3.5.17");
        let svc = metrics_service(&TemplateContext::new(&c, "cluster.local")).unwrap();
        assert_eq!(svc.metadata.name.as_deref(), Some("demo-metrics"));
        let spec = svc.spec.unwrap();
        assert_eq!(
            (spec.cluster_ip.as_deref(), spec.publish_not_ready_addresses),
            (Some("None"), Some(true))
        );
        let ports = spec.ports.unwrap();
        assert_eq!((ports.len(), ports[0].name.as_deref(), ports[0].port), (1, Some("metrics"), 2381));
    }
}
