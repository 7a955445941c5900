//! Scaling decisions from small fixtures: every step of scale up and down,
//! resumption after a crash at each point, and the quorum refusals.

use std::{collections::HashMap, time::Duration};

use etcd_operator_api::cluster::OperationStatus;

use crate::observe::{EtcdView, MemberView};
use crate::operation::{OperationType, member_step as step};
use crate::scaling::decide::{ScalingAction, ScalingInputs, next_scaling_action};

const NOW: &str = "2026-11-26T00:00:00Z";
const GRACE: Duration = Duration::from_secs(10);

use crate::fixtures::{member, names};

/// `n` healthy voters, member 0 leading.
fn voters(n: i32) -> Vec<MemberView> {
    (0..n).map(|i| member(i, false, true, true, 0x100)).collect()
}

fn op(type_: OperationType, step: &str, member: &str, id: Option<u64>) -> OperationStatus {
    OperationStatus {
        type_,
        step: step.into(),
        target: Some(3),
        member: Some(member.into()),
        member_id: id.map(|i| format!("{i:x}")),
        backup_name: None,
        snapshot: None,
        started_at: "2026-11-25T23:00:00Z".into(),
    }
}

struct Case {
    target: i32,
    replicas: i32,
    pods: i32,
    members: Vec<MemberView>,
    op: Option<OperationStatus>,
    claims: Vec<String>,
    unhealthy_for: HashMap<String, Duration>,
}

impl Case {
    fn new(target: i32, members: Vec<MemberView>) -> Self {
        let n = members.len() as i32;
        Self {
            target,
            replicas: n,
            pods: n,
            members,
            op: None,
            claims: vec![],
            unhealthy_for: HashMap::new(),
        }
    }
    fn replicas(mut self, r: i32, pods: i32) -> Self {
        self.replicas = r;
        self.pods = pods;
        self
    }
    fn silent(mut self, member: &str, secs: u64) -> Self {
        self.unhealthy_for.insert(member.into(), Duration::from_secs(secs));
        self
    }
    fn op(mut self, op: OperationStatus) -> Self {
        self.op = Some(op);
        self
    }
    fn next(&self) -> ScalingAction {
        let view = EtcdView {
            cluster_id: 0xabc,
            members: self.members.clone(),
            alarms: vec![],
            cluster_version: None,
        };
        next_scaling_action(&ScalingInputs {
            target: self.target,
            replicas: self.replicas,
            pods: self.pods,
            view: &view,
            operation: self.op.as_ref(),
            claims: &self.claims,
            names: &names(),
            now: NOW,
            unhealthy_for: &self.unhealthy_for,
            grace: GRACE,
        })
    }
}

fn recorded(a: ScalingAction) -> OperationStatus {
    match a {
        ScalingAction::Record(op) => op,
        other => panic!("expected a record, got {other:?}"),
    }
}

#[test]
fn scale_up_walks_every_step_for_one_member() {
    // Intent first.
    let mut op1 = recorded(Case::new(3, voters(1)).next());
    assert_eq!(
        (op1.type_, op1.step.as_str(), op1.member.as_deref()),
        (OperationType::ScaleUp, step::ADDING_LEARNER, Some("demo-1"))
    );
    assert_eq!(op1.started_at, NOW);
    op1.started_at = "2026-11-25T23:00:00Z".into();
    // Then the learner is added.
    let c = Case::new(3, voters(1)).op(op1.clone());
    assert_eq!(
        c.next(),
        ScalingAction::AddLearner { member: "demo-1".into(), peer_url: names().peer_url("demo-1") }
    );
    // It exists in etcd now (not started): its ID is recorded.
    let mut members = voters(1);
    members.push(member(1, true, false, false, 0));
    let op2 = recorded(Case::new(3, members.clone()).replicas(1, 1).op(op1).next());
    assert_eq!((op2.step.as_str(), op2.member_id.as_deref()), (step::STARTING_MEMBER, Some("101")));
    assert_eq!(op2.started_at, "2026-11-25T23:00:00Z", "a step keeps the operation's start time");
    // Its pod is asked for, with the ConfigMap telling it whom to join.
    let c = Case::new(3, members.clone()).replicas(1, 1).op(op2.clone());
    assert_eq!(
        c.next(),
        ScalingAction::SetReplicas { replicas: 2, initial_members: vec!["demo-0".into(), "demo-1".into()] }
    );
    // Starting: wait.
    let c = Case::new(3, members).replicas(2, 2).op(op2.clone());
    assert!(matches!(c.next(), ScalingAction::Wait { .. }));
    // Started and answering: record the promotion, then promote.
    let mut members = voters(1);
    members.push(member(1, true, true, true, 0x100));
    let op3 = recorded(Case::new(3, members.clone()).replicas(2, 2).op(op2).next());
    assert_eq!(op3.step, step::PROMOTING_MEMBER);
    let c = Case::new(3, members).replicas(2, 2).op(op3.clone());
    assert_eq!(c.next(), ScalingAction::Promote { member: "demo-1".into(), id: 0x101 });
    // A healthy voter: the next member starts.
    let c = Case::new(3, voters(2)).op(op3.clone());
    assert_eq!(recorded(c.next()).member.as_deref(), Some("demo-2"));
    // At the target: done.
    let c = Case::new(2, voters(2)).op(op3);
    assert_eq!(c.next(), ScalingAction::Done);
}

