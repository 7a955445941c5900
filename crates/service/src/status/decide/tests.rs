//! Status from small fixtures: observed state in, phase, conditions and members out.

use etcd_operator_api::{
    ConditionStatus, EtcdCluster, EtcdClusterStatus,
    cluster::{CONDITION_AVAILABLE, CONDITION_DEGRADED, CONDITION_PROGRESSING, ClusterPhase},
    condition::find,
};
use etcd_operator_common::{FieldViolation, Violations};

use crate::fixtures::{cluster, names, sts};
use crate::observe::{EtcdState, EtcdView, Observation};
use crate::{
    plan::RolloutDecision, status::decide::CONDITION_SPEC_WARNING, status::decide::StatusInputs,
    status::decide::compute_status,
};

const NOW: &str = "2026-11-25T12:00:00Z";

/// A view of `healthy.len()` members where member i answers when `healthy[i]`; member 0 leads.
fn view(healthy: &[bool]) -> EtcdView {
    crate::fixtures::view(healthy).version("3.5.17").db_size(20480, 1).revision(7).build()
}

fn status_of(
    c: &EtcdCluster,
    observation: &Observation,
    check: &Result<(), Violations>,
) -> EtcdClusterStatus {
    compute_status(&StatusInputs {
        restore: None,
        scaling: Default::default(),
        cluster: c,
        names: &names(),
        observation,
        spec_check: check,
        rollout: &RolloutDecision::Proceed,
        now: NOW,
    })
}

fn condition(s: &EtcdClusterStatus, t: &str) -> (ConditionStatus, String) {
    let c = find(&s.conditions, t).unwrap_or_else(|| panic!("no {t} condition"));
    (c.status, c.reason.clone())
}

#[test]
fn healthy_cluster_is_running_with_truthful_members() {
    let c = cluster("size: 3\nversion: 3.5.17");
    let obs = Observation {
        statefulset: Some(sts(3, 3)),
        etcd: EtcdState::Reached(view(&[true, true, true])),
        pods: None,
        ..Observation::default()
    };
    let s = status_of(&c, &obs, &Ok(()));
    assert_eq!(s.phase, ClusterPhase::Running);
    assert_eq!(s.observed_generation, Some(4));
    assert_eq!(s.cluster_id.as_deref(), Some("abc"));
    assert_eq!((s.ready_members, s.current_size), (3, 3));
    assert_eq!(s.current_version.as_deref(), Some("3.5.17"));
    assert_eq!(
        s.selector,
        "app.kubernetes.io/instance=demo,app.kubernetes.io/managed-by=etcd-operator,app.kubernetes.io/name=etcd"
    );
    assert!(s.members[0].is_leader && !s.members[1].is_leader);
    assert_eq!(s.members[1].id, "101");
    assert_eq!(condition(&s, CONDITION_AVAILABLE), (ConditionStatus::True, "QuorumHealthy".into()));
    assert_eq!(condition(&s, CONDITION_DEGRADED).0, ConditionStatus::False);
    assert_eq!(condition(&s, CONDITION_PROGRESSING).0, ConditionStatus::False);
    assert!(s.conditions.iter().all(|c| c.last_transition_time == NOW && c.observed_generation == Some(4)));
    assert!(s.operation.is_none());
}

#[test]
fn one_member_down_is_degraded_two_down_is_unavailable() {
    let c = cluster("size: 3\nversion: 3.5.17");
    let one = Observation {
        statefulset: Some(sts(3, 2)),
        etcd: EtcdState::Reached(view(&[true, false, true])),
        pods: None,
        ..Observation::default()
    };
    let s = status_of(&c, &one, &Ok(()));
    assert_eq!(s.phase, ClusterPhase::Degraded);
    assert_eq!(condition(&s, CONDITION_DEGRADED), (ConditionStatus::True, "MembersUnhealthy".into()));
    assert!(find(&s.conditions, CONDITION_DEGRADED).unwrap().message.contains("demo-1"));

    let two = Observation {
        statefulset: Some(sts(3, 1)),
        etcd: EtcdState::Reached(view(&[true, false, false])),
        pods: None,
        ..Observation::default()
    };
    let s = status_of(&c, &two, &Ok(()));
    assert_eq!(s.phase, ClusterPhase::Unavailable);
    assert_eq!(condition(&s, CONDITION_AVAILABLE), (ConditionStatus::False, "QuorumLost".into()));
    // Without quorum nothing is done automatically; the condition says what the user can do.
    let message = &find(&s.conditions, CONDITION_AVAILABLE).unwrap().message;
    assert!(message.contains("demo-1, demo-2") && message.contains("spec.restore.backupName"), "{message}");

    // The kubelet still reports the pods Ready: the operator's path is cut, not the cluster.
    let pod = |n: u8, ready: bool| crate::observe::PodState {
        name: format!("demo-{n}"),
        ready,
        running: true,
        ..crate::observe::PodState::default()
    };
    let cut = Observation { pods: Some(vec![pod(0, true), pod(1, true), pod(2, false)]), ..two };
    let s = status_of(&c, &cut, &Ok(()));
    assert_eq!(condition(&s, CONDITION_AVAILABLE), (ConditionStatus::Unknown, "MembersUnreachable".into()));
    let message = &find(&s.conditions, CONDITION_AVAILABLE).unwrap().message;
    // (the fixture's demo-0 still names its leader, which contradicts the loss first)
    assert!(message.contains("reports leader") && message.contains("nothing is changed"), "{message}");
}

