//! The roll's decisions on fixture states: one member at a time, followers
//! first, the leader last after it handed over, each step resumable.

use crate::{
    fixtures::{names, pod, sts, view},
    observe::{EtcdView, PodState, StatefulSetState},
    operation::{OperationStatus, OperationType, step::roll as step},
    roll::decide::{MAX_LAG, RollAction, RollInputs, next_roll_action},
};

/// A StatefulSet of three whose template moved from r1 to r2.
fn updated_sts() -> StatefulSetState {
    StatefulSetState { update_revision: "r2".into(), updated: 0, ..sts(3, 3) }
}

fn decide(s: &StatefulSetState, pods: &[PodState], v: &EtcdView, op: Option<&OperationStatus>) -> RollAction {
    decide_with(false, s, pods, v, op)
}

/// The same roll; `tls`: the template listens with TLS (a move between plaintext and TLS).
fn decide_with(
    tls: bool,
    s: &StatefulSetState,
    pods: &[PodState],
    v: &EtcdView,
    op: Option<&OperationStatus>,
) -> RollAction {
    let names = names().with_tls(tls);
    next_roll_action(&RollInputs {
        sts: s,
        pods,
        view: v,
        operation: op,
        formed: true,
        names: &names,
        now: "t",
    })
}

fn restarting(member: &str) -> OperationStatus {
    OperationStatus {
        member: Some(member.into()),
        ..OperationStatus::at_step(OperationType::RollingUpdate, step::RESTARTING_MEMBER, None, "t0")
    }
}

fn recorded(action: RollAction) -> String {
    match action {
        RollAction::Record(op) => {
            assert_eq!((op.type_, op.step.as_str()), (OperationType::RollingUpdate, step::RESTARTING_MEMBER));
            op.member.unwrap()
        }
        other => panic!("expected a record, got {other:?}"),
    }
}

fn waits(action: RollAction, about: &str) {
    assert!(matches!(&action, RollAction::Wait { reason, .. } if reason.contains(about)), "{action:?}");
}

#[test]
fn followers_go_first_highest_ordinal_first_and_the_leader_last() {
    let s = updated_sts();
    let healthy = view(&[true; 3]).build();
    let old = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r1", true)];
    assert_eq!(recorded(decide(&s, &old, &healthy, None)), "demo-2");
    let one = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r2", true)];
    assert_eq!(recorded(decide(&s, &one, &healthy, None)), "demo-1");
    // Only the leader is left: it is recorded, then hands leadership to a member on r2.
    let two = [pod(0, "r1", true), pod(1, "r2", true), pod(2, "r2", true)];
    assert_eq!(recorded(decide(&s, &two, &healthy, None)), "demo-0");
    let moving = decide(&s, &two, &healthy, Some(&restarting("demo-0")));
    assert_eq!(moving, RollAction::MoveLeader { leader_endpoint: names().client_url("demo-0"), to: 0x101 });
    // Once it follows, it restarts, by its pod's UID.
    let followed = view(&[true; 3]).leader(1).build();
    let restart = decide(&s, &two, &followed, Some(&restarting("demo-0")));
    assert_eq!(restart, RollAction::Restart { member: "demo-0".into(), uid: "uid-0-r1".into() });
}

#[test]
fn the_leader_hands_over_to_a_member_on_the_new_template() {
    let s = updated_sts();
    let led_by_2 = view(&[true; 3]).leader(2).build();
    let pods = [pod(0, "r1", true), pod(1, "r2", true), pod(2, "r1", true)];
    // demo-2 leads, so demo-0 goes first; when demo-2's turn comes it hands over to demo-1 (on r2).
    assert_eq!(recorded(decide(&s, &pods, &led_by_2, None)), "demo-0");
    let last = [pod(0, "r2", true), pod(1, "r2", true), pod(2, "r1", true)];
    let moving = decide(&s, &last, &led_by_2, Some(&restarting("demo-2")));
    assert!(matches!(moving, RollAction::MoveLeader { to: 0x100, .. }), "{moving:?}");
    let pods = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r1", true)];
    let moving = decide(&s, &pods, &led_by_2, Some(&restarting("demo-2")));
    // None on r2 yet: the lowest ordinal takes over.
    assert!(matches!(moving, RollAction::MoveLeader { to: 0x100, .. }), "{moving:?}");
}

#[test]
fn a_recorded_member_resumes_where_it_stopped() {
    let s = updated_sts();
    let healthy = view(&[true; 3]).build();
    let op = restarting("demo-2");
    let old = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r1", true)];
    // Crashed before the delete: delete it (again).
    assert_eq!(
        decide(&s, &old, &healthy, Some(&op)),
        RollAction::Restart { member: "demo-2".into(), uid: "uid-2-r1".into() }
    );
    // Deleted: wait while it stops and while the StatefulSet recreates it.
    let stopping =
        [pod(0, "r1", true), pod(1, "r1", true), PodState { terminating: true, ..pod(2, "r1", false) }];
    waits(decide(&s, &stopping, &view(&[true, true, false]).build(), Some(&op)), "stopping");
    let gone = [pod(0, "r1", true), pod(1, "r1", true)];
    waits(decide(&s, &gone, &view(&[true, true, false]).build(), Some(&op)), "recreated");
    // Back on r2, even before it is ready: the record is cleared (a member that stays down is then
    // the recovery's to replace).
    let back = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r2", false)];
    let down = view(&[true, true, false]).build();
    assert_eq!(decide(&s, &back, &down, Some(&op)), RollAction::Restarted { member: "demo-2".into() });
    // The next member waits until it is healthy and ready.
    waits(decide(&s, &back, &down, None), "demo-2 is not healthy");
    let unready = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r2", false)];
    waits(decide(&s, &unready, &healthy, None), "demo-2's pod is not ready");
}