#[test]
fn scale_up_resumes_after_a_crash_at_any_point() {
    let intent = op(OperationType::ScaleUp, step::ADDING_LEARNER, "demo-1", None);
    // Crashed after asking for the pod but the member was never added: the pod goes first.
    let c = Case::new(3, voters(1)).replicas(2, 2).op(intent.clone());
    assert_eq!(c.next(), ScalingAction::SetReplicas { replicas: 1, initial_members: vec![] });
    let c = Case::new(3, voters(1)).replicas(1, 2).op(intent.clone());
    assert!(matches!(c.next(), ScalingAction::Wait { .. }), "the pod is still terminating");
    // A claim from an earlier attempt holds data of a removed member: deleted before the add.
    let mut c = Case::new(3, voters(1)).op(intent.clone());
    c.claims = vec!["data-demo-1".into()];
    assert_eq!(c.next(), ScalingAction::DeleteStaleClaim { claim: "data-demo-1".into() });
    // The add went through but its answer was lost: found by peer URL, never added twice.
    let mut members = voters(1);
    members.push(member(1, true, false, false, 0));
    let c = Case::new(3, members).op(intent);
    assert_eq!(recorded(c.next()).member_id.as_deref(), Some("101"));
    // A learner nobody recorded is adopted, not orphaned.
    let mut members = voters(2);
    members.push(member(2, true, true, true, 0x100));
    let c = Case::new(3, members).replicas(3, 3);
    let adopted = recorded(c.next());
    assert_eq!((adopted.step.as_str(), adopted.member.as_deref()), (step::STARTING_MEMBER, Some("demo-2")));
    // A recorded member that vanished from etcd is added again from the start.
    let c =
        Case::new(3, voters(1)).op(op(OperationType::ScaleUp, step::PROMOTING_MEMBER, "demo-1", Some(0x101)));
    assert_eq!(recorded(c.next()).step, step::ADDING_LEARNER);
}

/// Campaign seed 23: a learner that ran and then lost its volume is refused by its restore agent
/// forever. It is removed once silent past the grace period (or at once when the spec no longer
/// wants it) and the scale-up adds it again, empty.
#[test]
fn a_learner_that_ran_and_went_silent_is_removed_and_added_again() {
    let starting = op(OperationType::ScaleUp, step::STARTING_MEMBER, "demo-3", Some(0x103));
    // Ran before (etcd knows its name), not answering now.
    let mut members = voters(3);
    members.push(member(3, true, false, true, 0x100));
    let c = |target: i32| Case::new(target, members.clone()).replicas(4, 4).op(starting.clone());
    // Silent for less than the grace: it may only be restarting.
    assert!(matches!(c(5).silent("demo-3", 9).next(), ScalingAction::Wait { .. }));
    // Past the grace: removed (a learner counts for no quorum and holds nothing the voters lack).
    let removed = ScalingAction::Remove { member: "demo-3".into(), id: 0x103 };
    assert_eq!(c(5).silent("demo-3", 10).next(), removed);
    // Not wanted any more: removed at once, its pod never asked for again.
    assert_eq!(c(3).next(), removed);
    let c = Case::new(3, members.clone()).replicas(3, 3).op(starting.clone());
    assert_eq!(c.next(), removed);
    // Never ran (no name yet): its pod may still be pulling or waiting to join, however long.
    let mut fresh = voters(3);
    fresh.push(member(3, true, false, false, 0x100));
    let c = Case::new(5, fresh).replicas(4, 4).op(starting.clone()).silent("demo-3", 600);
    assert!(matches!(c.next(), ScalingAction::Wait { .. }));
    // Once removed: its pod stops, then it is added again from the start, its old claim first.
    let c = Case::new(5, voters(3)).replicas(4, 4).op(starting.clone());
    assert_eq!(c.next(), ScalingAction::SetReplicas { replicas: 3, initial_members: vec![] });
    let again = recorded(Case::new(5, voters(3)).op(starting).next());
    assert_eq!((again.step.as_str(), again.member_id.as_deref()), (step::ADDING_LEARNER, None));
    let mut c = Case::new(5, voters(3)).op(again.clone());
    c.claims = vec!["data-demo-3".into()];
    assert_eq!(c.next(), ScalingAction::DeleteStaleClaim { claim: "data-demo-3".into() });
    // Or, when the spec went back to 3, the scale-up is withdrawn.
    assert!(matches!(Case::new(3, voters(3)).op(again).next(), ScalingAction::Withdraw(_)));
}

