//! Member replacement decisions from small fixtures: grace period, quorum
//! refusal, and every step resumed from its record.

use std::{collections::HashMap, time::Duration};

use crate::fixtures::names;

use crate::observe::{EtcdView, MemberView};
use crate::{
    fixtures::member, operation::OperationType, recovery::replace::decide::ReplaceAction,
    recovery::replace::decide::ReplaceInputs, recovery::replace::decide::next_replace_action,
    recovery::replace::decide::step,
};

fn view(members: Vec<MemberView>) -> EtcdView {
    EtcdView { cluster_id: 0xabc, members, alarms: vec![], cluster_version: None }
}

struct Case {
    view: EtcdView,
    op: Option<etcd_operator_api::cluster::OperationStatus>,
    requested: Option<&'static str>,
    unhealthy: HashMap<String, Duration>,
    pod_terminating: bool,
    replicas: i32,
    size: i32,
}

impl Case {
    /// demo-0 leads, demo-2 does not answer.
    fn one_dead(for_secs: u64) -> Self {
        let members = vec![
            member(0, false, true, true, 0x100),
            member(1, false, true, true, 0x100),
            member(2, false, false, true, 0x100),
        ];
        Self {
            view: view(members),
            op: None,
            requested: None,
            unhealthy: [("demo-2".to_owned(), Duration::from_secs(for_secs))].into(),
            pod_terminating: false,
            replicas: 3,
            size: 3,
        }
    }

    fn next(&self) -> ReplaceAction {
        let names = names();
        next_replace_action(&ReplaceInputs {
            view: &self.view,
            operation: self.op.as_ref(),
            requested: self.requested,
            unhealthy_for: &self.unhealthy,
            grace: Duration::from_secs(300),
            replicas: self.replicas,
            size: self.size,
            pod_terminating: self.pod_terminating,
            names: &names,
            now: "t",
        })
    }

    fn apply(&mut self, action: ReplaceAction) {
        let ReplaceAction::Record(op) = action else { panic!("expected a record, got {action:?}") };
        self.op = Some(op);
    }
}

#[test]
fn a_member_unhealthy_for_less_than_the_grace_period_is_left_alone() {
    let c = Case::one_dead(60);
    let ReplaceAction::Nothing(why) = c.next() else { panic!("{:?}", c.next()) };
    assert!(why.contains("demo-2") && why.contains("slow or partitioned"), "{why}");
    let mut healthy = Case::one_dead(0);
    healthy.view = view(vec![member(0, false, true, true, 0x100)]);
    assert_eq!(healthy.next(), ReplaceAction::Nothing("every member is healthy".into()));
}

#[test]
fn a_member_dead_past_the_grace_period_is_replaced_step_by_step() {
    let mut c = Case::one_dead(301);
    let first = c.next();
    let ReplaceAction::Record(op) = &first else { panic!("{first:?}") };
    assert_eq!(
        (op.type_, op.step.as_str(), op.member.as_deref()),
        (OperationType::ReplaceMember, step::REMOVING_MEMBER, Some("demo-2"))
    );
    assert_eq!(op.member_id.as_deref(), Some("102"));
    c.apply(first);
    assert_eq!(c.next(), ReplaceAction::Remove { id: 0x102 });
    // Removed: its claim and pod go (the ConfigMap listing it to join an existing cluster) ...
    c.view.members.pop();
    let next = c.next();
    c.apply(next);
    assert_eq!(
        c.next(),
        ReplaceAction::RecreateVolume {
            claim: "data-demo-2".into(),
            pod: "demo-2".into(),
            initial_members: vec!["demo-0".to_owned(), "demo-1".into(), "demo-2".into()]
        }
    );
    // ... and only once the old pod is gone is it re-added as a learner under the same name.
    c.op.as_mut().unwrap().step = step::ADDING_LEARNER.into();
    c.pod_terminating = true;
    assert!(matches!(c.next(), ReplaceAction::Wait { reason, .. } if reason.contains("old pod")));
    c.pod_terminating = false;
    let ReplaceAction::AddLearner { member: m, peer_url } = c.next() else { panic!() };
    assert_eq!(m, "demo-2");
    assert!(peer_url.starts_with("http://demo-2.demo.prod.svc"), "{peer_url}");
    // The learner exists (new ID): it starts empty.
    let mut learner = member(2, true, false, false, 0x100);
    learner.info.id = 0x202;
    c.view.members.push(learner);
    let next = c.next();
    c.apply(next);
    assert_eq!(c.op.as_ref().unwrap().member_id.as_deref(), Some("202"));
    assert_eq!(c.op.as_ref().unwrap().step, step::STARTING_MEMBER);
    assert!(matches!(c.next(), ReplaceAction::Wait { .. }));
    let mut started = member(2, true, true, true, 0x100);
    started.info.id = 0x202;
    *c.view.members.last_mut().unwrap() = started;
    let next = c.next();
    c.apply(next);
    assert_eq!(c.next(), ReplaceAction::Promote { id: 0x202 });
    let mut voter = member(2, false, true, true, 0x100);
    voter.info.id = 0x202;
    *c.view.members.last_mut().unwrap() = voter;
    assert_eq!(c.next(), ReplaceAction::Done);
}