#[test]
fn a_member_restarts_only_while_the_others_carry_quorum() {
    let s = updated_sts();
    let old = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r1", true)];
    // A member down already goes first: restarting it costs nothing (and mends a broken template).
    let one_down = view(&[true, false, true]).build();
    let old_down = [pod(0, "r1", true), pod(1, "r1", false), pod(2, "r1", true)];
    assert_eq!(recorded(decide(&s, &old_down, &one_down, None)), "demo-1");
    let two_down = view(&[true, false, false]).build();
    waits(decide(&s, &old, &two_down, None), "not healthy");
    // The recorded member is not restarted while another is down.
    waits(decide(&s, &old, &view(&[true, false, true]).build(), Some(&restarting("demo-2"))), "demo-1");
    let lagging = view(&[true; 3]).raft_index(0, 10 + 2 * MAX_LAG).build();
    waits(decide(&s, &old, &lagging, None), "catching up");
    let learner = view(&[true; 3]).learner(1).build();
    waits(decide(&s, &old, &learner, None), "learner");
    let missing = [pod(0, "r1", true), pod(1, "r1", true)];
    waits(decide(&s, &missing, &view(&[true; 3]).build(), None), "membership to settle");
}

#[test]
fn nothing_restarts_before_the_statefulset_took_up_the_template_and_nothing_after() {
    let healthy = view(&[true; 3]).build();
    let old = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r1", true)];
    let stale = StatefulSetState { up_to_date: false, ..updated_sts() };
    waits(decide(&stale, &old, &healthy, None), "not taken up");
    let new = [pod(0, "r2", true), pod(1, "r2", true), pod(2, "r2", true)];
    assert_eq!(decide(&updated_sts(), &new, &healthy, None), RollAction::Done);
    let stopping =
        [pod(0, "r2", true), pod(1, "r2", true), PodState { terminating: true, ..pod(2, "r2", true) }];
    waits(decide(&updated_sts(), &stopping, &healthy, None), "stopping");
}

#[test]
fn a_single_member_restarts_without_a_handover() {
    let s = StatefulSetState { update_revision: "r2".into(), ..sts(1, 1) };
    let alone = view(&[true]).build();
    let pods = [pod(0, "r1", true)];
    assert_eq!(recorded(decide(&s, &pods, &alone, None)), "demo-0");
    assert_eq!(
        decide(&s, &pods, &alone, Some(&restarting("demo-0"))),
        RollAction::Restart { member: "demo-0".into(), uid: "uid-0-r1".into() }
    );
}

#[test]
fn a_cluster_that_never_formed_replaces_every_outdated_pod_at_once() {
    let names = names();
    let s = updated_sts();
    let pods = [pod(0, "r1", false), pod(1, "r2", false), pod(2, "r1", false)];
    let nobody = EtcdView::default();
    let i = RollInputs {
        sts: &s,
        pods: &pods,
        view: &nobody,
        operation: None,
        formed: false,
        names: &names,
        now: "t",
    };
    let expected =
        vec![("demo-0".to_owned(), "uid-0-r1".to_owned()), ("demo-2".to_owned(), "uid-2-r1".to_owned())];
    assert_eq!(next_roll_action(&i), RollAction::RestartUnformed(expected));
    let new = [pod(0, "r2", false), pod(1, "r2", false), pod(2, "r2", false)];
    assert_eq!(next_roll_action(&RollInputs { pods: &new, ..i }), RollAction::Done);
}

fn decide_tls(
    s: &StatefulSetState,
    pods: &[PodState],
    v: &EtcdView,
    op: Option<&OperationStatus>,
) -> RollAction {
    decide_with(true, s, pods, v, op)
}

#[test]
fn a_member_moving_to_the_other_scheme_gets_its_peer_url_set_just_before_it_restarts() {
    let s = updated_sts();
    let plain = view(&[true; 3]).build();
    let old = [pod(0, "r1", true), pod(1, "r1", true), pod(2, "r1", true)];
    assert_eq!(recorded(decide_tls(&s, &old, &plain, None)), "demo-2");
    let update = decide_tls(&s, &old, &plain, Some(&restarting("demo-2")));
    let peer_url = names().with_tls(true).peer_url("demo-2");
    assert!(peer_url.starts_with("https://"), "{peer_url}");
    assert_eq!(
        update,
        RollAction::UpdatePeerUrl { member: "demo-2".into(), id: 0x102, peer_url: peer_url.clone() }
    );
    // Set (the membership is the record): now it restarts.
    let mut set = view(&[true; 3]).build();
    set.members[2].info.peer_urls = vec![peer_url];
    let restart = decide_tls(&s, &old, &set, Some(&restarting("demo-2")));
    assert_eq!(restart, RollAction::Restart { member: "demo-2".into(), uid: "uid-2-r1".into() });
}

#[test]
fn a_member_that_runs_the_new_template_with_a_peer_url_of_the_other_scheme_gets_it_set() {
    // demo-1's pod was recreated (a node restart) before the roll reached it.
    let s = updated_sts();
    let plain = view(&[true; 3]).build();
    let pods = [pod(0, "r1", true), pod(1, "r2", true), pod(2, "r1", true)];
    let fix = decide_tls(&s, &pods, &plain, None);
    assert!(
        matches!(fix, RollAction::UpdatePeerUrl { ref member, id: 0x101, .. } if member == "demo-1"),
        "{fix:?}"
    );
    // Nothing of the kind outside a move: the scheme matches.
    assert_eq!(recorded(decide(&s, &pods, &plain, None)), "demo-2");
}
