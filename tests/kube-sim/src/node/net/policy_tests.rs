use serde_json::json;

use super::*;

fn pod(ns: &str, name: &str, labels: Value, ip: &str) -> PolicyPod {
    let pod = json!({"metadata": {"namespace": ns, "name": name, "labels": labels},
                     "spec": {"containers": [{"name": "etcd", "ports": [{"name": "client", "containerPort": 2379}]}]}});
    PolicyPod { pod, ip: ip.parse().unwrap() }
}

fn members() -> Vec<PolicyPod> {
    vec![
        pod("prod", "demo-0", json!({"app": "etcd"}), "10.244.0.2"),
        pod("prod", "demo-1", json!({"app": "etcd"}), "10.244.0.3"),
        pod("prod", "client", json!({"role": "client"}), "10.244.0.4"),
        pod("other", "client", json!({"role": "client"}), "10.244.0.5"),
    ]
}

fn policy(ingress: Value) -> Value {
    json!({"metadata": {"namespace": "prod", "name": "p"},
           "spec": {"podSelector": {"matchLabels": {"app": "etcd"}}, "policyTypes": ["Ingress"], "ingress": ingress}})
}

#[test]
fn a_pod_no_policy_selects_is_open_and_one_selected_allows_only_what_a_rule_says() {
    let pods = members();
    assert_eq!(allowed(&pods[2], &pods, &[], &[policy(json!([]))]), None);
    let deny_all = allowed(&pods[0], &pods, &[], &[policy(json!([]))]).unwrap();
    assert!(deny_all.is_empty());
    let script = nft_script(&Some(deny_all), &["10.244.0.1".parse().unwrap()]);
    assert!(script.contains("policy drop") && script.contains("ip saddr { 10.244.0.1 } accept"), "{script}");
}

#[test]
fn pod_and_namespace_selectors_pick_sources_and_named_ports_resolve() {
    let pods = members();
    let rules = json!([
        {"from": [{"podSelector": {"matchLabels": {"app": "etcd"}}}], "ports": [{"port": 2380}]},
        {"from": [{"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["other"]}]},
                   "podSelector": {"matchLabels": {"role": "client"}}}],
         "ports": [{"port": "client", "protocol": "TCP"}]}
    ]);
    let got = allowed(&pods[0], &pods, &[], &[policy(rules)]).unwrap();
    let peers: Vec<_> = got[0].from.as_ref().unwrap().iter().map(|s| s.cidr.as_str()).collect();
    assert_eq!(peers, ["10.244.0.2", "10.244.0.3"], "same-namespace pods only");
    assert_eq!(got[0].ports, Some(vec![("tcp".into(), 2380, 2380)]));
    let clients: Vec<_> = got[1].from.as_ref().unwrap().iter().map(|s| s.cidr.as_str()).collect();
    assert_eq!(clients, ["10.244.0.5"], "the client of namespace other, not prod's");
    assert_eq!(got[1].ports, Some(vec![("tcp".into(), 2379, 2379)]));
    let script = nft_script(&Some(got), &[]);
    assert!(script.contains("ip saddr 10.244.0.3 tcp dport 2380 accept"), "{script}");
    assert!(script.contains("ip saddr 10.244.0.5 tcp dport 2379 accept"), "{script}");
}

#[test]
fn ip_blocks_with_exceptions_and_port_ranges() {
    let pods = members();
    let rules = json!([{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.244.0.4/32"]}}],
                        "ports": [{"port": 2379, "endPort": 2381}]}]);
    let got = allowed(&pods[0], &pods, &[], &[policy(rules)]);
    let script = nft_script(&got, &[]);
    assert!(
        script.contains("ip saddr 10.0.0.0/8 ip saddr != { 10.244.0.4/32 } tcp dport 2379-2381 accept"),
        "{script}"
    );
}

#[test]
fn egress_only_policies_leave_ingress_open() {
    let pods = members();
    let mut p = policy(json!([]));
    p["spec"]["policyTypes"] = json!(["Egress"]);
    assert_eq!(allowed(&pods[0], &pods, &[], &[p]), None);
}