/// Campaign seed 23 again, a step later: the member was promoted before its volume was lost.
/// The scale-up gives its record up once the voter stays silent (its replacement needs the
/// operation slot), or at once hands over to the scale down that no longer wants it.
#[test]
fn a_new_voter_that_went_silent_gives_the_scale_up_record_up() {
    let promoting = op(OperationType::ScaleUp, step::PROMOTING_MEMBER, "demo-3", Some(0x103));
    let mut members = voters(3);
    members.push(member(3, false, false, true, 0x100));
    let c = |target: i32| Case::new(target, members.clone()).op(promoting.clone());
    assert!(matches!(c(5).silent("demo-3", 9).next(), ScalingAction::Wait { .. }));
    let ScalingAction::Withdraw(why) = c(5).silent("demo-3", 10).next() else { panic!("must withdraw") };
    assert!(why.contains("demo-3") && why.contains("replaced first"), "{why}");
    // spec.size went back to 3: the scale down removes it (3 healthy voters of 3 remain).
    let down = recorded(c(3).next());
    assert_eq!(
        (down.type_, down.step.as_str(), down.member.as_deref()),
        (OperationType::ScaleDown, step::REMOVING_MEMBER, Some("demo-3"))
    );
}

#[test]
fn scale_down_moves_leadership_then_removes_then_shrinks() {
    let intent = recorded(Case::new(2, voters(3)).next());
    assert_eq!(
        (intent.type_, intent.member.as_deref(), intent.member_id.as_deref()),
        (OperationType::ScaleDown, Some("demo-2"), Some("102"))
    );
    // demo-2 leads: leadership goes to the lowest healthy voter first.
    let leading: Vec<_> = (0..3).map(|i| member(i, false, true, true, 0x102)).collect();
    let c = Case::new(2, leading).op(intent.clone());
    assert_eq!(
        c.next(),
        ScalingAction::MoveLeader { leader_endpoint: names().client_url("demo-2"), to: 0x100 }
    );
    let c = Case::new(2, voters(3)).op(intent.clone());
    assert_eq!(c.next(), ScalingAction::Remove { member: "demo-2".into(), id: 0x102 });
    // Removed from etcd, pod still wanted: shrink; then wait for the pod; then done.
    let c = Case::new(2, voters(2)).replicas(3, 3).op(intent.clone());
    assert_eq!(c.next(), ScalingAction::SetReplicas { replicas: 2, initial_members: vec![] });
    let c = Case::new(2, voters(2)).replicas(2, 3).op(intent.clone());
    assert!(matches!(c.next(), ScalingAction::Wait { .. }));
    let c = Case::new(2, voters(2)).op(intent.clone());
    assert_eq!(c.next(), ScalingAction::Done);
    // Further down: the next member.
    let c = Case::new(1, voters(2)).op(intent);
    assert_eq!(recorded(c.next()).member.as_deref(), Some("demo-1"));
}

