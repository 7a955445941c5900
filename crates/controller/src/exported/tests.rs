//! The exporter fed by watch events, and what a scrape shows.

use kube::runtime::watcher::Event;
use prometheus_client::registry::Registry;

use super::*;

fn cluster(name: &str, leader: &str) -> EtcdCluster {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "etcd.operator.dev/v1alpha1", "kind": "EtcdCluster",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"size": 3, "version": "3.5.1", "storage": {"size": "1Gi"}},
        "status": {"phase": "Running", "readyMembers": 3, "members": [
            {"name": "demo-0", "healthy": true, "isLeader": leader == "demo-0"},
            {"name": "demo-1", "healthy": true, "isLeader": leader == "demo-1"}
        ]}
    }))
    .unwrap()
}

fn scrape(e: &Exported) -> String {
    let mut registry = Registry::with_prefix("etcd_operator");
    registry.register_collector(Box::new(e.clone()));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    out
}

#[test]
fn leader_changes_are_counted_and_a_deleted_or_unlisted_cluster_goes() {
    let e = Exported::default();
    e.saw_cluster(&Ok(Event::Apply(cluster("demo", "demo-0"))));
    e.saw_cluster(&Ok(Event::Apply(cluster("demo", "demo-1"))));
    // No leader for a moment is not a change; the same leader back is none either.
    e.saw_cluster(&Ok(Event::Apply(cluster("demo", ""))));
    e.saw_cluster(&Ok(Event::Apply(cluster("demo", "demo-1"))));
    e.saw_cluster(&Ok(Event::Apply(cluster("other", "demo-0"))));
    let text = scrape(&e);
    assert!(text.contains("# TYPE etcd_operator_cluster_leader_changes counter"), "{text}");
    assert!(
        text.contains(r#"etcd_operator_cluster_leader_changes_total{namespace="default",cluster="demo"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"etcd_operator_member_leader{namespace="default",cluster="demo",member="demo-1"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"etcd_operator_cluster_ready_members{namespace="default",cluster="other"} 3"#),
        "{text}"
    );

    e.saw_cluster(&Ok(Event::Delete(cluster("other", ""))));
    assert!(!scrape(&e).contains(r#"cluster="other""#));
    // A relist that no longer holds demo (deleted while the watch was down) drops it.
    e.saw_cluster(&Ok(Event::Init));
    e.saw_cluster(&Ok(Event::InitApply(cluster("third", "demo-0"))));
    e.saw_cluster(&Ok(Event::InitDone));
    let text = scrape(&e);
    assert!(!text.contains(r#"cluster="demo""#) && text.contains(r#"cluster="third""#), "{text}");
    e.clear();
    assert_eq!(scrape(&e), "# EOF\n");
}