#[test]
fn a_replacement_that_would_cost_quorum_is_refused() {
    let mut c = Case::one_dead(301);
    // Two of three dead: removing one would leave one healthy of two voters.
    c.view.members[1] = member(1, false, false, true, 0x100);
    c.unhealthy.insert("demo-1".into(), Duration::from_secs(400));
    let ReplaceAction::Refuse(why) = c.next() else { panic!("{:?}", c.next()) };
    assert!(why.contains("cannot be replaced now"), "{why}");
    // Asked for by name: a healthy member may be replaced (for example corrupt data), if quorum allows.
    let mut c = Case::one_dead(0);
    c.requested = Some("demo-1");
    let ReplaceAction::Refuse(why) = c.next() else { panic!("{:?}", c.next()) };
    assert!(why.contains("below quorum"), "with demo-2 dead, demo-1 must stay: {why}");
    c.requested = Some("demo-9");
    assert!(matches!(c.next(), ReplaceAction::Refuse(m) if m.contains("not a member")));
}

#[test]
fn a_new_learner_that_ran_and_went_silent_is_removed_and_added_again() {
    // Replacing demo-2: its learner (0x202) joined, then lost its volume again before promotion.
    let mut c = Case::one_dead(0);
    let mut learner = member(2, true, false, true, 0x100);
    learner.info.id = 0x202;
    c.view.members[2] = learner;
    for at in [step::STARTING_MEMBER, step::PROMOTING_MEMBER] {
        c.op = Some(etcd_operator_api::cluster::OperationStatus {
            member: Some("demo-2".into()),
            member_id: Some("202".into()),
            ..etcd_operator_api::cluster::OperationStatus::at_step(
                OperationType::ReplaceMember,
                at,
                None,
                "t",
            )
        });
        // Silent for less than the grace: it may only be slow to start.
        c.unhealthy.insert("demo-2".into(), Duration::from_secs(60));
        assert!(matches!(c.next(), ReplaceAction::Wait { reason, .. } if reason.contains("starting empty")));
        // Past it: back to removing that learner (safe: it counts for no quorum) ...
        c.unhealthy.insert("demo-2".into(), Duration::from_secs(301));
        let back = c.next();
        let ReplaceAction::Record(op) = &back else { panic!("{back:?}") };
        assert_eq!((op.step.as_str(), op.member_id.as_deref()), (step::REMOVING_MEMBER, Some("202")));
        let mut resumed = Case { op: Some(op.clone()), ..Case::one_dead(301) };
        resumed.view = c.view.clone();
        assert_eq!(resumed.next(), ReplaceAction::Remove { id: 0x202 });
    }
    // A learner that never ran is waited for however long: its pod may be pulling or joining.
    c.view.members[2] = member(2, true, false, false, 0x100);
    c.view.members[2].info.id = 0x202;
    assert!(matches!(c.next(), ReplaceAction::Wait { .. }));
}

#[test]
fn a_member_not_yet_added_back_is_given_up_once_the_spec_no_longer_wants_it() {
    // demo-2 was removed for its replacement and its old pod is gone: next it is added back.
    let mut c = Case::one_dead(301);
    let next = c.next();
    c.apply(next);
    c.op.as_mut().unwrap().step = step::ADDING_LEARNER.into();
    c.view.members.pop();
    assert!(matches!(c.next(), ReplaceAction::AddLearner { .. }));
    // With another voter down etcd refuses the add, and the replacement retries it: given up,
    // the member would be missing below the top ordinal, which no scale-up adds back.
    c.view.members[1] = member(1, false, false, true, 0x100);
    assert!(matches!(c.next(), ReplaceAction::AddLearner { .. }));
    // spec.size went down past it while the StatefulSet still has its pod (campaign seed 78,
    // twice): the scale down waits for this record and then takes the pod away.
    c.size = 2;
    let ReplaceAction::Withdraw(why) = c.next() else { panic!("{:?}", c.next()) };
    assert!(why.contains("spec.size is 2"), "{why}");
    c.view.members[1] = member(1, false, true, true, 0x100);
    c.replicas = 2;
    assert!(matches!(c.next(), ReplaceAction::Withdraw(_)));
    // A member above it: scaling removes from the top, and would never fill the gap.
    c.view.members.push(member(3, false, true, true, 0x100));
    assert!(matches!(c.next(), ReplaceAction::AddLearner { .. }));
    // Size 0 stops the cluster; it drops no member.
    c.view.members.pop();
    (c.size, c.replicas) = (0, 3);
    assert!(matches!(c.next(), ReplaceAction::AddLearner { .. }));
}