#[test]
fn scale_down_refuses_what_would_cost_quorum() {
    // demo-0 is down: removing demo-2 would leave demo-1 alone of two voters.
    let mut members = voters(3);
    members[0] = member(0, false, false, true, 0);
    let ScalingAction::Refuse(why) = Case::new(2, members).next() else { panic!("must refuse") };
    assert!(why.contains("below quorum"), "{why}");
    // Two members, one down: no quorum to commit anything.
    let mut members = voters(2);
    members[1] = member(1, false, false, true, 0);
    assert!(matches!(Case::new(1, members).next(), ScalingAction::Refuse(_)));
    // Two healthy members may become one: both vote for the removal.
    assert_eq!(recorded(Case::new(1, voters(2)).next()).member.as_deref(), Some("demo-1"));
    // A recorded removal is re-checked before it is carried out, and gives its record up: the
    // failed voter's replacement needs the operation slot.
    let mut members = voters(3);
    members[1] = member(1, false, false, true, 0x100);
    let c =
        Case::new(2, members).op(op(OperationType::ScaleDown, step::REMOVING_MEMBER, "demo-2", Some(0x102)));
    assert!(matches!(c.next(), ScalingAction::Withdraw(why) if why.contains("below quorum")));
    // Zero is not a scale down.
    assert!(matches!(Case::new(0, voters(3)).next(), ScalingAction::Refuse(_)));
}

#[test]
fn a_changed_target_turns_around_after_the_member_in_flight() {
    let done_up = op(OperationType::ScaleUp, step::PROMOTING_MEMBER, "demo-2", Some(0x102));
    let c = Case::new(1, voters(3)).op(done_up);
    let next = recorded(c.next());
    assert_eq!((next.type_, next.member.as_deref()), (OperationType::ScaleDown, Some("demo-2")));
}

#[test]
fn pods_above_every_member_are_taken_away_first_and_a_gap_below_waits() {
    // A replacement given up at the top (campaign seed 78): demo-3 and demo-4 have pods but no
    // membership. A scale down records the lowest of them and shrinks the StatefulSet to it.
    let c = Case::new(3, voters(3)).replicas(5, 5);
    let next = recorded(c.next());
    assert_eq!((next.type_, next.member.as_deref()), (OperationType::ScaleDown, Some("demo-3")));
    let c = c.op(next);
    assert_eq!(c.next(), ScalingAction::SetReplicas { replicas: 3, initial_members: vec![] });
    // A scale up adds demo-3 afresh: its pod goes first, like any scale up's.
    let c = Case::new(4, voters(3)).replicas(5, 5);
    let next = recorded(c.next());
    assert_eq!((next.type_, next.step.as_str()), (OperationType::ScaleUp, step::ADDING_LEARNER));
    assert_eq!(c.op(next).next(), ScalingAction::SetReplicas { replicas: 3, initial_members: vec![] });
    // A member missing below another is the replacement's to add back: wait, never guess.
    let mut members = voters(3);
    members.remove(1);
    let c = Case::new(3, members).replicas(3, 3);
    assert!(matches!(c.next(), ScalingAction::Wait { .. }));
}

#[test]
fn a_scale_up_not_yet_acted_on_withdraws_for_a_failed_voter_or_a_smaller_target() {
    let intent = op(OperationType::ScaleUp, step::ADDING_LEARNER, "demo-3", None);
    // A voter is down: etcd would refuse the add, and the slot must be free for its replacement.
    let mut members = voters(3);
    members[0] = member(0, false, false, true, 0x101);
    let c = Case::new(5, members.clone()).op(intent.clone());
    assert!(matches!(c.next(), ScalingAction::Withdraw(why) if why.contains("demo-0")), "{:?}", c.next());
    // Without a record, nothing is recorded until the voter is back.
    assert!(
        matches!(Case::new(5, members).next(), ScalingAction::Wait { reason, .. } if reason.contains("demo-0"))
    );
    // spec.size went back down before the member was added: nothing to add.
    let c = Case::new(3, voters(3)).op(intent.clone());
    assert!(matches!(c.next(), ScalingAction::Withdraw(why) if why.contains("spec.size is 3")));
    // Once added, a scale up is finished as before, whatever happens meanwhile.
    let mut members = voters(3);
    members[0] = member(0, false, false, true, 0x101);
    members.push(member(3, true, false, false, 0));
    let c = Case::new(5, members).op(intent);
    assert_eq!(recorded(c.next()).step, step::STARTING_MEMBER);
}

#[test]
fn a_finished_scale_down_ends_even_with_a_member_unhealthy() {
    // Found by the campaign's seeds 18 and 19: demo-3 removed, demo-0 lost meanwhile. Waiting
    // for demo-0 kept the record, and the record kept demo-0's replacement out.
    let mut members = voters(3);
    members[0] = member(0, false, false, true, 0x101);
    let c =
        Case::new(3, members).op(op(OperationType::ScaleDown, step::REMOVING_MEMBER, "demo-3", Some(0x103)));
    assert_eq!(c.next(), ScalingAction::Done);
}
