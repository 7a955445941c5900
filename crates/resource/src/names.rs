//! Names, labels and URLs derived from an EtcdCluster, in one place.

use std::collections::BTreeMap;

use etcd_operator_api::EtcdCluster;
use kube::ResourceExt;

/// etcd client port.
pub const CLIENT_PORT: i32 = 2379;
/// etcd peer port.
pub const PEER_PORT: i32 = 2380;
/// etcd metrics and health port.
pub const METRICS_PORT: i32 = 2381;
/// Label value of `app.kubernetes.io/managed-by`.
pub const MANAGED_BY: &str = "etcd-operator";

/// Names of one cluster's objects and members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNames {
    /// Namespace of the cluster.
    pub namespace: String,
    /// Name of the EtcdCluster.
    pub name: String,
    /// Cluster DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// Whether the client and peer ports speak TLS (as the members run: `status.transport`, see
    /// `EtcdCluster::member_transport`): the scheme of every URL.
    pub tls: bool,
}

impl ClusterNames {
    /// Names for a cluster object.
    pub fn of(cluster: &EtcdCluster, cluster_domain: &str) -> Self {
        Self::new(&cluster.namespace().unwrap_or_default(), &cluster.name_any(), cluster_domain)
            .with_tls(cluster.member_transport().listen_tls)
    }

    /// Names from a namespace and name.
    pub fn new(namespace: &str, name: &str, cluster_domain: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            cluster_domain: cluster_domain.into(),
            tls: false,
        }
    }

    /// The same names with URLs for a cluster whose ports do (or do not) speak TLS.
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// NetworkPolicy of the members.
    pub fn network_policy(&self) -> String {
        format!("{}-members", self.name)
    }

    /// Secret with the operator-managed CA (`ca.crt`, `ca.key`); never mounted into pods.
    pub fn ca_secret(&self) -> String {
        format!("{}-ca", self.name)
    }

    /// Operator-managed Secret of a certificate purpose (`client`, `peer` or `operator`).
    pub fn tls_secret(&self, purpose: &str) -> String {
        format!("{}-{purpose}-tls", self.name)
    }

    /// Secret with etcd's root user and password (`spec.auth`), type `kubernetes.io/basic-auth`.
    pub fn root_secret(&self) -> String {
        format!("{}-etcd-root", self.name)
    }

    /// DNS name of the client Service.
    pub fn client_service_host(&self) -> String {
        format!("{}.{}.svc.{}", self.client_service(), self.namespace, self.cluster_domain)
    }

    /// StatefulSet name.
    pub fn statefulset(&self) -> String {
        self.name.clone()
    }

    /// Headless Service that gives members stable DNS names.
    pub fn peer_service(&self) -> String {
        self.name.clone()
    }

    /// ClusterIP Service for clients.
    pub fn client_service(&self) -> String {
        format!("{}-client", self.name)
    }

    /// Headless Service listing every member's metrics port, for scrapers (a PodMonitor selects
    /// the pods themselves).
    pub fn metrics_service(&self) -> String {
        format!("{}-metrics", self.name)
    }

    /// ConfigMap with the bootstrap configuration.
    pub fn config_map(&self) -> String {
        format!("{}-config", self.name)
    }

    /// ConfigMap with the CA of the operator's API, for the restore agent.
    pub fn api_ca_config_map(&self) -> String {
        format!("{}-operator-api-ca", self.name)
    }

    /// PodDisruptionBudget.
    pub fn pdb(&self) -> String {
        self.name.clone()
    }

    /// Secret holding the restore token while the cluster is being restored from a backup.
    pub fn restore_secret(&self) -> String {
        format!("{}-restore", self.name)
    }

    /// Member (pod) name of an ordinal.
    pub fn member(&self, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.name)
    }

    /// Ordinal of a member name of this cluster.
    pub fn ordinal(&self, member: &str) -> Option<i32> {
        member.strip_prefix(&format!("{}-", self.name))?.parse().ok()
    }

    /// PVC name of a member (volumeClaimTemplate `data`).
    pub fn pvc(&self, ordinal: i32) -> String {
        format!("data-{}", self.member(ordinal))
    }

    /// Stable DNS name of a member.
    pub fn member_host(&self, member: &str) -> String {
        format!("{member}.{}.{}.svc.{}", self.peer_service(), self.namespace, self.cluster_domain)
    }

    /// Peer URL of a member.
    pub fn peer_url(&self, member: &str) -> String {
        format!("{}://{}:{PEER_PORT}", self.scheme(), self.member_host(member))
    }

    /// Client URL of a member.
    pub fn client_url(&self, member: &str) -> String {
        format!("{}://{}:{CLIENT_PORT}", self.scheme(), self.member_host(member))
    }

    /// Client URL of the client Service.
    pub fn service_client_url(&self) -> String {
        format!("{}://{}:{CLIENT_PORT}", self.scheme(), self.client_service_host())
    }

    /// Labels selecting this cluster's member pods.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "etcd".to_owned()),
            ("app.kubernetes.io/instance".to_owned(), self.name.clone()),
            ("app.kubernetes.io/managed-by".to_owned(), MANAGED_BY.to_owned()),
        ])
    }

    /// The selector as a label selector string.
    pub fn selector_string(&self) -> String {
        self.selector_labels().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_urls_use_the_headless_service() {
        let n = ClusterNames::new("prod", "main", "cluster.local");
        assert_eq!(n.peer_url("main-2"), "http://main-2.main.prod.svc.cluster.local:2380");
        assert_eq!(n.client_url("main-0"), "http://main-0.main.prod.svc.cluster.local:2379");
        assert_eq!(n.service_client_url(), "http://main-client.prod.svc.cluster.local:2379");
        assert_eq!(n.ordinal("main-11"), Some(11));
        assert_eq!(n.ordinal("other-1"), None);
        assert_eq!(n.pvc(1), "data-main-1");
    }
}
