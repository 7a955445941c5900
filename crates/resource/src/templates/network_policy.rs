//! The members' NetworkPolicy: the peer port from members only, the client
//! port from members, the operator and the peers the spec lists, the
//! metrics port from the peers the spec lists. The node (kubelet probes) is
//! let in regardless, as Kubernetes documents for every NetworkPolicy.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::networking::v1::{
        NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::TemplateContext;
use crate::{
    ResourceError,
    names::{CLIENT_PORT, METRICS_PORT, PEER_PORT},
};

/// Where the operator's pods (the cluster-service, which makes every call to the members) run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorPods {
    /// Their namespace.
    pub namespace: String,
    /// Labels that select them.
    pub labels: BTreeMap<String, String>,
}

/// As `deploy/etcd-operator.yaml` runs it: namespace `etcd-operator`, `app.kubernetes.io/name: cluster-service`.
impl Default for OperatorPods {
    fn default() -> Self {
        Self {
            namespace: "etcd-operator".into(),
            labels: BTreeMap::from([("app.kubernetes.io/name".to_owned(), "cluster-service".to_owned())]),
        }
    }
}

/// Builds the policy.
pub fn network_policy(
    ctx: &TemplateContext<'_>,
    operator: &OperatorPods,
) -> Result<NetworkPolicy, ResourceError> {
    let spec = ctx.cluster.spec.network_policy.clone().unwrap_or_default();
    let members = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(ctx.names.selector_labels()),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let operator = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                operator.namespace.clone(),
            )])),
            ..LabelSelector::default()
        }),
        pod_selector: Some(LabelSelector {
            match_labels: Some(operator.labels.clone()),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let rule = |from: Vec<NetworkPolicyPeer>, port: i32| NetworkPolicyIngressRule {
        from: Some(from),
        ports: Some(vec![NetworkPolicyPort {
            port: Some(IntOrString::Int(port)),
            protocol: Some("TCP".into()),
            ..NetworkPolicyPort::default()
        }]),
    };
    let mut client_from = vec![members.clone(), operator];
    client_from.extend(spec.client_from);
    let mut ingress = vec![rule(vec![members], PEER_PORT), rule(client_from, CLIENT_PORT)];
    if !spec.metrics_from.is_empty() {
        ingress.push(rule(spec.metrics_from, METRICS_PORT));
    }
    Ok(NetworkPolicy {
        metadata: ctx.metadata(ctx.names.network_policy(), "NetworkPolicy")?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(ctx.names.selector_labels()),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            ..NetworkPolicySpec::default()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::fixtures::cluster;

    fn operator() -> OperatorPods {
        OperatorPods {
            namespace: "etcd-operator".into(),
            labels: BTreeMap::from([("app.kubernetes.io/component".into(), "cluster-service".into())]),
        }
    }

    #[test]
    fn peers_only_from_members_clients_also_from_the_operator_and_listed_peers() {
        let c = cluster(
            "size: 3\nversion: 3.5.17\nnetworkPolicy:\n  clientFrom:\n  - podSelector: {matchLabels: {app: api}}\n  metricsFrom:\n  - namespaceSelector: {matchLabels: {team: monitoring}}",
        );
        let p = network_policy(&TemplateContext::new(&c, "cluster.local"), &operator()).unwrap();
        let spec = p.spec.unwrap();
        let ingress = spec.ingress.unwrap();
        let port = |r: &NetworkPolicyIngressRule| r.ports.as_ref().unwrap()[0].port.clone();
        assert_eq!(port(&ingress[0]), Some(IntOrString::Int(2380)));
        assert_eq!(ingress[0].from.as_ref().unwrap().len(), 1, "members only");
        assert_eq!(port(&ingress[1]), Some(IntOrString::Int(2379)));
        let clients = ingress[1].from.as_ref().unwrap();
        assert_eq!(clients.len(), 3, "members, the operator, and app=api");
        let ns = clients[1].namespace_selector.as_ref().unwrap().match_labels.as_ref().unwrap();
        assert_eq!(ns["kubernetes.io/metadata.name"], "etcd-operator");
        assert_eq!(port(&ingress[2]), Some(IntOrString::Int(2381)));
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
    }

    #[test]
    fn without_metrics_peers_only_the_node_reaches_the_metrics_port() {
        let c = cluster("size: 3\nversion: 3.5.17");
        let p = network_policy(&TemplateContext::new(&c, "cluster.local"), &operator()).unwrap();
        assert_eq!(p.spec.unwrap().ingress.unwrap().len(), 2);
    }
}
