//! The printed forms, pinned by snapshots.

use etcd_operator_proto::v1alpha1 as pb;

use super::*;

fn status() -> pb::ClusterStatus {
    let member = |i: i32, leader: bool, healthy: bool| pb::Member {
        name: format!("demo-{i}"),
        id: format!("8e9e05c52164694{i}"),
        peer_urls: vec![],
        client_urls: vec![],
        is_learner: false,
        healthy,
        is_leader: leader,
        db_size_bytes: 20480 + i64::from(i) * 4096,
        revision: 42,
        version: "3.4.23".into(),
        alarms: vec![],
    };
    pb::ClusterStatus {
        cluster: Some(pb::ClusterRef { namespace: "default".into(), name: "demo".into() }),
        phase: "Updating".into(),
        generation: 2,
        observed_generation: 2,
        cluster_id: "cdf818194e3a8c32".into(),
        members: vec![member(0, true, true), member(1, false, true), member(2, false, false)],
        ready_members: 2,
        current_size: 3,
        desired_size: 4,
        conditions: vec![pb::Condition {
            r#type: "Available".into(),
            status: pb::ConditionStatus::True as i32,
            reason: "QuorumHealthy".into(),
            message: "2 of 3 members healthy".into(),
            last_transition_time: "2026-12-01T10:00:00Z".into(),
            observed_generation: 2,
        }],
        operation: Some(pb::Operation {
            r#type: "ScaleUp".into(),
            step: "AddingLearner".into(),
            target: Some(4),
            member: Some("demo-3".into()),
            member_id: None,
            started_at: "2026-12-01T10:01:00Z".into(),
        }),
        current_version: "3.4.23".into(),
    }
}

#[test]
fn the_list_table() {
    let mut other = ClusterView::from(&status());
    (other.namespace, other.name, other.phase, other.operation) =
        ("team-b".into(), "orders".into(), "Running".into(), None);
    insta::assert_snapshot!(list_table(&[ClusterView::from(&status()), other]));
}

#[test]
fn the_status_text() {
    insta::assert_snapshot!(status_text(&ClusterView::from(&status())));
}

#[test]
fn the_status_json() {
    insta::assert_snapshot!(document(&ClusterView::from(&status()), Output::Json).unwrap());
}

#[test]
fn sizes_read_like_sizes() {
    assert_eq!(
        (bytes(512), bytes(20480), bytes(3 << 30)),
        ("512 B".into(), "20.0 KiB".into(), "3.0 GiB".into())
    );
}
