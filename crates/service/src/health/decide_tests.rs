//! Maintenance decisions: followers before the leader, thresholds, NOSPACE,
//! and no repetition within the cooldown.

use crate::observe::Alarm;
use etcd_operator_api::cluster::{DefragmentationRecord, MaintenanceStatus};

use crate::observe::EtcdView;
use crate::{
    fixtures::{at, member},
    health::decide::Maintenance,
    health::decide::MaintenancePolicy,
    health::decide::next_maintenance,
};

const MIB: i64 = 1 << 20;

/// Three members, demo-0 leading, each with `size` bytes of which `in_use` are used.
fn view(size: i64, in_use: i64) -> EtcdView {
    crate::fixtures::view(&[true, true, true]).db_size(size, in_use).build()
}

fn policy() -> MaintenancePolicy {
    MaintenancePolicy { fragmentation_threshold: 0.5, min_db_size: 64 * MIB, ..MaintenancePolicy::default() }
}

#[test]
fn fragmented_followers_go_first_and_the_leader_last() {
    let now = at("2026-11-26T12:00:00Z");
    let none = MaintenanceStatus::default();
    let v = view(200 * MIB, 50 * MIB);
    let Maintenance::Defragment { member, endpoint } = next_maintenance(&v, &policy(), &none, now) else {
        panic!()
    };
    assert_eq!(member, "demo-1", "a follower first");
    assert!(endpoint.starts_with("http://demo-1."));
    let done = |names: &[&str], time: &str| MaintenanceStatus {
        defragmentations: names
            .iter()
            .map(|n| DefragmentationRecord {
                member: (*n).into(),
                time: time.into(),
                before_bytes: 1,
                after_bytes: 1,
            })
            .collect(),
        last_space_recovery: None,
    };
    let two = done(&["demo-1", "demo-2"], "2026-11-26T11:30:00Z");
    assert!(
        matches!(next_maintenance(&v, &policy(), &two, now), Maintenance::Defragment { member, .. } if member == "demo-0")
    );
    // Every member done within the cooldown: not again, even if still fragmented.
    let all = done(&["demo-0", "demo-1", "demo-2"], "2026-11-26T11:30:00Z");
    assert!(matches!(next_maintenance(&v, &policy(), &all, now), Maintenance::Nothing(_)));
    // After the cooldown, once more.
    assert!(matches!(
        next_maintenance(&v, &policy(), &all, at("2026-11-26T13:00:00Z")),
        Maintenance::Defragment { .. }
    ));
}

#[test]
fn small_or_compact_databases_and_unhealthy_clusters_are_left_alone() {
    let now = at("2026-11-26T12:00:00Z");
    let none = MaintenanceStatus::default();
    assert!(matches!(next_maintenance(&view(10 * MIB, MIB), &policy(), &none, now), Maintenance::Nothing(_)));
    assert!(matches!(
        next_maintenance(&view(200 * MIB, 150 * MIB), &policy(), &none, now),
        Maintenance::Nothing(_)
    ));
    let mut sick = view(200 * MIB, 10 * MIB);
    sick.members[2] = member(2, false, false, true, 0x100);
    let Maintenance::Nothing(why) = next_maintenance(&sick, &policy(), &none, now) else { panic!() };
    assert!(why.contains("demo-2 is unhealthy"), "{why}");
}

#[test]
fn nospace_recovers_every_member_leader_last_but_not_in_a_loop() {
    let now = at("2026-11-26T12:00:00Z");
    let mut v = view(2 * MIB, 2 * MIB);
    v.alarms = vec![Alarm { member_id: 0x101, name: "NOSPACE".into() }];
    let Maintenance::RecoverSpace { members } =
        next_maintenance(&v, &policy(), &MaintenanceStatus::default(), now)
    else {
        panic!()
    };
    let order: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, ["demo-1", "demo-2", "demo-0"]);
    let recent =
        MaintenanceStatus { last_space_recovery: Some("2026-11-26T11:55:00Z".into()), ..Default::default() };
    let Maintenance::Nothing(why) = next_maintenance(&v, &policy(), &recent, now) else { panic!() };
    assert!(why.contains("quotaBackendBytes"), "{why}");
}

#[test]
fn defragmentation_needs_every_other_member_healthy() {
    use crate::ServiceError;
    use crate::fixtures::sts;
    use crate::health::decide::may_defragment;
    use crate::observe::{EtcdState, Observation};
    let healthy = Observation {
        statefulset: Some(sts(3, 3)),
        etcd: EtcdState::Reached(crate::fixtures::view(&[true; 3]).build()),
        pods: None,
        ..Observation::default()
    };
    assert!(may_defragment(&healthy, "demo-1").is_ok());
    let one_down = Observation {
        statefulset: Some(sts(3, 2)),
        etcd: EtcdState::Reached(crate::fixtures::view(&[true, false, true]).build()),
        pods: None,
        ..Observation::default()
    };
    assert!(
        may_defragment(&one_down, "demo-1").is_ok(),
        "the member being defragmented may itself be unhealthy"
    );
    assert!(
        matches!(may_defragment(&one_down, "demo-0"), Err(ServiceError::FailedPrecondition(m)) if m.contains("demo-1"))
    );
    assert!(matches!(may_defragment(&healthy, "demo-7"), Err(ServiceError::InvalidArgument(_))));
    let unreachable = Observation {
        statefulset: Some(sts(3, 0)),
        etcd: EtcdState::Unreachable("x".into()),
        pods: None,
        ..Observation::default()
    };
    assert!(may_defragment(&unreachable, "demo-0").is_err());
}