#[test]
fn unreachable_before_first_contact_is_creating_after_is_unavailable() {
    let mut c = cluster("size: 3\nversion: 3.5.17");
    let obs = Observation {
        statefulset: Some(sts(3, 0)),
        etcd: EtcdState::Unreachable("dns".into()),
        pods: None,
        ..Observation::default()
    };
    let s = status_of(&c, &obs, &Ok(()));
    assert_eq!(s.phase, ClusterPhase::Creating);
    assert_eq!(s.operation.as_ref().unwrap().type_, crate::operation::OperationType::Create);

    c.status = Some(EtcdClusterStatus {
        cluster_id: Some("abc".into()),
        members: status_of(
            &c,
            &Observation {
                statefulset: Some(sts(3, 3)),
                etcd: EtcdState::Reached(view(&[true; 3])),
                pods: None,
                ..Observation::default()
            },
            &Ok(()),
        )
        .members,
        current_size: 3,
        ..EtcdClusterStatus::default()
    });
    let s = status_of(&c, &obs, &Ok(()));
    assert_eq!(s.phase, ClusterPhase::Unavailable);
    assert_eq!(s.cluster_id.as_deref(), Some("abc"), "the cluster ID is remembered");
    assert_eq!(s.members.len(), 3, "last known members are kept");
    assert!(s.members.iter().all(|m| !m.healthy && !m.is_leader));
}

#[test]
fn invalid_and_paused_specs_are_reported_not_applied() {
    let c = cluster("size: 3\nversion: 3.5.1");
    let bad = Err(Violations(vec![FieldViolation::new("spec.version", "can lose committed writes")]));
    let s = status_of(&c, &Observation::default(), &bad);
    assert_eq!(s.phase, ClusterPhase::Invalid);
    let progressing = find(&s.conditions, CONDITION_PROGRESSING).unwrap();
    assert_eq!(progressing.reason, "InvalidSpec");
    assert_eq!(progressing.message, "spec.version: can lose committed writes");

    let paused = cluster("size: 3\nversion: 3.5.17\npaused: true");
    assert_eq!(status_of(&paused, &Observation::default(), &Ok(())).phase, ClusterPhase::Paused);
}

#[test]
fn rollout_and_size_change_are_progress() {
    let c = cluster("size: 5\nversion: 3.5.17");
    let mut rolling = sts(3, 3);
    rolling.update_revision = "r2".into();
    rolling.updated = 1;
    let obs = Observation {
        statefulset: Some(rolling),
        etcd: EtcdState::Reached(view(&[true; 3])),
        pods: None,
        ..Observation::default()
    };
    let s = status_of(&c, &obs, &Ok(()));
    assert_eq!(s.phase, ClusterPhase::Updating);
    assert_eq!(condition(&s, CONDITION_PROGRESSING), (ConditionStatus::True, "RollingUpdate".into()));

    let obs = Observation {
        statefulset: Some(sts(3, 3)),
        etcd: EtcdState::Reached(view(&[true; 3])),
        pods: None,
        ..Observation::default()
    };
    let s = status_of(&c, &obs, &Ok(()));
    assert_eq!(condition(&s, CONDITION_PROGRESSING), (ConditionStatus::True, "SizeChangePending".into()));
}

#[test]
fn even_sizes_and_old_versions_warn() {
    let c = cluster("size: 4\nversion: 3.4.20");
    let s = status_of(&c, &Observation::default(), &Ok(()));
    let w = find(&s.conditions, CONDITION_SPEC_WARNING).unwrap();
    assert!(w.is_true());
    assert!(w.message.contains("even") && w.message.contains("production minimum"), "{}", w.message);
}

#[test]
fn transition_time_survives_an_unchanged_condition() {
    let mut c = cluster("size: 3\nversion: 3.5.17");
    let obs = Observation {
        statefulset: Some(sts(3, 3)),
        etcd: EtcdState::Reached(view(&[true; 3])),
        pods: None,
        ..Observation::default()
    };
    let mut first = status_of(&c, &obs, &Ok(()));
    for cond in &mut first.conditions {
        cond.last_transition_time = "2026-01-01T00:00:00Z".into();
    }
    c.status = Some(first);
    let second = status_of(&c, &obs, &Ok(()));
    assert!(second.conditions.iter().all(|c| c.last_transition_time == "2026-01-01T00:00:00Z"));
}

#[test]
fn a_blocked_rollout_is_reported_with_its_reason() {
    let c = cluster("size: 3\nversion: 3.5.17");
    let obs = Observation {
        statefulset: Some(sts(3, 2)),
        etcd: EtcdState::Reached(view(&[true, true, false])),
        pods: None,
        ..Observation::default()
    };
    let rollout = RolloutDecision::Wait("waiting for members demo-2".into());
    let s = compute_status(&StatusInputs {
        restore: None,
        scaling: Default::default(),
        cluster: &c,
        names: &names(),
        observation: &obs,
        spec_check: &Ok(()),
        rollout: &rollout,
        now: NOW,
    });
    assert_eq!(condition(&s, CONDITION_PROGRESSING), (ConditionStatus::False, "RolloutBlocked".into()));
    assert!(find(&s.conditions, CONDITION_PROGRESSING).unwrap().message.contains("demo-2"));
    assert_eq!(s.phase, ClusterPhase::Degraded);
}
