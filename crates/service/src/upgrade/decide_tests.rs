use etcd_operator_api::ConditionStatus;

use super::decide::{GateInputs, ProgressInputs, gate, upgrading};
use crate::fixtures::{pod, view};
use crate::observe::PodState;

fn refused(i: &GateInputs<'_>) -> String {
    gate(i).expect_err("refused").to_string()
}

fn applied<'a>(target: &'a str, from: &'a str) -> GateInputs<'a> {
    GateInputs {
        target,
        applied: Some(from),
        members: vec![("demo-0", from), ("demo-1", from)],
        ..GateInputs::default()
    }
}

#[test]
fn a_patch_and_the_next_minor_from_the_minimum_pass() {
    assert!(gate(&applied("3.4.30", "3.4.23")).is_ok());
    assert!(gate(&applied("3.5.7", "3.4.23")).is_ok());
    assert!(gate(&applied("3.5.7", "3.4.22")).is_ok());
    assert!(gate(&applied("3.6.2", "3.5.32")).is_ok());
    // A new cluster runs nothing yet.
    assert!(gate(&GateInputs { target: "3.6.2", ..GateInputs::default() }).is_ok());
}

#[test]
fn below_the_minimum_a_skip_and_a_downgrade_are_refused_naming_what_is_allowed() {
    assert_eq!(
        refused(&applied("3.5.7", "3.4.21")),
        "spec.version: 3.4.21 → 3.5.7 needs 3.4.22 or later first (older 3.4 patches can fail the upgrade) \
         (demo-0 runs 3.4.21); allowed next: 3.4.21 or a later 3.4 patch (3.4.22 or later before 3.5)"
    );
    assert!(refused(&applied("3.6.5", "3.4.23")).contains("skips a minor version"));
    let down = refused(&applied("3.4.23", "3.5.32"));
    assert!(down.contains("3.5.32 → 3.4.23 is a downgrade"), "{down}");
    assert!(down.ends_with("allowed next: 3.5.32 or a later 3.5 patch, or 3.6.0 or later"), "{down}");
}

#[test]
fn the_members_reports_count_not_only_the_last_spec() {
    // The spec says 3.5.17, but a member still runs 3.4.23 (a roll that stopped): 3.6 skips it.
    let i = GateInputs {
        target: "3.6.0",
        applied: Some("3.5.32"),
        members: vec![("demo-0", "3.5.32"), ("demo-1", "3.4.23")],
        ..GateInputs::default()
    };
    let why = refused(&i);
    assert!(
        why.contains("3.4.23 → 3.6.0 skips a minor version") && why.contains("demo-1 runs 3.4.23"),
        "{why}"
    );
    assert!(why.contains("allowed next: 3.5.32 or a later 3.5 patch (members still run 3.4.23"), "{why}");
}

#[test]
fn a_change_in_the_middle_of_an_upgrade_neither_goes_back_nor_skips() {
    // 3.4.23 → 3.5.7 half done: demo-0 and the template are on 3.5.7, demo-1 not yet.
    let mid = |target| GateInputs {
        target,
        applied: Some("3.5.7"),
        members: vec![("demo-0", "3.5.7"), ("demo-1", "3.4.23")],
        cluster_version: Some("3.4.0"),
        auth: false,
    };
    assert!(gate(&mid("3.5.8")).is_ok(), "a later patch of the same target is fine");
    assert!(refused(&mid("3.4.23")).contains("3.5.7 → 3.4.23 is a downgrade"));
    assert!(refused(&mid("3.6.0")).contains("skips a minor version"));
}

#[test]
fn the_cluster_version_bounds_the_minor() {
    // Members report a binary older than their tag (as kube-sim's 3.5.1 for 3.5 tags), the
    // cluster version still moves on.
    let i = GateInputs {
        target: "3.4.23",
        applied: None,
        members: vec![],
        cluster_version: Some("3.5.0"),
        auth: false,
    };
    assert!(
        gate(&i).is_ok(),
        "nothing running to compare with: the cluster version alone does not refuse a patch"
    );
    let i = GateInputs { target: "3.4.23", applied: Some("3.4.23"), cluster_version: Some("3.5.0"), ..i };
    assert!(refused(&i).contains("etcd's cluster version is 3.5"));
}

#[test]
fn auth_refuses_the_steps_that_do_not_support_it_and_a_malformed_target_is_left_to_validation() {
    let i = GateInputs { auth: true, ..applied("3.5.7", "3.4.23") };
    assert!(refused(&i).contains("not supported as a rolling upgrade with etcd's authentication on"));
    assert!(gate(&applied("latest", "3.4.23")).is_ok());
}

