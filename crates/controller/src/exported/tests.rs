//! The exporter fed by watch events, and what a scrape shows.

use kube::runtime::{reflector, watcher::Event};
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

/// An exporter of a watch cache, and what feeds both as the health controller's watch does.
fn exporter() -> (Exported, impl FnMut(Event<EtcdCluster>)) {
    let (reader, mut writer) = reflector::store();
    let e = Exported::default();
    e.export_clusters(reader);
    let fed = e.clone();
    (e, move |event: Event<EtcdCluster>| {
        writer.apply_watcher_event(&event);
        fed.saw_cluster(&Ok(event));
    })
}

#[test]
fn leader_changes_are_counted_and_a_deleted_or_unlisted_cluster_goes() {
    let (e, mut feed) = exporter();
    feed(Event::Apply(cluster("demo", "demo-0")));
    feed(Event::Apply(cluster("demo", "demo-1")));
    // No leader for a moment is not a change; the same leader back is none either.
    feed(Event::Apply(cluster("demo", "")));
    feed(Event::Apply(cluster("demo", "demo-1")));
    feed(Event::Apply(cluster("other", "demo-0")));
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

    feed(Event::Delete(cluster("other", "")));
    assert!(!scrape(&e).contains(r#"cluster="other""#));
    // A relist that no longer holds demo (deleted while the watch was down) drops it.
    feed(Event::Init);
    feed(Event::InitApply(cluster("third", "demo-0")));
    feed(Event::InitDone);
    let text = scrape(&e);
    assert!(!text.contains(r#"cluster="demo""#) && text.contains(r#"cluster="third""#), "{text}");
    assert_eq!(e.state().leaders.keys().map(|k| k.1.as_str()).collect::<Vec<_>>(), ["third"]);
    feed(Event::Apply(cluster("demo", "demo-2")));
    assert!(
        scrape(&e)
            .contains(r#"etcd_operator_cluster_leader_changes_total{namespace="default",cluster="demo"} 0"#),
        "a cluster back after a relist starts counting again"
    );
    e.clear();
    assert_eq!(scrape(&e), "# EOF\n");
}