/// Pods demo-0..2, demo-i on `versions[i]`, all ready.
fn pods(versions: [&str; 3]) -> Vec<PodState> {
    (0..3).map(|i| PodState { version: Some(versions[i].into()), ..pod(i as i32, "r1", true) }).collect()
}

fn condition(
    pods: &[PodState],
    cluster: &str,
    healthy: [bool; 3],
    restarting: Option<&str>,
) -> (ConditionStatus, String, String) {
    let mut v = view(&healthy).build();
    v.cluster_version = Some(cluster.into());
    let c = upgrading(&ProgressInputs {
        target: "3.5.7",
        wanted: Some(("3.5.7", None)),
        pods,
        view: &v,
        restarting,
    })
    .expect("a condition");
    (c.status, c.reason, c.message)
}

#[test]
fn upgrading_shows_progress_and_the_member_being_restarted() {
    let half = pods(["3.4.23", "3.4.23", "3.5.7"]);
    assert_eq!(
        condition(&half, "3.4.0", [true; 3], Some("demo-1")),
        (ConditionStatus::True, "RollingMembers".into(), "1/3 members run 3.5.7; restarting demo-1".into())
    );
    // A pod being replaced still counts as behind.
    let mut going = pods(["3.5.7"; 3]);
    going[0] = PodState { terminating: true, version: Some("3.4.23".into()), ..going[0].clone() };
    assert_eq!(condition(&going, "3.4.0", [true; 3], Some("demo-0")).0, ConditionStatus::True);
}

#[test]
fn a_member_that_does_not_come_back_healthy_is_named_as_what_stopped_the_roll() {
    let mut half = pods(["3.4.23", "3.4.23", "3.5.7"]);
    half[2].ready = false;
    let (status, reason, message) = condition(&half, "3.4.0", [true, true, false], None);
    assert_eq!((status, reason.as_str()), (ConditionStatus::True, "MemberUnhealthy"));
    assert!(message.starts_with("1/3 members run 3.5.7; stopped: demo-2 does not answer"), "{message}");
}

#[test]
fn it_completes_only_when_etcd_reports_the_new_cluster_version() {
    let all = pods(["3.5.7"; 3]);
    assert_eq!(
        condition(&all, "3.4.0", [true; 3], None),
        (
            ConditionStatus::True,
            "AwaitingClusterVersion".into(),
            "3/3 members run 3.5.7; waiting for etcd to report cluster version 3.5 (now 3.4)".into()
        )
    );
    assert_eq!(
        condition(&all, "3.5.0", [true; 3], None),
        (
            ConditionStatus::False,
            "UpToDate".into(),
            "3/3 members run 3.5.7; etcd's cluster version is 3.5".into()
        )
    );
    // Without a cluster version the recorded condition stays.
    let v = view(&[true; 3]).build();
    assert!(
        upgrading(&ProgressInputs { target: "3.5.7", wanted: None, pods: &all, view: &v, restarting: None })
            .is_none()
    );
}

#[test]
fn a_spec_version_not_rolled_out_yet_is_pending_not_up_to_date() {
    // The members are up to date on 3.4.23, but the spec (its generation recorded) wants 3.5.7.
    let mut v = view(&[true; 3]).build();
    v.cluster_version = Some("3.4.0".into());
    let old = pods(["3.4.23"; 3]);
    let waits = "demo-2 is not a healthy voter";
    let inputs = |wanted| ProgressInputs { target: "3.4.23", wanted, pods: &old, view: &v, restarting: None };
    let c = upgrading(&inputs(Some(("3.5.7", Some(waits))))).expect("a condition");
    assert_eq!((c.status, c.reason.as_str()), (ConditionStatus::True, "Pending"));
    assert_eq!(
        c.message,
        "spec.version 3.5.7 is not rolled out yet (members run 3.4.23); the roll waits: demo-2 is not a healthy voter"
    );
    // Refused by the spec check (no wanted version): what the template runs is what is judged.
    assert_eq!(upgrading(&inputs(None)).map(|c| c.reason), Some("UpToDate".into()));
    assert_eq!(upgrading(&inputs(Some(("3.4.23", None)))).map(|c| c.reason), Some("UpToDate".into()));
}

#[test]
fn an_unknown_version_is_refused_by_validation_and_an_unreadable_report_is_no_evidence() {
    let spec = serde_yaml_ng::from_str("size: 3\nversion: 3.7.0").unwrap();
    let why = crate::validation::validate_spec(&spec).unwrap_err().to_string();
    assert!(why.contains("spec.version: etcd 3.7.0 is not known to this operator"), "{why}");
    // A member whose report does not parse is left out; the rest still decide.
    let i = GateInputs {
        members: vec![("demo-0", "3.4.23"), ("demo-1", "v3-custom")],
        ..applied("3.6.0", "3.4.23")
    };
    assert!(refused(&i).contains("skips a minor version"));
}
